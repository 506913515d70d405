//! NTP history end to end: a real agent measures the harness's fake NTP server (`fleet-fake-ntp`,
//! +250 ms, then -100 ms) once a second; the collector stores every measurement, and `fleetctl ntp
//! --since` shows them in order, also after the collector restarted. Plain `fleetctl ntp` still
//! shows the latest one only.

use std::time::Duration;

use fleet_tests::fake_ntp::FakeNtp;
use fleet_tests::*;

/// The (time, offset) of each measurement of `host` with an offset, in `fleetctl ntp --since 10m
/// -o json`.
fn history(url: &str, host: &str) -> Option<Vec<(String, f64)>> {
    let rows = try_fleetctl_json(url, &["ntp", "--since", "10m", "--host", host])?;
    Some(
        rows.as_array()?
            .iter()
            .filter_map(|r| Some((r["time"].as_str()?.to_owned(), r["offset_ms"].as_f64()?)))
            .collect(),
    )
}

#[test]
fn every_measurement_of_a_real_agent_is_in_the_history() {
    let tmp = tempfile::tempdir().unwrap();
    let ntp = FakeNtp::start(tmp.path(), "ntp", 250);
    let data = tmp.path().join("data");
    let mut c = Collector::start(&data, "127.0.0.1:0", &[]);
    let url = c.url();
    let addr = c.addr.clone();
    // Measure every second (the default is 16 s; ntp_period is set in the config file only).
    let config = tmp.path().join("agent.toml");
    std::fs::write(&config, "ntp_period = \"1s\"\n").unwrap();
    let _agent = start_agent(
        &url,
        &tmp.path().join("w1"),
        "w1",
        "prod",
        &[
            "--config",
            config.to_str().unwrap(),
            "--ntp-server",
            &ntp.addr,
        ],
    );

    let near = |offset: f64, want: f64| (offset - want).abs() < 20.0;
    let first = wait_for(
        "three measurements at +250 ms",
        Duration::from_secs(60),
        || history(&url, "w1").filter(|h| h.iter().filter(|(_, o)| near(*o, 250.0)).count() >= 3),
    );
    assert!(first.iter().all(|(_, o)| near(*o, 250.0)), "{first:?}");

    ntp.set_offset_ms(-100);
    let both = wait_for(
        "three measurements at -100 ms after them",
        Duration::from_secs(60),
        || history(&url, "w1").filter(|h| h.iter().filter(|(_, o)| near(*o, -100.0)).count() >= 3),
    );
    // Oldest first: every +250 ms measurement comes before every -100 ms one, and the times rise.
    let last_250 = both.iter().rposition(|(_, o)| near(*o, 250.0)).unwrap();
    let first_100 = both.iter().position(|(_, o)| near(*o, -100.0)).unwrap();
    assert!(last_250 < first_100, "{both:?}");
    assert!(last_250 + 1 >= first.len(), "{both:?}");
    assert!(both.windows(2).all(|w| w[0].0 < w[1].0), "{both:?}");

    // `fleetctl ntp` without --since: one row, the latest measurement.
    let latest = fleetctl_json(&url, &["ntp", "--host", "w1"]);
    let latest = latest.as_array().unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert!(
        latest[0]["offset_ms"]
            .as_f64()
            .is_some_and(|o| near(o, -100.0)),
        "{latest:?}"
    );

    // The history is stored: a restarted collector still has it.
    assert_eq!(c.proc.term(Duration::from_secs(10)), Some(0));
    let c2 = Collector::start(&data, &addr, &[]);
    let after = wait_for(
        "the history after a restart",
        Duration::from_secs(30),
        || history(&c2.url(), "w1").filter(|h| h.len() >= both.len()),
    );
    assert_eq!(after[..both.len()], both[..]);
    let table = fleetctl(&c2.url(), &["ntp", "--since", "10m", "--cluster", "prod"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}");
    assert!(text.starts_with("TIME "), "{text}");
    assert!(text.contains(&ntp.addr), "{text}");
}
