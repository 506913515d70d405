//! Hostnames are display names: two agents may report the same one. Every query that takes hosts
//! (`--host` of sar, top-oom, oom and ntp) refuses a hostname shared by several hosts, naming
//! their ids, and selects by host id, which is unique, whatever the hostnames say.

use fleet_proto::v1::{Activity, Batch, HostIdentity, NtpQuery, OomQuery, SarQuery, TopOomQuery};
use tonic::Code;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_query_refuses_a_shared_hostname_and_takes_the_host_id() {
    let c = Collector::start().await;
    let client = c.ingest().await;
    let t = ago(30);
    // An agent of host `id` saying it is `hostname`, with one CPU sample stored.
    let agent = async |id: &str, hostname: &str| {
        let named = HostIdentity {
            hostname: hostname.into(),
            ..identity(id, "prod")
        };
        let mut a = AgentStream::open(&client, named, 1).await.unwrap();
        a.store(Batch {
            seq: 1,
            samples: vec![sample(t, vec![cpu(1.0)])],
            ..Batch::default()
        })
        .await;
        a
    };
    // a1 and b2 both say they are web-1; c3 is web-3.
    let _a1 = agent("a1", "web-1").await;
    let _b2 = agent("b2", "web-1").await;
    let _c3 = agent("c3", "web-3").await;
    let hosts = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let sar = |names: &[&str]| SarQuery {
        activity: Activity::Cpu as i32,
        hosts: hosts(names),
        since_ms: ago(3600),
        ..SarQuery::default()
    };
    let top = |names: &[&str]| TopOomQuery {
        hosts: hosts(names),
        ..TopOomQuery::default()
    };
    let oom = |names: &[&str]| OomQuery {
        hosts: hosts(names),
        since_ms: ago(3600),
        ..OomQuery::default()
    };
    let ntp = |names: &[&str]| NtpQuery {
        hosts: hosts(names),
        ..NtpQuery::default()
    };
    let said = "hostname \"web-1\" is reported by 2 hosts: a1 (cluster prod), b2 (cluster prod); \
                use the host id";
    let shared = (Code::InvalidArgument, said.to_owned());

    let mut q = c.query().await;
    assert_eq!(refusal(q.query_sar(sar(&["web-1"])).await), shared);
    assert_eq!(refusal(q.top_oom(top(&["web-1"])).await), shared);
    assert_eq!(refusal(q.list_oom_kills(oom(&["web-1"])).await), shared);
    assert_eq!(refusal(q.list_ntp(ntp(&["web-1"])).await), shared);
    // Next to a good name, too.
    assert_eq!(refusal(q.query_sar(sar(&["c3", "web-1"])).await), shared);

    // The host id selects exactly its host; a hostname only one host reports still works.
    let rows = q.query_sar(sar(&["b2"])).await.unwrap().into_inner().rows;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].host_id.as_str(), rows[0].hostname.as_str()),
        ("b2", "web-1")
    );
    let rows = q
        .query_sar(sar(&["web-3"]))
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows[0].host_id, "c3");
    let ntp_hosts = q.list_ntp(ntp(&["a1"])).await.unwrap().into_inner().hosts;
    let ids: Vec<&str> = ntp_hosts.iter().map(|h| h.host_id.as_str()).collect();
    assert_eq!(ids, ["a1"]);
    q.list_oom_kills(oom(&["a1", "b2"])).await.unwrap();
    q.top_oom(top(&["a1"])).await.unwrap();

    // A host whose id is another host's hostname: the id wins.
    let _d4 = agent("d4", "a1").await;
    let rows = q.query_sar(sar(&["a1"])).await.unwrap().into_inner().rows;
    let ids: Vec<&str> = rows.iter().map(|r| r.host_id.as_str()).collect();
    assert_eq!(ids, ["a1"]);
}
