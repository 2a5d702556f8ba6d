//! `pods/log`: container logs that agree with what the simulated pod is doing. Each line is a
//! pure function of the pod, the container's run and the second it falls in, so a stream can
//! resume from a timestamp and get exactly the lines it missed. A healthy container logs its
//! start-up, then access-log lines; a crashing one logs its failure and a stack trace.
//! Supports follow, tailLines, sinceSeconds, sinceTime, timestamps, container, previous and
//! limitBytes, with the real server's errors.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::Sandbox;
use super::clock::parse_time;
use super::controllers::kubelet::{Run, pod_faults, timeline};
use super::controllers::pods;
use super::error::{ApiError, ApiResult};
use super::faults::Fault;
use super::server::{Body, error_response};
use super::store::meta_str;

/// How far back a container's log reaches (older lines are rotated away, as on a node).
const RETENTION_SECS: i64 = 3600;

/// Query parameters of a log request.
#[derive(Debug, Default, Clone)]
pub struct LogParams {
    pub container: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<usize>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub timestamps: bool,
    pub previous: bool,
    pub limit_bytes: Option<usize>,
}

impl LogParams {
    pub fn from_query(q: &[(String, String)]) -> Self {
        let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let flag = |k: &str| matches!(get(k), Some("true" | "1"));
        LogParams {
            container: get("container")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            follow: flag("follow"),
            tail_lines: get("tailLines").and_then(|v| v.parse().ok()),
            since_seconds: get("sinceSeconds").and_then(|v| v.parse().ok()),
            since_time: get("sinceTime").and_then(parse_time),
            timestamps: flag("timestamps"),
            previous: flag("previous"),
            limit_bytes: get("limitBytes").and_then(|v| v.parse().ok()),
        }
    }
}

/// Which pod.
#[derive(Debug, Clone)]
pub struct LogTarget {
    pub namespace: String,
    pub pod: String,
}

/// A stable 64-bit mix of some text and numbers (splitmix64 over FNV-1a).
fn mix(s: &str, a: i64, b: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in s.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h ^ (a as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const PATHS: &[&str] = &[
    "/api/v1/items",
    "/api/v1/cart",
    "/api/v1/orders",
    "/api/v1/session",
    "/api/v1/prices",
    "/healthz/ready",
];

/// What a container writes, line by line, during `[from, to)` of one run.
fn lines_between(
    sb: &Sandbox,
    pod: &Value,
    container: &Value,
    run: Run,
    from: Timestamp,
    to: Timestamp,
) -> Vec<(Timestamp, String)> {
    let uid = meta_str(pod, "uid").unwrap_or_default();
    let cname = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("app");
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = super::faults::image_tag(image);
    let env = container
        .get("env")
        .and_then(Value::as_array)
        .and_then(|e| {
            e.iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some("APP_ENV"))
        })
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let ms = |n: i64| SignedDuration::from_millis(n);
    let mut out = Vec::new();
    let mut push = |t: Timestamp, line: String| {
        if t >= from && t < to && run.end.is_none_or(|e| t <= e) {
            out.push((t, line));
        }
    };
    let s = run.start;
    push(
        s + ms(3),
        format!("INFO  starting {cname} version={version} env={env} pid=1"),
    );
    push(
        s + ms(41),
        format!("INFO  config loaded from /etc/{cname}/config.yaml"),
    );
    // Many services colour their own output; the cockpit must show such lines inert.
    push(
        s + ms(87),
        "\u{1b}[32mINFO\u{1b}[0m  listening on :8080 (http), :9090 (metrics)".to_string(),
    );
    // Attackers put escape sequences into headers that end up in logs (log injection): this
    // one would retitle the terminal, clear it and fake a red line if shown raw.
    push(
        s + ms(95),
        "WARN  rejected request: bad header x-debug=\"\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mFAKE ALERT\u{1b}[0m\"".to_string(),
    );
    if let Some(end) = run.end {
        // The failure comes just before the exit.
        let e = |n: i64| end - SignedDuration::from_millis(n);
        let upper = cname.to_uppercase().replace('-', "_");
        push(
            e(520),
            format!("ERROR required config key {upper}_UPSTREAM_URL is missing"),
        );
        push(
            e(510),
            "panic: configuration incomplete: refusing to start".to_string(),
        );
        push(e(509), String::new());
        push(e(508), "goroutine 1 [running]:".to_string());
        push(e(507), "main.mustLoadConfig(...)".to_string());
        push(e(506), format!("\t/src/cmd/{cname}/config.go:57 +0x1d5"));
        push(e(505), "main.main()".to_string());
        push(e(504), format!("\t/src/cmd/{cname}/main.go:23 +0x4b"));
        if end.duration_since(s) < SignedDuration::from_secs(1) {
            return out;
        }
    }
    push(s + ms(120), "INFO  upstream connections ready".to_string());
    // Access log: exactly the requests the traffic model sent this pod, second by second.
    let ns = meta_str(pod, "namespace").unwrap_or_default();
    let app = pod
        .pointer("/metadata/labels/app")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let served = sb.metrics.pod_served(
        ns,
        app,
        version,
        meta_str(pod, "name").unwrap_or_default(),
        from.as_second().max(s.as_second()),
        to.as_second(),
    );
    for (sec, second) in served {
        let mut i: u64 = 0;
        for (code, count) in second.by_code {
            for _ in 0..count {
                i += 1;
                let r = mix(uid, sec, i);
                let t = Timestamp::from_second(sec).unwrap_or(s) + ms(((r >> 8) % 1000) as i64);
                let path = PATHS[(r % PATHS.len() as u64) as usize];
                let method = if (r >> 20).is_multiple_of(4) {
                    "POST"
                } else {
                    "GET"
                };
                let level = match code {
                    500.. => "ERROR",
                    400.. => "WARN ",
                    _ => "INFO ",
                };
                // Around the version's mean latency in that second.
                let mean = second.mean_latency.unwrap_or(0.05) * 1000.0;
                let jitter = 0.5 + ((r >> 32) % 1000) as f64 / 1000.0;
                let latency = (mean * jitter).round() as i64;
                let trace = format!("{:016x}", mix(uid, sec, i + 1_000_000));
                let detail = match code {
                    503 => " error=\"upstream unavailable\"",
                    500 => " error=\"internal error\"",
                    _ => "",
                };
                push(
                    t,
                    format!("{level} {method} {path} {code} {latency}ms trace={trace}{detail}"),
                );
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// The runs of a container at `now`: (current or most recent, previous). As the kubelet
/// does, "previous" is the run its `lastState.terminated` names: while the container backs off
/// that is the run that just crashed, which is also what a plain request shows.
fn runs(
    created: Timestamp,
    container: &Value,
    now: Timestamp,
    faults: &[Fault],
) -> (Option<Run>, Option<Run>) {
    let tl = timeline(created, container, now, faults);
    let previous = if tl.running { tl.previous } else { tl.current };
    (tl.current, previous)
}

fn format_line(t: Timestamp, line: &str, timestamps: bool) -> String {
    if timestamps {
        format!("{} {line}\n", t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    } else {
        format!("{line}\n")
    }
}

struct Resolved {
    pod: Value,
    container: Value,
    run: Run,
    created: Timestamp,
    faults: Vec<Fault>,
}

fn resolve(sb: &Sandbox, p: &LogParams, t: &LogTarget) -> ApiResult<Resolved> {
    let pod = sb
        .store
        .get(pods(), &t.namespace, &t.pod)
        .ok_or_else(|| ApiError::not_found("pods", "", &t.pod))?;
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let container = match &p.container {
        Some(c) => containers
            .iter()
            .find(|x| x.get("name").and_then(Value::as_str) == Some(c.as_str()))
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "BadRequest",
                    format!("container {c} is not valid for pod {}", t.pod),
                )
            })?,
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            let names: Vec<&str> = containers
                .iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect();
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                t.pod,
                names.join(" ")
            )));
        }
    };
    let cname = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let created = meta_str(&pod, "creationTimestamp")
        .and_then(parse_time)
        .unwrap_or_else(|| sb.store.clock.now());
    let faults = pod_faults(sb, &pod);
    let (current, previous) = runs(created, &container, sb.store.clock.now(), &faults);
    let run = if p.previous {
        previous.ok_or_else(|| {
            ApiError::bad_request(format!(
                "previous terminated container \"{cname}\" in pod \"{}\" not found",
                t.pod
            ))
        })?
    } else {
        current.ok_or_else(|| {
            ApiError::bad_request(format!(
                "container \"{cname}\" in pod \"{}\" is waiting to start: ContainerCreating",
                t.pod
            ))
        })?
    };
    Ok(Resolved {
        pod: (*pod).clone(),
        container,
        run,
        created,
        faults,
    })
}

/// Serve a log request (plain or followed).
pub async fn serve(sb: &Arc<Sandbox>, p: LogParams, t: &LogTarget) -> Response<Body> {
    let r = match resolve(sb, &p, t) {
        Ok(r) => r,
        Err(e) => {
            // The log path answers errors without the priority-and-fairness headers.
            let mut resp = error_response(sb, &e);
            resp.headers_mut().remove("x-kubernetes-pf-flowschema-uid");
            resp.headers_mut()
                .remove("x-kubernetes-pf-prioritylevel-uid");
            return resp;
        }
    };
    let now = sb.store.clock.now();
    let mut from = r
        .run
        .start
        .max(now - SignedDuration::from_secs(RETENTION_SECS));
    if let Some(s) = p.since_seconds {
        from = from.max(now - SignedDuration::from_secs(s));
    }
    if let Some(st) = p.since_time {
        from = from.max(st);
    }
    // Lines exist up to the last simulated traffic second.
    let horizon = |now: Timestamp| {
        sb.metrics
            .newest_second()
            .and_then(|s| Timestamp::from_second(s + 1).ok())
            .map_or(now, |h| h.min(now))
    };
    let now = horizon(now);
    let mut history = lines_between(sb, &r.pod, &r.container, r.run, from, now);
    if let Some(n) = p.tail_lines {
        let skip = history.len().saturating_sub(n);
        history.drain(..skip);
    }
    let mut text = String::new();
    for (ts, l) in &history {
        text.push_str(&format_line(*ts, l, p.timestamps));
    }
    let mut budget = p.limit_bytes.unwrap_or(usize::MAX);
    let first = take_bytes(&mut text, &mut budget);
    let follow = p.follow && !p.previous && r.run.end.is_none() && budget > 0;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let sb2 = sb.clone();
    let target = t.clone();
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        if !follow {
            return;
        }
        let mut cursor = now;
        loop {
            let wait = sb2.store.clock.real_duration(Duration::from_millis(500));
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            // The stream ends when the pod is gone or this run of the container has ended.
            let Some(pod) = sb2.store.get(pods(), &target.namespace, &target.pod) else {
                return;
            };
            if meta_str(&pod, "uid") != meta_str(&r.pod, "uid") {
                return;
            }
            let now = sb2.store.clock.now();
            let now = sb2
                .metrics
                .newest_second()
                .and_then(|s| Timestamp::from_second(s + 1).ok())
                .map_or(now, |h| h.min(now));
            let faults = pod_faults(&sb2, &pod);
            let _ = &r.faults;
            let (current, _) = runs(r.created, &r.container, now, &faults);
            let ended = current.is_none_or(|c| c.start != r.run.start || c.end.is_some());
            let until = match current {
                Some(c) if c.start == r.run.start => c.end.unwrap_or(now),
                _ => now,
            };
            let mut text = String::new();
            for (ts, l) in lines_between(&sb2, &r.pod, &r.container, r.run, cursor, until) {
                text.push_str(&format_line(ts, &l, p.timestamps));
            }
            cursor = until;
            let chunk = take_bytes(&mut text, &mut budget);
            if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
            if ended || budget == 0 || meta_str(&pod, "deletionTimestamp").is_some() {
                return;
            }
        }
    });
    let body = BodyExt::boxed(StreamBody::new(ReceiverStream { rx }));
    let mut resp = Response::new(body);
    if let Ok(v) = http::HeaderValue::from_str("text/plain") {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

struct ReceiverStream {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl futures::Stream for ReceiverStream {
    type Item = Result<Frame<Bytes>, Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// Take at most `budget` bytes of `text` (on a char boundary), reducing the budget.
fn take_bytes(text: &mut String, budget: &mut usize) -> String {
    if text.len() <= *budget {
        *budget -= text.len();
        return std::mem::take(text);
    }
    let mut cut = *budget;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    *budget = 0;
    text[..cut].to_string()
}
