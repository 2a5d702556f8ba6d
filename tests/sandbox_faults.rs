//! Faults, traffic routing and the clock: what drills and tests rely on. Faults are injected
//! through the sandbox's HTTP API and its CLI client; their effects are read back through
//! kubectl, the Prometheus API and pod logs, as an operator would see them.

mod common;

use std::time::Duration;

use common::{SandboxProc, eventually, http_post_json, http_request};
use serde_json::Value;

/// An instant query against the sandbox's Prometheus API: (labels, value) per series.
fn query(sb: &SandboxProc, q: &str) -> Vec<(Value, f64)> {
    let url = format!("{}/api/v1/query?query={}", sb.prometheus, url_escape(q));
    let (status, body) = http_request("GET", &url, "text/plain", "");
    assert_eq!(status, 200, "{q}: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let x = s["value"][1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN);
            (s["metric"].clone(), x)
        })
        .collect()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the series whose `version` label is `v`.
fn by_version(rows: &[(Value, f64)], v: &str) -> Option<f64> {
    rows.iter()
        .find(|(m, _)| m["version"] == v)
        .map(|(_, x)| *x)
}

fn error_ratio(sb: &SandboxProc, window: &str) -> Vec<(Value, f64)> {
    query(
        sb,
        &format!(
            r#"sum by (version) (rate(http_requests_total{{namespace="production",app="checkout",code=~"5.."}}[{window}])) / sum by (version) (rate(http_requests_total{{namespace="production",app="checkout"}}[{window}]))"#
        ),
    )
}

fn rate_share(sb: &SandboxProc, app: &str, window: &str) -> Vec<(Value, f64)> {
    query(
        sb,
        &format!(
            r#"sum by (version) (rate(http_requests_total{{namespace="production",app="{app}"}}[{window}])) / scalar(sum(rate(http_requests_total{{namespace="production",app="{app}"}}[{window}])))"#
        ),
    )
}

#[test]
fn an_error_fault_shows_in_metrics_and_in_the_logs() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        r#"{"namespace":"production","app":"checkout","version":"canary","kind":"errorRatio","value":0.3}"#,
    );
    // 120 simulated seconds.
    std::thread::sleep(Duration::from_secs(6));
    let rows = error_ratio(&sb, "90s");
    let canary = by_version(&rows, "1.5.0").expect("canary error ratio");
    assert!(
        (0.2..0.4).contains(&canary),
        "canary errors ≈ 30 %: {canary}"
    );
    let stable = by_version(&rows, "1.4.2").unwrap_or(0.0);
    assert!(stable < 0.02, "stable unaffected: {stable}");

    let pod = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=checkout,track=canary",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let logs = sb.kubectl_ok(&["logs", pod.trim(), "-n", "production", "--since=90s"]);
    let access: Vec<&str> = logs.lines().filter(|l| l.contains(" trace=")).collect();
    let errors = access
        .iter()
        .filter(|l| l.contains(" 500 ") || l.contains(" 503 "))
        .count();
    let share = errors as f64 / access.len().max(1) as f64;
    assert!(
        access.len() > 100,
        "the canary served traffic: {} lines",
        access.len()
    );
    assert!(
        (0.2..0.4).contains(&share),
        "about 30 % of logged requests failed: {share}"
    );
}

#[test]
fn the_fault_cli_adds_lists_and_clears() {
    let sb = SandboxProc::start(&[]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kockpit"))
            .args(["sandbox", "fault"])
            .args(args)
            .env("KUBECONFIG", sb.kubeconfig_path())
            .output()
            .expect("run kockpit");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(&[
        "add",
        "--env",
        "production",
        "--app",
        "checkout",
        "--version",
        "1.5.0",
        "--latency-ms",
        "400",
        "--duration",
        "600",
    ]);
    assert!(ok && out.contains("latency") && out.contains("f1"), "{out}");
    let (ok, out) = run(&[
        "add",
        "--env",
        "staging",
        "--app",
        "payments",
        "--crash-loop",
    ]);
    assert!(ok && out.contains("crashLoop"), "{out}");
    let (ok, out) = run(&["list"]);
    assert!(ok && out.lines().count() == 3, "{out}");
    let (ok, out) = run(&["clear", "f1"]);
    assert!(ok && out.contains("cleared fault f1"), "{out}");
    let (ok, out) = run(&["clear", "f1"]);
    assert!(!ok && out.contains("no fault with id f1"), "{out}");
    let (ok, out) = run(&[
        "add",
        "--env",
        "staging",
        "--app",
        "payments",
        "--error-ratio",
        "1.5",
    ]);
    assert!(
        !ok && out.contains("errorRatio must be within 0..1"),
        "{out}"
    );
    let (ok, out) = run(&["clear"]);
    assert!(ok && out.contains("cleared 1 fault(s)"), "{out}");
}

#[test]
fn crash_loop_and_readiness_faults_then_recovery() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let body = r#"{"namespace":"production","app":"payments","version":"green","kind":"crashLoop","durationSeconds":40}"#;
    http_post_json(&format!("{}/sandbox/v1/faults", sb.url), body);
    eventually(Duration::from_secs(20), "green pods crash-looping", || {
        let pods = sb.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "production",
            "-l",
            "app=payments,version=green",
        ]);
        (pods.matches("CrashLoopBackOff").count() == 2).then_some(())
    });
    let blue = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=payments,version=blue",
    ]);
    assert!(
        !blue.contains("CrashLoopBackOff"),
        "blue unaffected:\n{blue}"
    );
    // The fault ends after 40 s; the next restart stays up.
    eventually(Duration::from_secs(30), "green pods Ready again", || {
        let r = sb.jsonpath(
            "deploy",
            "payments-green",
            "production",
            "{.status.readyReplicas}",
        );
        (r == "2").then_some(())
    });
    let restarts = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=payments,version=green",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].restartCount}",
    ]);
    assert!(
        restarts
            .split_whitespace()
            .all(|r| r.parse::<i64>().unwrap_or(0) >= 1),
        "{restarts}"
    );

    let body =
        r#"{"namespace":"production","app":"payments","version":"blue","kind":"readinessFailure"}"#;
    let fault: Value = serde_json::from_str(&http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        body,
    ))
    .expect("fault");
    eventually(Duration::from_secs(10), "blue endpoints not ready", || {
        let ep = sb.kubectl_ok(&[
            "get",
            "endpoints",
            "payments",
            "-n",
            "production",
            "-o",
            "json",
        ]);
        let v: Value = serde_json::from_str(&ep).ok()?;
        (v["subsets"][0]["notReadyAddresses"]
            .as_array()
            .map(Vec::len)
            == Some(2))
        .then_some(())
    });
    let id = fault["id"].as_str().expect("id");
    let (status, _) = http_request(
        "DELETE",
        &format!("{}/sandbox/v1/faults/{id}", sb.url),
        "application/json",
        "",
    );
    assert_eq!(status, 200);
    eventually(
        Duration::from_secs(10),
        "blue endpoints ready again",
        || {
            let ep = sb.jsonpath(
                "endpoints",
                "payments",
                "production",
                "{.subsets[0].addresses[*].ip}",
            );
            (ep.split_whitespace().count() == 2).then_some(())
        },
    );
}

#[test]
fn a_slow_rollout_holds_new_pods_back() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        r#"{"namespace":"staging","app":"frontend","kind":"slowRollout","value":120}"#,
    );
    sb.kubectl_ok(&[
        "set",
        "image",
        "deployment/frontend",
        "frontend=registry.local/frontend:3.3.0",
        "-n",
        "staging",
    ]);
    let err = sb.kubectl_err(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "staging",
        "--timeout=2s",
    ]);
    assert!(err.contains("timed out"), "{err}");
    // 120 simulated seconds later the new pods are Ready.
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "staging",
        "--timeout=30s",
    ]);
}

#[test]
fn traffic_follows_weights_selectors_and_readiness() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    std::thread::sleep(Duration::from_secs(4));
    let share = rate_share(&sb, "checkout", "60s");
    let canary = by_version(&share, "1.5.0").expect("canary share");
    assert!(
        (0.05..0.15).contains(&canary),
        "HTTPRoute 90/10: canary share {canary}"
    );

    sb.kubectl_ok(&["patch", "httproute", "checkout", "-n", "production", "--type=json", "-p",
        r#"[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":50},{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":50}]"#]);
    std::thread::sleep(Duration::from_secs(4));
    let share = rate_share(&sb, "checkout", "60s");
    let canary = by_version(&share, "1.5.0").expect("canary share");
    assert!(
        (0.4..0.6).contains(&canary),
        "HTTPRoute 50/50: canary share {canary}"
    );

    // Blue/green: the Service selector decides.
    sb.kubectl_ok(&[
        "patch",
        "service",
        "payments",
        "-n",
        "production",
        "-p",
        r#"{"spec":{"selector":{"version":"green"}}}"#,
    ]);
    std::thread::sleep(Duration::from_secs(4));
    let share = rate_share(&sb, "payments", "60s");
    assert!(
        by_version(&share, "2.4.0").unwrap_or(0.0) > 0.95,
        "all traffic on green: {share:?}"
    );

    // A version with no Ready pods gets nothing.
    sb.kubectl_ok(&[
        "scale",
        "deployment/payments-green",
        "--replicas=0",
        "-n",
        "production",
    ]);
    std::thread::sleep(Duration::from_secs(4));
    let rate = query(
        &sb,
        r#"sum by (version) (rate(http_requests_total{namespace="production",app="payments"}[10s]))"#,
    );
    assert!(by_version(&rate, "2.4.0").unwrap_or(0.0) == 0.0, "{rate:?}");
}

#[test]
fn a_manual_clock_and_seed_make_runs_reproducible() {
    let start = "2026-11-20T10:00:00Z";
    let args = [
        "--manual-clock",
        "--clock-start",
        start,
        "--backfill",
        "300",
        "--seed",
        "7",
    ];
    let a = SandboxProc::start(&args);
    let b = SandboxProc::start(&args);
    let other = SandboxProc::start(&[
        "--manual-clock",
        "--clock-start",
        start,
        "--backfill",
        "300",
        "--seed",
        "8",
    ]);
    for sb in [&a, &b, &other] {
        let (status, body) = http_request(
            "POST",
            &format!("{}/sandbox/v1/clock", sb.url),
            "application/json",
            r#"{"advanceSeconds":30}"#,
        );
        assert_eq!(status, 200, "{body}");
    }
    std::thread::sleep(Duration::from_millis(600));
    let q = r#"sum by (version) (increase(http_requests_total{namespace="production",app="checkout"}[5m]))"#;
    let (qa, qb, qo) = (query(&a, q), query(&b, q), query(&other, q));
    assert!(!qa.is_empty());
    assert_eq!(
        format!("{qa:?}"),
        format!("{qb:?}"),
        "same seed, same clock: same traffic"
    );
    assert_ne!(
        format!("{qa:?}"),
        format!("{qo:?}"),
        "another seed: other traffic"
    );
    let (_, clock) = http_request("GET", &format!("{}/sandbox/v1/clock", a.url), "", "");
    assert!(clock.contains("2026-11-20T10:00:30Z"), "{clock}");
}

#[test]
fn traffic_follows_replica_ratio_ingress_nginx_and_rollout_weights() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    std::thread::sleep(Duration::from_secs(4));
    let canary = |app: &str, version: &str| {
        let share = rate_share(&sb, app, "60s");
        by_version(&share, version).unwrap_or(0.0)
    };
    // Replica ratio: 3 stable pods + 1 canary behind Service `search`.
    let s = canary("search", "4.2.0");
    assert!((0.15..0.35).contains(&s), "search 3:1, canary share {s}");
    // ingress-nginx: canary-weight 10 of 100.
    let s = canary("catalog", "7.1.0");
    assert!((0.05..0.15).contains(&s), "catalog canary-weight 10: {s}");
    // Argo Rollout paused at setWeight 20.
    let s = canary("cart", "2.1.0");
    assert!((0.13..0.27).contains(&s), "cart at 20 %: {s}");

    // Move every weight at once.
    sb.kubectl_ok(&[
        "scale",
        "deployment/search-canary",
        "--replicas=3",
        "-n",
        "production",
    ]);
    sb.kubectl_ok(&[
        "annotate",
        "ingress",
        "catalog-canary",
        "-n",
        "production",
        "--overwrite",
        "nginx.ingress.kubernetes.io/canary-weight=50",
    ]);
    sb.kubectl_ok(&[
        "patch",
        "rollout",
        "cart",
        "-n",
        "production",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"abort":true}}"#,
    ]);
    std::thread::sleep(Duration::from_secs(4));
    let s = canary("search", "4.2.0");
    assert!((0.4..0.6).contains(&s), "search 3:3, canary share {s}");
    let s = canary("catalog", "7.1.0");
    assert!((0.4..0.6).contains(&s), "catalog canary-weight 50: {s}");
    let s = canary("cart", "2.1.0");
    assert!(s < 0.02, "cart aborted: canary share {s}");

    // A weight that is not a number counts as 0 (and breaks nothing); a full promote moves
    // everything to the new version.
    sb.kubectl_ok(&[
        "annotate",
        "ingress",
        "catalog-canary",
        "-n",
        "production",
        "--overwrite",
        "nginx.ingress.kubernetes.io/canary-weight=half",
    ]);
    sb.kubectl_ok(&[
        "patch",
        "rollout",
        "cart",
        "-n",
        "production",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"abort":false,"promoteFull":true}}"#,
    ]);
    std::thread::sleep(Duration::from_secs(4));
    let s = canary("catalog", "7.1.0");
    assert!(s < 0.02, "catalog canary-weight 'half' = 0: {s}");
    let s = canary("cart", "2.1.0");
    assert!(s > 0.9, "cart fully promoted: {s}");
    assert_eq!(
        sb.jsonpath("rollout", "cart", "production", "{.status.phase}"),
        "Healthy"
    );
}

#[test]
fn traffic_follows_traefik_and_istio_weights() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    std::thread::sleep(Duration::from_secs(4));
    let canary = |app: &str, version: &str| {
        let share = rate_share(&sb, app, "20s");
        by_version(&share, version).unwrap_or(0.0)
    };
    // TraefikService inventory: weighted services 90/10.
    let s = canary("inventory", "5.3.0");
    assert!(
        (0.04..0.16).contains(&s),
        "inventory 90/10: canary share {s}"
    );
    // VirtualService reviews: subsets 90/10 of one Service (not its 3:1 replica ratio).
    let s = canary("reviews", "1.9.0");
    assert!((0.04..0.16).contains(&s), "reviews 90/10: canary share {s}");

    sb.kubectl_ok(&[
        "patch",
        "traefikservice",
        "inventory",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"spec":{"weighted":{"services":[{"name":"inventory-stable","port":80,"weight":40},{"name":"inventory-canary","port":80,"weight":60}]}}}"#,
    ]);
    sb.kubectl_ok(&[
        "patch",
        "virtualservice",
        "reviews",
        "-n",
        "production",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/http/0/route/0/weight","value":50},{"op":"replace","path":"/spec/http/0/route/1/weight","value":50}]"#,
    ]);
    // 20 simulated seconds later, the 20 s window holds only the new split.
    std::thread::sleep(Duration::from_secs(2));
    eventually(
        Duration::from_secs(10),
        "new weights in the 20 s window",
        || {
            let (i, r) = (canary("inventory", "5.3.0"), canary("reviews", "1.9.0"));
            ((0.45..0.75).contains(&i) && (0.35..0.65).contains(&r)).then_some(())
        },
    );
    let s = canary("inventory", "5.3.0");
    assert!(
        (0.45..0.75).contains(&s),
        "inventory 40/60: canary share {s}"
    );
    let s = canary("reviews", "1.9.0");
    assert!((0.35..0.65).contains(&s), "reviews 50/50: canary share {s}");
    // Staging is untouched.
    let staging = query(
        &sb,
        r#"sum by (version) (rate(http_requests_total{namespace="staging",app="reviews"}[20s])) / scalar(sum(rate(http_requests_total{namespace="staging",app="reviews"}[20s])))"#,
    );
    let s = by_version(&staging, "1.9.0").unwrap_or(0.0);
    assert!(s < 0.3, "staging reviews still 90/10: {s}");

    // A subset no DestinationRule defines gets nothing: all of reviews goes to stable.
    sb.kubectl_ok(&[
        "patch",
        "virtualservice",
        "reviews",
        "-n",
        "production",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/http/0/route/1/destination/subset","value":"v3"}]"#,
    ]);
    std::thread::sleep(Duration::from_secs(2));
    eventually(Duration::from_secs(10), "reviews all on stable", || {
        (canary("reviews", "1.9.0") < 0.02).then_some(())
    });
}

#[test]
fn an_api_delay_holds_writes_in_its_namespace_only() {
    let sb = SandboxProc::start(&[]);
    let fault: Value = serde_json::from_str(&http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        r#"{"namespace":"staging","kind":"apiDelay","value":3}"#,
    ))
    .expect("fault");
    assert_eq!(fault["kind"], "apiDelay");
    let annotate = |ns: &str, v: &str| {
        let started = std::time::Instant::now();
        sb.kubectl_ok(&[
            "annotate",
            "deployment",
            "frontend",
            "-n",
            ns,
            "--overwrite",
            &format!("kockpit.example/drill={v}"),
        ]);
        started.elapsed()
    };
    // A write in staging waits; meanwhile reads there, and writes elsewhere, go through.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = tx.send(annotate("staging", "one"));
        });
        std::thread::sleep(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let ann = sb.jsonpath(
            "deploy",
            "frontend",
            "staging",
            r"{.metadata.annotations.kockpit\.example/drill}",
        );
        assert_eq!(ann, "", "the held write has not happened yet");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "reads are not held"
        );
        let elsewhere = annotate("production", "one");
        assert!(elsewhere < Duration::from_millis(1500), "{elsewhere:?}");
    });
    let held = rx.recv().expect("delayed write");
    assert!(held >= Duration::from_secs(3), "{held:?}");
    assert_eq!(
        sb.jsonpath(
            "deploy",
            "frontend",
            "staging",
            r"{.metadata.annotations.kockpit\.example/drill}",
        ),
        "one"
    );
    let id = fault["id"].as_str().expect("id");
    let (status, _) = http_request(
        "DELETE",
        &format!("{}/sandbox/v1/faults/{id}", sb.url),
        "application/json",
        "",
    );
    assert_eq!(status, 200);
    assert!(annotate("staging", "two") < Duration::from_millis(1500));
}
