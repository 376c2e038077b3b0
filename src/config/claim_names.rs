//! `[auth.claims]`: where a token's payload holds `sub`, `tenant` and
//! `roles`, for identity providers that name them otherwise.

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// A claim name, or a dotted path into nested objects, per mapped claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimNames {
    /// The user id (`sub`).
    pub sub: String,
    /// The tenant (`tenant`; e.g. `tenantId`).
    pub tenant: String,
    /// The roles array (`roles`; e.g. `realm_access.roles`).
    pub roles: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            sub: "sub".into(),
            tenant: "tenant".into(),
            roles: "roles".into(),
        }
    }
}

impl ClaimNames {
    /// Every path must have non-empty steps: `a..b` or `.a` names nothing.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, path) in [
            ("auth.claims.sub", &self.sub),
            ("auth.claims.tenant", &self.tenant),
            ("auth.claims.roles", &self.roles),
        ] {
            if path.split('.').any(str::is_empty) {
                return Err(ConfigError::Auth(format!(
                    "{key} = {path:?}: a claim name or dotted path has no empty step"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn mapped_claims_and_query_params_parse_and_empty_steps_are_refused() {
        let cfg = Config::from_toml(
            "[auth]\nquery_params = [\"access_token\", \"token\"]\n\
             [auth.claims]\ntenant = \"tenantId\"\nroles = \"realm_access.roles\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.auth.claims.sub, "sub");
        assert_eq!(cfg.auth.claims.roles, "realm_access.roles");
        assert_eq!(cfg.auth.query_params, ["access_token", "token"]);
        for bad in ["\"\"", "\"realm_access.\"", "\"a..b\""] {
            let cfg = Config::from_toml(&format!("[auth.claims]\nroles = {bad}\n")).unwrap();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.starts_with("auth.claims.roles"), "{err}");
        }
        let cfg = Config::from_toml("[auth]\nquery_params = [\"\"]\n").unwrap();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("auth.query_params"), "{err}");
    }
}
