//! PromQL evaluation over a [`Tsdb`], with Prometheus 2.x semantics for the supported
//! subset and a `bad_data` error for everything else.
//!
//! Queries are parsed with `promql-parser`, validated against the supported subset, and
//! evaluated "step-vectorised": every node yields, per output series, one optional value per
//! evaluation step. Label work (grouping keys, match signatures, result labels) is thus done
//! once per series rather than once per step, and selectors read the store's sample slices
//! directly with binary search, without copying.
//!
//! Supported: number and string literals, parentheses, unary minus; instant selectors (5 m
//! lookback, staleness markers, `offset`); range selectors as the argument of `rate`,
//! `irate` and `increase` (or alone in an instant query); `sum`, `avg`, `min`, `max`,
//! `count`, `group` with `by`/`without`; `histogram_quantile` over classic buckets; `abs`,
//! `clamp`, `clamp_min`, `clamp_max`, `scalar`, `vector`, `time`; arithmetic, comparison
//! (with and without `bool`) and set operators with `on`/`ignoring`/`group_left`/
//! `group_right`.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use promql_parser::label::MatchOp as ParsedOp;
use promql_parser::parser::token::{
    T_ADD, T_AVG, T_COUNT, T_DIV, T_EQLC, T_GROUP, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE,
    T_LUNLESS, T_MAX, T_MIN, T_MOD, T_MUL, T_NEQ, T_POW, T_SUB, T_SUM, TokenId,
};
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector, Offset,
    VectorMatchCardinality, VectorSelector,
};

use super::tsdb::{Labels, METRIC_NAME, MatchOp, Matcher, Tsdb, is_stale, window};

/// How far back an instant selector looks for a sample (Prometheus's default).
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Most points a range query may return per series (Prometheus's API limit).
pub const MAX_POINTS: i64 = 11_000;
/// Most samples one query may load (Prometheus's default `--query.max-samples`).
const MAX_SAMPLES: usize = 50_000_000;
/// Most lexical tokens in a query, and deepest expression nesting: guards for the
/// parser's and the evaluator's recursion.
const MAX_TOKENS: usize = 4096;
const MAX_DEPTH: usize = 128;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t_ms: i64,
    pub v: f64,
}

/// One series of a range vector (matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesOut {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A query result, as the Prometheus HTTP API types them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(i64, f64),
    String(i64, String),
    Vector(Vec<Sample>),
    Matrix(Vec<SeriesOut>),
}

/// A query failure with the Prometheus API's error type
/// (`"bad_data"`, `"execution"` or `"timeout"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct PromError {
    pub error_type: &'static str,
    pub message: String,
}

impl PromError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        PromError {
            error_type: "bad_data",
            message: message.into(),
        }
    }

    pub fn execution(message: impl Into<String>) -> Self {
        PromError {
            error_type: "execution",
            message: message.into(),
        }
    }

    fn unsupported(what: impl std::fmt::Display) -> Self {
        PromError::bad_data(format!(
            "{what} is not supported by the kockpit sandbox's PromQL engine"
        ))
    }
}

/// Evaluates `query` at `t_ms` (`/api/v1/query`).
pub fn instant(db: &Tsdb, query: &str, t_ms: i64) -> Result<Value, PromError> {
    let expr = parse(query)?;
    let ev = Ev::new(db, t_ms, 1, 1);
    if let Expr::MatrixSelector(ms) = unparen(&expr) {
        return Ok(Value::Matrix(ev.raw_matrix(ms)));
    }
    Ok(match ev.eval(&expr)? {
        Val::Scalar(v) => Value::Scalar(t_ms, v[0]),
        Val::Str(s) => Value::String(t_ms, s),
        Val::Vector(rows) => Value::Vector(
            rows.into_iter()
                .filter_map(|r| {
                    r.pts[0].map(|v| Sample {
                        labels: r.labels,
                        t_ms,
                        v,
                    })
                })
                .collect(),
        ),
    })
}

/// Evaluates `query` at `start_ms`, `start_ms + step_ms`, … up to `end_ms`
/// (`/api/v1/query_range`); the series come sorted by labels, as Prometheus sorts them.
pub fn range(
    db: &Tsdb,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Value, PromError> {
    if end_ms < start_ms {
        return Err(PromError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    if step_ms <= 0 {
        return Err(PromError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end_ms - start_ms) / step_ms > MAX_POINTS {
        return Err(PromError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = parse(query)?;
    let kind = match unparen(&expr) {
        Expr::MatrixSelector(_) | Expr::Subquery(_) => Some("range vector"),
        Expr::StringLiteral(_) => Some("string"),
        _ => None,
    };
    if let Some(kind) = kind {
        return Err(PromError::bad_data(format!(
            "invalid expression type \"{kind}\" for range query, must be Scalar or instant Vector"
        )));
    }
    let n = ((end_ms - start_ms) / step_ms + 1) as usize;
    let ev = Ev::new(db, start_ms, step_ms, n);
    let mut out: Vec<SeriesOut> = match ev.eval(&expr)? {
        Val::Scalar(v) => vec![SeriesOut {
            labels: Labels::default(),
            points: v.into_iter().enumerate().map(|(k, v)| (ev.ts(k), v)).collect(),
        }],
        Val::Vector(rows) => rows
            .into_iter()
            .map(|r| SeriesOut {
                labels: r.labels,
                points: r
                    .pts
                    .iter()
                    .enumerate()
                    .filter_map(|(k, p)| p.map(|v| (ev.ts(k), v)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect(),
        Val::Str(_) => return Err(PromError::execution("unexpected string result")),
    };
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Value::Matrix(out))
}

/// Parses a query and checks it stays within the supported subset.
pub(super) fn parse(query: &str) -> Result<Expr, PromError> {
    if count_tokens(query) > MAX_TOKENS {
        return Err(PromError::bad_data(format!(
            "query is too long (more than {MAX_TOKENS} tokens)"
        )));
    }
    // promql-parser panics on a few malformed inputs (e.g. `foo[1e400]`): contain that.
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(query))
        .map_err(|_| PromError::bad_data("parse error: invalid query"))?;
    let expr = parsed.map_err(|e| PromError::bad_data(format!("parse error: {e}")))?;
    check(&expr, 0)?;
    Ok(expr)
}

/// Counts identifier/number runs and punctuation outside string literals.
fn count_tokens(query: &str) -> usize {
    let mut count = 0;
    let mut chars = query.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        let word = c.is_alphanumeric() || matches!(c, '_' | ':' | '.');
        if word && !in_word {
            count += 1;
        }
        in_word = word;
        match c {
            '"' | '\'' | '`' => {
                count += 1;
                let mut escaped = false;
                for d in chars.by_ref() {
                    if d == c && !escaped {
                        break;
                    }
                    escaped = d == '\\' && !escaped && c != '`';
                }
            }
            c if !word && !c.is_whitespace() => count += 1,
            _ => {}
        }
    }
    count
}

fn check(e: &Expr, depth: usize) -> Result<(), PromError> {
    if depth > MAX_DEPTH {
        return Err(PromError::bad_data(format!(
            "query is nested too deeply (more than {MAX_DEPTH} levels)"
        )));
    }
    let d = depth + 1;
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::Paren(p) => check(&p.expr, d),
        Expr::Unary(u) => check(&u.expr, d),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Aggregate(a) => {
            if !matches!(a.op.id(), T_SUM | T_AVG | T_MIN | T_MAX | T_COUNT | T_GROUP) {
                return Err(PromError::unsupported(format!("aggregation '{}'", a.op)));
            }
            check(&a.expr, d)
        }
        Expr::Binary(b) => {
            if binop(b.op.id()).is_none() {
                return Err(PromError::unsupported(format!("operator '{}'", b.op)));
            }
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Err(PromError::unsupported("the fill modifier"));
            }
            check(&b.lhs, d)?;
            check(&b.rhs, d)
        }
        Expr::Call(c) => {
            match c.func.name {
                "rate" | "irate" | "increase" => {
                    if !c
                        .args
                        .args
                        .first()
                        .is_some_and(|a| matches!(unparen(a), Expr::MatrixSelector(_)))
                    {
                        return Err(PromError::unsupported("subqueries"));
                    }
                }
                "abs" | "clamp" | "clamp_min" | "clamp_max" | "scalar" | "vector" | "time"
                | "histogram_quantile" => {}
                name => return Err(PromError::unsupported(format!("function '{name}'"))),
            }
            c.args.args.iter().try_for_each(|a| check(a, d))
        }
        Expr::Subquery(_) => Err(PromError::unsupported("subqueries")),
        Expr::Extension(_) => Err(PromError::unsupported("extension expressions")),
    }
}

fn check_selector(vs: &VectorSelector) -> Result<(), PromError> {
    if vs.at.is_some() {
        return Err(PromError::unsupported("the @ modifier"));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromError::unsupported("'or' between label matchers"));
    }
    Ok(())
}

/// The store matchers of a selector, metric name first.
pub(super) fn selector_matchers(vs: &VectorSelector) -> Vec<Matcher> {
    let name = vs.name.iter().map(|n| Matcher::equal(METRIC_NAME, n.as_str()));
    let rest = vs.matchers.matchers.iter().map(|m| {
        let op = match &m.op {
            ParsedOp::Equal => MatchOp::Equal(m.value.clone()),
            ParsedOp::NotEqual => MatchOp::NotEqual(m.value.clone()),
            ParsedOp::Re(re) => MatchOp::Regex(re.clone()),
            ParsedOp::NotRe(re) => MatchOp::NotRegex(re.clone()),
        };
        Matcher::new(m.name.as_str(), op)
    });
    name.chain(rest).collect()
}

fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => millis(*d),
        Some(Offset::Neg(d)) => -millis(*d),
    }
}

/// Per-step values of one series; `None` where the series has no value.
type Points = Vec<Option<f64>>;

struct Row {
    labels: Labels,
    pts: Points,
}

/// An evaluated node: one value per step.
enum Val {
    Scalar(Vec<f64>),
    Vector(Vec<Row>),
    Str(String),
}

fn same_labelset() -> PromError {
    PromError::execution("vector cannot contain metrics with the same labelset")
}

/// Collects output series by label set, rejecting two values for one series at one step.
struct Out {
    n: usize,
    rows: Vec<Row>,
    index: HashMap<Labels, usize>,
}

impl Out {
    fn new(n: usize) -> Self {
        Out {
            n,
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn slot(&mut self, labels: Labels) -> usize {
        let (rows, n) = (&mut self.rows, self.n);
        *self.index.entry(labels).or_insert_with_key(|labels| {
            rows.push(Row {
                labels: labels.clone(),
                pts: vec![None; n],
            });
            rows.len() - 1
        })
    }

    fn set(&mut self, slot: usize, k: usize, v: f64) -> Result<(), PromError> {
        let p = &mut self.rows[slot].pts[k];
        if p.is_some() {
            return Err(same_labelset());
        }
        *p = Some(v);
        Ok(())
    }

    /// Maps every value of every row through `f(step, value)`, relabelling rows with
    /// `relabel` (the common shape of functions and vector/scalar operators).
    fn map_rows(
        n: usize,
        rows: Vec<Row>,
        relabel: impl Fn(&Labels) -> Labels,
        f: impl Fn(usize, f64) -> Option<f64>,
    ) -> Result<Vec<Row>, PromError> {
        let mut out = Out::new(n);
        for row in rows {
            let slot = out.slot(relabel(&row.labels));
            for (k, p) in row.pts.iter().enumerate() {
                if let Some(v) = p.and_then(|v| f(k, v)) {
                    out.set(slot, k, v)?;
                }
            }
        }
        Ok(out.finish())
    }

    fn finish(self) -> Vec<Row> {
        let mut rows = self.rows;
        rows.retain(|r| r.pts.iter().any(Option::is_some));
        rows
    }
}

/// Fails if two series share a label set anywhere in the range (Prometheus checks this
/// over the whole result for range-vector functions and unary minus).
fn unique_labels(rows: &[Row]) -> Result<(), PromError> {
    let mut seen = HashSet::with_capacity(rows.len());
    match rows.iter().all(|r| seen.insert(&r.labels)) {
        true => Ok(()),
        false => Err(same_labelset()),
    }
}

struct Ev<'a> {
    db: &'a Tsdb,
    start: i64,
    step: i64,
    n: usize,
    samples: Cell<usize>,
}

impl<'a> Ev<'a> {
    fn new(db: &'a Tsdb, start: i64, step: i64, n: usize) -> Self {
        Ev {
            db,
            start,
            step,
            n,
            samples: Cell::new(0),
        }
    }

    fn ts(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }

    /// Accounts for samples loaded, failing like Prometheus past its default limit.
    fn charge(&self, count: usize) -> Result<(), PromError> {
        let total = self.samples.get() + count;
        self.samples.set(total);
        if total > MAX_SAMPLES {
            return Err(PromError::execution(
                "query processing would load too many samples into memory in query execution",
            ));
        }
        Ok(())
    }

    fn eval(&self, e: &Expr) -> Result<Val, PromError> {
        match e {
            Expr::NumberLiteral(l) => Ok(Val::Scalar(vec![l.val; self.n])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(rows) => {
                    let rows: Vec<Row> = rows
                        .into_iter()
                        .map(|r| Row {
                            labels: r.labels.without_name(),
                            pts: r.pts.into_iter().map(|p| p.map(|x| -x)).collect(),
                        })
                        .collect();
                    unique_labels(&rows)?;
                    Ok(Val::Vector(rows))
                }
                Val::Str(_) => Err(PromError::bad_data(
                    "unary expression only allowed on expressions of type scalar or vector",
                )),
            },
            Expr::VectorSelector(vs) => self.selector(vs).map(Val::Vector),
            Expr::Call(c) => self.call(c),
            Expr::Aggregate(a) => self.aggregate(a).map(Val::Vector),
            Expr::Binary(b) => self.binary(b),
            Expr::MatrixSelector(_) => Err(PromError::unsupported(
                "a range vector outside rate(), irate() or increase()",
            )),
            Expr::Subquery(_) => Err(PromError::unsupported("subqueries")),
            Expr::Extension(_) => Err(PromError::unsupported("extension expressions")),
        }
    }

    fn vector(&self, e: &Expr) -> Result<Vec<Row>, PromError> {
        match self.eval(e)? {
            Val::Vector(rows) => Ok(rows),
            _ => Err(PromError::bad_data("expected an instant vector")),
        }
    }

    fn scalar(&self, e: &Expr) -> Result<Vec<f64>, PromError> {
        match self.eval(e)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(PromError::bad_data("expected a scalar")),
        }
    }

    /// An instant vector selector: per step, the newest sample in the lookback window
    /// `[t - 5m, t]` (after offset), unless it is a staleness marker.
    fn selector(&self, vs: &VectorSelector) -> Result<Vec<Row>, PromError> {
        let matchers = selector_matchers(vs);
        let off = offset_ms(&vs.offset);
        let first = self.ts(0).saturating_sub(off).saturating_sub(LOOKBACK_MS);
        let last = self.ts(self.n - 1).saturating_sub(off);
        let mut rows = Vec::new();
        for s in self.db.select_ref(&matchers) {
            if window(s.samples, first, last).is_empty() {
                continue;
            }
            let mut pts = vec![None; self.n];
            let mut found = 0;
            let mut i = 0; // samples[..i] are at or before the previous step's time
            for (k, p) in pts.iter_mut().enumerate() {
                let rt = self.ts(k).saturating_sub(off);
                i += s.samples[i..].partition_point(|&(t, _)| t <= rt);
                if let Some(&(t, v)) = i.checked_sub(1).map(|j| &s.samples[j])
                    && t >= rt.saturating_sub(LOOKBACK_MS)
                    && !is_stale(v)
                {
                    *p = Some(v);
                    found += 1;
                }
            }
            if found > 0 {
                self.charge(found)?;
                rows.push(Row {
                    labels: s.labels.clone(),
                    pts,
                });
            }
        }
        Ok(rows)
    }

    /// A range selector evaluated once at the query time: raw samples in `[t - range, t]`.
    fn raw_matrix(&self, ms: &MatrixSelector) -> Vec<SeriesOut> {
        let matchers = selector_matchers(&ms.vs);
        let end = self.start.saturating_sub(offset_ms(&ms.vs.offset));
        let start = end.saturating_sub(millis(ms.range));
        self.db
            .select_ref(&matchers)
            .filter_map(|s| {
                let points: Vec<(i64, f64)> = window(s.samples, start, end)
                    .iter()
                    .filter(|&&(_, v)| !is_stale(v))
                    .copied()
                    .collect();
                (!points.is_empty()).then(|| SeriesOut {
                    labels: s.labels.clone(),
                    points,
                })
            })
            .collect()
    }

    fn call(&self, c: &Call) -> Result<Val, PromError> {
        let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
        let arg = |i: usize| {
            args.get(i).copied().ok_or_else(|| {
                PromError::bad_data(format!("missing argument {i} of {}", c.func.name))
            })
        };
        let n = self.n;
        let rows = match c.func.name {
            "time" => {
                let v = (0..n).map(|k| self.ts(k) as f64 / 1000.0).collect();
                return Ok(Val::Scalar(v));
            }
            "scalar" => {
                let rows = self.vector(arg(0)?)?;
                let v = (0..n)
                    .map(|k| {
                        let mut present = rows.iter().filter_map(|r| r.pts[k]);
                        match (present.next(), present.next()) {
                            (Some(v), None) => v,
                            _ => f64::NAN,
                        }
                    })
                    .collect();
                return Ok(Val::Scalar(v));
            }
            "vector" => {
                let v = self.scalar(arg(0)?)?;
                vec![Row {
                    labels: Labels::default(),
                    pts: v.into_iter().map(Some).collect(),
                }]
            }
            "abs" => {
                let rows = self.vector(arg(0)?)?;
                Out::map_rows(n, rows, Labels::without_name, |_, v| Some(v.abs()))?
            }
            "clamp_min" | "clamp_max" => {
                let rows = self.vector(arg(0)?)?;
                let s = self.scalar(arg(1)?)?;
                let max = c.func.name == "clamp_min";
                Out::map_rows(n, rows, Labels::without_name, |k, v| {
                    Some(if max { go_max(s[k], v) } else { go_min(s[k], v) })
                })?
            }
            "clamp" => {
                let rows = self.vector(arg(0)?)?;
                let (lo, hi) = (self.scalar(arg(1)?)?, self.scalar(arg(2)?)?);
                Out::map_rows(n, rows, Labels::without_name, |k, v| {
                    (hi[k] >= lo[k]).then(|| go_max(lo[k], go_min(hi[k], v)))
                })?
            }
            "rate" | "irate" | "increase" => match unparen(arg(0)?) {
                Expr::MatrixSelector(ms) => self.range_fn(c.func.name, ms)?,
                _ => return Err(PromError::unsupported("subqueries")),
            },
            "histogram_quantile" => {
                let q = self.scalar(arg(0)?)?;
                let rows = self.vector(arg(1)?)?;
                self.histogram_quantile(&q, rows)?
            }
            name => return Err(PromError::unsupported(format!("function '{name}'"))),
        };
        Ok(Val::Vector(rows))
    }

    /// `rate`, `irate` or `increase` of every selected series at every step.
    fn range_fn(&self, func: &str, ms: &MatrixSelector) -> Result<Vec<Row>, PromError> {
        let matchers = selector_matchers(&ms.vs);
        let off = offset_ms(&ms.vs.offset);
        let range = millis(ms.range);
        let range_s = ms.range.as_secs_f64();
        let first = self.ts(0).saturating_sub(off).saturating_sub(range);
        let last = self.ts(self.n - 1).saturating_sub(off);
        let mut rows = Vec::new();
        for s in self.db.select_ref(&matchers) {
            if window(s.samples, first, last).len() < 2 {
                continue;
            }
            let mut pts = vec![None; self.n];
            let (mut lo, mut hi, mut loaded) = (0, 0, 0);
            for (k, p) in pts.iter_mut().enumerate() {
                let end = self.ts(k).saturating_sub(off);
                let start = end.saturating_sub(range);
                lo += s.samples[lo..].partition_point(|&(t, _)| t < start);
                hi = hi.max(lo);
                hi += s.samples[hi..].partition_point(|&(t, _)| t <= end);
                let w = &s.samples[lo..hi];
                let w: Cow<[(i64, f64)]> = if w.iter().any(|&(_, v)| is_stale(v)) {
                    w.iter().filter(|&&(_, v)| !is_stale(v)).copied().collect()
                } else {
                    Cow::Borrowed(w)
                };
                loaded += w.len();
                *p = match func {
                    "irate" => instant_rate(&w),
                    _ => extrapolated_rate(&w, start, end, range_s, func == "rate"),
                };
            }
            self.charge(loaded)?;
            if pts.iter().any(Option::is_some) {
                rows.push(Row {
                    labels: s.labels.without_name(),
                    pts,
                });
            }
        }
        unique_labels(&rows)?;
        Ok(rows)
    }

    fn histogram_quantile(&self, q: &[f64], rows: Vec<Row>) -> Result<Vec<Row>, PromError> {
        // Buckets are grouped by all labels but `le`; results drop `le` and the name.
        let mut groups: Vec<(usize, Vec<(f64, usize)>)> = Vec::new();
        let mut by_sig: HashMap<Labels, usize> = HashMap::new();
        let mut out = Out::new(self.n);
        for (i, row) in rows.iter().enumerate() {
            let Some(le) = row.labels.get("le").and_then(|s| s.parse::<f64>().ok()) else {
                continue;
            };
            let sig = row.labels.filter(|k| k != "le");
            let g = match by_sig.get(&sig) {
                Some(&g) => g,
                None => {
                    let slot = out.slot(sig.without_name());
                    by_sig.insert(sig, groups.len());
                    groups.push((slot, Vec::new()));
                    groups.len() - 1
                }
            };
            groups[g].1.push((le, i));
        }
        let mut buckets = Vec::new();
        for (k, &qk) in q.iter().enumerate() {
            for (slot, members) in &groups {
                buckets.clear();
                buckets.extend(
                    members
                        .iter()
                        .filter_map(|&(le, i)| rows[i].pts[k].map(|v| (le, v))),
                );
                if !buckets.is_empty() {
                    out.set(*slot, k, bucket_quantile(qk, &mut buckets))?;
                }
            }
        }
        Ok(out.finish())
    }

    fn aggregate(&self, a: &AggregateExpr) -> Result<Vec<Row>, PromError> {
        let rows = self.vector(&a.expr)?;
        let op = a.op.id();
        let key = |l: &Labels| match &a.modifier {
            None => Labels::default(),
            Some(LabelModifier::Include(by)) => l.filter(|k| by.labels.iter().any(|b| b == k)),
            Some(LabelModifier::Exclude(without)) => {
                l.filter(|k| k != METRIC_NAME && !without.labels.iter().any(|w| w == k))
            }
        };
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<Acc>)> = Vec::new();
        for row in &rows {
            let k = key(&row.labels);
            let g = match index.get(&k) {
                Some(&g) => g,
                None => {
                    index.insert(k.clone(), groups.len());
                    groups.push((k, vec![Acc::default(); self.n]));
                    groups.len() - 1
                }
            };
            let accs = &mut groups[g].1;
            for (acc, p) in accs.iter_mut().zip(&row.pts) {
                if let Some(v) = *p {
                    acc.add(op, v);
                }
            }
        }
        Ok(groups
            .into_iter()
            .map(|(labels, accs)| Row {
                labels,
                pts: accs.iter().map(|acc| acc.result(op)).collect(),
            })
            .filter(|r| r.pts.iter().any(Option::is_some))
            .collect())
    }

    fn binary(&self, b: &BinaryExpr) -> Result<Val, PromError> {
        let op = b.op.id();
        let kind = binop(op).ok_or_else(|| PromError::unsupported(format!("'{}'", b.op)))?;
        let rb = b.return_bool();
        let (lhs, rhs) = (self.eval(&b.lhs)?, self.eval(&b.rhs)?);
        let n = self.n;
        let rows = match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let v = l.iter().zip(&r).map(|(&l, &r)| scalar_binop(op, l, r));
                return Ok(Val::Scalar(v.collect()));
            }
            (Val::Vector(rows), Val::Scalar(s)) => vector_scalar(n, op, rb, rows, &s, false)?,
            (Val::Scalar(s), Val::Vector(rows)) => vector_scalar(n, op, rb, rows, &s, true)?,
            (Val::Vector(l), Val::Vector(r)) => match kind {
                OpKind::Set => self.set_op(b, op, l, r)?,
                _ => self.vector_binop(b, op, l, r)?,
            },
            _ => {
                return Err(PromError::bad_data(
                    "binary expression must contain only scalar and instant vector types",
                ));
            }
        };
        Ok(Val::Vector(rows))
    }

    /// Arithmetic and comparison between two vectors: one-to-one, many-to-one
    /// (`group_left`) or one-to-many (`group_right`) matching, step by step.
    fn vector_binop(
        &self,
        b: &BinaryExpr,
        op: TokenId,
        lhs: Vec<Row>,
        rhs: Vec<Row>,
    ) -> Result<Vec<Row>, PromError> {
        let m = Matching::of(b);
        let rb = b.return_bool();
        let (card, include) = match b.modifier.as_ref().map(|m| &m.card) {
            Some(VectorMatchCardinality::ManyToOne(ls)) => (Card::ManyToOne, &ls.labels[..]),
            Some(VectorMatchCardinality::OneToMany(ls)) => (Card::OneToMany, &ls.labels[..]),
            _ => (Card::OneToOne, &[][..]),
        };
        // Work as many-to-one: for group_right the right side is the "many" side.
        let (many, one) = match card {
            Card::OneToMany => (rhs, lhs),
            _ => (lhs, rhs),
        };
        let mut sigs = Signatures::default();
        let many_sig: Vec<usize> = many.iter().map(|r| sigs.of(&m, &r.labels)).collect();
        let one_sig: Vec<usize> = one.iter().map(|r| sigs.of(&m, &r.labels)).collect();
        let arith = binop(op) == Some(OpKind::Arith);
        let result_labels = |l: &Labels, r: &Labels| {
            let mut out = if arith { l.without_name() } else { l.clone() };
            if card == Card::OneToOne {
                out = out.filter(|k| m.on == m.names.iter().any(|n| n == k));
            }
            for name in include {
                out = out.with(name, r.get(name).unwrap_or(""));
            }
            if rb { out.without_name() } else { out }
        };
        let mut out = Out::new(self.n);
        let mut slots: HashMap<(usize, usize), usize> = HashMap::new();
        let mut right: Vec<Option<usize>> = vec![None; sigs.len()];
        let mut matched: Vec<bool> = vec![false; sigs.len()];
        let mut inserted: HashSet<(usize, usize)> = HashSet::new();
        for k in 0..self.n {
            let present = |rows: &[Row]| rows.iter().any(|r| r.pts[k].is_some());
            if !present(&many) || !present(&one) {
                continue;
            }
            right.fill(None);
            for (j, r) in one.iter().enumerate() {
                if r.pts[k].is_none() {
                    continue;
                }
                let s = one_sig[j];
                if let Some(prev) = right[s] {
                    let side = if card == Card::OneToMany { "left" } else { "right" };
                    return Err(PromError::execution(format!(
                        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        sigs.labels[s], r.labels, one[prev].labels
                    )));
                }
                right[s] = Some(j);
            }
            matched.fill(false);
            inserted.clear();
            for (i, l) in many.iter().enumerate() {
                let (Some(lv), s) = (l.pts[k], many_sig[i]) else {
                    continue;
                };
                let Some((j, rv)) = right[s].and_then(|j| one[j].pts[k].map(|v| (j, v))) else {
                    continue;
                };
                let (vl, vr) = if card == Card::OneToMany { (rv, lv) } else { (lv, rv) };
                let (v, keep) = elem_binop(op, vl, vr);
                let v = match (rb, keep) {
                    (true, keep) => if keep { 1.0 } else { 0.0 },
                    (false, true) => v,
                    (false, false) => continue,
                };
                let slot = match slots.get(&(i, j)) {
                    Some(&slot) => slot,
                    None => {
                        let slot = out.slot(result_labels(&l.labels, &one[j].labels));
                        slots.insert((i, j), slot);
                        slot
                    }
                };
                if card == Card::OneToOne {
                    if std::mem::replace(&mut matched[s], true) {
                        return Err(PromError::execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                } else if !inserted.insert((s, slot)) {
                    return Err(PromError::execution(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
                out.set(slot, k, v)?;
            }
        }
        Ok(out.finish())
    }

    /// `and`, `or`, `unless`, step by step; results keep the input labels.
    fn set_op(
        &self,
        b: &BinaryExpr,
        op: TokenId,
        lhs: Vec<Row>,
        rhs: Vec<Row>,
    ) -> Result<Vec<Row>, PromError> {
        let m = Matching::of(b);
        let mut sigs = Signatures::default();
        let lsig: Vec<usize> = lhs.iter().map(|r| sigs.of(&m, &r.labels)).collect();
        let rsig: Vec<usize> = rhs.iter().map(|r| sigs.of(&m, &r.labels)).collect();
        let mut out = Out::new(self.n);
        let lslot: Vec<usize> = lhs.iter().map(|r| out.slot(r.labels.clone())).collect();
        let rslot: Vec<usize> = match op {
            T_LOR => rhs.iter().map(|r| out.slot(r.labels.clone())).collect(),
            _ => Vec::new(),
        };
        let mut seen = vec![false; sigs.len()];
        for k in 0..self.n {
            seen.fill(false);
            let (probe, probe_sig) = if op == T_LOR { (&lhs, &lsig) } else { (&rhs, &rsig) };
            for (r, &s) in probe.iter().zip(probe_sig) {
                if r.pts[k].is_some() {
                    seen[s] = true;
                }
            }
            for (i, l) in lhs.iter().enumerate() {
                let Some(v) = l.pts[k] else { continue };
                let keep = match op {
                    T_LAND => seen[lsig[i]],
                    T_LUNLESS => !seen[lsig[i]],
                    _ => true,
                };
                if keep {
                    out.set(lslot[i], k, v)?;
                }
            }
            if op == T_LOR {
                for (j, r) in rhs.iter().enumerate() {
                    if let Some(v) = r.pts[k]
                        && !seen[rsig[j]]
                    {
                        out.set(rslot[j], k, v)?;
                    }
                }
            }
        }
        Ok(out.finish())
    }
}

/// Prometheus's `VectorscalarBinop`; `swap` when the scalar is the left operand.
fn vector_scalar(
    n: usize,
    op: TokenId,
    rb: bool,
    rows: Vec<Row>,
    s: &[f64],
    swap: bool,
) -> Result<Vec<Row>, PromError> {
    let kind = binop(op);
    let drop_name = kind == Some(OpKind::Arith) || rb;
    let relabel = |l: &Labels| match drop_name {
        true => l.without_name(),
        false => l.clone(),
    };
    Out::map_rows(n, rows, relabel, |k, x| {
        let (l, r) = if swap { (s[k], x) } else { (x, s[k]) };
        let (v, keep) = elem_binop(op, l, r);
        // A comparison keeps the vector's value even when it is on the right.
        let v = if kind == Some(OpKind::Comparison) { x } else { v };
        match (rb, keep) {
            (true, keep) => Some(if keep { 1.0 } else { 0.0 }),
            (false, true) => Some(v),
            (false, false) => None,
        }
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OpKind {
    Arith,
    Comparison,
    Set,
}

fn binop(op: TokenId) -> Option<OpKind> {
    match op {
        T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW => Some(OpKind::Arith),
        T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE => Some(OpKind::Comparison),
        T_LAND | T_LOR | T_LUNLESS => Some(OpKind::Set),
        _ => None,
    }
}

/// `on(...)` or `ignoring(...)` (the default: ignoring nothing but the metric name).
struct Matching<'e> {
    on: bool,
    names: &'e [String],
}

impl<'e> Matching<'e> {
    fn of(b: &'e BinaryExpr) -> Self {
        match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(ls)) => Matching {
                on: true,
                names: &ls.labels,
            },
            Some(LabelModifier::Exclude(ls)) => Matching {
                on: false,
                names: &ls.labels,
            },
            None => Matching {
                on: false,
                names: &[],
            },
        }
    }

    /// The labels two series must share to match.
    fn key(&self, l: &Labels) -> Labels {
        let listed = |k: &str| self.names.iter().any(|n| n == k);
        match self.on {
            true => l.filter(listed),
            false => l.filter(|k| k != METRIC_NAME && !listed(k)),
        }
    }
}

/// Interned match signatures: small ids for per-step lookup tables.
#[derive(Default)]
struct Signatures {
    ids: HashMap<Labels, usize>,
    labels: Vec<Labels>,
}

impl Signatures {
    fn of(&mut self, m: &Matching, l: &Labels) -> usize {
        let key = m.key(l);
        let next = self.labels.len();
        let id = *self.ids.entry(key.clone()).or_insert(next);
        if id == next {
            self.labels.push(key);
        }
        id
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Running state of one aggregation group at one step.
#[derive(Clone, Copy, Default)]
struct Acc {
    count: u64,
    value: f64,
    mean: f64,
}

impl Acc {
    /// Folds in one sample exactly as Prometheus 2.x's `aggregation()` does.
    fn add(&mut self, op: TokenId, v: f64) {
        if self.count == 0 {
            *self = Acc {
                count: 1,
                value: v,
                mean: v,
            };
            return;
        }
        self.count += 1;
        match op {
            T_SUM => self.value += v,
            T_AVG => {
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                let c = self.count as f64;
                self.mean += v / c - self.mean / c;
            }
            T_MAX if self.value < v || self.value.is_nan() => self.value = v,
            T_MIN if self.value > v || self.value.is_nan() => self.value = v,
            _ => {}
        }
    }

    fn result(&self, op: TokenId) -> Option<f64> {
        let v = match op {
            T_AVG => self.mean,
            T_COUNT => self.count as f64,
            T_GROUP => 1.0,
            _ => self.value,
        };
        (self.count > 0).then_some(v)
    }
}

/// Prometheus's `extrapolatedRate` (promql/functions.go) for float samples: `rate`
/// (per second) or `increase` over `[range_start, range_end]`.
fn extrapolated_rate(
    w: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_s: f64,
    is_rate: bool,
) -> Option<f64> {
    let (&(t0, v0), &(tn, vn)) = (w.first()?, w.last()?);
    if w.len() < 2 {
        return None;
    }
    let mut result = vn - v0;
    let mut prev = v0;
    for &(_, v) in &w[1..] {
        if v < prev {
            result += prev; // counter reset
        }
        prev = v;
    }
    let mut to_start = (t0 - range_start) as f64 / 1000.0;
    let to_end = (range_end - tn) as f64 / 1000.0;
    let sampled = (tn - t0) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    if result > 0.0 && v0 >= 0.0 {
        // Counters cannot go below zero: don't extrapolate past the zero point.
        let to_zero = sampled * (v0 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { avg / 2.0 };
    interval += if to_end < threshold { to_end } else { avg / 2.0 };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= range_s;
    }
    Some(result * factor)
}

/// Prometheus's `instantValue` for `irate`: per-second rate between the last two samples.
fn instant_rate(w: &[(i64, f64)]) -> Option<f64> {
    let [.., (tp, vp), (tl, vl)] = *w else {
        return None;
    };
    let result = if vl < vp { vl } else { vl - vp };
    let dt = tl - tp;
    (dt != 0).then(|| result / (dt as f64 / 1000.0))
}

/// Prometheus's `bucketQuantile` over `(upper bound, cumulative count)` buckets.
fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce buckets with the same bound, then force counts to be monotonic.
    buckets.dedup_by(|b, keep| {
        let same = b.0 == keep.0;
        if same {
            keep.1 += b.1;
        }
        same
    });
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    let len = buckets.len();
    if len < 2 {
        return f64::NAN;
    }
    let observations = buckets[len - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // Go's sort.Search over the first len-1 buckets: first with count >= rank.
    let (mut i, mut j) = (0, len - 1);
    while i < j {
        let h = (i + j) / 2;
        if buckets[h].1 >= rank {
            j = h;
        } else {
            i = h + 1;
        }
    }
    let b = i;
    if b == len - 1 {
        return buckets[len - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Binary operators between two scalars (comparisons always with `bool`).
fn scalar_binop(op: TokenId, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_binop(op, l, r);
    match binop(op) {
        Some(OpKind::Comparison) => {
            if keep {
                1.0
            } else {
                0.0
            }
        }
        _ => v,
    }
}

/// Prometheus's `vectorElemBinop`: the value and, for comparisons, whether it holds.
fn elem_binop(op: TokenId, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

/// Go's `math.Max` (NaN wins unless the other side is +Inf; +0 beats -0).
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { y } else { x }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min` (NaN wins unless the other side is -Inf; -0 beats +0).
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { x } else { y }
    } else if x < y {
        x
    } else {
        y
    }
}
