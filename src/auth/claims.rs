//! The verified identity behind a connection: [`Claims`] and its [`Role`]s.
//! A leaf: it knows nothing of tokens, keys or configuration.

use serde::Serialize;
use std::borrow::{Borrow, Cow};

/// A role name as tokens and the channel catalogue spell it (`TRADER`).
///
/// Roles are open-ended (identity providers and `channels.roles` name their
/// own), so a role is its name; the constants are the ones the server itself
/// checks or grants. Serialized as the bare name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Role(Cow<'static, str>);

impl Role {
    /// May read `/v1/status` and publish; granted to the dev-mode token.
    pub const ADMIN: Role = Role(Cow::Borrowed("ADMIN"));
    /// A system that publishes events to `POST /v1/publish`.
    pub const SERVICE: Role = Role(Cow::Borrowed("SERVICE"));
    /// A trading terminal; granted to the dev-mode token.
    pub const TRADER: Role = Role(Cow::Borrowed("TRADER"));
    /// In a channel's role list, admits any valid token (`"*"`).
    pub const ANY: Role = Role(Cow::Borrowed("*"));

    /// The name, as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Role {
    fn from(name: &str) -> Role {
        Role(Cow::Owned(name.to_owned()))
    }
}

impl From<String> for Role {
    fn from(name: String) -> Role {
        Role(Cow::Owned(name))
    }
}

/// Lets a list of roles be joined or searched by name like a list of strings.
impl Borrow<str> for Role {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Role {
    fn eq(&self, name: &&str) -> bool {
        self.0 == *name
    }
}

/// The verified identity behind a connection or request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Tenant the user belongs to; isolates metric, alert, session and notification streams.
    pub tenant: String,
    /// Roles, upper-cased on verification (`trader` becomes `TRADER`).
    pub roles: Vec<Role>,
    /// Expiry, UNIX seconds.
    pub exp: u64,
    /// Symbols this token may see; `None` = every symbol the tenant is entitled to.
    pub symbols: Option<Vec<String>>,
}

impl Claims {
    /// Whether the token holds `role`.
    pub fn has_role(&self, role: &Role) -> bool {
        self.roles.contains(role)
    }

    /// Whether the token holds at least one of `allowed`.
    pub fn has_any_role(&self, allowed: &[Role]) -> bool {
        allowed.iter().any(|role| self.has_role(role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(roles: &[&str]) -> Claims {
        Claims {
            sub: "u1".into(),
            tenant: "t1".into(),
            roles: roles.iter().copied().map(Role::from).collect(),
            exp: 0,
            symbols: None,
        }
    }

    #[test]
    fn roles_match_by_exact_name() {
        let c = claims(&["ADMIN", "ANALYST"]);
        assert!(c.has_role(&Role::ADMIN));
        assert!(!c.has_role(&Role::TRADER));
        assert!(!claims(&["admin"]).has_role(&Role::ADMIN));
        assert!(c.has_any_role(&[Role::TRADER, Role::from("ANALYST")]));
        assert!(!c.has_any_role(&[]));
    }

    #[test]
    fn a_role_is_its_bare_name_on_the_wire() {
        let roles = [Role::ANY, Role::from("RISK_MANAGER".to_owned())];
        assert_eq!(
            serde_json::to_string(&roles).unwrap(),
            r#"["*","RISK_MANAGER"]"#
        );
        assert_eq!(roles.join(", "), "*, RISK_MANAGER");
    }
}
