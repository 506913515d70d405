//! Hostnames are display names, end to end: two real agents report the same hostname under
//! different host ids. `fleetctl hosts` lists both and says so on stderr; a `--host` naming that
//! hostname is refused by the collector with both ids, for every command that takes one, and the
//! host id selects exactly its host.

use std::ffi::OsStr;
use std::time::Duration;

use fleet_tests::*;

#[test]
fn a_shared_hostname_is_reported_and_refused_and_the_host_id_selects() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let same = AgentAs {
        hostname: OsStr::new("web-1"),
        wrapper: &[],
    };
    let args = ["--insecure", "--no-kmsg"];
    let _a = spawn_agent_as(same, &url, &tmp.path().join("a"), "twin-a", "prod", &args);
    let _b = spawn_agent_as(same, &url, &tmp.path().join("b"), "twin-b", "prod", &args);
    wait_for_batches(&url, "twin-a", 2);
    wait_for_batches(&url, "twin-b", 2);

    let out = fleetctl(&url, &["hosts"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        3,
        "both hosts are listed:\n{stdout}"
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "fleetctl: hostname \"web-1\" is reported by 2 hosts: twin-a, twin-b; select them with \
         --host HOST_ID\n"
    );
    // JSON is the same list, with the notice on stderr only.
    let out = fleetctl(&url, &["-o", "json", "hosts"]);
    let hosts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 2);

    let said = "hostname \"web-1\" is reported by 2 hosts: twin-a (cluster prod), twin-b \
                (cluster prod); use the host id";
    for (rpc, command) in [
        ("QuerySar", &["sar", "-u", "--host", "web-1"][..]),
        ("TopOom", &["top-oom", "--host", "web-1"][..]),
        ("ListOomKills", &["oom", "--host", "web-1"][..]),
        ("ListNtp", &["ntp", "--host", "web-1"][..]),
    ] {
        let out = fleetctl(&url, command);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!("fleetctl: {rpc} failed (InvalidArgument): {said}\n"),
            "{command:?}"
        );
        assert!(out.stdout.is_empty(), "{command:?}");
    }

    // By host id: exactly that host.
    let rows = wait_for("twin-b's sar rows", Duration::from_secs(10), || {
        let v = try_fleetctl_json(&url, &["sar", "-u", "--host", "twin-b"])?;
        let rows = v.as_array()?.clone();
        (!rows.is_empty()).then_some(rows)
    });
    assert!(
        rows.iter()
            .all(|r| r["host_id"] == "twin-b" && r["hostname"] == "web-1"),
        "{rows:?}"
    );
}
