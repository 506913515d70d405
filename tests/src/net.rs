//! Loopback networking for the tests: a free TCP or UDP port, and an HTTP/1.1 GET over plain TCP
//! or TLS for peers that speak HTTP (Alertmanager).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;

/// A loopback TCP port free now (for servers that cannot take port 0 and say which they got).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback UDP port free now (for an NTP server that is given its port).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TLS client configuration (rustls) trusting the certificates of the PEM file `ca` only.
pub fn tls_client(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// A GET of `path` on `127.0.0.1:port`, over TLS (server name `localhost`) when `tls` is given:
/// the body of a 200 answer (chunked or not), or None for anything else.
pub fn http_get(tls: Option<&Arc<rustls::ClientConfig>>, port: u16, path: &str) -> Option<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    match tls {
        None => {
            let mut s = s;
            s.write_all(request.as_bytes()).ok()?;
            s.read_to_string(&mut text).ok()?;
        }
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(config.clone(), name).ok()?;
            let mut s = rustls::StreamOwned::new(conn, s);
            s.write_all(request.as_bytes()).ok()?;
            // A server that closes without close_notify ends the read with an error after the
            // body: keep what arrived.
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return dechunk(body);
    }
    Some(body.to_string())
}

/// The payload of a chunked HTTP/1.1 body (Alertmanager answers chunked).
fn dechunk(body: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            break;
        }
        out.push_str(tail.get(..n)?);
        rest = tail.get(n + 2..)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunk_joins_the_chunks() {
        assert_eq!(
            super::dechunk("4\r\n[{\"a\r\n3\r\n\":1\r\n2\r\n}]\r\n0\r\n\r\n").as_deref(),
            Some("[{\"a\":1}]")
        );
        assert_eq!(super::dechunk("zz\r\n"), None);
    }
}
