//! The rollback guard inside the cockpit (`[guard] enabled = true`): the real binary in a
//! pseudo-terminal against the sandbox (sped up). A bad canary gets a loud countdown that
//! runs out into a rollback audited as automatic; a second time the key cancels it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::SandboxProc;
use common::pty::Pty;

const T: Duration = Duration::from_secs(60);

const CANARY_ERRORS: &str = r#"{"namespace":"staging","app":"checkout","version":"canary","kind":"errorRatio","value":0.5}"#;

struct Cockpit {
    pty: Pty,
    audit: PathBuf,
    _dir: tempfile::TempDir,
}

fn cockpit(sb: &SandboxProc, countdown: u32) -> Cockpit {
    let dir = tempfile::tempdir().expect("dir");
    let audit = dir.path().join("audit.jsonl");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[env]]
name = "staging"
context = "sandbox"
namespace = "staging"
prometheus = "{}"

[guard]
enabled = true
interval_seconds = 0.5
failed_checks = 2
countdown_seconds = {countdown}
"#,
            sb.prometheus
        ),
    )
    .expect("config");
    let kc = sb.kubeconfig_path().to_string_lossy().to_string();
    let audit_s = audit.to_string_lossy().to_string();
    let config_s = config.to_string_lossy().to_string();
    let state = dir.path().join("state").to_string_lossy().to_string();
    let pty = Pty::spawn_env(
        &[
            "--kubeconfig",
            &kc,
            "--config",
            &config_s,
            "--audit-log",
            &audit_s,
        ],
        160,
        45,
        &[("USER", "oncall"), ("XDG_STATE_HOME", &state)],
    );
    pty.wait_for("apps", T, |s| s.contains("checkout"));
    Cockpit {
        pty,
        audit,
        _dir: dir,
    }
}

impl Cockpit {
    fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn weights(sb: &SandboxProc) -> String {
    sb.jsonpath(
        "httproute",
        "checkout",
        "staging",
        "{.spec.rules[0].backendRefs[*].weight}",
    )
}

fn fault(sb: &SandboxProc) {
    common::http_post_json(&format!("{}/sandbox/v1/faults", sb.url), CANARY_ERRORS);
}

#[test]
fn the_guard_counts_down_and_rolls_back_a_bad_canary_audited_as_automatic() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    assert_eq!(weights(&sb), "90 10");
    let mut c = cockpit(&sb, 4);
    fault(&sb);
    let s = c.pty.wait_for("the countdown", T, |s| {
        s.contains("GUARD: staging/checkout") && s.contains("rolling back in")
    });
    assert!(s.contains("error ratio"), "{s}");
    assert!(s.contains("press x to cancel"), "{s}");
    c.pty.wait_for("the rollback", T, |s| {
        s.contains("GUARD rolled back checkout in staging")
    });
    assert_eq!(weights(&sb), "100 0");
    let lines = c.audit_lines();
    let outcome = lines
        .iter()
        .find(|l| l["action"] == "rollback" && l["phase"] == "outcome")
        .unwrap_or_else(|| panic!("the rollback in the audit log: {lines:?}"));
    assert_eq!(outcome["automatic"], true, "{outcome}");
    assert_eq!(outcome["result"]["status"], 200, "{outcome}");
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn the_key_cancels_the_guards_rollback() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let mut c = cockpit(&sb, 30);
    fault(&sb);
    c.pty.wait_for("the countdown", T, |s| {
        s.contains("GUARD: staging/checkout") && s.contains("rolling back in")
    });
    c.pty.send("x");
    c.pty.wait_for("cancelled", T, |s| {
        s.contains("rollback of checkout in staging cancelled")
    });
    assert_eq!(weights(&sb), "90 10");
    let lines = c.audit_lines();
    assert!(
        lines.iter().any(|l| l["action"] == "guard-cancelled"),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l["action"] == "rollback"),
        "{lines:?}"
    );
    // Spared: the same version is not rolled back again while it stays bad.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(weights(&sb), "90 10");
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));
}
