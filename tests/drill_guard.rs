//! `kockpit guard`: the real binary against the sandbox (sped up). It rolls back a bad canary
//! on its own (audited as automatic), leaves a good one and one without traffic alone, and a
//! Ctrl-C during the countdown cancels the rollback.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{SandboxProc, http_post_json};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kockpit");
const STAGING: &str = "staging=sandbox/staging";

struct Env {
    sb: SandboxProc,
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            sb: SandboxProc::start(&["--speed", "20"]),
            home: tempfile::tempdir().expect("temp home"),
        }
    }

    fn audit(&self) -> PathBuf {
        self.home.path().join("audit.jsonl")
    }

    fn guard(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(["guard", "checkout", "--env", STAGING, "--prometheus"])
            .arg(&self.sb.prometheus)
            .args(["--interval", "0.4", "--checks", "3", "--rate-window", "20"])
            .args(extra)
            .arg("--audit-log")
            .arg(self.audit())
            .env("KUBECONFIG", self.sb.kubeconfig_path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_STATE_HOME", self.home.path().join("state"))
            .env("USER", "oncall")
            .stdin(Stdio::null());
        c
    }

    fn weights(&self) -> String {
        self.sb.jsonpath(
            "httproute",
            "checkout",
            "staging",
            "{.spec.rules[0].backendRefs[*].weight}",
        )
    }

    fn fault(&self, body: &str) {
        http_post_json(&format!("{}/sandbox/v1/faults", self.sb.url), body);
    }

    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.audit())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn verify(&self) {
        let out = Command::new(BIN)
            .args(["audit", "verify", "--file"])
            .arg(self.audit())
            .output()
            .expect("audit verify");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

const CANARY_ERRORS: &str = r#"{"namespace":"staging","app":"checkout","version":"canary","kind":"errorRatio","value":0.3}"#;

#[test]
fn guard_rolls_back_a_bad_canary_on_its_own() {
    let env = Env::new();
    assert_eq!(env.weights(), "90 10");
    env.fault(CANARY_ERRORS);
    let out = env
        .guard(&["--countdown", "1", "--duration", "40"])
        .output()
        .expect("guard");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("FAILED error ratio"), "{text}");
    assert!(text.contains("ROLLING BACK checkout"), "{text}");
    assert!(
        text.contains("rolled back checkout: HTTPRoute/checkout rule 0 weights"),
        "{text}"
    );
    assert_eq!(env.weights(), "100 0");
    let lines = env.audit_lines();
    let outcome = lines
        .iter()
        .find(|l| l["action"] == "rollback" && l["phase"] == "outcome")
        .expect("the rollback in the audit log");
    assert_eq!(outcome["automatic"], true, "{outcome}");
    assert!(
        outcome["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("automatic rollback by the guard")),
        "{outcome}"
    );
    env.verify();
}

#[test]
fn guard_leaves_a_good_canary_and_one_without_traffic_alone() {
    let env = Env::new();
    // A good canary: checks pass, nothing happens.
    let out = env
        .guard(&["--countdown", "1", "--duration", "4"])
        .output()
        .expect("guard");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(": ok"), "{text}");
    assert!(!text.contains("ROLLING BACK"), "{text}");
    assert!(text.contains("passed without a rollback"), "{text}");
    assert_eq!(env.weights(), "90 10");

    // A failing canary that gets no traffic (its pods are gone): no traffic is not a breach.
    env.fault(CANARY_ERRORS);
    env.sb.kubectl_ok(&[
        "scale",
        "deployment",
        "checkout-canary",
        "-n",
        "staging",
        "--replicas=0",
    ]);
    common::eventually(Duration::from_secs(20), "canary pods gone", || {
        let out = env.sb.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "staging",
            "-l",
            "app=checkout,track=canary",
            "-o",
            "name",
        ]);
        out.trim().is_empty().then_some(())
    });
    // Let the canary's last requests leave the rate window.
    std::thread::sleep(Duration::from_secs(2));
    let out = env
        .guard(&["--countdown", "1", "--duration", "4"])
        .output()
        .expect("guard");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no traffic (neither pass nor fail)"),
        "{text}"
    );
    assert!(!text.contains("ROLLING BACK"), "{text}");
    assert_eq!(env.weights(), "90 10");
    assert!(
        !env.audit_lines().iter().any(|l| l["action"] == "rollback"),
        "nothing rolled back"
    );
}

#[test]
fn ctrl_c_during_the_countdown_cancels_the_rollback() {
    let env = Env::new();
    env.fault(CANARY_ERRORS);
    let mut child = env
        .guard(&["--countdown", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("guard");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen = String::new();
    for line in lines.by_ref() {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("ROLLING BACK checkout") {
            break;
        }
        assert!(Instant::now() < deadline, "no countdown:\n{seen}");
    }
    assert!(seen.contains("ROLLING BACK"), "{seen}");
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let mut cancelled = false;
    for line in lines.by_ref() {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("CANCELLED") {
            cancelled = true;
            break;
        }
    }
    assert!(cancelled, "{seen}");
    // The guard watches on but does not roll back the spared version.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(env.weights(), "90 10");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("guard exits");
    assert!(status.success());
    let lines = env.audit_lines();
    assert!(lines.iter().any(|l| l["action"] == "guard-cancelled"));
    assert!(!lines.iter().any(|l| l["action"] == "rollback"));
    env.verify();
}
