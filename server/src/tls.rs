//! The HTTPS listener: rustls with the ring provider, a server certificate
//! (configured, or self-signed in the data directory on first start), and
//! an optional client certificate on every connection.
//!
//! The handshake only proves that a client holds the key of the
//! certificate it sent. Whether that certificate is good enough (issued by
//! the application's CA, unexpired, unrevoked) is decided per request by
//! `app::domain::pki::mtls`, so revocation takes effect on the next request and
//! a refusal is a 403 naming what is missing, not a broken handshake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use app::domain::pki::mtls::Transport;

use crate::config::Config;
use crate::error::ServerError;
use crate::serve::{answer_busy, Accept, Conn, Places};

/// The place a TLS connection holds while its handshake runs.
enum Place {
    Open(tokio::sync::OwnedSemaphorePermit),
    Refusing(tokio::sync::OwnedSemaphorePermit),
}

/// Who is on the other end of a connection, for both listeners.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// The provider everything TLS in Keyward uses: ring, one crypto library.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS configuration.
pub fn server_config(config: &Config) -> Result<Arc<ServerConfig>, ServerError> {
    let (cert_path, key_path) = match &config.tls {
        Some((cert, key)) => (cert.clone(), key.clone()),
        None => self_signed_in(&config.data_dir, config.https_addr)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServerError::Config(format!("KEYWARD_TLS_CERT (--tls-cert) {}: {e}", cert_path.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Config(format!(
            "KEYWARD_TLS_CERT (--tls-cert) {}: no certificate in the file",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| ServerError::Config(format!("KEYWARD_TLS_KEY (--tls-key) {}: {e}", key_path.display())))?;
    let provider = provider();
    let verifier = Arc::new(AnyClientCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Config(format!("TLS: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Config(format!("KEYWARD_TLS_CERT / KEYWARD_TLS_KEY: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// The embedded default: a self-signed certificate for the listener's
/// host, made once and kept in the data directory.
fn self_signed_in(data_dir: &Path, addr: SocketAddr) -> Result<(PathBuf, PathBuf), ServerError> {
    let cert_path = data_dir.join("tls-cert.pem");
    let key_path = data_dir.join("tls-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    names.dedup();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| ServerError::Config(format!("generating the TLS key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(names)
        .map_err(|e| ServerError::Config(format!("generating the TLS certificate: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Keyward (self-signed)");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(825);
    let cert = params
        .self_signed(&key)
        .map_err(|e| ServerError::Config(format!("generating the TLS certificate: {e}")))?;
    crate::files::write_private(&key_path, &key.serialize_pem())?;
    std::fs::write(&cert_path, cert.pem()).map_err(ServerError::io(format!("writing {}", cert_path.display())))?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed TLS certificate for the HTTPS listener");
    Ok((cert_path, key_path))
}

/// Asks every client for a certificate, requires none, and accepts any
/// whose key signed the handshake. See the module comment for why.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: clients send the certificate they were configured with.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A listener whose connections are TLS streams. Handshakes run in their
/// own tasks, so a slow or silent client holds up nobody else; each holds
/// its place under the listener's connection cap from the moment the TCP
/// connection is accepted.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<Conn<TlsStream<TcpStream>>>,
    acceptor: JoinHandle<()>,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>, places: Places) -> std::io::Result<TlsListener> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let tls = TlsAcceptor::from(config);
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off.
                        tracing::warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let tls = tls.clone();
                // A place before the handshake (handshakes are capped too);
                // with none, a refusal's place, or the connection is closed
                // at once.
                let place = match places.open.clone().try_acquire_owned() {
                    Ok(permit) => Place::Open(permit),
                    Err(_) => match places.refusing.clone().try_acquire_owned() {
                        Ok(permit) => Place::Refusing(permit),
                        Err(_) => continue,
                    },
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => return tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%addr, "TLS handshake timed out"),
                    };
                    let permit = match place {
                        Place::Open(permit) => permit,
                        Place::Refusing(permit) => {
                            answer_busy(stream).await;
                            return drop(permit);
                        }
                    };
                    let cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|c| Arc::<[u8]>::from(c.as_ref()));
                    let peer = Peer {
                        addr,
                        transport: Transport::Tls { client_cert: cert },
                    };
                    let _ = tx
                        .send(Conn {
                            io: stream,
                            peer,
                            permit,
                        })
                        .await;
                });
            }
        });
        Ok(TlsListener {
            local_addr,
            ready,
            acceptor,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl Accept for TlsListener {
    type Io = TlsStream<TcpStream>;

    async fn accept(&mut self) -> Conn<Self::Io> {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The acceptor is gone (shutting down): accept nothing more.
            None => std::future::pending().await,
        }
    }
}
