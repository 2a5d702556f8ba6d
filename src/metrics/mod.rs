//! Metrics from Prometheus for the cockpit's charts: per app, the error ratio, p99 latency
//! and request rate of every version, as [`AppMetrics`].
//!
//! [`MetricsClient::fetch_app`] runs three range queries concurrently (5xx rate, total rate
//! and p99 by `version`, see [`AppQueries`]) and assembles them on one grid of timestamps.
//! No traffic is `None`, never 0 %: the error ratio is only defined where the total rate is
//! positive, and a missing 5xx series there means no errors.

mod promql;
mod series;

use std::time::Duration;

use prometheus_http_query::response::{Data, PromqlResult};
use prometheus_http_query::{Client, Error as PromClientError};
use reqwest::StatusCode;

use crate::app::state::AppMetrics;

pub use promql::{AppQueries, escape_label_value};
pub use series::{Grid, RawSeries, VersionSummary, assemble, error_ratio, summary};

/// Why metrics could not be fetched, in words an operator acts on.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid Prometheus URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid time range: end {end} is before start {start}")]
    InvalidRange { start: i64, end: i64 },
    #[error("Prometheus at {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} did not answer within {} s", .after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    /// `bad_data`: the query (or its parameters) was refused.
    #[error("Prometheus rejected the query: {message}")]
    Rejected { message: String, query: String },
    /// Any other Prometheus API error (`timeout`, `execution`, `unavailable`, …).
    #[error("Prometheus failed the query ({kind}): {message}")]
    Failed {
        kind: String,
        message: String,
        query: String,
    },
    /// An answer that is not a Prometheus API response (a proxy's page, a wrong URL).
    #[error("unexpected answer from Prometheus at {url}: {reason}")]
    BadResponse { url: String, reason: String },
}

/// A Prometheus HTTP API client for one URL.
#[derive(Clone)]
pub struct MetricsClient {
    client: Client,
    url: String,
    timeout: Duration,
}

impl std::fmt::Debug for MetricsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsClient")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl MetricsClient {
    /// How long each query may take.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A client for the Prometheus at `url` (`http://host:9090`, or a path prefix behind a
    /// proxy). Nothing is sent until the first query.
    pub fn new(url: &str) -> Result<Self, MetricsError> {
        let invalid = |reason: String| MetricsError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let parsed = url::Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(invalid("expected http://host[:port][/prefix]".into()));
        }
        // Without the trailing slash, a path prefix gets `/api/v1/...` appended cleanly.
        let base = parsed.as_str().trim_end_matches('/');
        let client = Client::try_from(base).map_err(|e| invalid(e.to_string()))?;
        // Shown in errors: without credentials.
        let mut shown = parsed.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        Ok(MetricsClient {
            client,
            url: shown.as_str().trim_end_matches('/').to_string(),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another per-query timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Error ratio, p99 latency and request rate per version of `app` in `namespace` over
    /// `[start, end]` (unix seconds) every `step` seconds (clamped to >= 1 s and to at most
    /// [`Grid::MAX_POINTS`] points). No series at all gives `versions: vec![]`.
    pub async fn fetch_app(
        &self,
        namespace: &str,
        app: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<AppMetrics, MetricsError> {
        let grid = Grid::new(start, end, step)?;
        let q = AppQueries::new(namespace, app, grid.window_seconds());
        let (errors, totals, p99) = tokio::try_join!(
            self.range(&q.errors, &grid),
            self.range(&q.total, &grid),
            self.range(&q.p99, &grid),
        )?;
        Ok(AppMetrics {
            fetched_at: Some(jiff::Timestamp::now()),
            range: (start, end),
            versions: assemble(&grid, &errors, &totals, &p99),
            error: None,
        })
    }

    /// One range query, its series keyed by their `version` label (empty if absent).
    async fn range(&self, query: &str, grid: &Grid) -> Result<Vec<RawSeries>, MetricsError> {
        tokio::time::timeout(self.timeout, self.range_untimed(query, grid))
            .await
            .map_err(|_| MetricsError::Timeout {
                url: self.url.clone(),
                after: self.timeout,
            })?
    }

    async fn range_untimed(
        &self,
        query: &str,
        grid: &Grid,
    ) -> Result<Vec<RawSeries>, MetricsError> {
        let timeout_ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX);
        let response = self
            .client
            .query_range(query, grid.start, grid.end, grid.step as f64)
            .timeout(timeout_ms)
            .get_raw()
            .await
            .map_err(|e| transport_error(&self.url, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| MetricsError::Unreachable {
                url: self.url.clone(),
                reason: root_cause(&e),
            })?;
        match decode(&self.url, query, status, &body)? {
            Data::Matrix(series) => Ok(series
                .into_iter()
                .map(|s| {
                    let (mut labels, samples) = s.into_inner();
                    RawSeries {
                        version: labels.remove("version").unwrap_or_default(),
                        samples: samples.iter().map(|p| (p.timestamp(), p.value())).collect(),
                    }
                })
                .collect()),
            other => Err(MetricsError::BadResponse {
                url: self.url.clone(),
                reason: format!("a range query returned {}", kind(&other)),
            }),
        }
    }
}

fn kind(d: &Data) -> &'static str {
    match d {
        Data::Vector(_) => "an instant vector",
        Data::Matrix(_) => "a matrix",
        Data::Scalar(_) => "a scalar",
    }
}

/// The Prometheus API's response envelope.
#[derive(serde::Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Envelope {
    Success {
        data: PromqlResult,
    },
    Error {
        #[serde(rename = "errorType")]
        error_type: String,
        error: String,
    },
}

/// The result of a query from the HTTP answer, or what the answer says went wrong.
fn decode(url: &str, query: &str, status: StatusCode, body: &[u8]) -> Result<Data, MetricsError> {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope::Success { data }) => Ok(data.into_inner().0),
        Ok(Envelope::Error { error_type, error }) if error_type == "bad_data" => {
            Err(MetricsError::Rejected {
                message: error,
                query: query.to_string(),
            })
        }
        Ok(Envelope::Error { error_type, error }) => Err(MetricsError::Failed {
            kind: error_type,
            message: error,
            query: query.to_string(),
        }),
        Err(_) => {
            let hint = if status == StatusCode::NOT_FOUND {
                " (is the URL the base of the Prometheus API?)"
            } else {
                ""
            };
            // The first line of a proxy's error page often says what is wrong.
            let text = String::from_utf8_lossy(body);
            let first: String = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect();
            let said = if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            };
            Err(MetricsError::BadResponse {
                url: url.to_string(),
                reason: format!("HTTP {status}, not a Prometheus API response{hint}{said}"),
            })
        }
    }
}

/// What went wrong sending a request, for the operator.
fn transport_error(url: &str, e: PromClientError) -> MetricsError {
    let url = url.to_string();
    match e {
        PromClientError::Client(c) => match c.inner() {
            Some(r) if r.is_timeout() => MetricsError::Unreachable {
                url,
                reason: "timed out".into(),
            },
            Some(r) => MetricsError::Unreachable {
                url,
                reason: root_cause(r),
            },
            None => MetricsError::Unreachable {
                url,
                reason: c.to_string(),
            },
        },
        other => MetricsError::Unreachable {
            url,
            reason: other.to_string(),
        },
    }
}

/// The innermost cause of a transport error, short: "connection refused" rather than
/// reqwest's "error sending request for url (...)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if let Some(io) = cur.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind::*;
        let text = match io.kind() {
            ConnectionRefused => "connection refused",
            ConnectionReset => "connection reset",
            TimedOut => "connection timed out",
            HostUnreachable => "host unreachable",
            NetworkUnreachable => "network unreachable",
            _ => return io.to_string(),
        };
        return text.to_string();
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(status: u16, body: &str) -> Result<Data, MetricsError> {
        let status = StatusCode::from_u16(status).expect("status");
        decode("http://p:9090", "q", status, body.as_bytes())
    }

    #[test]
    fn answers_read_well() {
        let ok = decoded(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"version":"1.0"},"values":[[10,"NaN"],[15,"0.5"]]}]}}"#,
        );
        assert!(matches!(ok, Ok(Data::Matrix(m)) if m.len() == 1 && m[0].samples().len() == 2));
        let e = decoded(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input"}"#,
        )
        .expect_err("bad_data");
        assert_eq!(
            e.to_string(),
            "Prometheus rejected the query: 1:4: parse error: unexpected end of input"
        );
        let e = decoded(
            503,
            r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
        )
        .expect_err("timeout");
        assert_eq!(
            e.to_string(),
            "Prometheus failed the query (timeout): query timed out in expression evaluation"
        );
        let e = decoded(404, "404 page not found\n").expect_err("404");
        assert_eq!(
            e.to_string(),
            "unexpected answer from Prometheus at http://p:9090: HTTP 404 Not Found, not a \
             Prometheus API response (is the URL the base of the Prometheus API?): 404 page not found"
        );
        let e = decoded(502, "\n  <html>\u{1b}[31m upstream connect error\n").expect_err("502");
        assert!(
            e.to_string()
                .ends_with("HTTP 502 Bad Gateway, not a Prometheus API response: <html>[31m upstream connect error"),
            "{e}"
        );
    }

    #[test]
    fn urls_are_checked_and_normalised() {
        for bad in ["", "localhost:9090", "ftp://p", "http://"] {
            let e = MetricsClient::new(bad).expect_err(bad);
            assert!(e.to_string().starts_with("invalid Prometheus URL"), "{e}");
        }
        let c = MetricsClient::new("http://127.0.0.1:9090/").expect("url");
        assert_eq!(c.url(), "http://127.0.0.1:9090");
        let c = MetricsClient::new("https://u:secret@proxy.example/prometheus/").expect("url");
        assert_eq!(c.url(), "https://proxy.example/prometheus");
    }
}
