//! The sandbox's Prometheus: a bounded in-memory time-series store ([`tsdb`]), a PromQL
//! evaluator over it ([`eval`]) and the JSON rendering of the Prometheus HTTP API ([`api`]).
//!
//! It implements the subset of PromQL the cockpit uses (selectors, `rate`/`irate`/
//! `increase`, `sum`/`avg`/`min`/`max`/`count`, `histogram_quantile`, binary operators with
//! vector matching) with Prometheus 2.x semantics, and answers anything else with a
//! `bad_data` error rather than a wrong result.

pub mod api;
pub mod eval;
pub mod tsdb;

pub use eval::{PromError, Sample, SeriesOut, Value, instant, range};
pub use tsdb::{Labels, MatchOp, Matcher, Tsdb};
