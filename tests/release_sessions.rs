//! Release sessions: the exit checklist turning green item by item on the sandbox's manual
//! clock (pods and rollout, then a smoke check, then the observation window), a breach
//! restarting that window, smoke commands failing and timing out, and the whole
//! open → shelve → resume → conclude lifecycle through the real `kockpit release` binary,
//! with the audit log as the only record.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use kockpit::audit::{self, Operator};
use kockpit::config::file::{self, Config, EnvConfig};
use kockpit::release::checklist::{Checklist, Item, Status};
use kockpit::release::live::Evaluator;
use kockpit::release::{self, Ledger, Release, ReleaseError, State, Step, Who};
use kockpit::sandbox::{self, Running, controllers};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use common::SandboxProc;

const BIN: &str = env!("CARGO_BIN_EXE_kockpit");

// ---------- library-level helpers (in-process sandbox on a manual clock) ----------

/// A sandbox whose clock moves only when the test says so.
async fn manual_sandbox() -> Running {
    sandbox::start(sandbox::Config {
        backfill_seconds: 120,
        manual_clock: true,
        ..Default::default()
    })
    .await
    .expect("sandbox")
}

fn sandbox_now(r: &Running) -> Timestamp {
    r.sandbox.store.clock.now()
}

/// Move the simulated clock by `seconds` in steps of at most `step`, letting the controllers
/// and the traffic model catch up after each step (the traffic model simulates every second
/// up to the clock, so Prometheus has a sample per second whatever the step).
fn advance(r: &Running, seconds: u64, step: u64) {
    let mut left = seconds;
    while left > 0 {
        let s = left.min(step.max(1));
        r.sandbox.store.clock.advance(Duration::from_secs(s));
        // Twice: a Deployment's change reaches its ReplicaSet, then the pods.
        controllers::reconcile_all(&r.sandbox);
        controllers::reconcile_all(&r.sandbox);
        r.sandbox.metrics.step(&r.sandbox);
        left -= s;
    }
}

fn staging(r: &Running) -> EnvConfig {
    EnvConfig {
        name: "staging".into(),
        context: Some("sandbox".into()),
        namespace: "staging".into(),
        prometheus: Some(r.prometheus_url()),
        production: false,
        read_only: false,
    }
}

fn config(text: &str) -> Config {
    file::parse(Path::new("test-config.toml"), text).expect("config parses")
}

fn evaluator(r: &Running, cfg: Config) -> Evaluator {
    let client = kockpit::cluster::client::for_url(&r.url(), "test").expect("client");
    Evaluator::new(client, staging(r), cfg, None)
}

fn who(app: &str) -> Who {
    Who {
        environment: "staging".into(),
        context: "sandbox".into(),
        namespace: "staging".into(),
        app: app.into(),
        operator: Operator {
            os_user: "tester".into(),
            kube_user: None,
            ssh_client: None,
        },
        reason: None,
        drill: false,
    }
}

/// Run the smoke checks and evaluate the checklist at the sandbox's now.
async fn evaluate(ev: &Evaluator, r: &Running, rel: &Release, audit: &Path) -> Checklist {
    let ledger = Ledger::load(audit).expect("ledger");
    let smoke = ev.run_smoke(rel).await;
    ev.checklist(rel, ledger.last_change(rel), &smoke, sandbox_now(r))
        .await
}

fn item<'a>(c: &'a Checklist, name: &str) -> &'a Item {
    c.items
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no item {name:?} in {}", show(c)))
}

fn show(c: &Checklist) -> String {
    kockpit::release::cli::checklist_text(c)
}

fn secs_since(t: Timestamp, now: Timestamp) -> f64 {
    (now.as_millisecond() - t.as_millisecond()) as f64 / 1000.0
}

/// `kubectl set image deployment/NAME CONTAINER=IMAGE`, through the API.
async fn set_image(r: &Running, ns: &str, name: &str, container: &str, image: &str) {
    let client = kockpit::cluster::client::for_url(&r.url(), "test").expect("client");
    Api::<Deployment>::namespaced(client, ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}
            })),
        )
        .await
        .expect("patch the image");
}

const ORDER: [&str; 5] = [
    "Pods Ready",
    "Rollout complete",
    "Smoke: healthz",
    "Observation",
    "Image traceable",
];

/// Remembers at which evaluation each item first passed.
#[derive(Default)]
struct Greens {
    evaluations: usize,
    first: BTreeMap<String, usize>,
}

impl Greens {
    fn see(&mut self, c: &Checklist) {
        let names: Vec<&str> = c.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ORDER, "items in their order");
        for i in &c.items {
            if i.status == Status::Pass {
                self.first.entry(i.name.clone()).or_insert(self.evaluations);
            }
        }
        self.evaluations += 1;
    }

    fn at(&self, name: &str) -> usize {
        *self
            .first
            .get(name)
            .unwrap_or_else(|| panic!("{name} never passed"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_turns_green_in_order_on_a_manual_clock() {
    let started = Instant::now();
    let r = manual_sandbox().await;
    let (url, healthy) = common::health_server();
    // The error threshold is raised from 1 %: at staging's ~1 request/s to the canary, a single
    // simulated 0.1 % error in a one-minute rate window is already 2 % and would restart the
    // window at random. A real breach (the fault in the next test) is far above it.
    let cfg = config(&format!(
        r#"
[thresholds]
max_error_ratio = 0.05

[[apps.checkout.smoke]]
name = "healthz"
http = "{url}/healthz"
timeout_seconds = 2

[[apps.checkout.smoke]]
name = "production only"
command = "exit 1"
envs = ["production"]
"#
    ));
    assert_eq!(cfg.observation_for("checkout"), 600.0, "the default window");
    let ev = evaluator(&r, cfg);
    let dir = tempfile::tempdir().expect("tempdir");
    let audit_path = dir.path().join("audit.jsonl");

    // Roll out a new canary image: its pod starts, and is Ready only after the probe's delay.
    set_image(
        &r,
        "staging",
        "checkout-canary",
        "checkout",
        "registry.local/checkout:1.6.0",
    )
    .await;
    let rel = release::record(
        &audit_path,
        &who("checkout"),
        &Step::Open {
            version: "1.6.0".into(),
        },
    )
    .expect("open");
    assert_eq!(rel.id(), "checkout@staging #1");
    assert_eq!(rel.state, State::Open);

    let mut greens = Greens::default();
    let first = evaluate(&ev, &r, &rel, &audit_path).await;
    greens.see(&first);
    eprintln!("{}", show(&first));
    assert!(!first.passed());
    for name in ["Pods Ready", "Rollout complete"] {
        assert_ne!(item(&first, name).status, Status::Pass, "{}", show(&first));
    }
    let smoke = item(&first, "Smoke: healthz");
    assert_eq!(smoke.status, Status::Fail, "{}", show(&first));
    assert!(
        smoke.detail.contains("HTTP 503, expected 200"),
        "{}",
        smoke.detail
    );
    assert_eq!(
        item(&first, "Observation").status,
        Status::Pending,
        "{}",
        show(&first)
    );
    // Conclude on this checklist: refused, nothing written; a blank override is no override.
    for override_reason in [None, Some("   ".to_string())] {
        match release::record(
            &audit_path,
            &who("checkout"),
            &Step::Conclude {
                checklist: first.clone(),
                override_reason,
            },
        ) {
            Err(ReleaseError::Refused(m)) => {
                assert!(m.contains("not green"), "{m}");
                assert!(m.contains("Smoke: healthz: HTTP 503"), "{m}");
                assert!(m.contains("Observation"), "{m}");
            }
            other => panic!("conclude on a red checklist: {other:?}"),
        }
    }

    // Pods Ready and the rollout complete a few simulated seconds later; the smoke check
    // still fails.
    let mut c = first;
    let deadline = sandbox_now(&r) + jiff::SignedDuration::from_secs(60);
    while !(item(&c, "Pods Ready").status == Status::Pass
        && item(&c, "Rollout complete").status == Status::Pass)
    {
        assert!(sandbox_now(&r) < deadline, "no rollout: {}", show(&c));
        advance(&r, 1, 1);
        c = evaluate(&ev, &r, &rel, &audit_path).await;
        greens.see(&c);
    }
    eprintln!("{}", show(&c));
    assert!(
        item(&c, "Pods Ready")
            .detail
            .contains("1/1 pods of 1.6.0 Ready"),
        "{}",
        show(&c)
    );
    assert!(
        item(&c, "Rollout complete")
            .detail
            .contains("checkout-canary successfully rolled out"),
        "{}",
        show(&c)
    );
    assert_eq!(
        item(&c, "Smoke: healthz").status,
        Status::Fail,
        "{}",
        show(&c)
    );
    assert_ne!(item(&c, "Observation").status, Status::Pass);

    // The service turns healthy: the smoke check passes. Observation is counting once the
    // new version has traffic.
    healthy.store(true, Ordering::SeqCst);
    let deadline = sandbox_now(&r) + jiff::SignedDuration::from_secs(120);
    loop {
        advance(&r, 5, 5);
        c = evaluate(&ev, &r, &rel, &audit_path).await;
        greens.see(&c);
        assert_eq!(
            item(&c, "Smoke: healthz").status,
            Status::Pass,
            "{}",
            show(&c)
        );
        if item(&c, "Observation").detail.contains("clean for") {
            break;
        }
        assert!(sandbox_now(&r) < deadline, "no traffic: {}", show(&c));
    }
    eprintln!("{}", show(&c));
    let obs = item(&c, "Observation");
    assert_eq!(obs.status, Status::Pending, "{}", show(&c));
    assert!(obs.detail.contains("of 10m00s"), "{}", obs.detail);
    assert!(item(&c, "Smoke: healthz").detail.starts_with("HTTP 200"));
    let amber = c.clone();

    // The window passes: a look every simulated minute.
    let opened = rel.opened();
    let deadline = sandbox_now(&r) + jiff::SignedDuration::from_secs(1800);
    while item(&c, "Observation").status != Status::Pass {
        let obs = item(&c, "Observation");
        assert_eq!(obs.status, Status::Pending, "{}", show(&c));
        assert!(obs.detail.contains("of 10m00s"), "{}", obs.detail);
        assert!(sandbox_now(&r) < deadline, "never green: {}", show(&c));
        advance(&r, 60, 30);
        c = evaluate(&ev, &r, &rel, &audit_path).await;
        greens.see(&c);
    }
    eprintln!("{}", show(&c));
    assert!(
        secs_since(opened, sandbox_now(&r)) >= 600.0,
        "Observation passed {} s after the open: {}",
        secs_since(opened, sandbox_now(&r)),
        show(&c)
    );
    assert!(
        item(&c, "Observation").detail.contains("(window 10m00s)"),
        "{}",
        show(&c)
    );
    let image = item(&c, "Image traceable");
    assert_eq!(image.status, Status::Pass, "{}", show(&c));
    assert!(
        image.detail.contains("registry.local/checkout:1.6.0"),
        "{}",
        image.detail
    );
    assert!(c.passed(), "{}", show(&c));
    assert!(c.failing().is_empty());
    assert_eq!(c.summary(), "5/5 ✓");

    // Green in order: pods and rollout, then the smoke check, then the observation window.
    let (pods, rollout, smoke, obs) = (
        greens.at("Pods Ready"),
        greens.at("Rollout complete"),
        greens.at("Smoke: healthz"),
        greens.at("Observation"),
    );
    assert!(
        pods.max(rollout) < smoke && smoke < obs,
        "pods {pods}, rollout {rollout}, smoke {smoke}, observation {obs}"
    );

    // Conclude: refused on the amber checklist, done on the green one.
    match release::record(
        &audit_path,
        &who("checkout"),
        &Step::Conclude {
            checklist: amber,
            override_reason: None,
        },
    ) {
        Err(ReleaseError::Refused(m)) => assert!(m.contains("Observation: clean for"), "{m}"),
        other => panic!("conclude on an amber checklist: {other:?}"),
    }
    let done = release::record(
        &audit_path,
        &who("checkout"),
        &Step::Conclude {
            checklist: c.clone(),
            override_reason: None,
        },
    )
    .expect("conclude on the green checklist");
    assert_eq!(done.state, State::Concluded);
    assert!(!done.overridden);

    let report = audit::verify(&audit_path).expect("the chain verifies");
    assert_eq!(report.entries, 2, "refused steps write nothing");
    let ledger = Ledger::load(&audit_path).expect("ledger");
    assert_eq!(ledger.releases.len(), 1);
    let r1 = &ledger.releases[0];
    assert_eq!(r1.version, "1.6.0");
    assert_eq!(r1.state, State::Concluded);
    let verbs: Vec<&str> = r1.transitions.iter().map(|t| t.verb.as_str()).collect();
    assert_eq!(verbs, ["open", "conclude"]);
    let concluded = &r1.transitions[1].detail;
    assert_eq!(concluded["state"], "concluded");
    assert!(concluded.get("override").is_none(), "{concluded}");
    assert_eq!(
        concluded["checklist"]["items"]
            .as_array()
            .map(|a| a.iter().all(|i| i["status"] == "pass")),
        Some(true),
        "{concluded}"
    );
    assert!(ledger.active("staging", "checkout").is_none());
    eprintln!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_restarts_the_observation_window() {
    let started = Instant::now();
    let r = manual_sandbox().await;
    let cfg = config("[thresholds]\nmax_error_ratio = 0.05\n");
    let ev = evaluator(&r, cfg);
    let dir = tempfile::tempdir().expect("tempdir");
    let audit_path = dir.path().join("audit.jsonl");
    // The running canary, 1.5.0, already Ready and serving.
    let rel = release::record(
        &audit_path,
        &who("checkout"),
        &Step::Open {
            version: "1.5.0".into(),
        },
    )
    .expect("open");
    let obs = |c: &Checklist| item(c, "Observation").clone();

    advance(&r, 120, 30);
    let c = evaluate(&ev, &r, &rel, &audit_path).await;
    assert_eq!(obs(&c).status, Status::Pending, "{}", show(&c));
    assert!(obs(&c).detail.contains("of 10m00s"), "{}", show(&c));
    assert!(!obs(&c).detail.contains("last breach"), "{}", show(&c));

    // Half the canary's requests fail: breaching now.
    let http = reqwest::Client::new();
    let fault: Value = http
        .post(format!("{}/sandbox/v1/faults", r.url()))
        .json(
            &json!({"namespace": "staging", "app": "checkout", "version": "1.5.0",
                      "kind": "errorRatio", "value": 0.5}),
        )
        .send()
        .await
        .expect("inject the fault")
        .json()
        .await
        .expect("the fault");
    let id = fault["id"].as_str().expect("fault id").to_string();
    let mut c = c;
    let deadline = sandbox_now(&r) + jiff::SignedDuration::from_secs(120);
    while obs(&c).status != Status::Fail {
        assert_eq!(obs(&c).status, Status::Pending, "{}", show(&c));
        assert!(sandbox_now(&r) < deadline, "no breach seen: {}", show(&c));
        advance(&r, 5, 5);
        c = evaluate(&ev, &r, &rel, &audit_path).await;
    }
    eprintln!("{}", show(&c));
    assert!(
        obs(&c).detail.starts_with("breaching now: error ratio"),
        "{}",
        show(&c)
    );
    assert!(
        obs(&c)
            .detail
            .contains("the 10m00s window restarts when it clears"),
        "{}",
        show(&c)
    );
    assert!(!c.passed());
    advance(&r, 20, 20);

    // The fault is removed: once the rate window no longer sees it, Observation counts again
    // from the last breach, not from the open.
    let status = http
        .delete(format!("{}/sandbox/v1/faults/{id}", r.url()))
        .send()
        .await
        .expect("remove the fault")
        .status();
    assert!(status.is_success(), "{status}");
    let cleared = sandbox_now(&r);
    let deadline = cleared + jiff::SignedDuration::from_secs(180);
    while obs(&c).status == Status::Fail {
        assert!(
            sandbox_now(&r) < deadline,
            "the breach never cleared: {}",
            show(&c)
        );
        advance(&r, 5, 5);
        c = evaluate(&ev, &r, &rel, &audit_path).await;
    }
    eprintln!("{}", show(&c));
    assert_eq!(obs(&c).status, Status::Pending, "{}", show(&c));
    assert!(obs(&c).detail.contains("; last breach "), "{}", show(&c));
    assert!(obs(&c).detail.contains("error ratio"), "{}", show(&c));

    // More than the window since the open, less since the breach: still pending.
    let opened = rel.opened();
    while secs_since(opened, sandbox_now(&r)) < 660.0 {
        advance(&r, 30, 30);
    }
    c = evaluate(&ev, &r, &rel, &audit_path).await;
    eprintln!("{}", show(&c));
    assert_eq!(obs(&c).status, Status::Pending, "{}", show(&c));
    assert!(obs(&c).detail.contains("; last breach "), "{}", show(&c));

    // A clean window after the breach: green, naming the last breach.
    let deadline = cleared + jiff::SignedDuration::from_secs(1200);
    while obs(&c).status != Status::Pass {
        assert_eq!(obs(&c).status, Status::Pending, "{}", show(&c));
        assert!(
            sandbox_now(&r) < deadline,
            "never green again: {}",
            show(&c)
        );
        advance(&r, 60, 30);
        c = evaluate(&ev, &r, &rel, &audit_path).await;
    }
    eprintln!("{}", show(&c));
    assert!(
        secs_since(cleared, sandbox_now(&r)) >= 600.0,
        "passed only {} s after the fault was removed: {}",
        secs_since(cleared, sandbox_now(&r)),
        show(&c)
    );
    assert!(obs(&c).detail.contains("last breach"), "{}", show(&c));
    assert!(c.passed(), "{}", show(&c));
    eprintln!("took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_commands_fail_on_their_exit_code_and_are_killed_at_the_timeout() {
    let r = manual_sandbox().await;
    let cfg = config(
        r#"
[[apps.checkout.smoke]]
name = "exits 3"
command = ["sh", "-c", "exit 3"]

[[apps.checkout.smoke]]
name = "hangs"
command = ["sleep", "5"]
timeout_seconds = 0.5

[[apps.checkout.smoke]]
name = "sees its release"
command = ["sh", "-c", "test \"$KOCKPIT_APP@$KOCKPIT_ENV $KOCKPIT_VERSION\" = 'checkout@staging 1.5.0' && test {version} = 1.5.0"]
"#,
    );
    let ev = evaluator(&r, cfg);
    let dir = tempfile::tempdir().expect("tempdir");
    let audit_path = dir.path().join("audit.jsonl");
    let rel = release::record(
        &audit_path,
        &who("checkout"),
        &Step::Open {
            version: "1.5.0".into(),
        },
    )
    .expect("open");
    let t = Instant::now();
    let results = ev.run_smoke(&rel).await;
    let took = t.elapsed();
    // The checks run concurrently, and the hung one is not waited for.
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        results["hangs"].duration_ms < 2000,
        "{:?}",
        results["hangs"]
    );
    let ledger = Ledger::load(&audit_path).expect("ledger");
    let c = ev
        .checklist(&rel, ledger.last_change(&rel), &results, sandbox_now(&r))
        .await;
    eprintln!("{}", show(&c));
    let names: Vec<&str> = c.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Pods Ready",
            "Rollout complete",
            "Smoke: exits 3",
            "Smoke: hangs",
            "Smoke: sees its release",
            "Observation",
            "Image traceable"
        ]
    );
    let exits = item(&c, "Smoke: exits 3");
    assert_eq!(exits.status, Status::Fail);
    assert!(
        exits.detail.starts_with("exit 3, expected 0"),
        "{}",
        exits.detail
    );
    let hangs = item(&c, "Smoke: hangs");
    assert_eq!(hangs.status, Status::Fail);
    assert!(hangs.detail.contains("killed after"), "{}", hangs.detail);
    assert!(hangs.detail.contains("500 ms"), "{}", hangs.detail);
    let sees = item(&c, "Smoke: sees its release");
    assert_eq!(sees.status, Status::Pass, "{}", sees.detail);
    match release::record(
        &audit_path,
        &who("checkout"),
        &Step::Conclude {
            checklist: c.clone(),
            override_reason: None,
        },
    ) {
        Err(ReleaseError::Refused(m)) => {
            assert!(m.contains("Smoke: exits 3: exit 3, expected 0"), "{m}");
            assert!(m.contains("Smoke: hangs: sleep: killed after"), "{m}");
        }
        other => panic!("conclude with failing smoke checks: {other:?}"),
    }
}

// ---------- the real binary ----------

struct Cli {
    home: tempfile::TempDir,
    config: PathBuf,
    kubeconfig: PathBuf,
}

impl Cli {
    fn new(sb: &SandboxProc, extra_config: &str) -> Cli {
        let home = tempfile::tempdir().expect("temp home");
        let config = home.path().join("kockpit.toml");
        std::fs::write(
            &config,
            format!(
                r#"[[env]]
name = "staging"
context = "sandbox"
namespace = "staging"
prometheus = "{}"

{extra_config}
"#,
                sb.prometheus
            ),
        )
        .expect("write config");
        Cli {
            home,
            config,
            kubeconfig: sb.kubeconfig_path().to_path_buf(),
        }
    }

    fn audit(&self) -> PathBuf {
        self.home.path().join("audit.jsonl")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--audit-log")
            .arg(self.audit())
            .env_remove("KUBECONFIG")
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_STATE_HOME", self.home.path().join("state"))
            .env("USER", "oncall")
            .env_remove("SSH_CONNECTION")
            .stdin(Stdio::null())
            .output()
            .expect("run kockpit")
    }

    /// Run; assert the exit code; (stdout, stderr).
    fn expect(&self, code: i32, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "kockpit {args:?}:\nstdout: {stdout}\nstderr: {stderr}"
        );
        (stdout, stderr)
    }

    fn json(&self, args: &[&str]) -> Value {
        let (stdout, _) = self.expect(0, args);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("kockpit {args:?}: not one JSON object ({e}): {stdout}"))
    }
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect()
}

#[test]
fn cli_release_lifecycle() {
    let started = Instant::now();
    // Two minutes of traffic history, so the observation window has samples at once.
    let sb = SandboxProc::start(&["--backfill", "120"]);
    // The error threshold is raised as in the tests above, so that the one failing item is
    // the hour-long window, never a random error of staging's thin canary traffic.
    let cli = Cli::new(
        &sb,
        "[thresholds]\nmax_error_ratio = 0.05\n\n[release]\nobservation_seconds = 3600\n",
    );
    let rel = ["checkout", "--env", "staging"];
    let args = |verb: &str, extra: &[&str]| -> Vec<String> {
        ["release", verb]
            .iter()
            .chain(rel.iter())
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |code: i32, verb: &str, extra: &[&str]| {
        let a = args(verb, extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        cli.expect(code, &a)
    };

    let (out, _) = run(0, "open", &[]);
    assert!(
        out.contains("release checkout@staging #1 (1.5.0) open"),
        "the version being rolled out is detected: {out}"
    );
    let (_, err) = run(3, "open", &[]);
    assert!(
        err.contains("release checkout@staging #1 (1.5.0) is already open"),
        "{err}"
    );
    let (out, _) = run(3, "open", &["--json"]);
    let v: Value = serde_json::from_str(out.trim()).expect("--json error object");
    assert_eq!(v["exit_code"], 3, "{v}");

    let (_, err) = run(3, "resume", &[]);
    assert!(err.contains("is open, not shelved"), "{err}");
    let (_, err) = run(2, "shelve", &[]);
    assert!(err.contains("shelve needs a reason"), "{err}");
    let (out, _) = run(
        0,
        "shelve",
        &["--reason", "waiting for the schema migration"],
    );
    assert!(
        out.contains("release checkout@staging #1 (1.5.0) shelved"),
        "{out}"
    );
    let (_, err) = run(3, "conclude", &[]);
    assert!(
        err.contains("is shelved: resume it before concluding"),
        "{err}"
    );
    let (out, _) = run(0, "resume", &[]);
    assert!(out.contains("checkout@staging #1 (1.5.0) open"), "{out}");

    // The window is an hour: not green, and conclude says why.
    let (_, err) = run(3, "conclude", &[]);
    assert!(err.contains("exit checklist at"), "{err}");
    assert!(err.contains("the exit checklist is not green"), "{err}");
    // Only Observation fails: counting towards the hour.
    assert!(err.contains("not green (Observation: clean for "), "{err}");
    assert!(err.contains("of 1h00m)"), "{err}");
    assert!(err.contains("--override"), "{err}");
    for line in ["✓ Pods Ready", "✓ Rollout complete", "– Smoke checks"] {
        assert!(err.contains(line), "{line:?} in {err}");
    }

    let reason = "hotfix for the payment outage, watched by hand";
    let (out, _) = run(0, "conclude", &["--override", reason]);
    assert!(out.contains("override"), "{out}");
    assert!(
        out.contains("release checkout@staging #1 (1.5.0) concluded with an override (audited)"),
        "{out}"
    );
    let (_, err) = run(3, "conclude", &[]);
    assert!(
        err.contains("checkout has no open release in staging"),
        "{err}"
    );

    // The history: list and show read it back from the audit log.
    let (out, _) = cli.expect(0, &["release", "list"]);
    assert!(out.contains("no open or shelved releases"), "{out}");
    let list = cli.json(&["release", "list", "--all", "--json"]);
    let releases = list["releases"].as_array().expect("releases");
    assert_eq!(releases.len(), 1, "{list}");
    let shown = cli.json(&["release", "show", "checkout", "--env", "staging", "--json"]);
    for r in [&releases[0], &shown] {
        assert_eq!(r["id"], "checkout@staging #1", "{r}");
        assert_eq!(r["version"], "1.5.0");
        assert_eq!(r["state"], "concluded");
        assert_eq!(r["overridden"], true);
        assert_eq!(r["context"], "sandbox");
        assert_eq!(r["namespace"], "staging");
        let t = r["transitions"].as_array().expect("transitions");
        let actions: Vec<&str> = t.iter().filter_map(|t| t["action"].as_str()).collect();
        assert_eq!(actions, ["open", "shelve", "resume", "conclude"], "{r}");
        assert_eq!(t[1]["reason"], "waiting for the schema migration");
        assert_eq!(t[1]["detail"]["state"], "shelved");
        assert_eq!(t[3]["reason"], reason);
        assert_eq!(t[3]["detail"]["override"], reason);
        assert_eq!(t[3]["detail"]["failing"], json!(["Observation"]), "{r}");
        assert_eq!(t[3]["operator"]["os_user"], "oncall");
        let items = t[3]["detail"]["checklist"]["items"]
            .as_array()
            .expect("the checklist at the conclusion");
        let obs = items
            .iter()
            .find(|i| i["name"] == "Observation")
            .expect("Observation");
        assert_eq!(obs["status"], "pending", "{obs}");
    }
    assert!(shown["checklist"].is_null(), "not evaluated once concluded");
    let (out, _) = cli.expect(0, &["release", "show", "checkout", "--env", "staging"]);
    assert!(out.contains("overrode: Observation"), "{out}");
    assert!(out.contains(reason), "{out}");

    // The audit log: one event line per transition, a sound chain.
    let lines = audit_lines(&cli.audit());
    let actions: Vec<&str> = lines.iter().filter_map(|l| l["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "release-open",
            "release-shelve",
            "release-resume",
            "release-conclude"
        ]
    );
    for l in &lines {
        assert_eq!(l["app"], "checkout", "{l}");
        assert_eq!(l["phase"], "event", "{l}");
        assert_eq!(l["object"], "Release/checkout", "{l}");
        assert_eq!(l["environment"], "staging", "{l}");
        assert_eq!(l["after"]["release"], 1, "{l}");
    }
    let audit = cli.audit();
    let audit = audit.to_str().expect("utf-8 path");
    // `Cli` passes the global `--audit-log`; `--file` names the log explicitly.
    for args in [
        &["audit", "verify"][..],
        &["audit", "verify", "--file", audit],
    ] {
        let (out, _) = cli.expect(0, args);
        assert!(out.contains("ok: 4 entries, chain intact"), "{out}");
    }

    // A second release is numbered 2; abandon needs a reason.
    let (out, _) = run(0, "open", &["--version", "1.5.1"]);
    assert!(out.contains("checkout@staging #2 (1.5.1) open"), "{out}");
    run(2, "abandon", &[]);
    let (out, _) = run(0, "abandon", &["--reason", "superseded"]);
    assert!(out.contains("#2 (1.5.1) abandoned"), "{out}");
    let (out, _) = cli.expect(0, &["release", "list", "--all"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines().next().is_some_and(|l| l.contains("#2")),
        "newest first: {out}"
    );
    assert_eq!(audit_lines(&cli.audit()).len(), 6);
    assert!(audit::verify(cli.audit()).is_ok());
    eprintln!("took {:?}", started.elapsed());
}
