//! The acceptor in-process, over real TLS on loopback: revocation at the handshake, and open
//! connections of a certificate revoked, or no longer accepted, closed by a reload while the
//! others stay.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;

use super::*;

/// A CA in `dir` (ca.pem) that signs the collector's certificate and clients'.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    dir: std::path::PathBuf,
}

impl TestCa {
    fn new(dir: &Path) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        // Named after its directory: two test CAs never share a name.
        let name = format!("Test CA {}", dir.display());
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        let ca = TestCa {
            issuer: Issuer::new(params, key),
            dir: dir.to_path_buf(),
        };
        let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        ca.sign("collector", server);
        ca
    }

    /// Signs `params` as NAME.pem / NAME-key.pem; returns the serial.
    fn sign(&self, name: &str, params: CertificateParams) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(
            self.dir.join(format!("{name}-key.pem")),
            key.serialize_pem(),
        )
        .unwrap();
        let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
        parsed.raw_serial().to_vec()
    }

    fn client(&self, name: &str, role: &str) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, role);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(name, params)
    }

    /// Writes crl.pem revoking `serials`.
    fn revoke(&self, serials: &[&[u8]]) {
        let crl = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(2100, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: rcgen::date_time_ymd(2020, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap();
        std::fs::write(self.dir.join("crl.pem"), crl.pem().unwrap()).unwrap();
    }

    fn settings(&self, crl: bool) -> TlsSettings {
        TlsSettings {
            cert: self.dir.join("collector.pem"),
            key: self.dir.join("collector-key.pem"),
            ca: Some(self.dir.join("ca.pem")),
            crl: crl.then(|| self.dir.join("crl.pem")),
            clients: CertRules::default(),
        }
    }
}

/// A client of `addr` presenting NAME's certificate: the TLS stream once the handshake is done.
async fn connect(
    dir: &Path,
    name: &str,
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}-key.pem"))).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .unwrap();
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    // TLS 1.3: the server's verdict on the client certificate arrives after the client's
    // handshake is done; a byte echoed back proves the connection was accepted.
    tls.write_all(b"?").await?;
    let mut b = [0u8; 1];
    tls.read_exact(&mut b).await?;
    Ok(tls)
}

/// Serves `incoming` with an echo per connection, as tonic would drive them.
async fn serve(acceptor: Arc<Acceptor>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut conns = incoming(listener, acceptor);
    tokio::spawn(async move {
        while let Some(Ok(mut conn)) = conns.next().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Whether the server closed the connection within a second (a read that ends or fails).
async fn closed(tls: &mut tokio_rustls::client::TlsStream<TcpStream>) -> bool {
    let mut b = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(1), tls.read(&mut b)).await {
        Err(_) => false,
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) => panic!("unexpected data"),
    }
}

#[tokio::test]
async fn a_reload_closes_the_connections_of_revoked_certificates_only() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path());
    let revoked = ca.client("web1", "agent");
    ca.client("web2", "agent");
    ca.revoke(&[]);
    let acceptor = Arc::new(Acceptor::new(ca.settings(true)).unwrap());
    let addr = serve(acceptor.clone()).await;

    let mut web1 = connect(tmp.path(), "web1", addr).await.unwrap();
    let mut web2 = connect(tmp.path(), "web2", addr).await.unwrap();
    assert_eq!(acceptor.open_connections(), 2);

    ca.revoke(&[&revoked]);
    assert_eq!(acceptor.reload().unwrap(), 1);
    assert!(
        closed(&mut web1).await,
        "the revoked certificate's connection is closed"
    );
    assert!(!closed(&mut web2).await, "the other connection stays");
    web2.write_all(b"!").await.unwrap();
    let mut b = [0u8; 1];
    web2.read_exact(&mut b).await.unwrap();
    assert_eq!(acceptor.closed.load(Ordering::Relaxed), 1);

    // A new connection of the revoked certificate is refused in the handshake.
    let e = connect(tmp.path(), "web1", addr).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("revoked"), "{e}");
    assert_eq!(acceptor.refused.load(Ordering::Relaxed), 1);

    // A CRL that does not load is refused; the one in force stays, connections untouched.
    std::fs::write(tmp.path().join("crl.pem"), "not a CRL").unwrap();
    let e = acceptor.reload().unwrap_err();
    assert!(e.starts_with("tls_crl "), "{e}");
    assert!(connect(tmp.path(), "web1", addr).await.is_err());
    assert!(!closed(&mut web2).await);
}

#[tokio::test]
async fn a_crl_of_another_ca_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let other_dir = tmp.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let ca = TestCa::new(tmp.path());
    let other = TestCa::new(&other_dir);
    other.revoke(&[]);
    let mut settings = ca.settings(false);
    settings.crl = Some(other_dir.join("crl.pem"));
    let e = Acceptor::new(settings).err().unwrap();
    assert!(
        e.starts_with("tls_crl ") && e.contains("is not a CA of tls_ca"),
        "{e}"
    );
}

#[tokio::test]
async fn a_rotated_ca_closes_the_old_ones_connections_and_the_rules_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path());
    ca.client("web1", "agent");
    ca.client("v1", "viewer");
    let mut settings = ca.settings(false);
    let acceptor = Arc::new(Acceptor::new(settings.clone()).unwrap());
    let addr = serve(acceptor.clone()).await;
    let mut web1 = connect(tmp.path(), "web1", addr).await.unwrap();

    // Another CA in the file: web1's certificate no longer chains to a trusted CA.
    let other_dir = tmp.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    TestCa::new(&other_dir);
    std::fs::copy(other_dir.join("ca.pem"), tmp.path().join("ca.pem")).unwrap();
    assert_eq!(acceptor.reload().unwrap(), 1);
    assert!(closed(&mut web1).await);

    // The rules are checked too: a viewer's connection under tls_org it does not carry.
    let tmp2 = tempfile::tempdir().unwrap();
    let ca2 = TestCa::new(tmp2.path());
    ca2.client("v2", "viewer");
    settings = ca2.settings(false);
    settings.clients.org = Some("Acme".into());
    let strict = Arc::new(Acceptor::new(settings).unwrap());
    let addr = serve(strict.clone()).await;
    let mut v2 = connect(tmp2.path(), "v2", addr).await.unwrap();
    assert_eq!(strict.reload().unwrap(), 1, "no O Acme: closed");
    assert!(closed(&mut v2).await);
}
