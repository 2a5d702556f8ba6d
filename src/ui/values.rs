//! How numbers read: ages like kubectl, error ratios in percent, latencies in milliseconds, and
//! the latest value of a series, which distinguishes "no traffic" and "no data" from zero.

use jiff::Timestamp;

use crate::app::state::{AppMetrics, AppView, EnvState, Point, Rollout, VersionSeries};
use crate::sandbox::table::human_duration;

/// kubectl's age of `t` at `now` (`45s`, `5m`, `3h`, `2d`); `-` when unknown.
pub(crate) fn age(now: Timestamp, t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| human_duration(now.as_second() - t.as_second()),
    )
}

/// An error ratio (0..1) in percent: `0.10%`, `12.5%`, `100%`.
pub(crate) fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p >= 99.95 {
        "100%".into()
    } else if p >= 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// A latency in seconds as milliseconds: `170ms`, `2300ms`; whole seconds beyond ten (`12s`).
pub(crate) fn millis(seconds: f64) -> String {
    if seconds >= 10.0 {
        format!("{seconds:.0}s")
    } else {
        format!("{:.0}ms", seconds * 1000.0)
    }
}

/// `+2 more ↓`: the rows a table cannot show, above and below its window.
pub(crate) fn more(above: usize, below: usize) -> Option<String> {
    match (above, below) {
        (0, 0) => None,
        (0, n) => Some(format!("+{n} more ↓")),
        (n, 0) => Some(format!("+{n} more ↑")),
        (a, b) => Some(format!("+{a} ↑ +{b} ↓")),
    }
}

/// The newest point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Latest {
    /// Nothing was returned.
    NoData,
    /// Requests stopped: a ratio or quantile of nothing, which is not zero.
    NoTraffic,
    Value(f64),
}

impl Latest {
    pub(crate) fn of(points: &[Point]) -> Latest {
        match points.last() {
            None => Latest::NoData,
            Some((_, None)) => Latest::NoTraffic,
            Some((_, Some(v))) => Latest::Value(*v),
        }
    }

    /// The value formatted with `fmt`, or the words for its absence.
    pub(crate) fn show(self, fmt: fn(f64) -> String) -> String {
        match self {
            Latest::NoData => "no data".into(),
            Latest::NoTraffic => "no traffic".into(),
            Latest::Value(v) => fmt(v),
        }
    }

    pub(crate) fn exceeds(self, limit: f64) -> bool {
        matches!(self, Latest::Value(v) if v > limit)
    }
}

/// The series of the version with image tag `tag` (Prometheus's `version` label is the tag).
pub(crate) fn series<'a>(metrics: Option<&'a AppMetrics>, tag: &str) -> Option<&'a VersionSeries> {
    metrics?.versions.iter().find(|s| s.version == tag)
}

/// The latest error ratio and p99 of the version with image tag `tag`. A version missing from
/// metrics that has other versions' series (an idle blue/green colour, routed nothing) has no
/// traffic; with no series at all, or a failed fetch, there is no data.
pub(crate) fn latest(metrics: Option<&AppMetrics>, tag: &str) -> (Latest, Latest) {
    match series(metrics, tag) {
        Some(s) => (Latest::of(&s.error_ratio), Latest::of(&s.p99_seconds)),
        None if metrics.is_some_and(|m| m.error.is_none() && !m.versions.is_empty()) => {
            (Latest::NoTraffic, Latest::NoTraffic)
        }
        None => (Latest::NoData, Latest::NoData),
    }
}

/// Versions that still serve traffic but are no longer any Deployment's template (the old
/// version during a rolling update).
pub(crate) fn old_series<'a>(
    metrics: Option<&'a AppMetrics>,
    app: &'a AppView,
) -> impl Iterator<Item = &'a VersionSeries> {
    metrics
        .into_iter()
        .flat_map(|m| &m.versions)
        .filter(|s| !app.versions.iter().any(|v| v.tag == s.version))
        .filter(|s| matches!(Latest::of(&s.error_ratio), Latest::Value(_)))
}

/// Whether an app needs attention now: a failed rollout, or any version over a limit.
pub(crate) fn failing(env: &EnvState, app: &AppView, max_error: f64, max_p99: f64) -> bool {
    if matches!(app.rollout, Rollout::Failed(_) | Rollout::Degraded { .. }) {
        return true;
    }
    let metrics = env.metrics.get(&app.name);
    app.versions
        .iter()
        .filter_map(|v| series(metrics, &v.tag))
        .any(|s| {
            Latest::of(&s.error_ratio).exceeds(max_error)
                || Latest::of(&s.p99_seconds).exceeds(max_p99)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_millis() {
        assert_eq!(percent(0.001), "0.10%");
        assert_eq!(percent(0.0), "0.00%");
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(millis(0.17), "170ms");
        assert_eq!(millis(2.3), "2300ms");
        assert_eq!(millis(12.4), "12s");
    }

    #[test]
    fn rows_out_of_view() {
        assert_eq!(more(0, 0), None);
        assert_eq!(more(0, 1).as_deref(), Some("+1 more ↓"));
        assert_eq!(more(2, 0).as_deref(), Some("+2 more ↑"));
        assert_eq!(more(2, 1).as_deref(), Some("+2 ↑ +1 ↓"));
    }

    #[test]
    fn absence_is_never_zero() {
        assert_eq!(Latest::of(&[]).show(percent), "no data");
        assert_eq!(
            Latest::of(&[(0, Some(0.0)), (15, None)]).show(percent),
            "no traffic"
        );
        assert_eq!(
            Latest::of(&[(0, None), (15, Some(0.0))]).show(percent),
            "0.00%"
        );
        assert!(!Latest::NoTraffic.exceeds(0.0));
    }

    #[test]
    fn a_version_missing_from_fetched_metrics_has_no_traffic() {
        let blue = VersionSeries {
            version: "2.7.1".into(),
            error_ratio: vec![(0, Some(0.01))],
            p99_seconds: vec![(0, Some(0.2))],
            rps: Vec::new(),
        };
        let mut m = AppMetrics {
            versions: vec![blue],
            ..Default::default()
        };
        let none = (Latest::NoTraffic, Latest::NoTraffic);
        assert_eq!(
            latest(Some(&m), "2.7.1"),
            (Latest::Value(0.01), Latest::Value(0.2))
        );
        // The idle colour: the cluster runs it, Prometheus has no series of it.
        assert_eq!(latest(Some(&m), "2.8.0"), none);
        // A failed fetch, or one that returned nothing at all, says nothing about traffic.
        let no_data = (Latest::NoData, Latest::NoData);
        m.error = Some("timeout".into());
        assert_eq!(latest(Some(&m), "2.8.0"), no_data);
        assert_eq!(latest(Some(&AppMetrics::default()), "2.8.0"), no_data);
        assert_eq!(latest(None, "2.8.0"), no_data);
    }
}
