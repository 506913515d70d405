//! Drawing one panel, and a sparkline: coordinates, paths, axes, legend and markers as SVG text.

use std::fmt::Write as _;

use super::axis::{time_ticks, utc, value_label, Scale};
use super::{escape, Line, Marker, Panel, Range, PANEL_WIDTH};

/// Line colours, in turn (sysstat's default palette, darkened where it is unreadable on white).
const PALETTE: &[&str] = &[
    "#00a000", "#d000a0", "#0090b0", "#e00000", "#e85f00", "#0000ff", "#006020", "#7030a0",
    "#a0a000", "#666635", "#d60093", "#00bfbf", "#cc3300", "#50040f", "#193d55", "#808080",
];

const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const PLOT_HEIGHT: f64 = 160.0;
/// Below the plot: the time labels.
const AXIS: f64 = 34.0;
const LEGEND_ROW: f64 = 16.0;
const LEGEND_COLUMN: f64 = 220.0;

fn x_of(range: Range, width: f64, t: i64) -> f64 {
    let span = (range.until_ms - range.since_ms).max(1) as f64;
    LEFT + (t - range.since_ms) as f64 / span * width
}

/// One panel: `title` on top, `lines` in the plot, `markers` across it, the legend below.
pub(super) fn panel(
    title: &str,
    activity: &str,
    lines: &[Line],
    range: Range,
    markers: &[Marker],
) -> Panel {
    let width = f64::from(PANEL_WIDTH) - LEFT - RIGHT;
    let per_row = ((width / LEGEND_COLUMN) as usize).max(1);
    let legend_rows = lines.len().div_ceil(per_row);
    let height = (TOP + PLOT_HEIGHT + AXIS + LEGEND_ROW * legend_rows as f64 + 6.0).ceil() as u32;
    let x = |t: i64| x_of(range, width, t);
    let visible = |t: i64| (range.since_ms..=range.until_ms).contains(&t);

    let (lo, hi) = lines
        .iter()
        .flat_map(|l| &l.points)
        .filter(|p| visible(p.0))
        .fold(
            (f64::INFINITY, f64::NEG_INFINITY),
            |(lo, hi), (_, v, band)| {
                let (b_lo, b_hi) = band.unwrap_or((*v, *v));
                (lo.min(*v).min(b_lo), hi.max(*v).max(b_hi))
            },
        );
    let scale = Scale::new(lo, hi, 4);
    let y = |v: f64| TOP + PLOT_HEIGHT * (1.0 - scale.fraction(v));

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"panel\" data-activity=\"{activity}\" \
         width=\"{PANEL_WIDTH}\" height=\"{height}\" viewBox=\"0 0 {PANEL_WIDTH} {height}\" \
         data-since-ms=\"{since}\" data-until-ms=\"{until}\" data-x0=\"{LEFT}\" data-x1=\"{x1}\" \
         font-family=\"sans-serif\" font-size=\"11\">\
         <title>{title}</title>\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{title}</text>\
         <rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{width}\" height=\"{PLOT_HEIGHT}\" \
         fill=\"#fafafa\" stroke=\"#999\"/>",
        activity = escape(activity),
        since = range.since_ms,
        until = range.until_ms,
        x1 = LEFT + width,
        title = escape(title),
    );
    // Value grid and labels.
    for v in scale.lines() {
        let yv = y(v);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{x2:.1}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\">{label}</text>",
            x2 = LEFT + width,
            lx = LEFT - 4.0,
            ly = yv + 4.0,
            label = value_label(v),
        );
    }
    // Time ticks, UTC.
    let bottom = TOP + PLOT_HEIGHT;
    for (t, label) in time_ticks(range.since_ms, range.until_ms, 8) {
        let xt = x(t);
        let _ = write!(
            s,
            "<line x1=\"{xt:.1}\" x2=\"{xt:.1}\" y1=\"{TOP}\" y2=\"{b2:.1}\" stroke=\"#e4e4e4\"/>\
             <text x=\"{xt:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">{label}</text>",
            b2 = bottom + 4.0,
            ty = bottom + 16.0,
        );
    }
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{ty:.1}\" fill=\"#666\">UTC, from {from} to {to}</text>",
        ty = bottom + 29.0,
        from = utc(range.since_ms, "%Y-%m-%d %H:%M:%S"),
        to = utc(range.until_ms, "%Y-%m-%d %H:%M:%S"),
    );

    // Envelopes first, lines over them.
    let mut points = 0;
    let mut paths = String::new();
    for (i, line) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let shown: Vec<_> = line.points.iter().filter(|p| visible(p.0)).collect();
        let segments = split_at_gaps(&shown, line.gap_ms);
        for segment in &segments {
            if segment.iter().all(|p| p.2.is_some()) {
                let mut d = PathData::default();
                for (t, _, band) in segment.iter() {
                    d.to(x(*t), y(band.map_or(0.0, |b| b.1)));
                }
                for (t, _, band) in segment.iter().rev() {
                    d.to(x(*t), y(band.map_or(0.0, |b| b.0)));
                }
                let _ = write!(
                    s,
                    "<path class=\"envelope\" d=\"{}Z\" fill=\"{color}\" fill-opacity=\"0.18\" \
                     stroke=\"none\"/>",
                    d.text
                );
            }
        }
        let mut d = PathData::default();
        for segment in &segments {
            d.lift();
            for (t, v, _) in segment {
                d.to(x(*t), y(*v));
            }
        }
        let mut d = d.text;
        // A lone point still shows: round caps draw a zero-length segment as a dot.
        if shown.len() == 1 {
            d.push_str("h0.01");
        }
        points += shown.len();
        // The mean of the drawn values, so a page's reader (or a test) can compare lines.
        let mean = if shown.is_empty() {
            String::new()
        } else {
            let sum: f64 = shown.iter().map(|p| p.1).sum();
            format!(" data-mean=\"{:.3}\"", sum / shown.len() as f64)
        };
        let _ = write!(
            paths,
            "<path class=\"series\" data-points=\"{n}\"{mean} data-label=\"{label}\" d=\"{d}\" \
             fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" stroke-linejoin=\"round\" \
             stroke-linecap=\"round\"><title>{label}</title></path>",
            n = shown.len(),
            label = escape(&line.label),
        );
    }
    s.push_str(&paths);
    if lines.is_empty() || points == 0 {
        let _ = write!(
            s,
            "<text class=\"empty\" x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" \
             fill=\"#999\">no samples</text>",
            cx = LEFT + width / 2.0,
            cy = TOP + PLOT_HEIGHT / 2.0,
        );
    }
    for marker in markers.iter().filter(|m| visible(m.time_ms)) {
        let xm = x(marker.time_ms);
        let mark = format!(
            "<line class=\"marker\" x1=\"{xm:.1}\" x2=\"{xm:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" \
             stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"4 2\">\
             <title>{label}</title></line>",
            label = escape(&marker.label),
        );
        match &marker.link {
            Some(link) => {
                let _ = write!(s, "<a href=\"{}\">{mark}</a>", escape(link));
            }
            None => s.push_str(&mark),
        }
    }
    // Legend.
    for (i, line) in lines.iter().enumerate() {
        let lx = LEFT + LEGEND_COLUMN * (i % per_row) as f64;
        let ly = bottom + AXIS + LEGEND_ROW * (i / per_row) as f64 + 8.0;
        let _ = write!(
            s,
            "<g class=\"legend\"><rect x=\"{lx:.1}\" y=\"{ry:.1}\" width=\"12\" height=\"4\" \
             fill=\"{color}\"/><text x=\"{tx:.1}\" y=\"{ly:.1}\">{label}</text></g>",
            ry = ly - 5.0,
            tx = lx + 16.0,
            color = PALETTE[i % PALETTE.len()],
            label = escape(&line.label),
        );
    }
    s.push_str("</svg>");
    Panel {
        svg: s,
        height,
        points,
    }
}

/// A path's `d`, short: a 24 h host page draws some 150 lines of ~900 points each, plus their
/// bands, so each vertex is written in whole pixels (a bucket is about one pixel wide) relative
/// to the one before (`M12,40l1,-2l1,0`): a third of the absolute form's bytes, and it gzips
/// several times better. Each vertex keeps its own command (`M` or `l`).
#[derive(Default)]
struct PathData {
    text: String,
    /// Where the pen is, in whole pixels; `None` before the first vertex or after [`lift`].
    ///
    /// [`lift`]: PathData::lift
    at: Option<(i64, i64)>,
}

impl PathData {
    /// The next vertex starts a new subpath (`M`).
    fn lift(&mut self) {
        self.at = None;
    }

    /// A vertex at (`x`, `y`), rounded to whole pixels.
    fn to(&mut self, x: f64, y: f64) {
        let (x, y) = (x.round() as i64, y.round() as i64);
        let _ = match self.at {
            None => write!(self.text, "M{x},{y}"),
            Some((x0, y0)) => write!(self.text, "l{},{}", x - x0, y - y0),
        };
        self.at = Some((x, y));
    }
}

/// `points` (by time) cut where two follow each other by more than `gap_ms`.
fn split_at_gaps<'a, T>(points: &[&'a (i64, f64, T)], gap_ms: i64) -> Vec<Vec<&'a (i64, f64, T)>> {
    let mut segments: Vec<Vec<&(i64, f64, T)>> = Vec::new();
    let mut last: Option<i64> = None;
    for p in points {
        match (last, segments.last_mut()) {
            (Some(t), Some(segment)) if p.0 - t <= gap_ms => segment.push(p),
            _ => segments.push(vec![p]),
        }
        last = Some(p.0);
    }
    segments
}

/// A small line without axes, `width` × `height`, of `points` (time, value) over `range`, from
/// zero (or the lowest value) to the highest; `label` is its tooltip.
pub fn sparkline(
    points: &[(i64, f64)],
    range: Range,
    width: u32,
    height: u32,
    label: &str,
) -> String {
    let shown: Vec<&(i64, f64)> = points
        .iter()
        .filter(|(t, v)| (range.since_ms..=range.until_ms).contains(t) && v.is_finite())
        .collect();
    let (lo, hi) = shown
        .iter()
        .fold((0.0f64, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
            (lo.min(*v), hi.max(*v))
        });
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let (w, h) = (f64::from(width), f64::from(height));
    let span = (range.until_ms - range.since_ms).max(1) as f64;
    let mut d = String::new();
    for (i, (t, v)) in shown.iter().enumerate() {
        let x = (t - range.since_ms) as f64 / span * w;
        let y = 1.0 + (h - 2.0) * (1.0 - (v - lo) / (hi - lo));
        let _ = write!(d, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" });
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"spark\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\"><title>{label}</title>\
         <path class=\"series\" data-points=\"{n}\" d=\"{d}\" fill=\"none\" stroke=\"#0060c0\" \
         stroke-width=\"1.2\"/></svg>",
        label = escape(label),
        n = shown.len(),
    )
}
