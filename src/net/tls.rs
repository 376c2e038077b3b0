//! TLS for the listener: the server certificate chain and key from PEM files
//! (`server.tls_cert`, `server.tls_key`), served with rustls on the shards.

use anyhow::{anyhow, Context};
use futures_rustls::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The acceptor every shard uses, from the PEM certificate chain at `cert`
/// and the PEM private key at `key`. Offers HTTP/1.1 over ALPN.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("server.tls_cert: cannot read {}", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!(
            "server.tls_cert: no certificate in {}",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "server.tls_key: cannot read a private key from {}",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("server.tls_cert and server.tls_key do not make a usable pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
