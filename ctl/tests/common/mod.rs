//! What the tests against an in-process fake collector share: serving a fake service on
//! 127.0.0.1:0 (plaintext) and a command line pointed at it.

use std::net::SocketAddr;

use clap::Parser;
use fleetctl::Cli;
use tonic::transport::server::Router;

/// Serves `router` (a `Server::builder()` with the fake's services added) on a fresh loopback
/// port, for as long as the test's runtime lives; returns the address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        router
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    addr
}

/// `fleetctl --insecure --collector http://ADDR ARGS...`, parsed.
pub fn cli(addr: SocketAddr, args: &[&str]) -> Cli {
    let url = format!("http://{addr}");
    let all = ["fleetctl", "--insecure", "--collector", url.as_str()];
    Cli::try_parse_from(all.iter().chain(args)).unwrap()
}
