//! The example configs shipped in deploy/ must parse and validate.

use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn agent_example_config_is_valid() {
    let file =
        fleet_agent::config::FileConfig::parse(&read("deploy/config/agent.toml"), "agent.toml")
            .unwrap();
    let s = fleet_agent::config::Settings::resolve(file, Default::default()).unwrap();
    assert_eq!(s.cluster, "prod");
    assert_eq!(s.labels["role"], "web");
    assert!(s.tls.is_some());
}

#[test]
fn collector_example_config_is_valid() {
    let file = fleet_collector::config::FileConfig::parse(
        &read("deploy/config/collector.toml"),
        "collector.toml",
    )
    .unwrap();
    let s = fleet_collector::config::Settings::resolve(file, Default::default()).unwrap();
    assert_eq!(s.retention, std::time::Duration::from_secs(30 * 86400));
    assert!(s.tls.is_some());
}
