//! `MetricsClient` against the sandbox's Prometheus API (in process, manual clock, ten minutes
//! of history): both checkout versions on one grid, an injected fault showing in the canary's
//! error ratio, no traffic as `None` rather than 0 %, and clear errors for an unreachable, a
//! silent or a wrong endpoint.

use std::time::{Duration, Instant};

use kockpit::app::state::{AppMetrics, Point, VersionSeries};
use kockpit::metrics::{MetricsClient, MetricsError, summary};
use kockpit::sandbox::controllers::{self, deployments, pods, services};
use kockpit::sandbox::store::{WriteOpts, name_of};
use kockpit::sandbox::{self, Running};
use serde_json::json;

async fn sandbox() -> Running {
    sandbox::start(sandbox::Config {
        backfill_seconds: 600,
        manual_clock: true,
        // A fixed start makes the simulated traffic (seeded per second) the same every run.
        clock_start: Some("2026-03-10T12:00:00Z".parse().expect("timestamp")),
        ..Default::default()
    })
    .await
    .expect("sandbox")
}

fn now(r: &Running) -> i64 {
    r.sandbox.store.clock.now().as_second()
}

/// Move the simulated clock and let the controllers and the traffic catch up.
fn advance(r: &Running, seconds: u64) {
    r.sandbox.store.clock.advance(Duration::from_secs(seconds));
    controllers::reconcile_all(&r.sandbox);
    r.sandbox.metrics.step(&r.sandbox);
}

/// The last five minutes every 5 s, timed.
async fn fetch(r: &Running, ns: &str, app: &str) -> AppMetrics {
    let client = MetricsClient::new(&r.prometheus_url()).expect("client");
    let end = now(r);
    let t = Instant::now();
    let m = client
        .fetch_app(ns, app, end - 300, end, 5)
        .await
        .unwrap_or_else(|e| panic!("fetch {ns}/{app}: {e}"));
    eprintln!("fetch {ns}/{app}: {:?}", t.elapsed());
    m
}

fn version<'a>(m: &'a AppMetrics, v: &str) -> &'a VersionSeries {
    m.versions
        .iter()
        .find(|s| s.version == v)
        .unwrap_or_else(|| panic!("no version {v} in {:?}", names(m)))
}

fn names(m: &AppMetrics) -> Vec<&str> {
    m.versions.iter().map(|v| v.version.as_str()).collect()
}

fn last(points: &[Point]) -> Option<f64> {
    points.last().and_then(|p| p.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_checkout_versions_on_one_grid() {
    let r = sandbox().await;
    let end = now(&r);
    let m = fetch(&r, "production", "checkout").await;
    assert_eq!(m.range, (end - 300, end));
    assert_eq!(names(&m), ["1.4.2", "1.5.0"]);
    let grid: Vec<i64> = (0..=60).map(|i| end - 300 + 5 * i).collect();
    for v in &m.versions {
        for series in [&v.error_ratio, &v.p99_seconds, &v.rps] {
            assert_eq!(series.iter().map(|p| p.0).collect::<Vec<_>>(), grid);
        }
        for (t, r) in &v.error_ratio {
            let r = r.unwrap_or_else(|| panic!("{} has traffic at {t}", v.version));
            assert!((0.0..0.05).contains(&r), "{} error ratio {r}", v.version);
        }
        for (t, p) in &v.p99_seconds {
            let p = p.unwrap_or_else(|| panic!("{} has a p99 at {t}", v.version));
            assert!((0.05..0.5).contains(&p), "{} p99 {p}", v.version);
        }
    }
    let (stable, canary) = (version(&m, "1.4.2"), version(&m, "1.5.0"));
    let (s, c) = (
        last(&stable.rps).unwrap_or(0.0),
        last(&canary.rps).unwrap_or(0.0),
    );
    assert!(
        c > 0.5 && s > 4.0 * c,
        "90/10 split: stable {s}, canary {c}"
    );
    let sum = summary(&m);
    assert_eq!(sum.len(), 2);
    assert!(
        sum.iter()
            .all(|v| v.recent_traffic && v.error_ratio.is_some())
    );

    // A zero step is clamped to 1 s; a day at 1 s is thinned to at most 11,000 points.
    let client = MetricsClient::new(&r.prometheus_url()).expect("client");
    let m = client
        .fetch_app("production", "checkout", end - 60, end, 0)
        .await
        .expect("step 0");
    assert_eq!(m.versions[0].rps.len(), 61);
    let t = Instant::now();
    let m = client
        .fetch_app("production", "checkout", end - 86_400, end, 1)
        .await
        .expect("a day");
    eprintln!("fetch a day in 11,000 points: {:?}", t.elapsed());
    let rps = &m.versions[0].rps;
    assert!(rps.len() <= 11_000 && rps.len() > 10_000, "{}", rps.len());
    assert!(rps[0].1.is_none(), "no history a day ago");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_shows_in_the_canary_error_ratio() {
    let r = sandbox().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/sandbox/v1/faults", r.url()))
        .header("content-type", "application/json")
        .body(
            json!({"namespace": "production", "app": "checkout", "version": "1.5.0",
                   "kind": "errorRatio", "value": 0.5})
            .to_string(),
        )
        .send()
        .await
        .expect("post fault");
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    advance(&r, 120);
    let m = fetch(&r, "production", "checkout").await;
    let canary = version(&m, "1.5.0");
    let before = canary.error_ratio[0].1.expect("traffic before the fault");
    let after = last(&canary.error_ratio).expect("traffic after the fault");
    assert!(before < 0.05, "before the fault: {before}");
    assert!((after - 0.5).abs() < 0.12, "after the fault: {after}");
    let stable = last(&version(&m, "1.4.2").error_ratio).expect("stable traffic");
    assert!(stable < 0.05, "stable untouched: {stable}");
    let sum = summary(&m);
    assert!(sum[1].error_ratio.is_some_and(|r| r > 0.35), "{sum:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_without_traffic_is_none_not_zero() {
    let r = sandbox().await;
    // Blue/green in staging: flip the Service from blue (2.3.1) to green (2.4.0). Blue's
    // pods stay, its counters stop moving: rate 0, which is no traffic.
    r.sandbox
        .store
        .modify(
            services(),
            "staging",
            "payments",
            &WriteOpts::controller("test"),
            |s| {
                s["spec"]["selector"] = json!({"app": "payments", "version": "green"});
                Ok(())
            },
        )
        .expect("flip selector");
    advance(&r, 150);
    let m = fetch(&r, "staging", "payments").await;
    assert_eq!(names(&m), ["2.3.1", "2.4.0"]);
    let blue = version(&m, "2.3.1");
    assert!(blue.error_ratio[0].1.is_some(), "blue had traffic");
    for i in 50..=60 {
        assert_eq!(blue.error_ratio[i].1, None, "no traffic is not 0 %");
        assert_eq!(blue.p99_seconds[i].1, None);
        assert_eq!(blue.rps[i].1, Some(0.0));
    }
    let green = version(&m, "2.4.0");
    assert!(green.error_ratio[0].1.is_none(), "green had no traffic");
    assert!(last(&green.error_ratio).is_some());
    let sum = summary(&m);
    assert!(!sum[0].recent_traffic && sum[0].error_ratio.is_some());
    assert!(sum[1].recent_traffic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaled_down_version_ends_in_none() {
    let r = sandbox().await;
    r.sandbox
        .store
        .modify(
            deployments(),
            "production",
            "checkout-canary",
            &WriteOpts::controller("test"),
            |d| {
                d["spec"]["replicas"] = json!(0);
                Ok(())
            },
        )
        .expect("scale to 0");
    // Until its pods are gone (terminating pods keep flat counters: rate 0, not absent).
    let canary_pods = || {
        let (list, _) = r.sandbox.store.list(pods(), Some("production"));
        list.iter()
            .filter(|p| name_of(p).starts_with("checkout-canary-"))
            .count()
    };
    for _ in 0..120 {
        if canary_pods() == 0 {
            break;
        }
        advance(&r, 1);
    }
    assert_eq!(canary_pods(), 0, "canary pods deleted");
    advance(&r, 120);
    let m = fetch(&r, "production", "checkout").await;
    assert_eq!(names(&m), ["1.4.2", "1.5.0"], "1.5.0 had traffic earlier");
    let canary = version(&m, "1.5.0");
    assert!(canary.error_ratio[0].1.is_some());
    assert_eq!(canary.rps.len(), 61, "still aligned");
    assert_eq!(last(&canary.error_ratio), None);
    assert_eq!(last(&canary.rps), None);
    assert_eq!(last(&canary.p99_seconds), None);
    assert!(last(&version(&m, "1.4.2").error_ratio).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_series_and_hostile_labels_are_no_data() {
    let r = sandbox().await;
    assert!(fetch(&r, "nowhere", "checkout").await.versions.is_empty());
    for (ns, app) in [
        (r#"production"} or vector(1) #"#, "checkout"),
        (r"production\", r#"check"out"#),
        ("prod\nuction", r#"\"\\{app="x"}"#),
    ] {
        let m = fetch(&r, ns, app).await;
        assert!(m.versions.is_empty(), "{ns:?}/{app:?}: {:?}", names(&m));
    }
}

#[tokio::test]
async fn an_unreachable_prometheus_fails_fast_and_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let client = MetricsClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
    let t = Instant::now();
    let e = client
        .fetch_app("production", "checkout", 1_000, 1_300, 5)
        .await
        .expect_err("closed port");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(matches!(e, MetricsError::Unreachable { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("Prometheus at http://127.0.0.1:{port} unreachable: connection refused")
    );
}

#[tokio::test]
async fn a_silent_prometheus_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    // Accept and never answer.
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let client = MetricsClient::new(&format!("http://{addr}"))
        .expect("client")
        .with_timeout(Duration::from_millis(300));
    let t = Instant::now();
    let e = client
        .fetch_app("production", "checkout", 1_000, 1_300, 5)
        .await
        .expect_err("silent server");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(
        e.to_string(),
        format!("Prometheus at http://{addr} did not answer within 0.3 s")
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_is_not_prometheus_says_so() {
    let r = sandbox().await;
    // The Kubernetes API listener: JSON, but not the Prometheus API.
    let client = MetricsClient::new(&r.url()).expect("client");
    let e = client
        .fetch_app("production", "checkout", 1_000, 1_300, 5)
        .await
        .expect_err("not prometheus");
    assert!(matches!(e, MetricsError::BadResponse { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "unexpected answer from Prometheus at {}: HTTP 404 Not Found, not a Prometheus API \
             response (is the URL the base of the Prometheus API?)",
            r.url()
        )),
        "{e}"
    );
}
