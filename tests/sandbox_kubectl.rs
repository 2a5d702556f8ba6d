//! Real kubectl against the real `kockpit sandbox` binary: every command an operator runs
//! during a release must work, and errors must read as they do against a real cluster.

mod common;

use std::time::Duration;

use common::{SandboxProc, eventually, line_reader};
use serde_json::Value;

/// A fast simulation: readiness delays and crash back-offs pass 20x quicker.
fn fast() -> SandboxProc {
    SandboxProc::start(&["--speed", "20"])
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("kubectl printed JSON")
}

#[test]
fn get_lists_the_seeded_world_with_real_columns() {
    let sb = fast();
    let ns = sb.kubectl_ok(&["get", "ns"]);
    assert!(ns.contains("production") && ns.contains("staging"), "{ns}");
    assert!(ns.contains("STATUS") && ns.contains("Active"), "{ns}");

    let deploy = sb.kubectl_ok(&["get", "deploy", "-n", "production"]);
    assert!(deploy.contains("UP-TO-DATE"), "{deploy}");
    for name in [
        "checkout ",
        "checkout-canary",
        "payments-blue",
        "payments-green",
        "frontend",
        "search ",
        "search-canary",
        "catalog ",
        "catalog-canary",
        "inventory ",
        "inventory-canary",
        "reviews ",
        "reviews-canary",
    ] {
        assert!(deploy.contains(name), "missing {name} in\n{deploy}");
    }
    assert!(
        deploy.contains("3/3"),
        "checkout has 3 ready replicas in production:\n{deploy}"
    );

    let pods = sb.kubectl_ok(&["get", "pods", "-n", "production", "-o", "wide"]);
    assert!(pods.contains("Running") && pods.contains("1/1"), "{pods}");
    assert!(pods.contains("sandbox-node-1"), "{pods}");
    // Header; checkout 3+1, payments 2+2, frontend 2, search 3+1, catalog 3+1, cart 4+1,
    // inventory 3+1, reviews 3+1.
    assert_eq!(
        pods.lines().count(),
        1 + 3 + 1 + 2 + 2 + 2 + 3 + 1 + 3 + 1 + 4 + 1 + 3 + 1 + 3 + 1,
        "{pods}"
    );

    let rs = sb.kubectl_ok(&["get", "rs", "-n", "production"]);
    assert!(rs.contains("DESIRED") && rs.contains("frontend-"), "{rs}");
    let svc = sb.kubectl_ok(&["get", "svc", "-n", "production"]);
    assert!(svc.contains("ClusterIP") && svc.contains("80/TCP"), "{svc}");
    let staging = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "staging",
        "-l",
        "app=checkout,track in (stable)",
        "-o",
        "name",
    ]);
    assert_eq!(
        staging.lines().count(),
        2,
        "staging runs 2 stable checkout pods:\n{staging}"
    );
    let routes = sb.jsonpath(
        "httproute",
        "checkout",
        "production",
        "{.spec.rules[0].backendRefs[*].weight}",
    );
    assert_eq!(routes.trim(), "90 10");
}

#[test]
fn describe_shows_replica_sets_and_events() {
    let sb = fast();
    let out = sb.kubectl_ok(&["describe", "deployment", "frontend", "-n", "production"]);
    assert!(out.contains("NewReplicaSet:"), "{out}");
    assert!(out.contains("registry.local/frontend:3.2.0"), "{out}");
    assert!(
        out.contains("ScalingReplicaSet"),
        "events are listed:\n{out}"
    );
    let pod = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=payments",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let out = sb.kubectl_ok(&["describe", "pod", pod.trim(), "-n", "production"]);
    assert!(out.contains("Status:") && out.contains("Running"), "{out}");
    assert!(out.contains("Readiness:"), "{out}");
}

#[test]
fn rollout_history_set_image_status_and_undo() {
    let sb = fast();
    let hist = sb.kubectl_ok(&[
        "rollout",
        "history",
        "deployment/frontend",
        "-n",
        "production",
    ]);
    assert!(hist.contains("deploy frontend 3.0.0"), "{hist}");
    assert!(
        hist.contains("frontend=registry.local/frontend:3.2.0"),
        "{hist}"
    );

    sb.kubectl_ok(&[
        "set",
        "image",
        "deployment/frontend",
        "frontend=registry.local/frontend:3.3.0",
        "-n",
        "production",
    ]);
    let status = sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    assert!(
        status.contains("deployment \"frontend\" successfully rolled out"),
        "{status}"
    );
    let image = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=frontend",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert_eq!(
        image.split_whitespace().collect::<Vec<_>>(),
        ["registry.local/frontend:3.3.0"; 2],
        "old pods are gone"
    );
    let hist = sb.kubectl_ok(&[
        "rollout",
        "history",
        "deployment/frontend",
        "-n",
        "production",
    ]);
    assert!(hist.lines().any(|l| l.starts_with("4 ")), "{hist}");

    // undo: back to 3.2.0 as revision 5.
    let out = sb.kubectl_ok(&["rollout", "undo", "deployment/frontend", "-n", "production"]);
    assert!(out.contains("rolled back"), "{out}");
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    let img = sb.jsonpath(
        "deploy",
        "frontend",
        "production",
        "{.spec.template.spec.containers[0].image}",
    );
    assert_eq!(img, "registry.local/frontend:3.2.0");
    let rev = sb.jsonpath(
        "deploy",
        "frontend",
        "production",
        "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    );
    assert_eq!(rev, "5");

    // undo --to-revision=1: 3.0.0 with its own change-cause back.
    sb.kubectl_ok(&[
        "rollout",
        "undo",
        "deployment/frontend",
        "-n",
        "production",
        "--to-revision=1",
    ]);
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    let d = json(&sb.kubectl_ok(&[
        "get",
        "deploy",
        "frontend",
        "-n",
        "production",
        "-o",
        "json",
    ]));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/frontend:3.0.0"
    );
    assert_eq!(
        d["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "deploy frontend 3.0.0"
    );
    let hist = sb.kubectl_ok(&[
        "rollout",
        "history",
        "deployment/frontend",
        "-n",
        "production",
    ]);
    assert!(
        !hist.lines().any(|l| l.starts_with("1 ")),
        "revision 1 became revision 6:\n{hist}"
    );
    assert!(
        hist.lines()
            .any(|l| l.starts_with("6 ") && l.contains("deploy frontend 3.0.0")),
        "{hist}"
    );

    // A revision that does not exist is an error naming it.
    let err = sb.kubectl_err(&[
        "rollout",
        "undo",
        "deployment/frontend",
        "-n",
        "production",
        "--to-revision=42",
    ]);
    assert!(
        err.contains("unable to find specified revision 42"),
        "{err}"
    );
}

#[test]
fn pause_blocks_undo_and_resume_restart_work() {
    let sb = fast();
    sb.kubectl_ok(&[
        "rollout",
        "pause",
        "deployment/frontend",
        "-n",
        "production",
    ]);
    let paused = sb.jsonpath("deploy", "frontend", "production", "{.spec.paused}");
    assert_eq!(paused, "true");
    let err = sb.kubectl_err(&["rollout", "undo", "deployment/frontend", "-n", "production"]);
    assert!(err.contains("paused"), "{err}");
    // A paused Deployment does not roll out a new template.
    sb.kubectl_ok(&[
        "set",
        "image",
        "deployment/frontend",
        "frontend=registry.local/frontend:9.9.9",
        "-n",
        "production",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let images = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=frontend",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(!images.contains("9.9.9"), "{images}");
    sb.kubectl_ok(&[
        "rollout",
        "resume",
        "deployment/frontend",
        "-n",
        "production",
    ]);
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    let images = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=frontend",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(
        images.split_whitespace().all(|i| i.ends_with("9.9.9")),
        "{images}"
    );

    let before = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=payments,version=blue",
        "-o",
        "name",
    ]);
    sb.kubectl_ok(&[
        "rollout",
        "restart",
        "deployment/payments-blue",
        "-n",
        "production",
    ]);
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/payments-blue",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    eventually(
        Duration::from_secs(20),
        "restarted pods replace the old ones",
        || {
            let after = sb.kubectl_ok(&[
                "get",
                "pods",
                "-n",
                "production",
                "-l",
                "app=payments,version=blue",
                "-o",
                "name",
            ]);
            (after.lines().count() == 2 && before.lines().all(|p| !after.contains(p))).then_some(())
        },
    );
}

#[test]
fn scale_and_all_three_patch_types() {
    let sb = fast();
    sb.kubectl_ok(&[
        "scale",
        "deployment/checkout-canary",
        "--replicas=2",
        "-n",
        "production",
    ]);
    eventually(Duration::from_secs(20), "two canary pods ready", || {
        let r = sb.jsonpath(
            "deploy",
            "checkout-canary",
            "production",
            "{.status.readyReplicas}",
        );
        (r == "2").then_some(())
    });

    // Blue/green flip three ways.
    sb.kubectl_ok(&[
        "patch",
        "service",
        "payments",
        "-n",
        "production",
        "-p",
        r#"{"spec":{"selector":{"version":"green"}}}"#,
    ]);
    let sel = sb.jsonpath("svc", "payments", "production", "{.spec.selector.version}");
    assert_eq!(sel, "green");
    sb.kubectl_ok(&[
        "patch",
        "service",
        "payments",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"version":"blue"}}}"#,
    ]);
    let sel = sb.jsonpath("svc", "payments", "production", "{.spec.selector.version}");
    assert_eq!(sel, "blue");
    sb.kubectl_ok(&["patch", "service", "payments", "-n", "production", "--type=json", "-p", r#"[{"op":"test","path":"/spec/selector/version","value":"blue"},{"op":"replace","path":"/spec/selector/version","value":"green"}]"#]);
    let sel = sb.jsonpath("svc", "payments", "production", "{.spec.selector.version}");
    assert_eq!(sel, "green");
    // Endpoints follow the selector.
    eventually(
        Duration::from_secs(10),
        "endpoints point at green pods",
        || {
            let ep = sb.jsonpath(
                "endpoints",
                "payments",
                "production",
                "{.subsets[0].addresses[*].targetRef.name}",
            );
            (ep.split_whitespace().count() == 2
                && ep
                    .split_whitespace()
                    .all(|p| p.starts_with("payments-green-")))
            .then_some(())
        },
    );

    // Canary weight step on the HTTPRoute (custom resource: merge patch).
    sb.kubectl_ok(&["patch", "httproute", "checkout", "-n", "production", "--type=merge", "-p",
        r#"{"spec":{"rules":[{"matches":[{"path":{"type":"PathPrefix","value":"/"}}],"backendRefs":[{"name":"checkout-stable","port":80,"weight":75},{"name":"checkout-canary","port":80,"weight":25}]}]}}"#]);
    let w = sb.jsonpath(
        "httproute",
        "checkout",
        "production",
        "{.spec.rules[0].backendRefs[*].weight}",
    );
    assert_eq!(w, "75 25");
    // Strategic merge on a custom resource is refused with 415, as a real server does.
    let err = sb.kubectl_err(&[
        "patch",
        "httproute",
        "checkout",
        "-n",
        "production",
        "-p",
        r#"{"metadata":{"labels":{"tier":"edge"}}}"#,
    ]);
    assert!(
        err.contains("UnsupportedMediaType") || err.contains("unknown format"),
        "{err}"
    );
}

#[test]
fn apply_server_side_creates_then_updates() {
    let sb = fast();
    let manifest = sb.dir.path().join("ledger.yaml");
    let write = |image: &str| {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: apps/v1
kind: Deployment
metadata:
  name: ledger
  namespace: production
  labels: {{app: ledger}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: ledger}}
  template:
    metadata:
      labels: {{app: ledger}}
    spec:
      containers:
      - name: ledger
        image: {image}
"
            ),
        )
        .expect("write manifest");
    };
    write("registry.local/ledger:1.0.0");
    let out = sb.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        manifest.to_str().unwrap_or_default(),
    ]);
    assert!(out.contains("serverside-applied"), "{out}");
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/ledger",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    write("registry.local/ledger:1.1.0");
    sb.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        manifest.to_str().unwrap_or_default(),
    ]);
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/ledger",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    let d = json(&sb.kubectl_ok(&["get", "deploy", "ledger", "-n", "production", "-o", "json"]));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/ledger:1.1.0"
    );
    // Defaults the real server fills in.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
}

#[test]
fn logs_tail_and_follow() {
    let sb = fast();
    let pod = sb.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "production",
        "-l",
        "app=checkout,track=stable",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let pod = pod.trim();
    let tail = sb.kubectl_ok(&["logs", pod, "-n", "production", "--tail=5"]);
    assert_eq!(tail.lines().count(), 5, "{tail}");
    assert!(
        tail.lines()
            .all(|l| l.contains(" GET ") || l.contains(" POST ")),
        "access-log lines:\n{tail}"
    );

    let mut child = sb.kubectl_spawn(&[
        "logs",
        "-f",
        pod,
        "-n",
        "production",
        "--tail=1",
        "--timestamps",
    ]);
    let rx = line_reader(&mut child);
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the tail line");
    let mut later = Vec::new();
    while later.len() < 3 {
        later.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("new lines arrive while following"),
        );
    }
    let _ = child.kill();
    let ts = |l: &str| l.split_whitespace().next().unwrap_or_default().to_string();
    assert!(
        later.iter().all(|l| ts(l) > ts(&first)),
        "followed lines are newer: {first} / {later:?}"
    );

    // Unknown container: the apiserver's 400.
    let err = sb.kubectl_err(&["logs", pod, "-n", "production", "-c", "sidecar"]);
    assert!(
        err.contains("container sidecar is not valid for pod"),
        "{err}"
    );
}

#[test]
fn crash_looping_image_shows_backoff_and_previous_logs() {
    let sb = fast();
    sb.kubectl_ok(&[
        "set",
        "image",
        "deployment/checkout-canary",
        "checkout=registry.local/checkout:1.5.1-bad",
        "-n",
        "production",
    ]);
    let pod = eventually(
        Duration::from_secs(30),
        "a crash-looping canary pod",
        || {
            let pods = sb.kubectl_ok(&[
                "get",
                "pods",
                "-n",
                "production",
                "-l",
                "app=checkout,track=canary",
            ]);
            pods.lines()
                .find(|l| l.contains("CrashLoopBackOff"))
                .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        },
    );
    let logs = sb.kubectl_ok(&["logs", &pod, "-n", "production", "--previous"]);
    assert!(logs.contains("panic:"), "{logs}");
    // The old canary keeps serving: maxUnavailable 0.
    let ready = sb.jsonpath(
        "deploy",
        "checkout-canary",
        "production",
        "{.status.availableReplicas}",
    );
    assert_eq!(ready, "1");
    let err = sb.kubectl_err(&[
        "rollout",
        "status",
        "deployment/checkout-canary",
        "-n",
        "production",
        "--timeout=2s",
    ]);
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn get_watch_sees_changes() {
    let sb = fast();
    let mut child = sb.kubectl_spawn(&["get", "deploy", "-n", "staging", "-w", "-o", "name"]);
    let rx = line_reader(&mut child);
    // Initial listing first.
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("initial list"),
        );
    }
    sb.kubectl_ok(&[
        "scale",
        "deployment/frontend",
        "--replicas=3",
        "-n",
        "staging",
    ]);
    let got = eventually(
        Duration::from_secs(10),
        "a watch event for frontend",
        || {
            rx.recv_timeout(Duration::from_millis(200))
                .ok()
                .filter(|l| l.contains("frontend"))
        },
    );
    let _ = child.kill();
    assert_eq!(got, "deployment.apps/frontend");
}

#[test]
fn auth_can_i_answers() {
    let sb = fast();
    assert_eq!(
        sb.kubectl_ok(&["auth", "can-i", "patch", "deployments", "-n", "production"])
            .trim(),
        "yes"
    );
    assert_eq!(
        sb.kubectl_ok(&[
            "auth",
            "can-i",
            "update",
            "deployments/scale",
            "-n",
            "production"
        ])
        .trim(),
        "yes"
    );
}

#[test]
fn errors_read_like_a_real_cluster() {
    let sb = fast();
    let err = sb.kubectl_err(&["get", "deploy", "does-not-exist", "-n", "production"]);
    assert!(
        err.contains("Error from server (NotFound): deployments.apps \"does-not-exist\" not found"),
        "{err}"
    );
    let err = sb.kubectl_err(&[
        "patch",
        "deployment",
        "checkout",
        "-n",
        "production",
        "--type=json",
        "-p",
        r#"{"op":"replace"}"#,
    ]);
    assert!(!err.is_empty(), "bad patch is an error");
    let err = sb.kubectl_err(&[
        "patch",
        "deployment",
        "checkout",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":-1}}"#,
    ]);
    assert!(
        err.contains("Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );
    let err = sb.kubectl_err(&[
        "patch",
        "deployment",
        "checkout",
        "-n",
        "production",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":99}]"#,
    ]);
    assert!(err.contains("the server rejected our request"), "{err}");
    let err = sb.kubectl_err(&["get", "pods", "-n", "production", "-l", "app===checkout"]);
    assert!(err.contains("unable to parse requirement"), "{err}");
    // The server is still fine.
    sb.kubectl_ok(&["get", "pods", "-n", "production"]);
}

/// The columns of a `kubectl get` header line.
fn header(out: &str) -> Vec<&str> {
    out.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// The cells of the row whose first cell is `name`.
fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_default()
}

#[test]
fn ingresses_list_with_their_columns_and_take_annotation_patches() {
    let sb = fast();
    let out = sb.kubectl_ok(&["get", "ingress", "-n", "production"]);
    assert_eq!(
        header(&out),
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        "{out}"
    );
    for name in ["catalog", "catalog-canary"] {
        assert_eq!(
            row(&out, name)[1..5],
            [
                "nginx",
                "catalog.production.example.internal",
                "127.0.0.1",
                "80"
            ],
            "{out}"
        );
    }
    // One object by its short name, also as a Table.
    let one = sb.kubectl_ok(&["get", "ing", "catalog-canary", "-n", "staging"]);
    assert_eq!(header(&one).len(), 6, "{one}");
    assert_eq!(
        row(&one, "catalog-canary")[2],
        "catalog.staging.example.internal"
    );

    let weight = |sb: &SandboxProc| {
        sb.jsonpath(
            "ingress",
            "catalog-canary",
            "production",
            r"{.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary-weight}",
        )
    };
    assert_eq!(weight(&sb), "10");
    assert_eq!(
        sb.jsonpath(
            "ingress",
            "catalog-canary",
            "production",
            r"{.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary}",
        ),
        "true"
    );
    sb.kubectl_ok(&[
        "annotate",
        "ingress",
        "catalog-canary",
        "-n",
        "production",
        "--overwrite",
        "nginx.ingress.kubernetes.io/canary-weight=40",
    ]);
    assert_eq!(weight(&sb), "40");
    // Strategic merge patch (a built-in kind), then a JSON merge patch.
    sb.kubectl_ok(&[
        "patch",
        "ingress",
        "catalog-canary",
        "-n",
        "production",
        "-p",
        r#"{"metadata":{"annotations":{"nginx.ingress.kubernetes.io/canary-weight":"60"}}}"#,
    ]);
    assert_eq!(weight(&sb), "60");
    sb.kubectl_ok(&[
        "patch",
        "ingress",
        "catalog-canary",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"nginx.ingress.kubernetes.io/canary-weight":"oops"}}}"#,
    ]);
    assert_eq!(weight(&sb), "oops");
    // Annotation values are strings: a number is refused, as by a real server.
    sb.kubectl_err(&[
        "patch",
        "ingress",
        "catalog-canary",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"nginx.ingress.kubernetes.io/canary-weight":5}}}"#,
    ]);
    // The backend is a Service of the app.
    assert_eq!(
        sb.jsonpath(
            "ingress",
            "catalog-canary",
            "production",
            "{.spec.rules[0].http.paths[0].backend.service.name}:{.spec.rules[0].http.paths[0].backend.service.port.number}",
        ),
        "catalog-canary:80"
    );
}

/// (phase, currentStepIndex, canary weight) of the cart Rollout.
fn cart_state(sb: &SandboxProc, ns: &str) -> (String, String, String) {
    let out = sb.jsonpath(
        "rollout",
        "cart",
        ns,
        "{.status.phase} {.status.currentStepIndex} {.status.canary.weights.canary.weight}",
    );
    let mut it = out.split_whitespace().map(str::to_string);
    (
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    )
}

#[test]
fn rollouts_list_and_follow_the_plugin_verbs() {
    let sb = fast();
    let res = sb.kubectl_ok(&["api-resources", "--api-group=argoproj.io"]);
    assert!(
        res.contains("rollouts") && res.contains(" ro ") && res.contains("Rollout"),
        "{res}"
    );
    let out = sb.kubectl_ok(&["get", "rollouts", "-A"]);
    assert_eq!(
        header(&out),
        [
            "NAMESPACE",
            "NAME",
            "DESIRED",
            "CURRENT",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE"
        ],
        "{out}"
    );
    let prod = sb.kubectl_ok(&["get", "ro", "cart", "-n", "production"]);
    assert_eq!(row(&prod, "cart")[1..5], ["4", "5", "1", "5"], "{prod}");
    let staging = sb.kubectl_ok(&["get", "ro", "-n", "staging"]);
    assert_eq!(
        row(&staging, "cart")[1..5],
        ["2", "3", "1", "3"],
        "{staging}"
    );
    assert_eq!(
        cart_state(&sb, "production"),
        ("Paused".into(), "1".into(), "20".into())
    );
    assert_eq!(
        sb.jsonpath("rollout", "cart", "production", "{.status.message}"),
        "CanaryPauseStep"
    );

    // ReplicaSets and pods agree: every pod carries its ReplicaSet's hash.
    let rs = sb.kubectl_ok(&[
        "get",
        "rs",
        "-n",
        "production",
        "-l",
        "app=cart",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.rollouts-pod-template-hash} {.spec.replicas} {.metadata.ownerReferences[0].kind}{\"\\n\"}{end}",
    ]);
    let sets: Vec<Vec<&str>> = rs.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(sets.len(), 2, "{rs}");
    for s in &sets {
        assert_eq!(s[0], format!("cart-{}", s[1]));
        assert_eq!(s[3], "Rollout");
        let pods = sb.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "production",
            "-l",
            &format!("rollouts-pod-template-hash={}", s[1]),
            "-o",
            "name",
        ]);
        assert_eq!(pods.lines().count().to_string(), s[2], "{pods}");
        assert!(
            pods.lines()
                .all(|p| p.starts_with(&format!("pod/{}-", s[0])))
        );
    }
    let stable = sb.jsonpath("rollout", "cart", "production", "{.status.stableRS}");
    assert_eq!(
        sb.jsonpath(
            "svc",
            "cart-stable",
            "production",
            "{.spec.selector.rollouts-pod-template-hash}"
        ),
        stable
    );

    // promote (as the plugin does it while paused on a step), then the timed pause and 100 %.
    sb.kubectl_ok(&[
        "patch",
        "rollout",
        "cart",
        "-n",
        "production",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"pauseConditions":null,"currentStepIndex":2}}"#,
    ]);
    sb.kubectl_ok(&[
        "patch",
        "rollout",
        "cart",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":false}}"#,
    ]);
    eventually(Duration::from_secs(30), "cart promoted to 2.1.0", || {
        (cart_state(&sb, "production").0 == "Healthy").then_some(())
    });
    let new_stable = sb.jsonpath("rollout", "cart", "production", "{.status.stableRS}");
    assert_ne!(new_stable, stable);
    assert_eq!(
        sb.jsonpath("rollout", "cart", "production", "{.status.currentPodHash}"),
        new_stable
    );
    eventually(Duration::from_secs(10), "old cart pods gone", || {
        let images = sb.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "production",
            "-l",
            "app=cart",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        (images.split_whitespace().count() == 4
            && images.split_whitespace().all(|i| i.ends_with(":2.1.0")))
        .then_some(())
    });
    let events = sb.kubectl_ok(&[
        "get",
        "events",
        "-n",
        "production",
        "--field-selector",
        "involvedObject.kind=Rollout",
    ]);
    for reason in ["RolloutPaused", "RolloutStepCompleted", "RolloutCompleted"] {
        assert!(events.contains(reason), "{reason}:\n{events}");
    }

    // abort, then retry, in staging.
    sb.kubectl_ok(&[
        "patch",
        "rollout",
        "cart",
        "-n",
        "staging",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"abort":true}}"#,
    ]);
    eventually(Duration::from_secs(10), "cart aborted", || {
        (cart_state(&sb, "staging") == ("Degraded".into(), "0".into(), "0".into())).then_some(())
    });
    assert_eq!(
        sb.jsonpath("rollout", "cart", "staging", "{.status.message}"),
        "RolloutAborted: Rollout aborted update to revision 2"
    );
    let events = sb.kubectl_ok(&["get", "events", "-n", "staging"]);
    assert!(events.contains("RolloutAborted"), "{events}");
    sb.kubectl_ok(&[
        "patch",
        "rollout",
        "cart",
        "-n",
        "staging",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"abort":false}}"#,
    ]);
    eventually(Duration::from_secs(10), "cart retried", || {
        (cart_state(&sb, "staging") == ("Paused".into(), "1".into(), "20".into())).then_some(())
    });

    // Deleting the Rollout takes its ReplicaSets and pods.
    sb.kubectl_ok(&["delete", "rollout", "cart", "-n", "staging"]);
    eventually(Duration::from_secs(10), "cart's pods collected", || {
        let left = sb.kubectl_ok(&[
            "get", "rs,pods", "-n", "staging", "-l", "app=cart", "-o", "name",
        ]);
        left.trim().is_empty().then_some(())
    });
}

#[test]
fn traefik_services_list_and_take_weight_patches() {
    let sb = fast();
    // Both groups are discovered; a bare plural resolves to traefik.io.
    let res = sb.kubectl_ok(&["api-resources", "-o", "wide"]);
    for group in ["traefik.io/v1alpha1", "traefik.containo.us/v1alpha1"] {
        assert!(
            res.lines()
                .any(|l| l.starts_with("traefikservices ") && l.contains(group)),
            "{group} in\n{res}"
        );
    }
    for ns in ["production", "staging"] {
        let out = sb.kubectl_ok(&["get", "traefikservices", "-n", ns]);
        assert_eq!(header(&out), ["NAME", "AGE"], "{out}");
        assert_eq!(row(&out, "inventory").len(), 2, "{out}");
    }
    let one = sb.kubectl_ok(&[
        "get",
        "traefikservice.traefik.io",
        "inventory",
        "-n",
        "staging",
    ]);
    assert_eq!(header(&one), ["NAME", "AGE"], "{one}");
    let weights = |sb: &SandboxProc| {
        sb.jsonpath(
            "traefikservice",
            "inventory",
            "production",
            "{range .spec.weighted.services[*]}{.name}:{.port}={.weight} {end}",
        )
    };
    assert_eq!(
        weights(&sb).trim(),
        "inventory-stable:80=90 inventory-canary:80=10"
    );
    // The Services behind it select one track each.
    for (svc, track) in [
        ("inventory-stable", "stable"),
        ("inventory-canary", "canary"),
    ] {
        assert_eq!(
            sb.jsonpath("service", svc, "production", "{.spec.selector.track}"),
            track
        );
    }
    sb.kubectl_ok(&[
        "patch",
        "traefikservice",
        "inventory",
        "-n",
        "production",
        "--type=merge",
        "-p",
        r#"{"spec":{"weighted":{"services":[{"name":"inventory-stable","port":80,"weight":60},{"name":"inventory-canary","port":80,"weight":40}]}}}"#,
    ]);
    assert_eq!(
        weights(&sb).trim(),
        "inventory-stable:80=60 inventory-canary:80=40"
    );
    assert_eq!(
        sb.jsonpath(
            "traefikservice",
            "inventory",
            "production",
            "{.metadata.generation}"
        ),
        "2"
    );
    // A custom resource takes no strategic merge patch, as on a real cluster.
    let err = sb.kubectl_err(&[
        "patch",
        "traefikservice",
        "inventory",
        "-n",
        "production",
        "-p",
        r#"{"spec":{}}"#,
    ]);
    assert!(err.contains("strategic-merge-patch"), "{err}");
    // The older group is a separate store: empty until something is created there.
    let old = sb.kubectl_ok(&[
        "get",
        "traefikservices.traefik.containo.us",
        "-n",
        "production",
        "-o",
        "name",
    ]);
    assert_eq!(old.trim(), "");
    let manifest = sb.dir.path().join("old.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: traefik.containo.us/v1alpha1\nkind: TraefikService\nmetadata:\n  name: legacy\n  namespace: production\nspec:\n  weighted:\n    services:\n    - name: inventory-stable\n      port: 80\n      weight: 1\n",
    )
    .expect("write manifest");
    sb.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap_or_default()]);
    let old = sb.kubectl_ok(&[
        "get",
        "traefikservices.traefik.containo.us",
        "-n",
        "production",
        "-o",
        "name",
    ]);
    assert_eq!(old.trim(), "traefikservice.traefik.containo.us/legacy");
    let new = sb.kubectl_ok(&["get", "traefikservices", "-n", "production", "-o", "name"]);
    assert_eq!(new.trim(), "traefikservice.traefik.io/inventory");
}

#[test]
fn istio_virtual_services_and_destination_rules_at_both_versions() {
    let sb = fast();
    let out = sb.kubectl_ok(&[
        "get",
        "virtualservices,destinationrules",
        "-n",
        "production",
    ]);
    assert!(
        out.contains("virtualservice.networking.istio.io/reviews")
            && out.contains("destinationrule.networking.istio.io/reviews"),
        "{out}"
    );
    // The CRDs' printer columns (GATEWAYS is empty: the route is for the mesh).
    let vs = sb.kubectl_ok(&["get", "vs", "-n", "staging"]);
    assert_eq!(header(&vs), ["NAME", "GATEWAYS", "HOSTS", "AGE"], "{vs}");
    assert_eq!(row(&vs, "reviews")[1], r#"["reviews"]"#, "{vs}");
    let dr = sb.kubectl_ok(&["get", "dr", "reviews", "-n", "staging"]);
    assert_eq!(header(&dr), ["NAME", "HOST", "AGE"], "{dr}");
    assert_eq!(row(&dr, "reviews")[1], "reviews", "{dr}");
    // The same objects through v1 and v1beta1, each under its own apiVersion.
    for version in ["v1", "v1beta1"] {
        for plural in ["virtualservices", "destinationrules"] {
            let list = json(&sb.kubectl_ok(&[
                "get",
                &format!("{plural}.{version}.networking.istio.io"),
                "-A",
                "-o",
                "json",
            ]));
            let items = list["items"].as_array().cloned().unwrap_or_default();
            assert_eq!(items.len(), 2, "{plural} {version}: {list}");
            for it in &items {
                assert_eq!(
                    it["apiVersion"],
                    format!("networking.istio.io/{version}"),
                    "{it}"
                );
            }
        }
    }
    // One Service over both tracks; the DestinationRule's subsets split it by track.
    assert_eq!(
        sb.jsonpath("service", "reviews", "production", "{.spec.selector}"),
        r#"{"app":"reviews"}"#
    );
    assert_eq!(
        sb.jsonpath(
            "destinationrule",
            "reviews",
            "production",
            "{.spec.host} {range .spec.subsets[*]}{.name}={.labels.track} {end}",
        )
        .trim(),
        "reviews stable=stable canary=canary"
    );
    let route = |sb: &SandboxProc| {
        sb.jsonpath(
            "virtualservice",
            "reviews",
            "production",
            "{range .spec.http[0].route[*]}{.destination.host}/{.destination.subset}={.weight} {end}",
        )
    };
    assert_eq!(
        route(&sb).trim(),
        "reviews.production.svc.cluster.local/stable=90 reviews.production.svc.cluster.local/canary=10"
    );
    sb.kubectl_ok(&[
        "patch",
        "virtualservice",
        "reviews",
        "-n",
        "production",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/http/0/route/1/weight","value":10},{"op":"replace","path":"/spec/http/0/route/0/weight","value":75},{"op":"replace","path":"/spec/http/0/route/1/weight","value":25}]"#,
    ]);
    assert_eq!(
        route(&sb).trim(),
        "reviews.production.svc.cluster.local/stable=75 reviews.production.svc.cluster.local/canary=25"
    );
    // A failed test operation changes nothing.
    sb.kubectl_err(&[
        "patch",
        "virtualservice",
        "reviews",
        "-n",
        "production",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/http/0/route/1/weight","value":10},{"op":"replace","path":"/spec/http/0/route/1/weight","value":99}]"#,
    ]);
    // A merge patch through v1beta1 is seen through v1.
    sb.kubectl_ok(&[
        "patch",
        "virtualservices.v1beta1.networking.istio.io",
        "reviews",
        "-n",
        "staging",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"v1beta1"}}}"#,
    ]);
    assert_eq!(
        sb.jsonpath(
            "virtualservices.v1.networking.istio.io",
            "reviews",
            "staging",
            "{.apiVersion} {.metadata.labels.patched}"
        ),
        "networking.istio.io/v1 v1beta1"
    );
    let raw = json(&sb.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/networking.istio.io/v1beta1/namespaces/staging/virtualservices/reviews",
    ]));
    assert_eq!(raw["apiVersion"], "networking.istio.io/v1beta1");
    assert_eq!(raw["metadata"]["labels"]["patched"], "v1beta1");
    // A watch through v1beta1 sends v1beta1 objects.
    let (status, body) = common::http_request(
        "GET",
        &format!(
            "{}/apis/networking.istio.io/v1beta1/namespaces/staging/virtualservices?watch=1&timeoutSeconds=1",
            sb.url
        ),
        "",
        "",
    );
    assert_eq!(status, 200, "{body}");
    let event = json(body.lines().next().unwrap_or_default());
    assert_eq!(event["type"], "ADDED", "{body}");
    assert_eq!(event["object"]["apiVersion"], "networking.istio.io/v1beta1");
}
