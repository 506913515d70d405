//! The axes, as pure arithmetic: where the UTC time ticks fall and how they read, and a value
//! scale with round grid steps and compact labels (`1.5k`, `2.3M`).

use chrono::{DateTime, Utc};

/// Tick spacings the time axis chooses from, in seconds.
const TIME_STEPS: &[i64] = &[
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    2 * 86400,
    7 * 86400,
];

/// The time ticks of `[since_ms, until_ms]`: whole multiples (in UTC) of a step chosen so that
/// there are at most `max_ticks`, each with its label (`HH:MM`, `HH:MM:SS` under a minute,
/// `MM-DD` from a day up).
pub fn time_ticks(since_ms: i64, until_ms: i64, max_ticks: usize) -> Vec<(i64, String)> {
    let span_s = ((until_ms - since_ms) / 1000).max(1);
    let max_ticks = i64::try_from(max_ticks.max(1)).unwrap_or(1);
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|step| span_s / step < max_ticks)
        .unwrap_or(30 * 86400);
    let format = if step < 60 {
        "%H:%M:%S"
    } else if step < 86400 {
        "%H:%M"
    } else {
        "%m-%d"
    };
    let step_ms = step * 1000;
    let first = since_ms.div_euclid(step_ms) * step_ms
        + if since_ms.rem_euclid(step_ms) == 0 {
            0
        } else {
            step_ms
        };
    (0..)
        .map(|i| first + i * step_ms)
        .take_while(|t| *t <= until_ms)
        .take(64)
        .map(|t| (t, utc(t, format)))
        .collect()
}

/// `ms` in UTC with `format`.
pub fn utc(ms: i64, format: &str) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// A value axis: from `low` to `high`, grid lines every `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub low: f64,
    pub high: f64,
    pub step: f64,
}

impl Scale {
    /// A scale holding every value in `[min, max]`, starting at zero unless a value is negative,
    /// with about `lines` round steps (1, 2 or 5 times a power of ten).
    pub fn new(min: f64, max: f64, lines: u32) -> Scale {
        let (min, max) = if min.is_finite() && max.is_finite() && min <= max {
            (min.min(0.0), max.max(0.0))
        } else {
            (0.0, 1.0)
        };
        let span = if max > min { max - min } else { 1.0 };
        let rough = span / f64::from(lines.max(1));
        let magnitude = 10f64.powf(rough.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= rough)
            .unwrap_or(10.0 * magnitude);
        let low = (min / step).floor() * step;
        let mut high = (max / step).ceil() * step;
        if high <= low {
            high = low + step;
        }
        Scale { low, high, step }
    }

    /// The grid values, `low` to `high`.
    pub fn lines(&self) -> Vec<f64> {
        let n = ((self.high - self.low) / self.step).round() as i64;
        (0..=n.min(20))
            .map(|i| self.low + self.step * i as f64)
            .collect()
    }

    /// Where `v` falls, 0 at `low` and 1 at `high`.
    pub fn fraction(&self, v: f64) -> f64 {
        (v - self.low) / (self.high - self.low)
    }
}

/// A value label: at most four significant characters with a k/M/G/T suffix.
pub fn value_label(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if scaled == scaled.trunc() {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_108_603_000; // 2025-11-25T22:10:03Z

    #[test]
    fn an_hour_is_ticked_every_ten_minutes_on_round_times() {
        let ticks = time_ticks(T0, T0 + 3_600_000, 8);
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            ["22:20", "22:30", "22:40", "22:50", "23:00", "23:10"]
        );
        assert!(ticks.iter().all(|(t, _)| t % 600_000 == 0));
    }

    #[test]
    fn short_and_long_ranges() {
        let ticks = time_ticks(T0, T0 + 60_000, 8);
        assert_eq!(ticks[0].1, "22:10:10");
        let ticks = time_ticks(T0, T0 + 10 * 86_400_000, 8);
        assert_eq!(ticks[0].1, "11-26");
        assert!(ticks.len() <= 8);
    }

    #[test]
    fn scales_are_round_and_hold_the_values() {
        assert_eq!(
            Scale::new(3.0, 97.0, 4),
            Scale {
                low: 0.0,
                high: 100.0,
                step: 50.0
            }
        );
        let s = Scale::new(-3.0, 7.0, 5);
        assert!(s.low <= -3.0 && s.high >= 7.0);
        assert_eq!(s.lines().len() as f64, (s.high - s.low) / s.step + 1.0);
        // A flat series still gets a scale.
        assert_eq!(Scale::new(0.0, 0.0, 4).high, 0.5);
        assert_eq!(Scale::new(f64::NAN, 1.0, 4).high, 1.0);
    }

    #[test]
    fn value_labels_are_short() {
        assert_eq!(value_label(0.0), "0");
        assert_eq!(value_label(2.5), "2.5");
        assert_eq!(value_label(12_500.0), "12.5k");
        assert_eq!(value_label(8_000_000.0), "8M");
        assert_eq!(value_label(-0.25), "-0.25");
    }
}
