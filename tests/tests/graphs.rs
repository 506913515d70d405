//! End-to-end: the graphs. `fleetctl sar --plot` against a real collector and agent writes a
//! valid SVG with a panel per column group, each holding points; `fleetctl ui` serves its pages
//! from a real collector and agent (status codes, content, escaping, a clean stop).

use std::time::Duration;

mod ui_common;

use fleet_tests::fake_ntp::FakeNtp;
use fleet_tests::*;
use roxmltree::Document;
use ui_common::{get, get_gzip, gunzip, start_ui, Browser};

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
    wait_for_batches(&url, "web1", 4);

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
    let fixture = paths::read_workspace_file(
        "agent/tests/fixtures/oom/035-DERIVED-kmsg-from-002-aks515-memcg.kmsg",
    );
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

/// A collector, an agent `web1` (cluster prod, a hostile label, the fixture's OOM kills in its
/// kernel log, its clock measured against an NTP server at 0 ms), an agent `web2` (cluster prod,
/// measured against one at +250 ms) and `fleetctl ui` serving them.
struct Console {
    addr: String,
    /// When it started, Unix ms: where the agents' data begins.
    started_ms: u128,
    kill_id: String,
    ui: procs::Proc,
    _agents: [procs::Proc; 2],
    _ntp: [FakeNtp; 2],
    _collector: Collector,
    tmp: tempfile::TempDir,
}

const HOSTILE: &str = "<script>alert(1)</script>";

impl Console {
    fn start() -> Console {
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let tmp = tempfile::tempdir().unwrap();
        let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
        let url = c.url();
        let kmsg = tmp.path().join("kmsg");
        std::fs::write(&kmsg, "").unwrap();
        let label = format!("note={HOSTILE}");
        // web1's clock measured against a server at 0 ms, web2's against one at +250 ms, every
        // second (ntp_period is set in the config file only).
        let ntp = [
            FakeNtp::start(tmp.path(), "ntp0", 0),
            FakeNtp::start(tmp.path(), "ntp250", 250),
        ];
        let config = tmp.path().join("agent.toml");
        std::fs::write(&config, "ntp_period = \"1s\"\n").unwrap();
        let config = config.to_str().unwrap();
        let agent = start_agent(
            &url,
            &tmp.path().join("a1"),
            "web1",
            "prod",
            &[
                "--kmsg-path",
                kmsg.to_str().unwrap(),
                "--label",
                &label,
                "--config",
                config,
                "--ntp-server",
                &ntp[0].addr,
            ],
        );
        let drifting = start_agent(
            &url,
            &tmp.path().join("a2"),
            "web2",
            "prod",
            &["--config", config, "--ntp-server", &ntp[1].addr],
        );
        wait_for_batches(&url, "web1", 4);
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

        let (ui, addr) = start_ui(&url, &[], tmp.path());
        Console {
            addr,
            started_ms,
            kill_id,
            ui,
            _agents: [agent, drifting],
            _ntp: ntp,
            _collector: c,
            tmp,
        }
    }
}

#[test]
fn ui_serves_the_pages_from_a_real_collector() {
    let mut console = Console::start();
    let (addr, kill_id) = (console.addr.clone(), console.kill_id.clone());
    let hostile = HOSTILE;

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
    assert!(host.contains("<details class=\"per-cpu\"><summary>each CPU ("));
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

    // The clocks: web2's line is +250 ms apart from web1's, and so is the cluster's spread.
    let lines = wait_for(
        "three NTP measurements of each host on /ntp",
        Duration::from_secs(60),
        || {
            let (status, _, page) = get(&addr, "/ntp");
            assert_eq!(status, 200, "{page}");
            let lines = [
                ntp_line(&page, "ntp-offset", "web1")?,
                ntp_line(&page, "ntp-offset", "web2")?,
                ntp_line(&page, "ntp-spread", "spread")?,
            ];
            lines
                .iter()
                .all(|(_, points)| *points >= 3)
                .then_some(lines)
        },
    );
    let [(web1, _), (web2, _), (spread, _)] = lines;
    assert!(web1.abs() < 30.0, "web1 at {web1} ms");
    assert!((web2 - web1 - 250.0).abs() < 30.0, "web2 at {web2} ms");
    assert!((spread - 250.0).abs() < 30.0, "spread {spread} ms");
    // A range long enough for several measurements a pixel (2 h: 8 s buckets of 1 s
    // measurements): the collector's buckets, drawn with their min-max bands (the raw lines of
    // a few dozen measurements have none), web2 as far apart.
    let (status, _, long) = get(&addr, "/ntp?since=2h");
    assert_eq!(status, 200, "{long}");
    let offset = |label| ntp_line(&long, "ntp-offset", label).unwrap_or_else(|| panic!("{long}"));
    let ((web1, _), (web2, _)) = (offset("web1"), offset("web2"));
    assert!(long.contains("class=\"envelope\""), "{long}");
    assert!(
        (web2 - web1 - 250.0).abs() < 30.0,
        "bucketed: web1 {web1}, web2 {web2} ms"
    );
    let (spread, _) = ntp_line(&long, "ntp-spread", "spread").unwrap_or_else(|| panic!("{long}"));
    assert!((spread - 250.0).abs() < 30.0, "bucketed spread {spread} ms");
    let (_, _, ntp) = get(&addr, "/ntp?cluster=prod&since=10m");
    assert!(ntp.contains("data-cluster=\"prod\""), "{ntp}");
    assert!(ntp.contains("<span class=\"ok\">synced</span>"), "{ntp}");
    assert!(
        ntp.contains("href=\"/ntp?cluster=prod&amp;since=6h\""),
        "{ntp}"
    );
    let (_, _, other) = get(&addr, "/ntp?cluster=staging");
    assert!(!other.contains("data-cluster=\"prod\""), "{other}");
    assert_eq!(get(&addr, "/ntp?since=yesterday").0, 400);

    let (status, _, policies) = get(&addr, "/policies");
    assert_eq!(status, 200, "{policies}");
    assert!(
        policies.contains("action=\"/policies/dry-run\""),
        "{policies}"
    );

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

    // Gzipped to a browser that accepts it: the assets unzip to themselves, the pages to HTML;
    // the host page and its assets well under 300 KB as sent.
    let mut sent = 0;
    for path in [
        "/assets/ui.js",
        "/assets/ui.css",
        "/hosts/web1",
        "/",
        "/ntp",
        "/alerts",
    ] {
        let (status, encoding, vary, body) = get_gzip(&addr, path);
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            (encoding.as_str(), vary.as_str()),
            ("gzip", "accept-encoding"),
            "{path}"
        );
        let text = gunzip(&body);
        if path.starts_with("/assets/") {
            assert_eq!(text, get(&addr, path).2, "{path}");
        } else {
            assert!(text.starts_with("<!DOCTYPE html>"), "{path}: {text}");
        }
        if path.starts_with("/assets/") || path == "/hosts/web1" {
            sent += body.len();
        }
    }
    println!("the host page and its assets, gzipped: {sent} bytes");
    assert!(sent < 300_000, "{sent} bytes");
    // Without Accept-Encoding: as they are, for any client.
    assert!(get(&addr, "/assets/ui.js").2.contains("sortable"));

    // SIGTERM stops it cleanly.
    assert_eq!(
        console.ui.term(Duration::from_secs(10)),
        Some(0),
        "{}",
        console.ui.log_text()
    );
}

/// The line labelled `label` in the panel of `kind` (`ntp-offset`, `ntp-spread`) of an `/ntp`
/// page: (the mean of its drawn values, its points).
fn ntp_line(page: &str, kind: &str, label: &str) -> Option<(f64, usize)> {
    let panel = page
        .split("<svg")
        .find(|p| p.contains(&format!("data-activity=\"{kind}\"")))?;
    let line = panel
        .split("<path class=\"series\"")
        .find(|p| p.contains(&format!("data-label=\"{label}\"")))?;
    let attr = |name: &str| {
        let at = line.find(&format!("{name}=\""))? + name.len() + 2;
        line[at..].split('"').next()
    };
    Some((
        attr("data-mean")?.parse().ok()?,
        attr("data-points")?.parse().ok()?,
    ))
}

#[test]
fn ui_pages_in_headless_chromium() {
    const TEST: &str = "ui_pages_in_headless_chromium";
    let chromium = skip_unless!(TEST, caps::program("chromium", "chromium"));
    let chromedriver = skip_unless!(TEST, caps::program("chromedriver", "chromium-driver"));
    let console = Console::start();
    let browser = Browser::start(&chromedriver, &chromium, console.tmp.path());
    let base = format!("http://{}", console.addr);
    let oom = format!("/oom/{}", console.kill_id);

    // Each page loads, is not an error page, and logs no error.
    for path in [
        "/",
        "/hosts/web1",
        oom.as_str(),
        "/ntp",
        "/alerts",
        "/policies",
    ] {
        browser.go(&format!("{base}{path}"));
        let title = browser.script("return document.title");
        let title = title.as_str().unwrap();
        assert!(
            title.ends_with("· Fleet") && !title.contains("Not found") && !title.contains("Bad"),
            "{path}: {title}"
        );
        assert_eq!(
            browser.console_errors(),
            Vec::<serde_json::Value>::new(),
            "{path}"
        );
    }

    // The fleet: the hostile label is text, not a script.
    browser.go(&format!("{base}/"));
    let label = browser.script(
        "return Array.from(document.querySelectorAll('span.label')).map(s => s.textContent)",
    );
    assert!(
        label
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == format!("note={HOSTILE}").as_str()),
        "{label}"
    );
    assert_eq!(
        browser.script("return document.querySelectorAll('main script').length"),
        0
    );

    // The host: a graph per activity, drawn (a width on screen), with data points.
    browser.go(&format!("{base}/hosts/web1"));
    let graphs = browser.script(
        "return Array.from(document.querySelectorAll('section.activity')).map(s => [
           s.dataset.activity,
           s.querySelectorAll('svg.panel').length,
           Array.from(s.querySelectorAll('path.series'))
             .reduce((n, p) => n + Number(p.dataset.points), 0),
           s.querySelector('svg.panel').getBoundingClientRect().width])",
    );
    for activity in ["cpu", "memory", "load", "paging"] {
        let g = graphs
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g[0] == activity)
            .unwrap_or_else(|| panic!("no {activity} graph: {graphs}"));
        assert!(g[1].as_u64().unwrap() >= 1, "{g}");
        assert!(g[2].as_u64().unwrap() > 0, "{activity}: no points: {g}");
        assert!(g[3].as_f64().unwrap() > 300.0, "{activity}: not drawn: {g}");
    }
    let markers =
        browser.script("return document.querySelectorAll('a[href^=\"/oom/\"] line.marker').length");
    assert!(markers.as_u64().unwrap() > 0, "no OOM marker");

    // Dragging across a graph reloads the page with that range.
    let before = browser.script(
        "const svg = document.querySelector('svg.panel');
         const r = svg.querySelector('rect.plot').getBoundingClientRect();
         const fire = (type, f) => svg.dispatchEvent(new MouseEvent(type,
           {clientX: r.left + r.width * f, clientY: r.top + r.height / 2, bubbles: true}));
         const range = [Number(svg.dataset.sinceMs), Number(svg.dataset.untilMs)];
         fire('mousedown', 0.3); fire('mousemove', 0.6); fire('mouseup', 0.6);
         return range;",
    );
    let (since, until) = (before[0].as_i64().unwrap(), before[1].as_i64().unwrap());
    let zoomed = wait_for("the zoomed page", Duration::from_secs(15), || {
        let url = browser.url();
        url.contains("until=").then_some(url)
    });
    let param = |key: &str| -> i64 {
        let start = zoomed.find(&format!("{key}=")).unwrap() + key.len() + 1;
        zoomed[start..].split('&').next().unwrap().parse().unwrap()
    };
    let (z_since, z_until) = (param("since"), param("until"));
    // Where each end fell, as a fraction of the range shown before.
    let at = |t: i64| (t - since) as f64 / (until - since) as f64;
    assert!((0.25..0.35).contains(&at(z_since)), "{zoomed}");
    assert!((0.55..0.65).contains(&at(z_until)), "{zoomed}");
    wait_for(
        "the page of the zoomed range",
        Duration::from_secs(15),
        || {
            let shown = browser.script(
            "const r = document.querySelector('.ranges'); return r ? Number(r.dataset.sinceMs) : null",
        );
            (shown.as_i64() == Some(z_since)).then_some(())
        },
    );
    assert_eq!(
        browser.console_errors(),
        Vec::<serde_json::Value>::new(),
        "after zooming"
    );

    // The clocks: on the offset graph, web2's line is drawn +250 ms from web1's (its values'
    // mean) and above it on screen; the spread's line is at 250 ms.
    let drawn = wait_for(
        "three NTP measurements of each host drawn on /ntp",
        Duration::from_secs(60),
        || {
            browser.go(&format!("{base}/ntp"));
            let v = browser.script(
                "const line = (kind, label) => {
                   const p = document.querySelector(
                     `svg.panel[data-activity='${kind}'] path.series[data-label='${label}']`);
                   if (!p) return null;
                   const b = p.getBoundingClientRect();
                   return [Number(p.dataset.mean), Number(p.dataset.points), b.top + b.height / 2];
                 };
                 return [line('ntp-offset', 'web1'), line('ntp-offset', 'web2'),
                         line('ntp-spread', 'spread')];",
            );
            let lines: Vec<(f64, u64, f64)> = serde_json::from_value(v).ok()?;
            lines.iter().all(|l| l.1 >= 3).then_some(lines)
        },
    );
    let (web1, web2, spread) = (drawn[0], drawn[1], drawn[2]);
    assert!((web2.0 - web1.0 - 250.0).abs() < 30.0, "{drawn:?}");
    assert!(web2.2 < web1.2, "web2 is not drawn above web1: {drawn:?}");
    assert!((spread.0 - 250.0).abs() < 30.0, "{drawn:?}");
    assert_eq!(
        browser.console_errors(),
        Vec::<serde_json::Value>::new(),
        "/ntp"
    );

    // The kill's task table sorts by rss on a click: largest first, then smallest first.
    browser.go(&format!("{base}{oom}"));
    let sorted = |order: &str| {
        browser.script(&format!(
            "const t = document.querySelector('table.tasks');
             const heads = Array.from(t.tHead.rows[0].cells).map(c => c.textContent.trim());
             const i = heads.indexOf('rss');
             {order}
             return Array.from(t.tBodies[0].rows).map(r => Number(r.cells[i].textContent));"
        ))
    };
    let click = "t.tHead.rows[0].cells[i].click();";
    let rss: Vec<i64> = serde_json::from_value(sorted(click)).unwrap();
    assert!(
        rss.len() > 1 && rss.windows(2).all(|w| w[0] >= w[1]),
        "{rss:?}"
    );
    let rss: Vec<i64> = serde_json::from_value(sorted(click)).unwrap();
    assert!(rss.windows(2).all(|w| w[0] <= w[1]), "{rss:?}");
    assert_eq!(
        browser.console_errors(),
        Vec::<serde_json::Value>::new(),
        "after sorting"
    );
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        save_screenshots(&browser, &base, &oom, console.started_ms);
    }
}

/// The README's screenshots, `docs/screenshots/NAME.png`, each under [`MAX_SCREENSHOT`]: the
/// fleet, a host and the clocks since `since_ms` (when the agents started), a kill.
fn save_screenshots(browser: &Browser, base: &str, oom: &str, since_ms: u128) {
    let dir = fleet_tests::paths::workspace_path("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    browser.call(
        "POST",
        "window/rect",
        serde_json::json!({"width": 1100, "height": 820}),
    );
    for (name, path) in [
        ("fleet", "/".to_owned()),
        ("host", format!("/hosts/web1?since={since_ms}")),
        ("oom", oom.to_owned()),
        ("ntp", format!("/ntp?since={since_ms}")),
    ] {
        browser.go(&format!("{base}{path}"));
        let png = base64_decode(
            browser
                .call("GET", "screenshot", serde_json::Value::Null)
                .as_str()
                .unwrap(),
        );
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        assert!(
            png.len() < MAX_SCREENSHOT,
            "{name}: {} bytes, more than {MAX_SCREENSHOT}",
            png.len()
        );
        let file = dir.join(format!("{name}.png"));
        std::fs::write(&file, &png).unwrap();
        eprintln!("wrote {} ({} bytes)", file.display(), png.len());
    }
}

/// The most bytes a README screenshot may take.
const MAX_SCREENSHOT: usize = 150 * 1024;

/// Standard base64 (WebDriver's screenshots), padding and whitespace ignored.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut n) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("not base64: {c}")) as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}
