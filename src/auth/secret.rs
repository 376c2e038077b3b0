//! The HS256 secret: from the environment, a file, or made up for dev mode.

use crate::config::AuthConfig;
use std::ffi::OsString;
use std::io::{Error, ErrorKind};
use std::path::PathBuf;

/// Environment variable holding the HS256 secret; wins over the secret file.
pub const SECRET_ENV: &str = "QUOTECAST_JWT_HS256_SECRET";

/// Where the HS256 secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The `QUOTECAST_JWT_HS256_SECRET` environment variable.
    Env,
    /// `auth.hs256_secret_file`.
    File(PathBuf),
    /// Neither: a random secret for this process only (dev mode).
    Dev,
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env => write!(f, "env {SECRET_ENV}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Dev => write!(f, "dev mode (random secret)"),
        }
    }
}

/// Loads the HS256 secret: `QUOTECAST_JWT_HS256_SECRET`, else
/// `auth.hs256_secret_file` (trailing newline trimmed), else 32 random bytes
/// as a 64-character hex string ([`SecretSource::Dev`]), printable so
/// `quotecast token` can use it. An empty env value or file is an error.
pub fn load_hs256_secret(cfg: &AuthConfig) -> std::io::Result<(Vec<u8>, SecretSource)> {
    load_secret_from(std::env::var_os(SECRET_ENV), cfg)
}

/// [`load_hs256_secret`] with the environment value passed in, for tests.
fn load_secret_from(
    env: Option<OsString>,
    cfg: &AuthConfig,
) -> std::io::Result<(Vec<u8>, SecretSource)> {
    use std::os::unix::ffi::OsStringExt;

    let empty = |what: String| Error::new(ErrorKind::InvalidData, format!("{what} is empty"));
    if let Some(value) = env {
        let secret = trim_newline(value.into_vec());
        if secret.is_empty() {
            return Err(empty(SECRET_ENV.to_string()));
        }
        return Ok((secret, SecretSource::Env));
    }
    if let Some(path) = &cfg.hs256_secret_file {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let secret = trim_newline(bytes);
        if secret.is_empty() {
            return Err(empty(format!("HS256 secret file {}", path.display())));
        }
        return Ok((secret, SecretSource::File(path.clone())));
    }
    let random: [u8; 32] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex.into_bytes(), SecretSource::Dev))
}

fn trim_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::test_support::cfg;
    use super::*;

    #[test]
    fn secret_from_env_wins() {
        let mut cfg = cfg();
        cfg.hs256_secret_file = Some("/nonexistent/secret".into());
        let (secret, source) = load_secret_from(Some("s3cret\n".into()), &cfg).unwrap();
        assert_eq!(
            (secret.as_slice(), source),
            (&b"s3cret"[..], SecretSource::Env)
        );
        assert!(load_secret_from(Some("\n".into()), &cfg).is_err());
    }

    #[test]
    fn secret_from_file_is_trimmed_and_must_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("quotecast-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "file-secret\r\n").unwrap();
        let mut cfg = cfg();
        cfg.hs256_secret_file = Some(path.clone());
        let (secret, source) = load_secret_from(None, &cfg).unwrap();
        assert_eq!(secret, b"file-secret");
        assert_eq!(source, SecretSource::File(path.clone()));
        std::fs::write(&path, "\n").unwrap();
        assert!(load_secret_from(None, &cfg).is_err());
        cfg.hs256_secret_file = Some(dir.join("absent"));
        let err = load_secret_from(None, &cfg).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dev_secret_is_random_hex() {
        let (a, source) = load_secret_from(None, &cfg()).unwrap();
        let (b, _) = load_secret_from(None, &cfg()).unwrap();
        assert_eq!(source, SecretSource::Dev);
        assert_eq!(a.len(), 64);
        assert!(a.iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, b);
    }
}
