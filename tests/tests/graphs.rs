//! End-to-end: the graphs. `fleetctl sar --plot` against a real collector and agent writes a
//! valid SVG with a panel per column group, each holding points; `fleetctl ui` serves its pages
//! from a real collector and agent (status codes, content, escaping, a clean stop).

use std::time::Duration;

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

/// A GET of `path` from the console at `addr`: status code, content type and body.
fn get(addr: &str, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to fleetctl ui");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).expect("read the answer");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, content_type, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// The `<svg class="panel">` elements of a page, each parsed alone: (activity, points).
fn page_panels(html: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"panel\"") {
        let end = start + rest[start..].find("</svg>").unwrap() + "</svg>".len();
        found.extend(panels(&rest[start..end]));
        rest = &rest[end..];
    }
    found
}

/// The fixture's OOM report as /dev/kmsg records stamped now (microseconds since boot), so the
/// agent dates its kills a moment ago.
fn kmsg_report_now() -> String {
    let fixture =
        paths::read_workspace_file("agent/tests/fixtures/oom/035-DERIVED-kmsg-from-002-aks515-memcg.kmsg");
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut us = (uptime * 1e6) as u64;
    let mut out = String::new();
    for line in fixture.lines() {
        let mut fields = line.splitn(4, ',');
        let (pri, seq, _, rest) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        out.push_str(&format!("{pri},{seq},{us},{rest}\n"));
        us += 3;
    }
    out
}

#[test]
fn ui_serves_the_pages_from_a_real_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let kmsg = tmp.path().join("kmsg");
    std::fs::write(&kmsg, "").unwrap();
    let hostile = "<script>alert(1)</script>";
    let label = format!("note={hostile}");
    let _agent = start_agent(
        &url,
        &tmp.path().join("a1"),
        "web1",
        "prod",
        &["--kmsg-path", kmsg.to_str().unwrap(), "--label", &label],
    );
    wait_for_samples(&url, "web1", 4);
    std::fs::write(&kmsg, kmsg_report_now()).unwrap();
    let kills = wait_for(
        "the fixture's kills stored",
        Duration::from_secs(30),
        || {
            let v = try_fleetctl_json(&url, &["oom", "--host", "web1"])?;
            let kills = v.as_array()?.clone();
            (!kills.is_empty()).then_some(kills)
        },
    );
    let kill_id = kills[0]["id"].as_str().unwrap().to_owned();

    let mut ui = procs::Proc::start(
        std::process::Command::new(bin("fleetctl"))
            .args([
                "--collector",
                &url,
                "--insecure",
                "ui",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(std::process::Stdio::piped()),
        &tmp.path().join("ui.log"),
    );
    let line = ui.first_stdout_line();
    let addr = line
        .strip_prefix("serving on http://")
        .unwrap_or_else(|| panic!("first line {line:?}; log:\n{}", ui.log_text()))
        .to_owned();

    // The fleet: the host, its hostile label escaped, sparklines with points, its kills.
    let (status, content_type, home) = get(&addr, "/");
    assert_eq!(status, 200, "{home}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(home.contains("href=\"/hosts/web1\""), "{home}");
    assert!(!home.contains(hostile), "unescaped label in {home}");
    assert!(
        home.contains("note=&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{home}"
    );
    assert!(home.contains("Cluster prod"), "{home}");
    assert!(home.contains("class=\"spark\""), "{home}");
    assert!(
        !home.contains("class=\"series\" data-points=\"0\""),
        "{home}"
    );
    assert!(
        home.contains("<span class=\"bad\">"),
        "kills counted: {home}"
    );
    let (status, _, filtered) = get(&addr, "/?cluster=staging");
    assert_eq!(status, 200);
    assert!(!filtered.contains("href=\"/hosts/web1\""), "{filtered}");

    // The host: a graph per activity it reports, each panel with points, the kills marked.
    let (status, _, host) = get(&addr, "/hosts/web1");
    assert_eq!(status, 200, "{host}");
    let found = page_panels(&host);
    for activity in ["cpu", "memory", "load", "paging", "net-dev"] {
        let of: Vec<usize> = found
            .iter()
            .filter(|(a, _)| a == activity)
            .map(|(_, p)| *p)
            .collect();
        assert!(!of.is_empty(), "no {activity} graph: {found:?}");
        assert!(of.iter().all(|p| *p > 0), "{activity}: {of:?}");
    }
    assert!(
        host.contains(&format!(
            "<a href=\"/oom/{kill_id}\"><line class=\"marker\""
        )),
        "kill marker linked to its page"
    );
    let (status, _, zoomed) = get(&addr, "/hosts/web1?since=10m&until=0m");
    assert_eq!(status, 200, "{zoomed}");
    let (status, _, _) = get(&addr, "/hosts/web1?since=yesterday");
    assert_eq!(status, 400);
    let (status, _, missing) = get(&addr, "/hosts/nosuch");
    assert_eq!(status, 404, "{missing}");
    assert!(missing.contains("no host with id nosuch"), "{missing}");

    // The kill: its report, its task table, the graphs before it.
    let (status, _, oom) = get(&addr, &format!("/oom/{kill_id}"));
    assert_eq!(status, 200, "{oom}");
    assert!(oom.contains("table class=\"tasks sortable\""), "{oom}");
    assert!(oom.contains("Constraint"), "{oom}");
    let oom_panels = page_panels(&oom);
    assert!(
        oom_panels.iter().any(|(a, p)| a == "memory" && *p > 0),
        "{oom_panels:?}"
    );
    assert!(oom.contains("class=\"marker\""));
    let (status, _, _) = get(&addr, "/oom/nosuch");
    assert_eq!(status, 404);

    let (status, _, alerts) = get(&addr, "/alerts");
    assert_eq!(status, 200, "{alerts}");
    assert!(alerts.contains("firing"), "{alerts}");
    let (status, content_type, script) = get(&addr, "/assets/ui.js");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/javascript"),
        "{content_type}"
    );
    assert!(script.contains("sortable"));
    assert_eq!(get(&addr, "/no/such/page").0, 404);

    // SIGTERM stops it cleanly.
    assert_eq!(
        ui.term(Duration::from_secs(10)),
        Some(0),
        "{}",
        ui.log_text()
    );
}
