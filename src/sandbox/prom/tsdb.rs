//! Bounded in-memory time-series store for the sandbox's simulated metrics.
//!
//! Each series keeps its samples in one contiguous buffer in time order, so readers get
//! plain `&[(t_ms, value)]` slices and can binary-search them. Samples older than
//! `newest - retention` are dropped; a series whose newest sample has aged out is removed
//! entirely. A buffer is compacted (live samples moved to the front) only when it is full,
//! so it never grows beyond what the live samples need and appends stay amortised O(1).
//!
//! A Prometheus staleness marker ([`STALE_NAN`]) can be written with [`Tsdb::mark_stale`];
//! the evaluator treats it exactly as Prometheus does (instant selectors stop returning the
//! series, range selectors skip the marker).

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use regex::Regex;

/// Prometheus's staleness marker: a NaN with a distinctive bit pattern.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// The reserved label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// True if `v` is the staleness marker (not just any NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN.to_bits()
}

/// A sorted, deduplicated set of label pairs (including `__name__`), cheap to clone and
/// to hash (the hash is computed once, on construction).
///
/// Labels with empty values are dropped on construction, as Prometheus treats an empty
/// value exactly like an absent label. Ordering is Prometheus's `labels.Compare`.
#[derive(Clone)]
pub struct Labels(Arc<LabelSet>);

struct LabelSet {
    hash: u64,
    pairs: Box<[(String, String)]>,
}

impl Labels {
    /// Builds a label set from pairs in any order; a repeated name keeps its last value.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable sort keeps insertion order among equal names, so "last wins" below.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = val,
                _ => out.push((k, val)),
            }
        }
        out.retain(|(_, v)| !v.is_empty());
        Labels::from_sorted(out)
    }

    fn from_sorted(pairs: Vec<(String, String)>) -> Self {
        let mut h = DefaultHasher::new();
        pairs.hash(&mut h);
        Labels(Arc::new(LabelSet {
            hash: h.finish(),
            pairs: pairs.into(),
        }))
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let pairs = &self.0.pairs;
        pairs
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| pairs[i].1.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Label pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.pairs.is_empty()
    }

    /// The subset of labels whose names satisfy `keep`.
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> Labels {
        let pairs = &self.0.pairs;
        if pairs.iter().all(|(k, _)| keep(k)) {
            return self.clone();
        }
        Labels::from_sorted(pairs.iter().filter(|(k, _)| keep(k)).cloned().collect())
    }

    /// These labels without `__name__`.
    pub fn without_name(&self) -> Labels {
        self.filter(|k| k != METRIC_NAME)
    }

    /// A copy with `name` set to `value` (removed if `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let rest = self.0.pairs.iter().filter(|(k, _)| k != name).cloned();
        Labels::new(rest.chain(std::iter::once((name.to_owned(), value.to_owned()))))
    }

    fn heap_bytes(&self) -> usize {
        // Arc counters + hash + boxed pair array + the string bytes.
        16 + std::mem::size_of::<LabelSet>()
            + self.len() * std::mem::size_of::<(String, String)>()
            + self.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::from_sorted(Vec::new())
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.pairs == other.0.pairs)
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.0.pairs.cmp(&other.0.pairs)
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Formats like Prometheus: `{a="x", b="y"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How a [`Matcher`] compares a label value.
#[derive(Clone, Debug)]
pub enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// A fully anchored regex (see [`Matcher::regex`]).
    Regex(Regex),
    NotRegex(Regex),
}

/// One label matcher of a series selector. An absent label matches as the empty string.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
}

impl Matcher {
    pub fn new(name: impl Into<String>, op: MatchOp) -> Self {
        Matcher {
            name: name.into(),
            op,
        }
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher::new(name, MatchOp::Equal(value.into()))
    }

    /// `name=~"pattern"` (or `!~` when `negate`), anchored as `^(?:pattern)$` like Prometheus.
    pub fn regex(
        name: impl Into<String>,
        pattern: &str,
        negate: bool,
    ) -> Result<Self, regex::Error> {
        let re = Regex::new(&format!("^(?:{pattern})$"))?;
        let op = if negate {
            MatchOp::NotRegex(re)
        } else {
            MatchOp::Regex(re)
        };
        Ok(Matcher::new(name, op))
    }

    /// Whether a label value (`""` when absent) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal(v) => v == value,
            MatchOp::NotEqual(v) => v != value,
            MatchOp::Regex(re) => re.is_match(value),
            MatchOp::NotRegex(re) => !re.is_match(value),
        }
    }

    fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

/// A borrowed view of one stored series: its labels and all retained samples in time
/// order (staleness markers included).
#[derive(Clone, Copy, Debug)]
pub struct SeriesRef<'a> {
    pub labels: &'a Labels,
    pub samples: &'a [(i64, f64)],
}

/// Samples of one series: `buf[head..]` are live, `buf[..head]` have expired.
#[derive(Default)]
struct Series {
    buf: Vec<(i64, f64)>,
    head: usize,
}

impl Series {
    fn live(&self) -> &[(i64, f64)] {
        &self.buf[self.head..]
    }

    fn last_t(&self) -> Option<i64> {
        self.live().last().map(|&(t, _)| t)
    }

    /// Expires samples older than `cutoff`.
    fn trim(&mut self, cutoff: i64) {
        self.head += self.live().partition_point(|&(t, _)| t < cutoff);
    }

    fn push(&mut self, t: i64, v: f64) {
        // Reuse expired space before letting the buffer grow.
        if self.buf.len() == self.buf.capacity() && self.head > 0 {
            self.compact();
        }
        self.buf.push((t, v));
    }

    fn compact(&mut self) {
        self.buf.drain(..self.head);
        self.head = 0;
    }
}

/// The store: series by label set, each with a bounded sample history.
pub struct Tsdb {
    retention_ms: i64,
    series: HashMap<Labels, Series>,
    newest_ms: i64,
    next_gc_ms: i64,
}

impl Tsdb {
    /// A store keeping at least `retention_ms` of history behind the newest sample.
    pub fn new(retention_ms: i64) -> Self {
        Tsdb {
            retention_ms: retention_ms.max(1),
            series: HashMap::new(),
            newest_ms: i64::MIN,
            next_gc_ms: i64::MIN,
        }
    }

    /// Appends a sample. Samples must come in time order per series; one at or before the
    /// series' newest timestamp is ignored (returns false), as Prometheus rejects it.
    pub fn append(&mut self, labels: &Labels, t_ms: i64, v: f64) -> bool {
        let cutoff = t_ms.saturating_sub(self.retention_ms);
        let series = match self.series.get_mut(labels) {
            Some(s) => s,
            None => self.series.entry(labels.clone()).or_default(),
        };
        if series.last_t().is_some_and(|last| t_ms <= last) {
            return false;
        }
        series.trim(cutoff);
        series.push(t_ms, v);
        if t_ms > self.newest_ms {
            self.newest_ms = t_ms;
        }
        if self.newest_ms >= self.next_gc_ms {
            self.gc();
        }
        true
    }

    /// Writes a staleness marker: from `t_ms` on, instant selectors no longer return the
    /// series (until it receives a normal sample again). Does nothing (returns false) for an
    /// unknown series or one already marked stale.
    pub fn mark_stale(&mut self, labels: &Labels, t_ms: i64) -> bool {
        let already = match self.series.get(labels).and_then(|s| s.live().last()) {
            Some(&(_, v)) => is_stale(v),
            None => true,
        };
        !already && self.append(labels, t_ms, STALE_NAN)
    }

    /// Drops expired samples everywhere and series that have no sample left.
    fn gc(&mut self) {
        let cutoff = self.newest_ms.saturating_sub(self.retention_ms);
        self.series.retain(|_, s| {
            s.trim(cutoff);
            if s.head > 0 && s.head >= s.buf.len() / 2 {
                s.compact();
                s.buf.shrink_to(s.buf.len() * 2);
            }
            !s.live().is_empty()
        });
        // Garbage-collect about 60 times per retention period, at most once a second.
        self.next_gc_ms = self
            .newest_ms
            .saturating_add((self.retention_ms / 60).max(1000));
    }

    /// All series matching every matcher, sorted by labels (as Prometheus's storage
    /// returns them), with all retained samples.
    pub fn select_ref(&self, matchers: &[Matcher]) -> Vec<SeriesRef<'_>> {
        let mut out: Vec<SeriesRef<'_>> = self
            .series
            .iter()
            .filter(|(labels, _)| matchers.iter().all(|m| m.matches_labels(labels)))
            .map(|(labels, s)| SeriesRef {
                labels,
                samples: s.live(),
            })
            .collect();
        out.sort_unstable_by(|a, b| a.labels.cmp(b.labels));
        out
    }

    /// Matching series with their samples in `[start_ms, end_ms]` (staleness markers
    /// included: check with [`is_stale`]); series without samples there are left out.
    pub fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        self.select_ref(matchers)
            .into_iter()
            .filter_map(|s| {
                let w = window(s.samples, start_ms, end_ms);
                (!w.is_empty()).then(|| (s.labels.clone(), w.to_vec()))
            })
            .collect()
    }

    /// Label sets of matching series with a sample in `[start_ms, end_ms]`; an empty
    /// matcher list matches every series.
    pub fn series(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Vec<Labels> {
        self.select_ref(matchers)
            .into_iter()
            .filter(|s| !window(s.samples, start_ms, end_ms).is_empty())
            .map(|s| s.labels.clone())
            .collect()
    }

    /// Sorted label names of the series [`Tsdb::series`] would return.
    pub fn label_names(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .select_ref(matchers)
            .into_iter()
            .filter(|s| !window(s.samples, start_ms, end_ms).is_empty())
            .flat_map(|s| s.labels.iter().map(|(k, _)| k))
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Sorted values of label `name` among the series [`Tsdb::series`] would return.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<String> {
        let values: BTreeSet<&str> = self
            .select_ref(matchers)
            .into_iter()
            .filter(|s| !window(s.samples, start_ms, end_ms).is_empty())
            .filter_map(|s| s.labels.get(name))
            .collect();
        values.into_iter().map(str::to_owned).collect()
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Retained samples over all series (staleness markers included).
    pub fn sample_count(&self) -> usize {
        self.series.values().map(|s| s.live().len()).sum()
    }

    /// Estimated heap use: sample buffers at capacity, label sets, and map nodes.
    pub fn memory_bytes(&self) -> usize {
        const MAP_ENTRY: usize = 64; // hash table slot (key, value, control byte) and slack
        self.series
            .iter()
            .map(|(labels, s)| {
                s.buf.capacity() * std::mem::size_of::<(i64, f64)>()
                    + labels.heap_bytes()
                    + MAP_ENTRY
            })
            .sum()
    }
}

/// The part of time-ordered `samples` with `start <= t <= end`.
pub fn window(samples: &[(i64, f64)], start: i64, end: i64) -> &[(i64, f64)] {
    let lo = samples.partition_point(|&(t, _)| t < start);
    let hi = samples.partition_point(|&(t, _)| t <= end);
    &samples[lo..hi.max(lo)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lbl(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied())
    }

    fn names(v: &[Labels]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn labels_are_sorted_deduplicated_and_drop_empty_values() {
        let l = lbl(&[("job", "a"), ("__name__", "up"), ("job", "b"), ("x", "")]);
        assert_eq!(l.to_string(), r#"{__name__="up", job="b"}"#);
        assert_eq!(l.get("job"), Some("b"));
        assert_eq!(l.get("x"), None);
        assert_eq!(l.name(), Some("up"));
        assert_eq!(l.without_name().to_string(), r#"{job="b"}"#);
        assert_eq!(
            l.with("a", "1").to_string(),
            r#"{__name__="up", a="1", job="b"}"#
        );
        assert_eq!(l.with("job", "").to_string(), r#"{__name__="up"}"#);
        assert_eq!(Labels::default().to_string(), "{}");
        assert_eq!(lbl(&[("q", "a\"b")]).to_string(), r#"{q="a\"b"}"#);
    }

    #[test]
    fn select_applies_all_matcher_kinds_with_anchored_regexes() {
        let mut db = Tsdb::new(3_600_000);
        for (job, inst) in [("api", "0"), ("api", "1"), ("apiserver", "0"), ("web", "0")] {
            let l = lbl(&[("__name__", "up"), ("job", job), ("instance", inst)]);
            assert!(db.append(&l, 1000, 1.0));
        }
        db.append(&lbl(&[("__name__", "other"), ("job", "api")]), 1000, 1.0);
        let up = Matcher::equal(METRIC_NAME, "up");
        let sel = |m: Matcher| db.series(&[up.clone(), m], 0, 2000).len();
        assert_eq!(sel(Matcher::equal("job", "api")), 2);
        assert_eq!(sel(Matcher::new("job", MatchOp::NotEqual("api".into()))), 2);
        assert_eq!(sel(Matcher::regex("job", "api", false).unwrap()), 2);
        assert_eq!(sel(Matcher::regex("job", "api.*", false).unwrap()), 3);
        assert_eq!(sel(Matcher::regex("job", "a|w.b", true).unwrap()), 3);
        // An absent label matches the empty string.
        assert_eq!(sel(Matcher::equal("zone", "")), 4);
        assert_eq!(sel(Matcher::regex("zone", ".+", false).unwrap()), 0);
        assert_eq!(db.series(&[], 0, 2000).len(), 5);
        assert!(db.series(&[up], 2001, 3000).is_empty());
    }

    #[test]
    fn append_keeps_time_order_and_select_clips_to_the_window() {
        let mut db = Tsdb::new(3_600_000);
        let l = lbl(&[("__name__", "x")]);
        for t in [1000, 2000, 3000] {
            assert!(db.append(&l, t, t as f64));
        }
        assert!(!db.append(&l, 3000, 9.0), "duplicate timestamp");
        assert!(!db.append(&l, 2500, 9.0), "out of order");
        let got = db.select(&[Matcher::equal(METRIC_NAME, "x")], 1500, 3000);
        assert_eq!(got, vec![(l.clone(), vec![(2000, 2000.0), (3000, 3000.0)])]);
        assert!(db.select(&[], 3001, 9000).is_empty());
        assert_eq!(db.sample_count(), 3);
    }

    #[test]
    fn retention_drops_old_samples_and_idle_series() {
        let mut db = Tsdb::new(60_000);
        let (a, b) = (lbl(&[("__name__", "a")]), lbl(&[("__name__", "b")]));
        db.append(&b, 0, 1.0);
        for s in 0..=200 {
            db.append(&a, s * 1000, s as f64);
        }
        let got = db.select(&[Matcher::equal(METRIC_NAME, "a")], 0, i64::MAX);
        assert_eq!(got[0].1.first(), Some(&(140_000, 140.0)));
        assert_eq!(got[0].1.len(), 61);
        // `b` got nothing for longer than the retention: gone.
        assert_eq!(db.series_count(), 1);
        assert_eq!(names(&db.series(&[], 0, i64::MAX)), [r#"{__name__="a"}"#]);
    }

    #[test]
    fn one_hour_of_one_second_samples_for_300_series_stays_bounded() {
        let mut db = Tsdb::new(3_600_000);
        let series: Vec<Labels> = (0..300)
            .map(|i| {
                let pod = format!("checkout-7d9f8c6b5-{i:05}");
                lbl(&[
                    ("__name__", "http_requests_total"),
                    ("namespace", "production"),
                    ("pod", &pod),
                ])
            })
            .collect();
        for s in 0..7200 {
            for l in &series {
                db.append(l, s * 1000, s as f64);
            }
        }
        assert_eq!(db.series_count(), 300);
        // Everything within the last hour (inclusive) and nothing older.
        assert_eq!(db.sample_count(), 300 * 3601);
        let oldest = db.select(&[], 0, i64::MAX)[0].1[0].0;
        assert_eq!(oldest, 7_199_000 - 3_600_000);
        // 3601 live samples fit a 4096-slot buffer: 64 KiB per series, 300 series ≈ 19.7 MB.
        let bytes = db.memory_bytes();
        assert!(bytes < 300 * 67 * 1024, "memory_bytes = {bytes}");
        assert!(
            bytes > 300 * 3601 * 16,
            "memory_bytes = {bytes} is not honest"
        );
    }

    #[test]
    fn mark_stale_writes_one_marker_for_known_series_only() {
        let mut db = Tsdb::new(3_600_000);
        let l = lbl(&[("__name__", "x")]);
        assert!(!db.mark_stale(&l, 1000), "unknown series");
        db.append(&l, 1000, 1.0);
        assert!(db.mark_stale(&l, 2000));
        assert!(!db.mark_stale(&l, 3000), "already stale");
        let got = db.select(&[], 0, 5000);
        assert_eq!(got[0].1.len(), 2);
        assert!(is_stale(got[0].1[1].1));
        assert!(!is_stale(f64::NAN));
        assert!(db.append(&l, 4000, 2.0), "a stale series can come back");
    }

    #[test]
    fn label_names_and_values_follow_matchers_and_time_range() {
        let mut db = Tsdb::new(3_600_000);
        db.append(&lbl(&[("__name__", "up"), ("job", "api")]), 1000, 1.0);
        db.append(
            &lbl(&[("__name__", "up"), ("job", "web"), ("zone", "a")]),
            5000,
            1.0,
        );
        db.append(&lbl(&[("__name__", "info"), ("version", "v1")]), 1000, 1.0);
        assert_eq!(
            db.label_names(&[], 0, 9000),
            ["__name__", "job", "version", "zone"]
        );
        assert_eq!(db.label_names(&[], 0, 2000), ["__name__", "job", "version"]);
        let up = [Matcher::equal(METRIC_NAME, "up")];
        assert_eq!(db.label_values("job", &up, 0, 9000), ["api", "web"]);
        assert_eq!(db.label_values("__name__", &[], 0, 9000), ["info", "up"]);
        assert!(db.label_values("nope", &[], 0, 9000).is_empty());
    }
}
