//! The pages' common parts: the layout around a page's body, escaping ([`e`]; every value put in
//! HTML goes through it), path segments in links ([`seg`]), the query string, times and ranges.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::output::rfc3339;
use crate::plot::{self, Range};
use crate::timearg;

/// `s` escaped for HTML text and attribute values (quoted), control characters replaced.
pub fn e(s: &str) -> Cow<'_, str> {
    plot::escape(s)
}

/// `s` as one URL path segment or query value: unreserved characters as they are, every other
/// byte percent-encoded (so `/`, `?`, `#` and quotes stay inside it).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page: `title`, the navigation, `body`. `refresh_s`: reload every so many seconds.
pub fn page(title: &str, body: &str, refresh_s: Option<u32>) -> String {
    let refresh = refresh_s.map_or(String::new(), |s| {
        format!("<meta http-equiv=\"refresh\" content=\"{s}\">")
    });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{title} · Fleet</title><link rel=\"stylesheet\" href=\"/assets/ui.css\">\
         <link rel=\"icon\" href=\"data:,\"></head><body>\
         <nav><a href=\"/\">Fleet</a> <a href=\"/alerts\">Alerts</a> <a href=\"/ntp\">Clocks</a> <a href=\"/policies\">Policies</a>\
         <span class=\"note\">as this certificate may see and do</span></nav>\
         <main><h1>{title}</h1>\n{body}</main>\
         <script src=\"/assets/ui.js\"></script></body></html>\n",
        title = e(title),
    )
}

/// A table: `head` cells and `rows` of cells that are already HTML (escape what goes in).
/// `class` is the table's class (`sortable`: the script sorts it by a clicked column).
pub fn table(class: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("<table class=\"{}\"><thead><tr>", e(class));
    for h in head {
        let _ = write!(s, "<th>{}</th>", e(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for cell in row {
            let _ = write!(s, "<td>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");
    s
}

/// A time for a cell: RFC 3339 UTC, or `-`.
pub fn time(ms: i64) -> String {
    rfc3339(ms).unwrap_or_else(|| "-".to_owned())
}

/// The value of `key` in a raw query string (`a=1&b=x%20y`), percent- and plus-decoded.
pub fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The range links offered: (label, `since`).
const RANGES: [(&str, &str); 6] = [
    ("1 h", "1h"),
    ("6 h", "6h"),
    ("24 h", "24h"),
    ("3 d", "3d"),
    ("7 d", "7d"),
    ("30 d", "30d"),
];

/// The range bar of a page with graphs: links to `{prefix}since=1h` .. `30d` and the range
/// shown, carried as `data-since-ms` and `data-until-ms`. `prefix` is a path and query start
/// already encoded for a URL (`/hosts/ID?`, `/ntp?cluster=C&`).
pub fn range_links(prefix: &str, range: Range) -> String {
    let mut s = format!(
        "<p class=\"ranges\" data-since-ms=\"{}\" data-until-ms=\"{}\">",
        range.since_ms, range.until_ms
    );
    for (label, since) in RANGES {
        let _ = write!(s, "<a href=\"{}since={since}\">{label}</a> ", e(prefix));
    }
    let _ = write!(
        s,
        "<span class=\"note\">UTC {} to {}; drag across a graph to zoom</span></p>",
        e(&plot::utc(range.since_ms, "%Y-%m-%d %H:%M:%S")),
        e(&plot::utc(range.until_ms, "%Y-%m-%d %H:%M:%S")),
    );
    s
}

/// Why a page's `since`/`until` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("{0}")]
    Time(#[from] timearg::TimeArgError),
    #[error("since is not before until")]
    Empty,
    #[error("the range is longer than 31 days")]
    TooLong,
}

/// The range of `?since=&until=`: each Unix milliseconds (what dragging sends), a duration back
/// from `now` (`1h`) or an RFC 3339 time; `since` defaults to `default_since` back, `until` to now.
pub fn range(
    query: Option<&str>,
    default_since: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<Range, RangeError> {
    let at = |key: &str| -> Result<Option<i64>, RangeError> {
        let Some(v) = query_value(query, key).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if let Ok(ms) = v.parse::<i64>() {
            return Ok(Some(ms));
        }
        Ok(Some(timearg::parse_time(&v, now)?.timestamp_millis()))
    };
    let until_ms = at("until")?.unwrap_or(now.timestamp_millis());
    let since_ms = at("since")?.unwrap_or(until_ms - default_since.as_millis() as i64);
    if since_ms >= until_ms {
        return Err(RangeError::Empty);
    }
    if until_ms - since_ms > 31 * 86_400_000 {
        return Err(RangeError::TooLong);
    }
    Ok(Range { since_ms, until_ms })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cmd::testing::{now, T0};

    #[test]
    fn escaping_and_segments() {
        assert_eq!(
            e("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(seg("web-1.a_b~"), "web-1.a_b~");
        assert_eq!(seg("a/b?c d\"é"), "a%2Fb%3Fc%20d%22%C3%A9");
    }

    #[test]
    fn query_values_are_decoded() {
        let q = Some("cluster=prod%2Fx&label=role%3Dweb+1&empty=&bad=%zz%4");
        assert_eq!(query_value(q, "cluster").as_deref(), Some("prod/x"));
        assert_eq!(query_value(q, "label").as_deref(), Some("role=web 1"));
        assert_eq!(query_value(q, "empty").as_deref(), Some(""));
        assert_eq!(query_value(q, "bad").as_deref(), Some("%zz%4"));
        assert_eq!(query_value(q, "none"), None);
        assert_eq!(query_value(None, "cluster"), None);
    }

    #[test]
    fn ranges() {
        let hour = Duration::from_secs(3600);
        assert_eq!(
            range(None, hour, now()),
            Ok(Range {
                since_ms: T0 - 3_600_000,
                until_ms: T0
            })
        );
        assert_eq!(
            range(Some("since=1000&until=2000"), hour, now()),
            Ok(Range {
                since_ms: 1000,
                until_ms: 2000
            })
        );
        assert_eq!(
            range(Some("since=6h"), hour, now()).map(|r| r.since_ms),
            Ok(T0 - 6 * 3_600_000)
        );
        assert_eq!(
            range(Some("since=2000&until=1000"), hour, now()),
            Err(RangeError::Empty)
        );
        assert_eq!(
            range(Some("since=60d"), hour, now()),
            Err(RangeError::TooLong)
        );
        assert!(range(Some("since=yesterday"), hour, now()).is_err());
    }
}
