//! Instant queries for drills and the guard: error ratio, p99 and request rate of an app (or
//! one version of it) over a short window, evaluated at the Prometheus server's "now" (the
//! sandbox's simulated clock when it is the sandbox).

use prometheus_http_query::Client;
use prometheus_http_query::response::Data;

use crate::config::file::Thresholds;
use crate::metrics::escape_label_value;

use super::DrillError;

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// Requests per second (0: no traffic).
    pub rps: f64,
    /// None without traffic.
    pub error_ratio: Option<f64>,
    /// None without observations.
    pub p99_seconds: Option<f64>,
}

/// What a reading says against the thresholds.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Healthy,
    /// Why, e.g. "error ratio 12.0 % > 1.0 %".
    Breach(String),
    /// No requests in the window: neither healthy nor a breach.
    NoTraffic,
}

/// Judge a reading. No traffic is never healthy and never a breach.
pub fn judge(s: &Sample, t: &Thresholds) -> Health {
    let Some(ratio) = s.error_ratio.filter(|_| s.rps > 0.0) else {
        return Health::NoTraffic;
    };
    if ratio > t.max_error_ratio {
        return Health::Breach(format!(
            "error ratio {:.1} % > {:.1} %",
            ratio * 100.0,
            t.max_error_ratio * 100.0
        ));
    }
    if let Some(p99) = s.p99_seconds
        && p99 > t.max_p99_seconds
    {
        return Health::Breach(format!(
            "p99 {:.0} ms > {:.0} ms",
            p99 * 1000.0,
            t.max_p99_seconds * 1000.0
        ));
    }
    Health::Healthy
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rps <= 0.0 {
            return f.write_str("no traffic");
        }
        write!(f, "{:.1} req/s", self.rps)?;
        if let Some(r) = self.error_ratio {
            write!(f, ", errors {:.2} %", r * 100.0)?;
        }
        match self.p99_seconds {
            Some(p) => write!(f, ", p99 {:.0} ms", p * 1000.0),
            None => f.write_str(", p99 no data"),
        }
    }
}

/// A Prometheus to read drills' and the guard's metrics from.
#[derive(Clone)]
pub struct Probe {
    client: Client,
    url: String,
    /// The rate window, seconds of the server's clock.
    window: u64,
}

impl Probe {
    pub fn new(url: &str, window_seconds: u64) -> Result<Probe, DrillError> {
        let parsed = url::Url::parse(url.trim())
            .map_err(|e| DrillError::Usage(format!("invalid Prometheus URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(DrillError::Usage(format!(
                "invalid Prometheus URL {url:?}: expected http://host[:port]"
            )));
        }
        let base = parsed.as_str().trim_end_matches('/').to_string();
        let client = Client::try_from(base.as_str())
            .map_err(|e| DrillError::Usage(format!("invalid Prometheus URL {url:?}: {e}")))?;
        Ok(Probe {
            client,
            url: base,
            window: window_seconds.max(1),
        })
    }

    /// The sum of an instant vector (0 for an empty one); None if every value is NaN.
    async fn scalar(&self, q: &str) -> Result<Option<f64>, DrillError> {
        let res = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.client.query(q).get(),
        )
        .await
        .map_err(|_| {
            DrillError::Failed(format!("Prometheus at {} did not answer in 5 s", self.url))
        })?
        .map_err(|e| DrillError::Failed(format!("Prometheus at {}: {e}", self.url)))?;
        match res.data() {
            Data::Vector(v) if v.is_empty() => Ok(None),
            Data::Vector(v) => {
                let vals: Vec<f64> = v
                    .iter()
                    .map(|s| s.sample().value())
                    .filter(|x| x.is_finite())
                    .collect();
                Ok((!vals.is_empty()).then(|| vals.iter().sum()))
            }
            Data::Scalar(s) => Ok(Some(s.value()).filter(|x| x.is_finite())),
            Data::Matrix(_) => Err(DrillError::Failed(format!(
                "Prometheus at {}: an instant query returned a matrix",
                self.url
            ))),
        }
    }

    /// The app's (or one version's, by its `version` label) reading now.
    pub async fn sample(
        &self,
        namespace: &str,
        app: &str,
        version: Option<&str>,
    ) -> Result<Sample, DrillError> {
        let mut sel = format!(
            r#"namespace="{}",app="{}""#,
            escape_label_value(namespace),
            escape_label_value(app)
        );
        if let Some(v) = version {
            sel.push_str(&format!(r#",version="{}""#, escape_label_value(v)));
        }
        let w = self.window;
        let total_q = format!("sum(rate(http_requests_total{{{sel}}}[{w}s]))");
        let errors_q = format!(r#"sum(rate(http_requests_total{{{sel},code=~"5.."}}[{w}s]))"#);
        let p99_q = format!(
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[{w}s])))"
        );
        let (total, errors, p99) = tokio::try_join!(
            self.scalar(&total_q),
            self.scalar(&errors_q),
            self.scalar(&p99_q)
        )?;
        let rps = total.unwrap_or(0.0);
        Ok(Sample {
            rps,
            error_ratio: (rps > 0.0).then(|| (errors.unwrap_or(0.0) / rps).clamp(0.0, 1.0)),
            p99_seconds: p99,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_traffic_is_neither_healthy_nor_a_breach() {
        let t = Thresholds::default();
        assert_eq!(judge(&Sample::default(), &t), Health::NoTraffic);
        let zero = Sample {
            rps: 0.0,
            error_ratio: Some(0.5),
            p99_seconds: Some(2.0),
        };
        assert_eq!(judge(&zero, &t), Health::NoTraffic);
        let ok = Sample {
            rps: 10.0,
            error_ratio: Some(0.001),
            p99_seconds: Some(0.2),
        };
        assert_eq!(judge(&ok, &t), Health::Healthy);
        let bad = Sample {
            rps: 10.0,
            error_ratio: Some(0.12),
            p99_seconds: Some(0.2),
        };
        assert!(matches!(judge(&bad, &t), Health::Breach(w) if w.contains("12.0 %")));
        let slow = Sample {
            rps: 10.0,
            error_ratio: Some(0.0),
            p99_seconds: Some(0.9),
        };
        assert!(matches!(judge(&slow, &t), Health::Breach(w) if w.contains("900 ms")));
    }
}
