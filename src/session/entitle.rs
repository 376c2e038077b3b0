//! Symbol entitlements: which `prices` symbols a connection may see.
//!
//! A tenant's `[tenants.<name>] symbols` patterns (exact names or `PREFIX*`)
//! are resolved against the universe once at start; a tenant without an entry
//! may see every symbol. A token's `symbols` claim narrows that further.

use crate::auth::Claims;
use crate::config::TenantConfig;
use crate::model::symbol::{SymbolId, Universe};
use std::collections::{BTreeMap, HashMap};

/// Each configured tenant's symbols, as sorted ids into the universe.
#[derive(Debug, Clone, Default)]
pub struct Entitlements {
    tenants: HashMap<String, Vec<SymbolId>>,
}

impl Entitlements {
    /// Resolves every tenant's patterns against `universe`.
    pub fn new(tenants: &BTreeMap<String, TenantConfig>, universe: &Universe) -> Self {
        let tenants = tenants
            .iter()
            .map(|(name, t)| {
                let ids = universe
                    .symbols()
                    .iter()
                    .enumerate()
                    .filter(|(_, symbol)| t.symbols.iter().any(|p| matches(p, symbol)))
                    .map(|(i, _)| SymbolId(i as u32))
                    .collect();
                (name.clone(), ids)
            })
            .collect();
        Entitlements { tenants }
    }

    /// The symbols `claims` may see, sorted; `None` = every symbol.
    pub fn allowed(&self, claims: &Claims, universe: &Universe) -> Option<Vec<SymbolId>> {
        let tenant = self.tenants.get(&claims.tenant);
        let token = claims.symbols.as_ref().map(|names| {
            let mut ids: Vec<SymbolId> =
                names.iter().filter_map(|n| universe.symbol_id(n)).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        });
        match (tenant, token) {
            (None, token) => token,
            (Some(tenant), None) => Some(tenant.clone()),
            (Some(tenant), Some(mut token)) => {
                token.retain(|id| tenant.binary_search(id).is_ok());
                Some(token)
            }
        }
    }
}

/// Whether `symbol` matches `pattern`: equal, or starting with the part before a final `*`.
fn matches(pattern: &str, symbol: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => symbol.starts_with(prefix),
        None => pattern == symbol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn universe() -> Universe {
        let names = ["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "XAUUSD"];
        Universe::new(names.map(String::from).to_vec(), vec!["LP1".into()])
    }

    fn entitlements() -> Entitlements {
        let mut tenants = BTreeMap::new();
        let t1 = ["EURUSD", "USD*"].map(String::from).to_vec();
        tenants.insert("t1".into(), TenantConfig { symbols: t1 });
        tenants.insert("none".into(), TenantConfig::default());
        let all = vec!["*".to_string()];
        tenants.insert("all".into(), TenantConfig { symbols: all });
        Entitlements::new(&tenants, &universe())
    }

    fn claims(tenant: &str, symbols: Option<&[&str]>) -> Claims {
        Claims {
            sub: "u1".into(),
            tenant: tenant.into(),
            roles: vec!["TRADER".into()],
            exp: 0,
            symbols: symbols.map(|s| s.iter().map(|n| n.to_string()).collect()),
        }
    }

    fn names(ids: Option<Vec<SymbolId>>) -> Option<Vec<String>> {
        let u = universe();
        ids.map(|ids| {
            ids.iter()
                .map(|id| u.symbol_name(*id).to_string())
                .collect()
        })
    }

    fn allowed(tenant: &str, symbols: Option<&[&str]>) -> Option<Vec<String>> {
        names(entitlements().allowed(&claims(tenant, symbols), &universe()))
    }

    #[test]
    fn patterns_are_exact_names_or_prefixes() {
        assert!(matches("USD*", "USDJPY"));
        assert!(matches("USD*", "USD"));
        assert!(!matches("USD*", "EURUSD"));
        assert!(matches("EURUSD", "EURUSD"));
        assert!(!matches("EURUSD", "EURUSDX"));
        assert!(matches("*", "XAUUSD"));
    }

    #[test]
    fn tenant_list_applies() {
        let want = ["EURUSD", "USDJPY", "USDCHF"].map(String::from).to_vec();
        assert_eq!(allowed("t1", None), Some(want));
        assert_eq!(allowed("none", None), Some(vec![]));
        assert_eq!(allowed("all", None).map(|v| v.len()), Some(5));
    }

    #[test]
    fn tenant_without_entry_sees_everything_unless_the_token_narrows() {
        assert_eq!(allowed("other", None), None);
        let narrowed = allowed("other", Some(&["XAUUSD", "NOSUCH", "XAUUSD"]));
        assert_eq!(narrowed, Some(vec!["XAUUSD".to_string()]));
    }

    #[test]
    fn token_claim_narrows_the_tenant_list_and_never_widens_it() {
        let got = allowed("t1", Some(&["XAUUSD", "USDCHF", "GBPUSD"]));
        assert_eq!(got, Some(vec!["USDCHF".to_string()]));
        assert_eq!(allowed("none", Some(&["EURUSD"])), Some(vec![]));
    }
}
