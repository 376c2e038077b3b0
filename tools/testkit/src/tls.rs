//! TLS for tests and the harness: a throwaway certificate authority and a
//! server certificate for `localhost` and `127.0.0.1` (rcgen), written as the
//! PEM files `server.tls_cert`/`server.tls_key` name, and client streams that
//! trust that CA only.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A TLS client stream over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A CA made for one test run and the server certificate it signed.
pub struct TestCa {
    /// The server's certificate chain (PEM): `server.tls_cert`.
    pub cert: PathBuf,
    /// The server's private key (PEM): `server.tls_key`.
    pub key: PathBuf,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl TestCa {
    /// Makes the CA and a server certificate in `dir` (`ca.pem`,
    /// `server.pem`, `server.key`).
    pub fn create(dir: &Path) -> io::Result<TestCa> {
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().map_err(io::Error::other)?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(io::Error::other)?;
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let key = KeyPair::generate().map_err(io::Error::other)?;
        let cert = CertificateParams::new(names)
            .and_then(|params| params.signed_by(&key, &ca))
            .map_err(io::Error::other)?;
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(dir.join("ca.pem"), ca.pem())?;
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
            .map_err(io::Error::other)?;
        Ok(TestCa {
            cert: cert_path,
            key: key_path,
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// The `[server]` lines that turn TLS on with this certificate.
    pub fn server_toml(&self) -> String {
        format!(
            "tls_cert = {:?}\ntls_key = {:?}\n",
            self.cert.display().to_string(),
            self.key.display().to_string()
        )
    }

    /// A server configuration with the certificate this CA signed, for a
    /// test's own TLS server.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// A client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// Connects to `addr` as `localhost` and completes the TLS handshake;
    /// reads time out after `read_timeout`.
    pub fn connect(&self, addr: SocketAddr, read_timeout: Duration) -> io::Result<TlsStream> {
        connect(self.client.clone(), addr, read_timeout)
    }
}

/// Connects to `addr` as `localhost` with `client` and completes the TLS
/// handshake; reads time out after `read_timeout`.
pub fn connect(
    client: Arc<ClientConfig>,
    addr: SocketAddr,
    read_timeout: Duration,
) -> io::Result<TlsStream> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(read_timeout))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let conn = ClientConnection::new(client, name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}
