//! The plots parsed back as XML: panels, lines, points, envelopes, markers, escaping.

use fleet_proto::schema::schema;
use fleet_proto::v1::Activity;
use roxmltree::{Document, Node};

use super::*;

const T0: i64 = 1_764_108_600_000; // 2025-11-25T22:10:00Z

fn range() -> Range {
    Range {
        since_ms: T0,
        until_ms: T0 + 600_000,
    }
}

fn row(host: &str, instance: &str, i: i64, values: Vec<f64>) -> PlotRow {
    PlotRow {
        host_id: host.into(),
        host: host.into(),
        instance: instance.into(),
        time_ms: T0 + i * 10_000,
        interval_ms: 10_000,
        values,
        envelope: None,
    }
}

fn with_class<'a>(doc: &'a Document, class: &str) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some(class))
        .collect()
}

fn points(node: &Node) -> usize {
    node.attribute("data-points").unwrap().parse().unwrap()
}

/// Path commands in a `d` attribute.
fn commands(node: &Node) -> usize {
    node.attribute("d")
        .unwrap()
        .chars()
        .filter(|c| matches!(c, 'M' | 'l'))
        .count()
}

#[test]
fn memory_is_five_panels_one_line_per_column_and_host() {
    let memory = schema(Activity::Memory).unwrap();
    let rows: Vec<PlotRow> = (0..10)
        .flat_map(|i| {
            let v: Vec<f64> = (0..11).map(|c| (c * 100 + i) as f64).collect();
            [row("web-1", "-", i, v.clone()), row("web-2", "-", i, v)]
        })
        .collect();
    let panels = activity_panels(memory, &rows, range(), &[]);
    assert_eq!(panels.len(), 5);
    let svg = document("memory", &panels);
    let doc = Document::parse(&svg).expect("valid XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let panel_nodes = with_class(&doc, "panel");
    assert_eq!(panel_nodes.len(), 5);
    // kbmemfree kbavail kbmemused for two hosts in the first panel; %memused in the second.
    let series = |p: &Node| -> Vec<String> {
        p.descendants()
            .filter(|n| n.attribute("class") == Some("series"))
            .map(|n| {
                assert_eq!(points(&n), 10);
                assert_eq!(commands(&n), 10);
                n.children()
                    .find(|c| c.has_tag_name("title"))
                    .and_then(|t| t.text())
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        series(&panel_nodes[0]),
        [
            "kbmemfree web-1",
            "kbmemfree web-2",
            "kbavail web-1",
            "kbavail web-2",
            "kbmemused web-1",
            "kbmemused web-2"
        ]
    );
    assert_eq!(
        series(&panel_nodes[1]),
        ["%memused web-1", "%memused web-2"]
    );
    assert!(panels.iter().all(|p| p.points > 0));
    // The legend names the sysstat columns.
    let legend: Vec<&str> = with_class(&doc, "legend")
        .iter()
        .filter_map(|g| g.descendants().find_map(|n| n.text()))
        .collect();
    assert!(legend.contains(&"%commit web-2"), "{legend:?}");
}

#[test]
fn every_activity_draws_its_columns() {
    for schema in fleet_proto::schema::ACTIVITIES {
        let instance = if schema.instance_column.is_some() {
            "eth0"
        } else {
            "-"
        };
        let rows: Vec<PlotRow> = (0..3)
            .map(|i| row("h", instance, i, vec![1.0; schema.columns.len()]))
            .collect();
        let panels = activity_panels(schema, &rows, range(), &[]);
        let svg = document(schema.name, &panels);
        let doc = Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", schema.name));
        assert_eq!(with_class(&doc, "series").len(), schema.columns.len());
        assert_eq!(
            with_class(&doc, "panel").len(),
            groups(schema.activity).len()
        );
        if schema.instance_column.is_some() {
            assert!(svg.contains(" h eth0<"), "{}", schema.name);
        }
    }
}

#[test]
fn gaps_break_the_line_and_out_of_range_points_are_left_out() {
    let swapping = schema(Activity::Swapping).unwrap();
    let rows = vec![
        row("h", "-", -5, vec![1.0, 2.0]), // before the range
        row("h", "-", 0, vec![1.0, 2.0]),
        row("h", "-", 1, vec![1.0, 2.0]),
        row("h", "-", 30, vec![1.0, f64::NAN]), // a gap before; NaN not drawn
        row("h", "-", 31, vec![1.0, 2.0]),
    ];
    let panels = activity_panels(swapping, &rows, range(), &[]);
    let doc = Document::parse(&panels[0].svg).unwrap();
    let series = with_class(&doc, "series");
    assert_eq!(points(&series[0]), 4);
    let d = series[0].attribute("d").unwrap();
    assert_eq!(d.matches('M').count(), 2, "{d}");
    assert_eq!(points(&series[1]), 3);
    assert_eq!(panels[0].points, 7);
}

#[test]
fn buckets_get_an_envelope() {
    let cpu = schema(Activity::Cpu).unwrap();
    let rows: Vec<PlotRow> = (0..4)
        .map(|i| PlotRow {
            envelope: Some(Envelope {
                min: vec![0.0; 6],
                max: vec![90.0; 6],
            }),
            ..row("h", "all", i, vec![10.0; 6])
        })
        .collect();
    let panels = activity_panels(cpu, &rows, range(), &[]);
    let doc = Document::parse(&panels[0].svg).unwrap();
    assert_eq!(with_class(&doc, "envelope").len(), 6);
    // Without envelope, none.
    let plain: Vec<PlotRow> = (0..4).map(|i| row("h", "all", i, vec![10.0; 6])).collect();
    let panels = activity_panels(cpu, &plain, range(), &[]);
    assert!(!panels[0].svg.contains("envelope"));
}

#[test]
fn markers_are_lines_with_their_link_and_label() {
    let load = schema(Activity::Load).unwrap();
    let rows: Vec<PlotRow> = (0..5).map(|i| row("h", "-", i, vec![1.0; 6])).collect();
    let markers = [
        Marker {
            time_ms: T0 + 25_000,
            label: "OOM kill: stress (pid 42)".into(),
            link: Some("/oom/abc?x=1&y=2".into()),
        },
        Marker {
            time_ms: T0 - 1,
            label: "before the range".into(),
            link: None,
        },
    ];
    let panels = activity_panels(load, &rows, range(), &markers);
    assert_eq!(panels.len(), 3);
    for panel in &panels {
        let doc = Document::parse(&panel.svg).unwrap();
        let marks = with_class(&doc, "marker");
        assert_eq!(marks.len(), 1);
        let link = marks[0].parent_element().unwrap();
        assert_eq!(link.tag_name().name(), "a");
        assert_eq!(link.attribute("href"), Some("/oom/abc?x=1&y=2"));
    }
}

#[test]
fn hostile_names_are_escaped() {
    let cpu = schema(Activity::Cpu).unwrap();
    let evil = "<script>alert(1)</script>\"&'\u{1}";
    let rows = vec![row(evil, evil, 0, vec![1.0; 6])];
    let panels = activity_panels(cpu, &rows, range(), &[]);
    let svg = document(evil, &panels);
    assert!(!svg.contains("<script>"));
    let doc = Document::parse(&svg).expect("still valid XML");
    let title = with_class(&doc, "series")[0]
        .children()
        .find(|c| c.has_tag_name("title"))
        .and_then(|t| t.text())
        .unwrap()
        .to_owned();
    assert!(
        title.starts_with("%user <script>alert(1)</script>\"&'\u{fffd}"),
        "{title}"
    );
}

#[test]
fn no_rows_is_a_panel_saying_so() {
    let disk = schema(Activity::Disk).unwrap();
    let panels = activity_panels(disk, &[], range(), &[]);
    assert_eq!(panels.len(), 5);
    for panel in &panels {
        assert_eq!(panel.points, 0);
        let doc = Document::parse(&panel.svg).unwrap();
        assert_eq!(with_class(&doc, "empty").len(), 1);
    }
}

#[test]
fn sparklines_hold_their_points() {
    let points: Vec<(i64, f64)> = (0..20).map(|i| (T0 + i * 30_000, i as f64)).collect();
    let svg = sparkline(&points, range(), 120, 24, "cpu <busy>");
    let doc = Document::parse(&svg).unwrap();
    assert_eq!(points_of(&doc), 20);
    assert!(svg.contains("cpu &lt;busy&gt;"));
}

fn points_of(doc: &Document) -> usize {
    with_class(doc, "series").iter().map(points).sum()
}

#[test]
fn the_time_axis_is_utc() {
    let cpu = schema(Activity::Cpu).unwrap();
    let panels = activity_panels(cpu, &[], range(), &[]);
    assert!(panels[0].svg.contains(">22:12<"), "{}", panels[0].svg);
    assert!(panels[0]
        .svg
        .contains("UTC, from 2025-11-25 22:10:00 to 2025-11-25 22:20:00"));
}

/// The (x, y) points of a path's `d` (`M` absolute, `l` relative vertices).
fn coordinates(node: &Node) -> Vec<(f64, f64)> {
    let d = node.attribute("d").unwrap();
    let starts: Vec<usize> = d.match_indices(['M', 'l']).map(|(i, _)| i).collect();
    let mut at = (0.0, 0.0);
    let mut out = Vec::new();
    for i in starts {
        let rest = &d[i + 1..];
        let pair = &rest[..rest.find(['M', 'l', 'Z', 'h']).unwrap_or(rest.len())];
        let (x, y) = pair.split_once(',').unwrap();
        let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
        at = if d.as_bytes()[i] == b'M' {
            (x, y)
        } else {
            (at.0 + x, at.1 + y)
        };
        out.push(at);
    }
    out
}

/// The topmost (smallest y) point of a path.
fn top(node: &Node) -> (f64, f64) {
    coordinates(node)
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

#[test]
fn collector_buckets_draw_bands_that_hold_the_raw_spike() {
    use fleet_proto::v1::{SarBucket, SarBucketSeries};

    // 10 minutes of CPU at 1 s, %user 10 ± 1 but 95 for one second at 5:37.
    let cpu = schema(Activity::Cpu).unwrap();
    let spike_ms = T0 + 337_000;
    let raw: Vec<PlotRow> = (0..600)
        .map(|i| {
            let t = T0 + i * 1000;
            let user = if t == spike_ms {
                95.0
            } else {
                10.0 + (i % 3) as f64 - 1.0
            };
            PlotRow {
                time_ms: t,
                interval_ms: 1000,
                ..row("h", "all", 0, vec![user, 0.0, 2.0, 0.0, 0.0, 98.0 - user])
            }
        })
        .collect();
    // The collector's answer for 60 buckets: exact min, max and mean per bucket.
    let step = bucket::step_ms(range(), 60);
    assert_eq!(step, 10_000);
    let buckets: Vec<SarBucket> = raw
        .chunk_by(|a, b| a.time_ms / step == b.time_ms / step)
        .map(|rows| {
            let column = |c: usize| rows.iter().map(move |r| r.values[c]);
            SarBucket {
                time_ms: rows[0].time_ms / step * step,
                count: vec![rows.len() as u32; 6],
                min: (0..6).map(|c| column(c).fold(f64::MAX, f64::min)).collect(),
                max: (0..6).map(|c| column(c).fold(f64::MIN, f64::max)).collect(),
                mean: (0..6)
                    .map(|c| column(c).sum::<f64>() / rows.len() as f64)
                    .collect(),
            }
        })
        .collect();
    let series = [SarBucketSeries {
        host_id: "h".into(),
        hostname: "h".into(),
        instance: "all".into(),
        buckets,
    }];
    let bucketed = bucket::from_buckets(&series, step, range());
    assert_eq!(bucketed.len(), 60);
    assert!(bucketed.iter().all(|r| r.interval_ms == 10_000));

    let drawn = |rows: &[PlotRow]| activity_panels(cpu, rows, range(), &[]).remove(0).svg;
    let (raw_svg, bucketed_svg) = (drawn(&raw), drawn(&bucketed));
    let (raw_doc, doc) = (
        Document::parse(&raw_svg).unwrap(),
        Document::parse(&bucketed_svg).unwrap(),
    );
    fn user<'a>(doc: &'a Document) -> Node<'a, 'a> {
        with_class(doc, "series")
            .into_iter()
            .find(|n| n.attribute("data-label") == Some("%user h all"))
            .unwrap()
    }
    assert_eq!(points(&user(&raw_doc)), 600);
    assert_eq!(points(&user(&doc)), 60, "one point per bucket");
    // The same value scale (the band reaches the raw extremes), so y compare directly.
    let (spike_x, spike_y) = top(&user(&raw_doc));
    let mean_top = top(&user(&doc)).1;
    assert!(
        mean_top > spike_y + 10.0,
        "the mean alone averages the spike away: {mean_top} vs {spike_y}"
    );
    // %user's band: the first envelope (lines and bands in column order).
    let band = with_class(&doc, "envelope").remove(0);
    let (band_x, band_y) = top(&band);
    assert!(
        (band_y - spike_y).abs() < 0.51,
        "the band reaches the spike: {band_y} vs {spike_y}"
    );
    let px_per_bucket = (PANEL_WIDTH as f64) / 60.0;
    assert!(
        (band_x - spike_x).abs() <= px_per_bucket,
        "at the spike's bucket: x {band_x} vs {spike_x}"
    );
    // And every raw %user point lies within the band's vertical extent.
    let band_ys: Vec<f64> = coordinates(&band).iter().map(|p| p.1).collect();
    let lowest = band_ys.iter().copied().fold(f64::MIN, f64::max);
    for (_, y) in coordinates(&user(&raw_doc)) {
        assert!(
            y >= band_y - 0.11 && y <= lowest + 0.11,
            "{y} outside the band"
        );
    }
}
