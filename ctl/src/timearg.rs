//! The values of `--since` and `--until`.
//!
//! Either a duration back from now, in humantime's syntax (`30s`, `10m`, `2h`, `1d`, `1h30m`;
//! note `M` is months), the word `now`, or an RFC 3339 time with any offset
//! (`2026-11-25T22:10:03Z`, `2026-11-25T23:10:03+01:00`). Parsing ([`TimeArg::from_str`]) knows
//! nothing of the clock; [`TimeArg::resolve`] and [`range`] take `now` from the caller, so all
//! are pure.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::output::{show_time, show_until};

/// The help text on `--since`/`--until` values (the `after_help` of the commands that take them).
pub const HELP: &str = "TIME is a duration back from now (30s, 10m, 2h, 1d, 1h30m), `now`, or an \
                        RFC 3339 time (2026-11-25T22:10:03Z). Times are shown in UTC.";

/// A parsed `--since`/`--until` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// This long before now (`now` is `Ago(0)`).
    Ago(Duration),
    /// This instant.
    At(DateTime<Utc>),
}

/// A value that is neither a duration nor an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is neither a duration back from now (30s, 10m, 2h, 1d) nor an RFC 3339 time \
     (2026-11-25T22:10:03Z)"
)]
pub struct TimeArgError {
    input: String,
}

impl FromStr for TimeArg {
    type Err = TimeArgError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("now") {
            return Ok(TimeArg::Ago(Duration::ZERO));
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(s) {
            return Ok(TimeArg::At(at.with_timezone(&Utc)));
        }
        humantime::parse_duration(s)
            .map(TimeArg::Ago)
            .map_err(|_| TimeArgError {
                input: s.to_owned(),
            })
    }
}

impl TimeArg {
    /// The instant this value names, given the current time.
    ///
    /// A duration reaching back before the Unix epoch (`1000y`) stops at the epoch: nothing Fleet
    /// stores is older.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeArg::At(at) => at,
            TimeArg::Ago(ago) => TimeDelta::from_std(ago)
                .ok()
                .and_then(|ago| now.checked_sub_signed(ago))
                .filter(|t| *t >= DateTime::UNIX_EPOCH)
                .unwrap_or(DateTime::UNIX_EPOCH),
        }
    }
}

/// Parses `s` and resolves it against `now`.
///
/// # Errors
///
/// [`TimeArgError`] if `s` is neither a duration nor an RFC 3339 time.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeArgError> {
    s.parse::<TimeArg>().map(|t| t.resolve(now))
}

/// A `--since` that is not before the end of the range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--since {} is not before --until {}", show_time(*since), show_until(*until))]
pub struct EmptyRange {
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

/// `--since` and `--until` resolved against `now`; `until` stays `None` for "now".
///
/// # Errors
///
/// [`EmptyRange`] when `since` is not before the end of the range.
pub fn range(
    since: TimeArg,
    until: Option<TimeArg>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, Option<DateTime<Utc>>), EmptyRange> {
    let since = since.resolve(now);
    let until = until.map(|t| t.resolve(now));
    if since >= until.unwrap_or(now) {
        return Err(EmptyRange { since, until });
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-25T22:10:03Z".parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn durations_back_from_now() {
        assert_eq!(parse_time("10m", now()), Ok(at("2026-11-25T22:00:03Z")));
        assert_eq!(parse_time("2h", now()), Ok(at("2026-11-25T20:10:03Z")));
        assert_eq!(parse_time("30s", now()), Ok(at("2026-11-25T22:09:33Z")));
        assert_eq!(parse_time("1d", now()), Ok(at("2026-11-24T22:10:03Z")));
        assert_eq!(parse_time("1h30m", now()), Ok(at("2026-11-25T20:40:03Z")));
        assert_eq!(parse_time("0s", now()), Ok(now()));
        assert_eq!(parse_time("now", now()), Ok(now()));
        assert_eq!(parse_time(" 10m ", now()), Ok(at("2026-11-25T22:00:03Z")));
    }

    #[test]
    fn rfc3339_times_in_any_offset() {
        assert_eq!(
            parse_time("2026-11-25T21:00:00Z", now()),
            Ok(at("2026-11-25T21:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-25T23:00:00+01:00", now()),
            Ok(at("2026-11-25T22:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-11-25T21:00:00.250Z", now()),
            Ok(at("2026-11-25T21:00:00.250Z"))
        );
        // A future time is taken as given; the range check is the caller's.
        assert_eq!(
            parse_time("2027-01-01T00:00:00Z", now()),
            Ok(at("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn far_past_stops_at_the_epoch() {
        assert_eq!(parse_time("1000y", now()), Ok(DateTime::UNIX_EPOCH));
        assert_eq!(parse_time("100000000000y", now()), Ok(DateTime::UNIX_EPOCH));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "10",
            "-10m",
            "yesterday",
            "10 parsecs",
            "2026-11-25",
            "22:10:03",
            "2026-11-25 22:10:03",
        ] {
            let err = parse_time(bad, now()).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{}`", bad.trim())),
                "{err}"
            );
        }
    }
}
