//! The sandbox's Prometheus API against a real Prometheus (Debian's `prometheus` 2.42)
//! scraping the same sandbox: the cockpit's default queries must agree, a fault must show up
//! in both within two scrape intervals, and unsupported PromQL must be `bad_data`. The
//! cockpit's own client (`prometheus-http-query`) is used unchanged for both.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::SandboxProc;
use prometheus_http_query::response::Data;
use prometheus_http_query::{Client, Selector};

/// The queries the cockpit's panels run, per version of the canary app in production.
const QUERIES: &[(&str, &str)] = &[
    (
        "error ratio by version",
        r#"sum by (version) (rate(http_requests_total{namespace="production",app="checkout",code=~"5.."}[1m])) / sum by (version) (rate(http_requests_total{namespace="production",app="checkout"}[1m]))"#,
    ),
    (
        "p50 latency by version",
        r#"histogram_quantile(0.5, sum by (le, version) (rate(http_request_duration_seconds_bucket{namespace="production",app="checkout"}[1m])))"#,
    ),
    (
        "p99 latency by version",
        r#"histogram_quantile(0.99, sum by (le, version) (rate(http_request_duration_seconds_bucket{namespace="production",app="checkout"}[1m])))"#,
    ),
    (
        "request rate by version",
        r#"sum by (version) (rate(http_requests_total{namespace="production",app="checkout"}[1m]))"#,
    ),
    (
        "request rate by version, every app",
        r#"sum by (app, version) (rate(http_requests_total{namespace="production"}[1m]))"#,
    ),
];

fn prometheus_bin() -> PathBuf {
    let bin = std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("prometheus"));
    let ok = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs Debian's prometheus: set PROMETHEUS or put it on PATH (.ci/run installs it)"
    );
    bin
}

struct PromProc {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for PromProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A real Prometheus scraping the sandbox's `/metrics` every second.
fn start_prometheus(target: &str) -> PromProc {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = target.trim_start_matches("http://");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: kockpit-sandbox\n  static_configs:\n  - targets: ['{target}']\n"
        ),
    )
    .expect("write config");
    let port = free_port();
    let child = Command::new(prometheus_bin())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    PromProc {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A query's result as `labels → value`.
async fn instant(c: &Client, q: &str, t: i64) -> BTreeMap<String, f64> {
    let r = c
        .query(q)
        .at(t)
        .get()
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    match r.data() {
        Data::Vector(v) => v
            .iter()
            .map(|s| {
                (
                    format!("{:?}", s.metric().iter().collect::<BTreeMap<_, _>>()),
                    s.sample().value(),
                )
            })
            .collect(),
        other => panic!("{q}: expected a vector, got {other:?}"),
    }
}

/// The sandbox's histogram bucket bounds (seconds), as exposed on `/metrics`.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How far apart the two may be: `(relative, absolute)`.
///
/// Both sample the same counters, but at different instants (the sandbox's own TSDB ticks,
/// Prometheus scrapes with its own offset, and on a loaded machine a scrape can be late), so
/// each 1 m window holds a second or two of requests more or fewer at either end, and
/// `rate()` extrapolates differently: rates and medians are held to 10 % (a wrong query — no
/// `sum by`, the wrong window, a missing label — is off by far more). A p99 is interpolated
/// linearly inside its bucket from a handful of requests, so one request moves it by a
/// sizeable fraction of the bucket (21 % of it was seen on a loaded machine): it is held to
/// half the width of the bucket it falls in (75 ms for the 100–250 ms bucket); a wrong
/// quantile or bucket handling lands buckets away. Error ratios are tiny numbers from few
/// events: 0.3 %-points.
fn tolerance(what: &str, value: f64) -> (f64, f64) {
    if what.starts_with("error") {
        (0.25, 0.003)
    } else if what.starts_with('p') {
        let upper = BUCKETS
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(BUCKETS.len() - 1);
        let lower = if upper == 0 { 0.0 } else { BUCKETS[upper - 1] };
        (0.10, 0.5 * (BUCKETS[upper] - lower))
    } else {
        (0.10, 1e-9)
    }
}

/// Compare two results; returns the largest relative difference.
fn compare(what: &str, sandbox: &BTreeMap<String, f64>, real: &BTreeMap<String, f64>) -> f64 {
    assert_eq!(
        sandbox.keys().collect::<Vec<_>>(),
        real.keys().collect::<Vec<_>>(),
        "{what}: same series"
    );
    let mut worst: f64 = 0.0;
    for (k, a) in sandbox {
        let b = real[k];
        if a.is_nan() && b.is_nan() {
            continue;
        }
        let diff = (a - b).abs();
        let rel = diff / b.abs().max(f64::MIN_POSITIVE);
        let (rel_tol, abs_tol) = tolerance(what, b);
        assert!(
            diff <= abs_tol || rel <= rel_tol,
            "{what} {k}: sandbox {a} vs prometheus {b} (relative difference {rel:.4})"
        );
        if diff > abs_tol {
            worst = worst.max(rel);
        }
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_queries_agree_with_a_real_prometheus_and_faults_show_up_in_both() {
    let sb = SandboxProc::start(&[]);
    let prom = start_prometheus(&sb.prometheus);
    let ours: Client = sb.prometheus.parse().expect("client for the sandbox");
    let real: Client = prom.url.parse().expect("client for prometheus");

    // Let the real Prometheus collect a few minutes of 1 s scrapes: the earliest 1 m window
    // compared below must lie entirely after its first scrape.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(170)).await;

    let t = now_secs() as i64 - 3;
    let mut worst: f64 = 0.0;
    for (what, q) in QUERIES {
        let a = instant(&ours, q, t).await;
        let b = instant(&real, q, t).await;
        assert!(!a.is_empty(), "{what}: the sandbox has data");
        worst = worst.max(compare(what, &a, &b));
        // The same over a range: 90 s, step 10 s.
        let ra = ours
            .query_range(*q, t - 90, t, 10.0)
            .get()
            .await
            .expect("sandbox range");
        let rb = real
            .query_range(*q, t - 90, t, 10.0)
            .get()
            .await
            .expect("prometheus range");
        let (Data::Matrix(ma), Data::Matrix(mb)) = (ra.data(), rb.data()) else {
            panic!("{what}: range queries return matrices");
        };
        assert_eq!(
            ma.len(),
            mb.len(),
            "{what}: same number of series over the range"
        );
        for (sa, sbm) in ma.iter().zip(mb) {
            assert_eq!(
                sa.metric(),
                sbm.metric(),
                "{what}: same series over the range"
            );
            // A series born inside the range (the first 5xx of a version) starts where two
            // samples first fall in the rate window, which the two sample at different
            // instants: one step may differ, at the start only.
            let (na, nb) = (sa.samples().len(), sbm.samples().len());
            assert!(na.abs_diff(nb) <= 1, "{what}: steps {na} vs {nb}");
            let at = |s: &[prometheus_http_query::response::Sample]| {
                s.iter()
                    .map(|p| (p.timestamp() as i64, p.value()))
                    .collect::<BTreeMap<i64, f64>>()
            };
            let (ma_, mb_) = (at(sa.samples()), at(sbm.samples()));
            if na != nb {
                let first = |m: &BTreeMap<i64, f64>| m.keys().next().copied();
                assert_ne!(
                    first(&ma_),
                    first(&mb_),
                    "{what}: a step missing in the middle"
                );
            }
            for (t, x, y) in ma_
                .iter()
                .filter_map(|(t, x)| mb_.get(t).map(|y| (*t, *x, *y)))
            {
                let pa_ts = t;
                if x.is_nan() && y.is_nan() {
                    continue;
                }
                let diff = (x - y).abs();
                let r = diff / y.abs().max(f64::MIN_POSITIVE);
                let (rel, abs) = tolerance(what, y);
                assert!(
                    diff <= abs || r <= rel,
                    "{what} at {pa_ts}: sandbox {x} vs prometheus {y}"
                );
                if diff > abs {
                    worst = worst.max(r);
                }
            }
        }
    }
    eprintln!(
        "largest relative difference over the default queries: {worst:.4} (after {:?})",
        started.elapsed()
    );

    // A fault on the canary: every canary request fails. Both must see new 5xx within two scrapes.
    let fault_q = r#"sum(http_requests_total{namespace="production",app="checkout",version="1.5.0",code=~"5.."})"#;
    let errors_at = |c: Client| async move {
        instant(&c, fault_q, now_secs() as i64)
            .await
            .values()
            .next()
            .copied()
            .unwrap_or(0.0)
    };
    let before_ours = errors_at(ours.clone()).await;
    let before_real = errors_at(real.clone()).await;
    let body = r#"{"namespace":"production","app":"checkout","version":"1.5.0","kind":"errorRatio","value":1.0}"#;
    let injected = Instant::now();
    common::http_post_json(&format!("{}/sandbox/v1/faults", sb.url), body);
    let (mut seen_ours, mut seen_real) = (None, None);
    while (seen_ours.is_none() || seen_real.is_none())
        && injected.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if seen_ours.is_none() && errors_at(ours.clone()).await >= before_ours + 2.0 {
            seen_ours = Some(injected.elapsed());
        }
        if seen_real.is_none() && errors_at(real.clone()).await >= before_real + 2.0 {
            seen_real = Some(injected.elapsed());
        }
    }
    eprintln!("fault visible: sandbox after {seen_ours:?}, prometheus after {seen_real:?}");
    let limit = Duration::from_millis(2_000 + 1_200);
    assert!(
        seen_ours.is_some_and(|d| d <= limit),
        "sandbox shows the fault within two scrape intervals: {seen_ours:?}"
    );
    assert!(
        seen_real.is_some_and(|d| d <= limit),
        "prometheus shows the fault within two scrape intervals: {seen_real:?}"
    );
}

#[tokio::test]
async fn the_client_works_unchanged_and_unsupported_promql_is_bad_data() {
    let sb = SandboxProc::start(&["--backfill", "300"]);
    let c: Client = sb.prometheus.parse().expect("client");
    let now = now_secs() as i64;
    for (what, q) in QUERIES {
        let v = instant(&c, q, now).await;
        assert!(!v.is_empty(), "{what}");
        let r = c
            .query_range(*q, now - 240, now, 2.0)
            .get()
            .await
            .expect("range");
        let Data::Matrix(m) = r.data() else {
            panic!("matrix")
        };
        // A ratio has no point where its numerator has no series (no 5xx in the window):
        // Prometheus semantics, which the cockpit handles by querying both sides.
        if what.starts_with("request rate") {
            assert!(
                m.iter().all(|s| s.samples().len() == 121),
                "{what}: 121 steps"
            );
        } else {
            assert!(
                m.iter()
                    .all(|s| !s.samples().is_empty() && s.samples().len() <= 121),
                "{what}"
            );
        }
    }
    let sel = Selector::new()
        .metric("http_requests_total")
        .eq("namespace", "staging");
    let series = c
        .series(&[sel])
        .expect("series builder")
        .get()
        .await
        .expect("series");
    assert!(
        series
            .iter()
            .all(|s| s.get("namespace").map(String::as_str) == Some("staging"))
    );
    assert!(!series.is_empty());
    let names = c.label_names().get().await.expect("labels");
    for l in [
        "__name__",
        "app",
        "code",
        "instance",
        "job",
        "le",
        "namespace",
        "pod",
        "service",
        "version",
    ] {
        assert!(names.iter().any(|n| n == l), "label {l} in {names:?}");
    }
    let apps = c.label_values("app").get().await.expect("label values");
    assert_eq!(
        apps,
        [
            "cart",
            "catalog",
            "checkout",
            "frontend",
            "inventory",
            "payments",
            "reviews",
            "search"
        ]
    );

    // Anything the engine does not implement is refused, never answered wrongly.
    for q in [
        "topk(3, http_requests_total)",
        "predict_linear(http_requests_total[5m], 60)",
        "http_requests_total[5m:1m]",
        "rate(http_requests_total[1m]",
    ] {
        let err = c.query(q).get().await.expect_err(q);
        match err {
            prometheus_http_query::Error::Prometheus(e) => {
                assert_eq!(format!("{:?}", e.error_type()), "BadData", "{q}");
            }
            other => panic!("{q}: expected a Prometheus bad_data error, got {other:?}"),
        }
    }
}
