//! End-to-end: the graphs. `fleetctl sar --plot` against a real collector and agent writes a
//! valid SVG with a panel per column group, each holding points.

use fleet_tests::*;
use roxmltree::Document;

/// The panels of an SVG document: (activity, points in its lines).
fn panels(svg: &str) -> Vec<(String, usize)> {
    let doc = Document::parse(svg).unwrap_or_else(|e| panic!("not XML ({e}): {svg}"));
    doc.descendants()
        .filter(|n| n.attribute("class") == Some("panel"))
        .map(|p| {
            let points = p
                .descendants()
                .filter(|n| n.attribute("class") == Some("series"))
                .map(|n| {
                    n.attribute("data-points")
                        .unwrap()
                        .parse::<usize>()
                        .unwrap()
                })
                .sum();
            (p.attribute("data-activity").unwrap().to_owned(), points)
        })
        .collect()
}

#[test]
fn sar_plot_writes_a_panel_per_column_group() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let _agent = start_agent(&url, &tmp.path().join("a1"), "web1", "prod", &[]);
    wait_for_samples(&url, "web1", 4);

    // -u: 1 panel, -r: 5, -q: 3 (sadf -g's groups).
    let file = tmp.path().join("graphs.svg");
    let out = fleetctl(
        &url,
        &[
            "sar",
            "-q",
            "-r",
            "-u",
            "--host",
            "web1",
            "--since",
            "5m",
            "--plot",
            file.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("9 panels"), "{stderr}");
    let svg = std::fs::read_to_string(&file).unwrap();
    let found = panels(&svg);
    let activities: Vec<&str> = found.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        activities,
        ["cpu", "memory", "memory", "memory", "memory", "memory", "load", "load", "load"]
    );
    for (activity, points) in &found {
        assert!(*points >= 4, "{activity}: {points} points");
    }
    assert!(svg.contains("<title>%user web1 all</title>"));

    // `--plot -`: the same to stdout, here for a cluster.
    let out = fleetctl(
        &url,
        &[
            "sar",
            "-n",
            "DEV",
            "--cluster",
            "prod",
            "--since",
            "5m",
            "--plot",
            "-",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = panels(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(found.len(), 4);
    assert!(
        found.iter().all(|(a, p)| a == "net-dev" && *p > 0),
        "{found:?}"
    );

    // A range without samples: the panel says so, and so does stderr.
    let out = fleetctl(
        &url,
        &[
            "sar",
            "-W",
            "--host",
            "web1",
            "--since",
            "2020-01-01T00:00:00Z",
            "--until",
            "2020-01-01T01:00:00Z",
            "--plot",
            "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no samples (sar -W)"), "{stderr}");
    assert_eq!(
        panels(&String::from_utf8(out.stdout).unwrap()),
        [("swapping".to_owned(), 0)]
    );
}
