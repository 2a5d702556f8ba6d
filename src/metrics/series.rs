//! Turning range-query results into chart series: the evaluation grid, alignment by
//! position, the no-traffic rules, and the per-version summary of the apps table.

use std::collections::BTreeMap;

use crate::app::state::{AppMetrics, Point, VersionSeries};

use super::MetricsError;

/// The timestamps a range query evaluates at: `start`, `start + step`, … up to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    /// Most points per series (Prometheus refuses more).
    pub const MAX_POINTS: i64 = 11_000;
    /// Shortest rate window: a window of only a few scrapes is noise.
    pub const MIN_WINDOW: i64 = 60;

    /// A grid over `[start, end]` (unix seconds), with `step` raised to at least 1 s and far
    /// enough that there are at most [`Grid::MAX_POINTS`] points, and lowered to the span.
    pub fn new(start: i64, end: i64, step: i64) -> Result<Grid, MetricsError> {
        let span = end
            .checked_sub(start)
            .filter(|s| *s >= 0)
            .ok_or(MetricsError::InvalidRange { start, end })?;
        let min_step =
            span / (Self::MAX_POINTS - 1) + i64::from(span % (Self::MAX_POINTS - 1) != 0);
        Ok(Grid {
            start,
            end,
            // More than the span would only widen the rate window: one point either way.
            step: step.min(span).max(min_step).max(1),
        })
    }

    /// How many points each series has.
    pub fn points(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }

    /// The rate window: four steps, at least [`Grid::MIN_WINDOW`] seconds.
    pub fn window_seconds(&self) -> i64 {
        self.step.saturating_mul(4).max(Self::MIN_WINDOW)
    }

    pub fn timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.points() as i64).map(|i| self.start + i * self.step)
    }

    /// The position of a sample's timestamp (seconds, possibly with milliseconds) on the
    /// grid, if it falls on it.
    fn index(&self, ts: f64) -> Option<usize> {
        let off = ts - self.start as f64;
        let k = (off / self.step as f64).round();
        let on_grid = (off - k * self.step as f64).abs() < 0.001;
        (on_grid && k >= 0.0 && (k as usize) < self.points()).then_some(k as usize)
    }
}

/// One series of a range-query result: its `version` label and its samples
/// (unix seconds, value).
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    pub version: String,
    pub samples: Vec<(f64, f64)>,
}

/// Each version's values placed on the grid; non-finite values (NaN from
/// `histogram_quantile` without observations) become `None`.
fn by_version(grid: &Grid, series: &[RawSeries]) -> BTreeMap<String, Vec<Option<f64>>> {
    let mut out: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for s in series {
        let slots = out
            .entry(s.version.clone())
            .or_insert_with(|| vec![None; grid.points()]);
        for &(ts, v) in &s.samples {
            if let Some(i) = grid.index(ts) {
                slots[i] = v.is_finite().then_some(v);
            }
        }
    }
    out
}

/// Error ratio at one point: `None` without traffic (no total, or a total of 0); no 5xx
/// sample while there is traffic means no errors.
pub fn error_ratio(errors: Option<f64>, total: Option<f64>) -> Option<f64> {
    match total {
        Some(t) if t > 0.0 => Some((errors.unwrap_or(0.0) / t).clamp(0.0, 1.0)),
        _ => None,
    }
}

/// Chart series per version of the total-rate result, sorted by version, every series with
/// one point per grid timestamp.
pub fn assemble(
    grid: &Grid,
    errors: &[RawSeries],
    totals: &[RawSeries],
    p99: &[RawSeries],
) -> Vec<VersionSeries> {
    let errors = by_version(grid, errors);
    let p99 = by_version(grid, p99);
    let none = vec![None; grid.points()];
    by_version(grid, totals)
        .into_iter()
        .map(|(version, total)| {
            let err = errors.get(&version).unwrap_or(&none);
            let lat = p99.get(&version).unwrap_or(&none);
            let points = |f: &dyn Fn(usize) -> Option<f64>| -> Vec<Point> {
                grid.timestamps()
                    .enumerate()
                    .map(|(i, t)| (t, f(i)))
                    .collect()
            };
            VersionSeries {
                error_ratio: points(&|i| error_ratio(err[i], total[i])),
                p99_seconds: points(&|i| lat[i]),
                rps: points(&|i| total[i]),
                version,
            }
        })
        .collect()
}

/// The latest numbers of one version, for the apps table.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSummary {
    pub version: String,
    /// Latest error ratio where there was traffic.
    pub error_ratio: Option<f64>,
    pub p99_seconds: Option<f64>,
    pub rps: Option<f64>,
    /// Some request in the last 60 s of the chart range (a positive rate at a point there).
    pub recent_traffic: bool,
}

/// The latest non-`None` value of each series, per version.
pub fn summary(m: &AppMetrics) -> Vec<VersionSummary> {
    fn latest(points: &[Point]) -> Option<f64> {
        points.iter().rev().find_map(|p| p.1)
    }
    let recent = m.range.1 - 60;
    m.versions
        .iter()
        .map(|v| VersionSummary {
            version: v.version.clone(),
            error_ratio: latest(&v.error_ratio),
            p99_seconds: latest(&v.p99_seconds),
            rps: latest(&v.rps),
            recent_traffic: v
                .rps
                .iter()
                .any(|&(t, r)| t >= recent && r.is_some_and(|r| r > 0.0)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(version: &str, samples: &[(i64, f64)]) -> RawSeries {
        RawSeries {
            version: version.into(),
            samples: samples.iter().map(|&(t, v)| (t as f64, v)).collect(),
        }
    }

    #[test]
    fn grid_clamps_step_and_points() {
        let g = Grid::new(1000, 1100, 0).expect("grid");
        assert_eq!((g.step, g.points(), g.window_seconds()), (1, 101, 60));
        let g = Grid::new(0, 86_400, 1).expect("grid");
        assert_eq!(g.step, 8);
        assert!(g.points() as i64 <= Grid::MAX_POINTS);
        let g = Grid::new(0, 10_999, 1).expect("grid");
        assert_eq!((g.step, g.points()), (1, 11_000));
        let g = Grid::new(0, 3600, 30).expect("grid");
        assert_eq!((g.points(), g.window_seconds()), (121, 120));
        let g = Grid::new(0, 300, i64::MAX).expect("grid");
        assert_eq!((g.step, g.points(), g.window_seconds()), (300, 2, 1200));
        let g = Grid::new(5, 5, 10).expect("grid");
        assert_eq!((g.step, g.points()), (1, 1));
        let g = Grid::new(0, 7, 5).expect("grid");
        assert_eq!(g.timestamps().collect::<Vec<_>>(), [0, 5]);
        assert!(matches!(
            Grid::new(10, 5, 1),
            Err(MetricsError::InvalidRange { .. })
        ));
        assert!(Grid::new(i64::MIN, i64::MAX, 1).is_err());
    }

    #[test]
    fn grid_index_accepts_only_points_on_it() {
        let g = Grid::new(100, 130, 10).expect("grid");
        assert_eq!(g.index(100.0), Some(0));
        assert_eq!(g.index(130.0), Some(3));
        assert_eq!(g.index(120.0004), Some(2));
        assert_eq!(g.index(125.0), None);
        assert_eq!(g.index(90.0), None);
        assert_eq!(g.index(140.0), None);
    }

    #[test]
    fn ratio_rules() {
        assert_eq!(error_ratio(Some(1.0), Some(4.0)), Some(0.25));
        assert_eq!(error_ratio(None, Some(4.0)), Some(0.0), "traffic, no 5xx");
        assert_eq!(error_ratio(None, Some(0.0)), None, "no traffic");
        assert_eq!(error_ratio(Some(0.0), Some(0.0)), None, "no traffic");
        assert_eq!(error_ratio(Some(1.0), None), None, "no total");
        assert_eq!(error_ratio(None, None), None);
        assert_eq!(error_ratio(Some(5.0), Some(4.0)), Some(1.0), "clamped");
    }

    #[test]
    fn assemble_aligns_every_version_on_the_grid() {
        let g = Grid::new(0, 40, 10).expect("grid");
        let totals = [
            raw("1.5.0", &[(10, 2.0), (20, 0.0), (30, 4.0)]),
            raw(
                "1.4.2",
                &[(0, 10.0), (10, 10.0), (20, 10.0), (30, 10.0), (40, 10.0)],
            ),
        ];
        let errors = [
            raw("1.5.0", &[(10, 1.0), (20, 0.0)]),
            raw("1.4.2", &[(40, 0.5)]),
            raw("9.9.9", &[(0, 1.0)]),
        ];
        let p99 = [
            raw("1.5.0", &[(10, 0.2), (20, f64::NAN), (30, 0.3)]),
            raw("1.4.2", &[(0, 0.1), (40, f64::INFINITY)]),
        ];
        let v = assemble(&g, &errors, &totals, &p99);
        assert_eq!(
            v.iter().map(|s| s.version.as_str()).collect::<Vec<_>>(),
            ["1.4.2", "1.5.0"],
            "versions of the total, sorted; 9.9.9 has no total"
        );
        for s in &v {
            for series in [&s.error_ratio, &s.p99_seconds, &s.rps] {
                let ts: Vec<i64> = series.iter().map(|p| p.0).collect();
                assert_eq!(ts, [0, 10, 20, 30, 40]);
            }
        }
        let (stable, canary) = (&v[0], &v[1]);
        let vals = |p: &[Point]| p.iter().map(|p| p.1).collect::<Vec<_>>();
        assert_eq!(
            vals(&stable.error_ratio),
            [Some(0.0), Some(0.0), Some(0.0), Some(0.0), Some(0.05)]
        );
        assert_eq!(
            vals(&canary.error_ratio),
            [None, Some(0.5), None, Some(0.0), None],
            "absent total and zero total are no traffic; traffic without 5xx is 0"
        );
        assert_eq!(
            vals(&canary.p99_seconds),
            [None, Some(0.2), None, Some(0.3), None],
            "NaN and missing are None"
        );
        assert_eq!(
            vals(&stable.p99_seconds),
            [Some(0.1), None, None, None, None]
        );
        assert_eq!(
            vals(&canary.rps),
            [None, Some(2.0), Some(0.0), Some(4.0), None]
        );
    }

    #[test]
    fn assemble_without_series_is_empty() {
        let g = Grid::new(0, 40, 10).expect("grid");
        assert!(assemble(&g, &[raw("1.0", &[(0, 1.0)])], &[], &[]).is_empty());
    }

    #[test]
    fn summary_takes_the_latest_values_and_recent_traffic() {
        let series = |v: &[Option<f64>]| -> Vec<Point> {
            v.iter()
                .enumerate()
                .map(|(i, &x)| (1000 + 30 * i as i64, x))
                .collect()
        };
        let m = AppMetrics {
            range: (1000, 1120),
            versions: vec![
                VersionSeries {
                    version: "a".into(),
                    error_ratio: series(&[Some(0.1), Some(0.2), None, None, None]),
                    p99_seconds: series(&[Some(0.3), None, None, None, None]),
                    rps: series(&[Some(5.0), Some(1.0), Some(0.0), Some(0.0), Some(0.0)]),
                },
                VersionSeries {
                    version: "b".into(),
                    error_ratio: series(&[None, None, None, Some(0.0), Some(0.01)]),
                    p99_seconds: series(&[None, None, None, Some(0.1), Some(0.2)]),
                    rps: series(&[None, None, None, Some(3.0), Some(4.0)]),
                },
            ],
            ..Default::default()
        };
        let s = summary(&m);
        assert_eq!(
            s[0],
            VersionSummary {
                version: "a".into(),
                error_ratio: Some(0.2),
                p99_seconds: Some(0.3),
                rps: Some(0.0),
                recent_traffic: false,
            }
        );
        assert_eq!(
            s[1],
            VersionSummary {
                version: "b".into(),
                error_ratio: Some(0.01),
                p99_seconds: Some(0.2),
                rps: Some(4.0),
                recent_traffic: true,
            }
        );
        assert!(summary(&AppMetrics::default()).is_empty());
    }
}
