//! The sandbox's Prometheus side: every simulated second the traffic model advances, its
//! counters go into the sample history (one hour at 1 s resolution), and a second loopback
//! listener serves `/metrics` (for a real Prometheus to scrape) and the Prometheus HTTP API
//! (`/api/v1/query`, `query_range`, `series`, `labels`, `label/<name>/values`,
//! `status/buildinfo`) over that history.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Sandbox;
use super::prom::{self, Labels, PromError, Tsdb, api};
use super::server::Body;
use super::traffic::{BUCKETS, Snapshot, Traffic};

/// The job label a scrape of the sandbox gets (use the same job name when a real Prometheus
/// scrapes it, so that both hold identical series).
pub const JOB: &str = "kockpit-sandbox";
/// How much sample history is kept.
pub const RETENTION_MS: i64 = 3_600_000;

/// Traffic, its sample history, and the series written at the last step.
pub struct Metrics {
    pub traffic: Traffic,
    pub tsdb: RwLock<Tsdb>,
    /// `host:port` of the Prometheus listener: the `instance` label.
    instance: OnceLock<String>,
    live: Mutex<HashSet<Labels>>,
    /// Label sets already built, by (namespace, pod or app/version, code or series name).
    cache: Mutex<HashMap<(String, String, String), Labels>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            traffic: Traffic::default(),
            tsdb: RwLock::new(Tsdb::new(RETENTION_MS)),
            instance: OnceLock::new(),
            live: Mutex::new(HashSet::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    pub fn set_instance(&self, instance: String) {
        let _ = self.instance.set(instance);
    }

    fn instance(&self) -> &str {
        self.instance
            .get()
            .map(String::as_str)
            .unwrap_or("127.0.0.1:0")
    }

    /// Simulate up to the clock's current second and store what happened.
    pub fn step(&self, sb: &Sandbox) {
        let now = sb.store.clock.now().as_second();
        let snaps = self.traffic.advance(sb, now, RETENTION_MS / 1000);
        if !snaps.is_empty() {
            self.record(&snaps);
        }
    }

    fn record(&self, snaps: &[Snapshot]) {
        let mut db = self.tsdb.write().unwrap_or_else(|e| e.into_inner());
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let instance = self.instance().to_string();
        for snap in snaps {
            let t = snap.second * 1000;
            let mut now_live = HashSet::with_capacity(live.len());
            for c in &snap.pods {
                for (code, v) in &c.by_code {
                    let code = code.to_string();
                    let key = (c.namespace.clone(), c.pod.clone(), code.clone());
                    let cached = cache
                        .get(&key)
                        .filter(|l| l.get("service") == Some(c.service.as_str()));
                    let labels = match cached {
                        Some(l) => l.clone(),
                        None => {
                            let l = Labels::new([
                                ("__name__", "http_requests_total"),
                                ("app", c.app.as_str()),
                                ("code", code.as_str()),
                                ("instance", instance.as_str()),
                                ("job", JOB),
                                ("namespace", c.namespace.as_str()),
                                ("pod", c.pod.as_str()),
                                ("service", c.service.as_str()),
                                ("version", c.version.as_str()),
                            ]);
                            cache.insert(key, l.clone());
                            l
                        }
                    };
                    db.append(&labels, t, *v);
                    now_live.insert(labels);
                }
            }
            for ((ns, app, version), h) in &snap.hists {
                let values = h.buckets.iter().copied().chain([h.sum, h.count]);
                for (i, v) in values.enumerate() {
                    let key = (ns.clone(), format!("{app}/{version}"), i.to_string());
                    let labels = cache
                        .entry(key)
                        .or_insert_with(|| hist_labels(ns, app, version, i, &instance))
                        .clone();
                    db.append(&labels, t, v);
                    now_live.insert(labels);
                }
            }
            // Series that stopped being exposed go stale, as after a scrape without them.
            for gone in live.difference(&now_live) {
                db.mark_stale(gone, t);
            }
            *live = now_live;
        }
        if cache.len() > 4 * live.len() + 1024 {
            cache.retain(|_, l| live.contains(l));
        }
    }
}

/// What one pod served in one simulated second: requests by status code, and the mean
/// latency (seconds) of its version in that second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecondServed {
    pub by_code: Vec<(u16, u32)>,
    pub mean_latency: Option<f64>,
}

impl Metrics {
    /// The newest second the history holds.
    pub fn newest_second(&self) -> Option<i64> {
        self.traffic.last_second()
    }

    /// Per second in `[from_s, to_s]`, what a pod served (from the same counters Prometheus
    /// sees, so logs and metrics agree).
    pub fn pod_served(
        &self,
        ns: &str,
        app: &str,
        version: &str,
        pod: &str,
        from_s: i64,
        to_s: i64,
    ) -> std::collections::BTreeMap<i64, SecondServed> {
        use prom::Matcher;
        let db = self.tsdb.read().unwrap_or_else(|e| e.into_inner());
        let (start, end) = ((from_s - 1) * 1000, to_s * 1000);
        let mut out: std::collections::BTreeMap<i64, SecondServed> = Default::default();
        let deltas = |series: &[(i64, f64)], mut f: Box<dyn FnMut(i64, f64) + '_>| {
            for w in series.windows(2) {
                let (a, b) = (w[0], w[1]);
                if !prom::tsdb::is_stale(a.1) && !prom::tsdb::is_stale(b.1) && b.1 >= a.1 {
                    f(b.0 / 1000, b.1 - a.1);
                }
            }
        };
        let requests = [
            Matcher::equal("__name__", "http_requests_total"),
            Matcher::equal("namespace", ns),
            Matcher::equal("pod", pod),
        ];
        for (labels, samples) in db.select(&requests, start, end) {
            let code: u16 = labels.get("code").and_then(|c| c.parse().ok()).unwrap_or(0);
            deltas(
                &samples,
                Box::new(|s, d| {
                    if d > 0.0 {
                        out.entry(s).or_default().by_code.push((code, d as u32));
                    }
                }),
            );
        }
        let hist = |name: &'static str| {
            [
                Matcher::equal("__name__", name),
                Matcher::equal("namespace", ns),
                Matcher::equal("app", app),
                Matcher::equal("version", version),
            ]
        };
        let sums = db.select(&hist("http_request_duration_seconds_sum"), start, end);
        let counts = db.select(&hist("http_request_duration_seconds_count"), start, end);
        if let (Some((_, sum)), Some((_, count))) = (sums.first(), counts.first()) {
            let mut dsum = std::collections::BTreeMap::new();
            deltas(
                sum,
                Box::new(|s, d| {
                    dsum.insert(s, d);
                }),
            );
            deltas(
                count,
                Box::new(|s, d| {
                    if let (Some(total), true, Some(e)) = (dsum.get(&s), d > 0.0, out.get_mut(&s)) {
                        e.mean_latency = Some(total / d);
                    }
                }),
            );
        }
        out
    }
}

/// Labels of the i-th histogram series of a version: buckets in order, +Inf, sum, count.
fn hist_labels(ns: &str, app: &str, version: &str, i: usize, instance: &str) -> Labels {
    let name = match i {
        i if i <= BUCKETS.len() => "http_request_duration_seconds_bucket",
        i if i == BUCKETS.len() + 1 => "http_request_duration_seconds_sum",
        _ => "http_request_duration_seconds_count",
    };
    let mut l = vec![
        ("__name__", name.to_string()),
        ("app", app.to_string()),
        ("instance", instance.to_string()),
        ("job", JOB.to_string()),
        ("namespace", ns.to_string()),
        ("version", version.to_string()),
    ];
    if i < BUCKETS.len() {
        l.push(("le", BUCKETS[i].to_string()));
    } else if i == BUCKETS.len() {
        l.push(("le", "+Inf".to_string()));
    }
    Labels::new(l)
}

/// Step the traffic every simulated second until cancelled.
pub async fn run(sb: Arc<Sandbox>, cancel: CancellationToken) {
    loop {
        sb.metrics.step(&sb);
        let wait = sb.store.clock.real_duration(Duration::from_millis(250));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
    }
}

/// Serve the Prometheus listener until cancelled.
pub async fn serve(listener: TcpListener, sb: Arc<Sandbox>, cancel: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("prometheus accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let sb = sb.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(sb.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = conn => if let Err(e) = r { tracing::debug!("prometheus connection ended: {e}") },
            }
        });
    }
}

fn respond(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: u16, v: &Json) -> Response<Body> {
    respond(
        status,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

/// Prometheus answers bad requests with 400 and failed executions with 422.
fn prom_error(e: &PromError) -> Response<Body> {
    let status = match e.error_type {
        "bad_data" => 400,
        "timeout" => 503,
        _ => 422,
    };
    json(status, &api::error(e))
}

async fn handle(sb: Arc<Sandbox>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(prom_error(&PromError::bad_data("request body too large"))),
    };
    // Parameters come in the query string or, for POST, a form body; both may repeat `match[]`.
    let mut params: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if parts.method == Method::POST {
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let path = parts.uri.path().to_string();
    Ok(route(&sb, &parts.method, &path, &params))
}

fn route(sb: &Sandbox, method: &Method, path: &str, params: &[(String, String)]) -> Response<Body> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let now_ms = sb.store.clock.now().as_millisecond();
    if method != Method::GET && method != Method::POST {
        return json(405, &api::error(&PromError::bad_data("method not allowed")));
    }
    let result = match path {
        "/metrics" => {
            return respond(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                sb.metrics.traffic.exposition(),
            );
        }
        "/-/healthy" | "/-/ready" => {
            return respond(
                200,
                "text/plain; charset=utf-8",
                "Prometheus Server is Ready.\n",
            );
        }
        "/api/v1/status/buildinfo" => Ok(api::buildinfo()),
        "/api/v1/query" => query(sb, get, now_ms),
        "/api/v1/query_range" => query_range(sb, get),
        "/api/v1/series" => matchers(params).and_then(|ms| {
            if ms.is_empty() {
                return Err(PromError::bad_data("no match[] parameter provided"));
            }
            let (s, e) = window(get, now_ms)?;
            let db = sb.metrics.tsdb.read().unwrap_or_else(|e| e.into_inner());
            let mut out: Vec<Labels> = ms.iter().flat_map(|m| db.series(m, s, e)).collect();
            out.sort();
            out.dedup();
            Ok(api::series(&out))
        }),
        "/api/v1/labels" => matchers(params).and_then(|ms| {
            let (s, e) = window(get, now_ms)?;
            let db = sb.metrics.tsdb.read().unwrap_or_else(|e| e.into_inner());
            let mut names: Vec<String> = if ms.is_empty() {
                db.label_names(&[], s, e)
            } else {
                ms.iter().flat_map(|m| db.label_names(m, s, e)).collect()
            };
            names.sort();
            names.dedup();
            Ok(api::labels(&names))
        }),
        p => match p
            .strip_prefix("/api/v1/label/")
            .and_then(|r| r.strip_suffix("/values"))
        {
            Some(name) => matchers(params).and_then(|ms| {
                let (s, e) = window(get, now_ms)?;
                let db = sb.metrics.tsdb.read().unwrap_or_else(|e| e.into_inner());
                let mut vals: Vec<String> = if ms.is_empty() {
                    db.label_values(name, &[], s, e)
                } else {
                    ms.iter()
                        .flat_map(|m| db.label_values(name, m, s, e))
                        .collect()
                };
                vals.sort();
                vals.dedup();
                Ok(api::label_values(&vals))
            }),
            None => return respond(404, "text/plain; charset=utf-8", "404 page not found\n"),
        },
    };
    match result {
        Ok(v) => json(200, &v),
        Err(e) => prom_error(&e),
    }
}

fn matchers(params: &[(String, String)]) -> Result<Vec<Vec<prom::Matcher>>, PromError> {
    params
        .iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| api::parse_selector(v))
        .collect()
}

/// `start`/`end` of a metadata request (default: the whole history).
fn window<'a>(get: impl Fn(&str) -> Option<&'a str>, now_ms: i64) -> Result<(i64, i64), PromError> {
    let s = get("start")
        .map(api::parse_time)
        .transpose()?
        .unwrap_or(now_ms - RETENTION_MS);
    let e = get("end")
        .map(api::parse_time)
        .transpose()?
        .unwrap_or(now_ms);
    Ok((s, e))
}

fn query<'a>(
    sb: &Sandbox,
    get: impl Fn(&str) -> Option<&'a str>,
    now_ms: i64,
) -> Result<Json, PromError> {
    let q = get("query").ok_or_else(|| {
        PromError::bad_data("invalid parameter \"query\": query must not be empty")
    })?;
    let t = get("time")
        .map(api::parse_time)
        .transpose()?
        .unwrap_or(now_ms);
    let db = sb.metrics.tsdb.read().unwrap_or_else(|e| e.into_inner());
    prom::instant(&db, q, t).map(|v| api::success(&v))
}

fn query_range<'a>(sb: &Sandbox, get: impl Fn(&str) -> Option<&'a str>) -> Result<Json, PromError> {
    let q = get("query").ok_or_else(|| {
        PromError::bad_data("invalid parameter \"query\": query must not be empty")
    })?;
    let need = |k: &str| {
        get(k).ok_or_else(|| {
            PromError::bad_data(format!(
                "invalid parameter \"{k}\": cannot parse \"\" to a valid timestamp"
            ))
        })
    };
    let start = api::parse_time(need("start")?)?;
    let end = api::parse_time(need("end")?)?;
    let step = api::parse_duration(get("step").ok_or_else(|| {
        PromError::bad_data("invalid parameter \"step\": cannot parse \"\" to a valid duration")
    })?)?;
    if step <= 0 {
        return Err(PromError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let db = sb.metrics.tsdb.read().unwrap_or_else(|e| e.into_inner());
    prom::range(&db, q, start, end, step).map(|v| api::success(&v))
}
