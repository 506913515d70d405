//! Bad input gets a clear error, no crash, and nothing already accepted is lost.

use std::time::Duration;

use fleet_proto::v1::{
    agent_message, ingest_client::IngestClient, AgentMessage, Batch, Hello, HostIdentity, Record,
    Sample,
};
use fleet_tests::*;
use serde_json::Value;

#[test]
fn bad_config_is_refused_with_the_field_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "collector = \"http://127.0.0.1:1\"\nstate_dir = \"/tmp/x\"\nintreval = \"1s\"\n",
    )
    .unwrap();
    let out = run(
        "fleet-agent",
        &["--config", cfg.to_str().unwrap(), "--insecure"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("intreval") && err.contains("agent.toml"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "collector = \"http://127.0.0.1:1\"\nstate_dir = \"/tmp/x\"\ninterval = \"fast\"\n",
    )
    .unwrap();
    let out = run(
        "fleet-agent",
        &["--config", cfg.to_str().unwrap(), "--insecure"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("interval") && err.contains("fast"), "{err}");

    let ccfg = tmp.path().join("collector.toml");
    std::fs::write(
        &ccfg,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"/tmp/y\"\nretention = 30\n",
    )
    .unwrap();
    let out = run(
        "fleet-collector",
        &["--config", ccfg.to_str().unwrap(), "--insecure"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("retention"), "{err}");

    // Plaintext without --insecure is refused, naming the way out.
    let d = tmp.path().join("d");
    let out = run(
        "fleet-collector",
        &["--listen", "127.0.0.1:0", "--data-dir", d.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--insecure") && err.contains("--tls-cert"),
        "{err}"
    );
}

/// An agent without a collector keeps sampling into its spool and logs the outage once; a damaged
/// frame in its spool is skipped on replay, and only that one.
#[test]
fn unreachable_collector_then_corrupt_spool_loses_only_the_corrupt_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let state = tmp.path().join("agent");
    // No collector yet: the agent keeps sampling into its spool and says so once.
    let mut a = start_agent(&url, &state, "u1", "prod", &[]);
    // A fixed sleep on purpose: the outage lasts 6 s (several samples into the spool, several
    // connection attempts), and the check is that it is logged once over that time.
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        a.running(),
        "agent must keep running without a collector: {}",
        a.log_text()
    );
    let log = a.log_text();
    assert_eq!(log.matches("collector unreachable").count(), 1, "{log}");
    assert_eq!(a.term(Duration::from_secs(10)), Some(0));

    // Damage one frame in the middle of the spooled data.
    let spool = state.join("spool");
    let seg = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("a spool segment");
    let mut bytes = std::fs::read(&seg).unwrap();
    assert!(bytes.len() > 400, "segment too small: {}", bytes.len());
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();

    let c = Collector::start(&tmp.path().join("data"), &addr, &[]);
    let mut a = start_agent(&url, &state, "u1", "prod", &[]);
    let seq = wait_for_batches(&url, "u1", 8);
    assert!(a.running());
    let log = a.log_text();
    assert!(
        log.contains("corrupt spool data skipped") && log.contains(&seg.display().to_string()),
        "{log}"
    );
    assert_eq!(a.term(Duration::from_secs(10)), Some(0));
    let rows = fleetctl_json(&c.url(), &["sar", "-u", "--host", "u1", "--since", "1h"]);
    let stored = rows.as_array().unwrap().len() as u64;
    let last = last_seq(&c.url(), "u1").unwrap();
    assert!(last >= seq);
    // Exactly one frame (the damaged one) is missing; every other sample is stored once.
    assert_eq!(
        stored,
        last - 1,
        "stored {stored} rows for {last} sequence numbers"
    );
}

fn identity(host: &str) -> HostIdentity {
    HostIdentity {
        host_id: host.into(),
        hostname: host.into(),
        cluster: "prod".into(),
        kernel: "test".into(),
        agent_version: "test".into(),
        ..Default::default()
    }
}

fn hello(host: &str) -> AgentMessage {
    AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            identity: Some(identity(host)),
            spool_epoch: 7,
            ack_delay_ms: 0,
        })),
    }
}

fn batch(seq: u64, values: Vec<f64>) -> AgentMessage {
    AgentMessage {
        msg: Some(agent_message::Msg::Batch(Batch {
            seq,
            samples: vec![Sample {
                time_ms: 1_700_000_000_000 + seq as i64 * 1000,
                interval_ms: 1000,
                records: vec![Record {
                    activity: fleet_proto::v1::Activity::Swapping as i32,
                    instance: "-".into(),
                    values,
                }],
                top_oom: Vec::new(),
                clock: None,
            }],
            ..Batch::default()
        })),
    }
}

/// Waits until the agent `good1` has stored a few batches (`since` None) or three more than
/// `since`, and returns its last seq: the other agents' data flows.
async fn good_agent_flowing(url: &str, since: Option<u64>) -> u64 {
    let u = url.to_string();
    tokio::task::spawn_blocking(move || wait_for_batches(&u, "good1", since.map_or(2, |s| s + 3)))
        .await
        .unwrap()
}

/// Opens a session, sends `msgs`, and returns the first error status the collector answers with.
async fn session_error(url: &str, msgs: Vec<AgentMessage>) -> tonic::Status {
    let mut client = IngestClient::connect(url.to_string())
        .await
        .expect("connect");
    let resp = client.session(tokio_stream::iter(msgs)).await;
    let mut inbound = match resp {
        Ok(r) => r.into_inner(),
        Err(status) => return status,
    };
    loop {
        match tokio::time::timeout(Duration::from_secs(15), inbound.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("stream ended without an error"),
            Ok(Err(status)) => return status,
            Err(_) => panic!("no error within 15 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_messages_get_a_status_and_others_keep_flowing() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let _good = start_agent(&url, &tmp.path().join("good"), "good1", "prod", &[]);
    let before = good_agent_flowing(&url, None).await;

    // Wrong number of values for the activity.
    let st = session_error(&url, vec![hello("bad1"), batch(1, vec![1.0])]).await;
    assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
    assert!(
        st.message().contains("swapping") && st.message().contains("2 columns"),
        "{st:?}"
    );
    // Not a finite number.
    let st = session_error(&url, vec![hello("bad2"), batch(1, vec![f64::NAN, 1.0])]).await;
    assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
    assert!(st.message().contains("pswpin/s"), "{st:?}");
    // A batch before the hello.
    let st = session_error(&url, vec![batch(1, vec![1.0, 2.0])]).await;
    assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
    assert!(st.message().contains("hello"), "{st:?}");
    // A bad host id.
    let st = session_error(&url, vec![hello("no spaces allowed")]).await;
    assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
    assert!(st.message().contains("host_id"), "{st:?}");
    // Oversized: one message above the 4 MiB limit.
    let mut big = identity("big1");
    big.labels
        .insert("junk".into(), "x".repeat(5 * 1024 * 1024));
    let msg = AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            identity: Some(big),
            spool_epoch: 1,
            ack_delay_ms: 0,
        })),
    };
    let st = session_error(&url, vec![msg]).await;
    assert!(
        matches!(
            st.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument
        ),
        "{st:?}"
    );

    // The collector is healthy and the good agent's data keeps flowing; nothing of the refused
    // clients was stored.
    good_agent_flowing(&url, Some(before)).await;
    let u = url.clone();
    tokio::task::spawn_blocking(move || {
        let hosts = fleetctl_json(&u, &["hosts"]);
        let bad: Vec<&Value> = hosts
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["host_id"] != "good1")
            .collect();
        for h in &bad {
            assert_eq!(h["last_seq"], 0, "refused client stored data: {h}");
        }
    })
    .await
    .unwrap();
}

/// Identity text that would drive an operator's terminal (an escape sequence in the hostname or
/// a label) is refused at the hello, naming the field, from a raw client and from a real agent;
/// nothing of theirs is stored, and the other agents keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_text_with_control_characters_is_refused_at_the_hello() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let _good = start_agent(&url, &tmp.path().join("good"), "good1", "prod", &[]);
    let before = good_agent_flowing(&url, None).await;

    let title = "\u{1b}]0;owned\u{7}";
    let says = |identity: HostIdentity| {
        vec![AgentMessage {
            msg: Some(agent_message::Msg::Hello(Hello {
                identity: Some(identity),
                spool_epoch: 1,
                ack_delay_ms: 0,
            })),
        }]
    };
    let mut id = identity("esc1");
    id.hostname = format!("web-1{title}");
    let st = session_error(&url, says(id)).await;
    assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
    assert_eq!(
        st.message(),
        "hello.identity.hostname: contains the control character '\\u{1b}'"
    );
    let mut id = identity("esc2");
    id.labels.insert("role".into(), "web\u{1b}[31m".into());
    let st = session_error(&url, says(id)).await;
    assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
    assert!(
        st.message()
            .starts_with("hello.identity.labels: label \"role\""),
        "{st:?}"
    );

    // A real agent told to report such a hostname: refused, and it says why in its log.
    let hostname = std::ffi::OsString::from(format!("evil{title}"));
    let how = AgentAs {
        hostname: &hostname,
        wrapper: &[],
    };
    let mut evil = spawn_agent_as(
        how,
        &url,
        &tmp.path().join("evil"),
        "esc3",
        "prod",
        &["--insecure", "--no-kmsg"],
    );
    tokio::task::spawn_blocking(move || {
        wait_for(
            "the agent's refusal in its log",
            Duration::from_secs(20),
            || {
                evil.log_text()
                    .contains("hello.identity.hostname: contains the control character")
                    .then_some(())
            },
        );
        assert!(
            evil.running(),
            "the agent keeps retrying: {}",
            evil.log_text()
        );
    })
    .await
    .unwrap();

    good_agent_flowing(&url, Some(before)).await;
    let u = url.clone();
    let hosts = tokio::task::spawn_blocking(move || fleetctl_json(&u, &["hosts"]))
        .await
        .unwrap();
    let ids: Vec<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["good1"], "nothing of the refused hellos is stored");
}

/// Floods and silence: a host that opens more streams than allowed gets `ResourceExhausted` on
/// the extra ones; a stream that never says hello gets `DeadlineExceeded`; a TCP client that
/// never speaks and a burst of batches from one host change nothing for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_and_silent_clients_get_their_status_and_others_keep_flowing() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let _good = start_agent(&url, &tmp.path().join("good"), "good1", "prod", &[]);
    let before = good_agent_flowing(&url, None).await;

    // Silent TCP clients: connected, never a byte.
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(tokio::net::TcpStream::connect(&c.addr).await.unwrap());
    }

    // One host id, many streams: two are allowed (an agent and its reconnect), the third not.
    let mut open = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tx.send(hello("flood1")).await.unwrap();
        let mut client = IngestClient::connect(url.clone()).await.unwrap();
        let mut inbound = client
            .session(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        assert!(inbound.message().await.unwrap().is_some(), "welcome");
        open.push((tx, inbound));
    }
    let st = session_error(&url, vec![hello("flood1")]).await;
    assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
    let u = url.clone();
    let status = tokio::task::spawn_blocking(move || fleetctl_json(&u, &["status"]))
        .await
        .unwrap();
    assert_eq!(status["refused"]["agent_streams"], 1, "{status}");
    assert!(
        st.message().contains("flood1") && st.message().contains("open streams"),
        "{st:?}"
    );

    // A burst of 2000 batches on one of them: acknowledged in order, stored once each.
    let (tx, inbound) = &mut open[0];
    for seq in 1..=2000 {
        tx.send(batch(seq, vec![1.0, 2.0])).await.unwrap();
    }
    let mut acked = 0;
    while acked < 2000 {
        match tokio::time::timeout(Duration::from_secs(30), inbound.message()).await {
            Ok(Ok(Some(m))) => {
                if let Some(fleet_proto::v1::collector_message::Msg::Ack(a)) = m.msg {
                    acked = a.seq;
                }
            }
            other => panic!("flood not acknowledged: {other:?} after {acked}"),
        }
    }

    // A stream that never says hello.
    let (_tx, rx) = tokio::sync::mpsc::channel::<AgentMessage>(1);
    let mut client = IngestClient::connect(url.clone()).await.unwrap();
    let t0 = std::time::Instant::now();
    let st = match client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Err(st) => st,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(st.code(), tonic::Code::DeadlineExceeded, "{st:?}");
    assert!(st.message().contains("hello"), "{st:?}");
    assert!(t0.elapsed() < Duration::from_secs(15));

    // The others' data kept flowing all along, and the flood's is stored exactly once.
    good_agent_flowing(&url, Some(before)).await;
    let u = url.clone();
    let flood = tokio::task::spawn_blocking(move || last_seq(&u, "flood1"))
        .await
        .unwrap();
    assert_eq!(flood, Some(2000));
    drop(silent);
}
