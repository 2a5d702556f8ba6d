//! `kockpit drill run` end to end: the real binary against the sandbox (sped up), a simulated
//! operator that watches the metrics (or the cluster) and acts with the real CLI, and the
//! report, the audit trail (`kockpit audit verify`) and `kockpit drill history` checked after.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{SandboxProc, eventually, http_request};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kockpit");
const STAGING: &str = "staging=sandbox/staging";

struct Cli {
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
    prometheus: String,
}

impl Cli {
    fn new(sb: &SandboxProc) -> Cli {
        Cli {
            home: tempfile::tempdir().expect("temp home"),
            kubeconfig: sb.kubeconfig_path().to_path_buf(),
            prometheus: sb.prometheus.clone(),
        }
    }

    fn audit(&self) -> PathBuf {
        self.home.path().join("audit.jsonl")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--audit-log")
            .arg(self.audit())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_STATE_HOME", self.home.path().join("state"))
            .env("USER", "oncall")
            .stdin(Stdio::null());
        c
    }

    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run kockpit");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "kockpit {args:?}:\n{text}");
        text
    }

    /// Start `kockpit drill run SCENARIO --json` with short times.
    fn start_drill(&self, scenario: &str, extra: &[&str]) -> Child {
        let mut args = vec![
            "drill",
            "run",
            scenario,
            "--env",
            STAGING,
            "--prometheus",
            &self.prometheus,
            "--seed",
            "42",
            "--window",
            "2",
            "--hold",
            "2",
            "--poll",
            "0.3",
            "--rate-window",
            "20",
            "--json",
        ];
        args.extend_from_slice(extra);
        self.command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn drill")
    }

    /// Instant query on the sandbox's Prometheus: the first sample's value.
    fn query(&self, q: &str) -> Option<f64> {
        let enc: String = q
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (status, body) = http_request(
            "GET",
            &format!("{}/api/v1/query?query={enc}", self.prometheus),
            "text/plain",
            "",
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).ok()?;
        v.pointer("/data/result/0/value/1")?.as_str()?.parse().ok()
    }

    /// The canary's error ratio (staging checkout) over the last 20 s of cluster time.
    fn canary_errors(&self) -> Option<f64> {
        self.query(
            r#"sum(rate(http_requests_total{namespace="staging",app="checkout",version="1.5.0",code=~"5.."}[20s])) / sum(rate(http_requests_total{namespace="staging",app="checkout",version="1.5.0"}[20s]))"#,
        )
    }
}

fn finish(child: Child) -> (Value, String) {
    let out: Output = child.wait_with_output().expect("drill output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "drill:\n{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("drill --json: {e}\n{stdout}\n{stderr}"));
    (v, stderr)
}

fn audit_lines(cli: &Cli) -> Vec<Value> {
    std::fs::read_to_string(cli.audit())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The audit trail: drill start/fault/end events, every operator action drill-marked, and
/// the chain verifies.
fn check_audit(cli: &Cli, actions: &[&str]) {
    let lines = audit_lines(cli);
    for ev in ["drill-start", "drill-fault", "drill-end"] {
        assert!(
            lines
                .iter()
                .any(|l| l["action"] == ev && l["drill"] == true),
            "no {ev} event: {lines:#?}"
        );
    }
    for a in actions {
        let marked = lines
            .iter()
            .filter(|l| l["action"] == *a && l["phase"] == "outcome")
            .all(|l| l["drill"] == true);
        assert!(marked, "{a} not drill-marked: {lines:#?}");
    }
    let file = cli.audit();
    let file = file.to_str().unwrap_or_default();
    let out = cli.expect(0, &["audit", "verify", "--file", file]);
    assert!(out.contains("chain intact"), "{out}");
}

fn secs(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in report {v:#}"))
}

#[test]
fn canary_error_spike_wrong_then_right_action() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let cli = Cli::new(&sb);
    let drill = cli.start_drill("canary-error-spike", &["--timeout", "60"]);
    // The operator notices the canary's errors in the metrics...
    eventually(Duration::from_secs(30), "canary errors above 5 %", || {
        cli.canary_errors().filter(|r| *r > 0.05)
    });
    // ...first promotes (the wrong call), then aborts.
    cli.expect(0, &["promote", "checkout", "--env", STAGING, "-y"]);
    std::thread::sleep(Duration::from_millis(500));
    cli.expect(0, &["abort", "checkout", "--env", STAGING, "-y"]);
    let (r, _) = finish(drill);
    assert_eq!(r["outcome"], "recovered", "{r:#}");
    assert_eq!(r["right_action"], true, "{r:#}");
    assert_eq!(r["first_action_right"], false, "{r:#}");
    assert_eq!(r["mitigation_action"], "abort", "{r:#}");
    let actions: Vec<&str> = r["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(actions, ["promote", "abort"], "{r:#}");
    let (ttd, ttm, ttr) = (
        secs(&r, "time_to_detect_seconds"),
        secs(&r, "time_to_mitigate_seconds"),
        secs(&r, "time_to_recover_seconds"),
    );
    assert!(0.0 < ttd && ttd < ttm && ttm <= ttr, "{ttd} {ttm} {ttr}");
    eprintln!("canary-error-spike: detect {ttd:.1} s, mitigate {ttm:.1} s, recover {ttr:.1} s");
    // Reports on disk, the fault cleared, the drill state gone.
    let md = std::fs::read_to_string(r["report_markdown"].as_str().unwrap_or_default())
        .expect("markdown report");
    assert!(md.contains("Right action: **yes**"), "{md}");
    let (_, faults) = http_request("GET", &format!("{}/sandbox/v1/faults", sb.url), "", "");
    assert!(faults.contains("\"faults\":[]"), "{faults}");
    assert!(!cli.home.path().join("state/kockpit/drill.json").exists());
    check_audit(&cli, &["promote", "abort"]);
    let hist = cli.expect(0, &["drill", "history"]);
    assert!(hist.contains("canary-error-spike"), "{hist}");
    assert!(hist.contains("1 drill(s), 1 recovered, 1 right"), "{hist}");
    // Once the drill is over, actions are no longer drill-marked.
    cli.expect(0, &["promote", "checkout", "--env", STAGING, "-y"]);
    let last = audit_lines(&cli).pop().unwrap_or_default();
    assert_eq!(last["action"], "promote");
    assert!(last.get("drill").is_none(), "{last}");
}

#[test]
fn canary_error_spike_wrong_action_is_judged_wrong() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let cli = Cli::new(&sb);
    // Refusals first: production, unknown scenario, bad numbers.
    let out = cli.expect(
        3,
        &[
            "drill",
            "run",
            "canary-error-spike",
            "--env",
            "production=sandbox/production",
            "--prometheus",
            &cli.prometheus,
        ],
    );
    assert!(out.contains("allow_production"), "{out}");
    let out = cli.expect(2, &["drill", "run", "nope", "--env", STAGING]);
    assert!(out.contains("known: canary-error-spike"), "{out}");
    let out = cli.expect(
        2,
        &["drill", "run", "slow-burn", "--env", STAGING, "--hold=0"],
    );
    assert!(out.contains("--hold must be"), "{out}");

    let drill = cli.start_drill("canary-error-spike", &["--timeout", "6"]);
    eventually(Duration::from_secs(30), "canary errors above 5 %", || {
        cli.canary_errors().filter(|r| *r > 0.05)
    });
    // All traffic to the failing canary: the wrong call; it never recovers.
    cli.expect(
        0,
        &["promote", "checkout", "--env", STAGING, "-y", "--full"],
    );
    let (r, _) = finish(drill);
    assert_eq!(r["outcome"], "not-recovered", "{r:#}");
    assert_eq!(r["right_action"], false, "{r:#}");
    assert_eq!(r["actions"][0]["action"], "promote-full", "{r:#}");
    assert!(r["time_to_recover_seconds"].is_null(), "{r:#}");
    check_audit(&cli, &["promote-full"]);
}

#[test]
fn canary_latency_rolled_back() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let cli = Cli::new(&sb);
    let drill = cli.start_drill("canary-latency", &["--timeout", "60"]);
    eventually(Duration::from_secs(30), "canary p99 above 500 ms", || {
        cli.query(
            r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="staging",app="checkout",version="1.5.0"}[20s])))"#,
        )
        .filter(|p| *p > 0.5)
    });
    cli.expect(0, &["rollback", "checkout", "--env", STAGING, "-y"]);
    let (r, _) = finish(drill);
    assert_eq!(r["outcome"], "recovered", "{r:#}");
    assert_eq!(r["right_action"], true, "{r:#}");
    assert_eq!(r["mitigation_action"], "rollback", "{r:#}");
    check_audit(&cli, &["rollback"]);
}

#[test]
fn slow_burn_aborted() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let cli = Cli::new(&sb);
    let drill = cli.start_drill("slow-burn", &["--timeout", "60", "--step", "20"]);
    // The burn creeps: 2 %, 5 %, 10 % … the operator acts once it passes 8 %.
    eventually(Duration::from_secs(40), "canary errors above 8 %", || {
        cli.canary_errors().filter(|r| *r > 0.08)
    });
    cli.expect(0, &["abort", "checkout", "--env", STAGING, "-y"]);
    let (r, _) = finish(drill);
    assert_eq!(r["outcome"], "recovered", "{r:#}");
    assert_eq!(r["right_action"], true, "{r:#}");
    // The slow burn took several steps to show: detection is later than the first step.
    assert!(secs(&r, "time_to_detect_seconds") > 1.0, "{r:#}");
    check_audit(&cli, &["abort"]);
}

#[test]
fn bluegreen_readiness_flipped_back() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let cli = Cli::new(&sb);
    let drill = cli.start_drill("bluegreen-readiness", &["--timeout", "60"]);
    // The pipeline (the drill) switches to green; then green's pods stop being Ready.
    eventually(Duration::from_secs(30), "payments on green", || {
        (sb.jsonpath("service", "payments", "staging", "{.spec.selector.version}") == "green")
            .then_some(())
    });
    eventually(Duration::from_secs(30), "green pods not ready", || {
        let ready = sb.jsonpath(
            "deployment",
            "payments-green",
            "staging",
            "{.status.readyReplicas}",
        );
        (ready.is_empty() || ready == "0").then_some(())
    });
    // Restarting green does not help (wrong); flipping back to blue does.
    let out = cli.expect(0, &["flip", "payments", "--env", STAGING, "-y"]);
    assert!(out.contains("green → blue"), "{out}");
    let (r, _) = finish(drill);
    assert_eq!(r["outcome"], "recovered", "{r:#}");
    assert_eq!(r["right_action"], true, "{r:#}");
    assert_eq!(r["mitigation_action"], "flip", "{r:#}");
    // The drill's own switch is recorded (automatic, drill-marked) but not counted as the
    // operator's.
    assert_eq!(r["actions"].as_array().map(Vec::len), Some(1), "{r:#}");
    let lines = audit_lines(&cli);
    assert!(lines.iter().any(|l| l["action"] == "flip"
        && l["automatic"] == true
        && l["drill"] == true
        && l["reason"].as_str().is_some_and(|r| r.contains("setup"))));
    check_audit(&cli, &["flip"]);
}

#[test]
fn rolling_crashloop_rolled_back() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let cli = Cli::new(&sb);
    let drill = cli.start_drill("rolling-crashloop", &["--timeout", "90"]);
    eventually(Duration::from_secs(30), "the bad image rolled out", || {
        sb.jsonpath(
            "deployment",
            "frontend",
            "staging",
            "{.spec.template.spec.containers[0].image}",
        )
        .contains("9.9.9-drill")
        .then_some(())
    });
    eventually(Duration::from_secs(30), "a crash-looping pod", || {
        let out = sb.kubectl_ok(&["get", "pods", "-n", "staging", "-l", "app=frontend"]);
        (out.contains("CrashLoopBackOff") || out.contains("Error")).then_some(())
    });
    cli.expect(0, &["rollback", "frontend", "--env", STAGING, "-y"]);
    let (r, _) = finish(drill);
    assert_eq!(r["outcome"], "recovered", "{r:#}");
    assert_eq!(r["right_action"], true, "{r:#}");
    assert_eq!(
        sb.jsonpath(
            "deployment",
            "frontend",
            "staging",
            "{.spec.template.spec.containers[0].image}"
        ),
        "registry.local/frontend:3.2.0"
    );
    let lines = audit_lines(&cli);
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "drill-inject" && l["object"] == "Deployment/frontend"),
        "{lines:#?}"
    );
    check_audit(&cli, &["rollback"]);
}
