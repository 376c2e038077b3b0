//! `[tenants.NAME]`: symbol entitlements per tenant.

use serde::{Deserialize, Serialize};

/// One tenant's entitlements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// Symbols the tenant may see: exact names, or prefixes ending in `*`
    /// (`"USD*"`; a lone `"*"` is every symbol). Empty = none.
    pub symbols: Vec<String>,
}

/// Whether `p` is a symbol name or a `PREFIX*` pattern: non-empty, and `*`
/// only as the last character.
pub fn is_symbol_pattern(p: &str) -> bool {
    let body = p.strip_suffix('*').unwrap_or(p);
    !p.is_empty() && !body.contains('*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn tenant_patterns_are_names_or_prefixes() {
        for good in ["EURUSD", "USD*", "*"] {
            assert!(is_symbol_pattern(good), "{good}");
        }
        for bad in ["", "**", "U*D", "*USD"] {
            assert!(!is_symbol_pattern(bad), "{bad}");
        }
        let mut cfg = Config::default();
        cfg.tenants.insert(
            "t1".into(),
            TenantConfig {
                symbols: vec!["EURUSD".into(), "*USD".into()],
            },
        );
        let err = cfg.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "tenants.t1.symbols: \"*USD\" is not a symbol name or a PREFIX* pattern"
        );
    }
}
