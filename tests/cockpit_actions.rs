//! Actions from the cockpit's keys, as an operator does them: the real binary in a
//! pseudo-terminal against the sandbox, the cluster checked afterwards with a real kubectl and
//! the audit log read back.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::SandboxProc;
use common::pty::Pty;

const T: Duration = Duration::from_secs(30);

/// Apps in the order the cockpit lists them (by name).
const APPS: [&str; 8] = [
    "cart",
    "catalog",
    "checkout",
    "frontend",
    "inventory",
    "payments",
    "reviews",
    "search",
];

struct Cockpit {
    pty: Pty,
    audit: PathBuf,
    _dir: tempfile::TempDir,
}

fn cockpit(sb: &SandboxProc, kubeconfig: &Path, extra: &[&str]) -> Cockpit {
    let dir = tempfile::tempdir().expect("dir");
    let audit = dir.path().join("audit.jsonl");
    let kc = kubeconfig.to_string_lossy().to_string();
    let audit_s = audit.to_string_lossy().to_string();
    let mut args = vec![
        "--kubeconfig",
        &kc,
        "--env",
        "staging=sandbox/staging",
        "--env",
        "production=sandbox/production",
        "--prometheus",
        &sb.prometheus,
        "--audit-log",
        &audit_s,
    ];
    args.extend_from_slice(extra);
    let pty = Pty::spawn_env(&args, 160, 45, &[("USER", "oncall")]);
    // Every app (the Argo Rollout's arrives from its own watch), so the order is final.
    pty.wait_for("apps", T, |s| s.contains("Apps (8)") && s.contains("cart"));
    Cockpit {
        pty,
        audit,
        _dir: dir,
    }
}

impl Cockpit {
    /// Select `app` in the environment with the keyboard.
    fn select(&mut self, app: &str) {
        let i = APPS.iter().position(|a| *a == app).unwrap_or(0);
        let marker = format!("▸{app}");
        for _ in 0..5 {
            self.pty.send("g");
            for _ in 0..i {
                self.pty.send("j");
            }
            std::thread::sleep(Duration::from_millis(300));
            if self.pty.screen().contains(&marker) {
                return;
            }
        }
        self.pty
            .wait_for(&format!("{app} selected"), T, |s| s.contains(&marker));
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn weights(sb: &SandboxProc, ns: &str) -> String {
    sb.jsonpath(
        "httproute",
        "checkout",
        ns,
        "{.spec.rules[0].backendRefs[*].weight}",
    )
}

#[test]
fn promote_in_staging_with_one_key_abort_in_production_with_name_and_reason() {
    let sb = SandboxProc::start(&[]);
    let mut c = cockpit(&sb, sb.kubeconfig_path(), &[]);
    c.select("checkout");
    c.pty.send("p");
    let s = c.pty.wait_for("the staging dialog", T, |s| {
        s.contains("promote checkout") && s.contains("y/enter apply")
    });
    assert!(
        s.contains("checkout-stable 90 → 75, checkout-canary 10 → 25"),
        "the exact change:\n{s}"
    );
    assert!(s.contains("namespace staging"), "{s}");
    c.pty.send("y");
    c.pty
        .wait_for("applied", T, |s| s.contains("promote checkout: applied"));
    assert_eq!(weights(&sb, "staging"), "75 25");

    // Production: one key does nothing; the name and a reason do.
    c.pty.send("l");
    c.pty.wait_for("production has the keyboard", T, |s| {
        s.contains("▶ PRODUCTION")
    });
    c.select("checkout");
    c.pty.send("a");
    c.pty.wait_for("the production dialog", T, |s| {
        s.contains("abort checkout — PRODUCTION") && s.contains("type the app name")
    });
    c.pty.send("y");
    c.pty.send("\r");
    c.pty.wait_for("asked for the name", T, |s| {
        s.contains("type the app name (checkout) to confirm")
    });
    assert_eq!(weights(&sb, "production"), "90 10", "nothing sent yet");
    c.pty.send("\x7fcheckout\r");
    c.pty.send("error ratio 4 % on 1.5.0\r");
    c.pty
        .wait_for("aborted", T, |s| s.contains("abort checkout: applied"));
    assert_eq!(weights(&sb, "production"), "100 0");

    let lines = c.audit_lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[2]["action"], "abort");
    assert_eq!(lines[2]["environment"], "production");
    assert_eq!(lines[2]["reason"], "error ratio 4 % on 1.5.0");
    assert_eq!(lines[2]["operator"]["os_user"], "oncall");
    assert_eq!(lines[3]["phase"], "outcome");
    assert_eq!(lines[3]["result"]["status"], 200);

    // Esc cancels: nothing sent, nothing audited.
    c.pty.send("p");
    c.pty
        .wait_for("dialog", T, |s| s.contains("promote checkout — PRODUCTION"));
    c.pty.send("\x1b");
    c.pty.wait_for("cancelled", T, |s| {
        s.contains("cancelled: nothing was changed")
    });
    assert_eq!(c.audit_lines().len(), 4);
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn rollback_to_a_chosen_revision_and_a_refused_flip() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let mut c = cockpit(&sb, sb.kubeconfig_path(), &[]);
    c.select("frontend");
    c.pty.send("r");
    let s = c
        .pty
        .wait_for("the rollback dialog with revisions", T, |s| {
            s.contains("rollback frontend") && s.contains("revisions")
        });
    assert!(s.contains("Deployment/frontend revision 3 → 2"), "{s}");
    assert!(s.contains("(running now)"), "{s}");
    // Down: revision 1 instead.
    c.pty.send("\x1b[B");
    c.pty.wait_for("revision 1 chosen", T, |s| {
        s.contains("Deployment/frontend revision 3 → 1")
    });
    c.pty.send("y");
    c.pty.wait_for("rolled back", T, |s| {
        s.contains("rollback frontend: applied")
    });
    assert_eq!(
        sb.jsonpath(
            "deploy",
            "frontend",
            "staging",
            "{.spec.template.spec.containers[0].image}"
        ),
        "registry.local/frontend:3.0.0"
    );

    // Blue/green to a colour whose pods fail readiness: refused, with the pods named.
    common::http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        r#"{"namespace":"staging","app":"payments","version":"green","kind":"readinessFailure"}"#,
    );
    common::eventually(T, "green pods unready", || {
        let ready = sb.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "staging",
            "-l",
            "app=payments,version=green",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (!ready.is_empty() && ready.split_whitespace().all(|s| s == "False")).then_some(())
    });
    c.select("payments");
    c.pty.send("f");
    let s = c
        .pty
        .wait_for("refused", T, |s| s.contains("refusing to flip"));
    assert!(s.contains("not Ready: payments-green-"), "{s}");
    assert_eq!(
        sb.jsonpath("svc", "payments", "staging", "{.spec.selector.version}"),
        "blue"
    );
    assert_eq!(c.audit_lines().len(), 2, "only the rollback is in the log");
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn read_only_and_rbac_denied_actions_are_unavailable_with_the_reason() {
    let sb = SandboxProc::start(&[]);
    let mut c = cockpit(&sb, sb.kubeconfig_path(), &["--read-only"]);
    c.select("checkout");
    c.pty.send("p");
    c.pty.wait_for("read-only notice", T, |s| {
        s.contains("promote: not available (--read-only)")
    });
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));

    // A viewer's token: the access review says no, the footer strikes the keys through and
    // the key says why.
    let dir = tempfile::tempdir().expect("dir");
    let viewer = dir.path().join("viewer.kubeconfig");
    std::fs::write(
        &viewer,
        kockpit::sandbox::kubeconfig_for(&sb.url, "kockpit-sandbox-viewer"),
    )
    .expect("kubeconfig");
    let mut c = cockpit(&sb, &viewer, &[]);
    c.select("checkout");
    std::thread::sleep(Duration::from_millis(500));
    c.pty.send("p");
    let s = c.pty.wait_for("denied", T, |s| s.contains("not permitted"));
    assert!(
        s.contains("cannot patch httproutes.gateway.networking.k8s.io checkout"),
        "{s}"
    );
    assert!(!s.contains("y/enter apply"), "no dialog:\n{s}");
    assert_eq!(weights(&sb, "staging"), "90 10");
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_drill_from_the_menu_shows_its_banner_and_report() {
    let sb = SandboxProc::start(&["--speed", "10"]);
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("kockpit.toml");
    std::fs::write(
        &config,
        format!(
            "[[env]]\nname = \"staging\"\ncontext = \"sandbox\"\nnamespace = \"staging\"\nprometheus = \"{}\"\n\n[drill]\nwindow_seconds = 1\nhold_seconds = 2\n",
            sb.prometheus
        ),
    )
    .expect("config");
    let config_s = config.to_string_lossy().to_string();
    let audit = dir.path().join("audit.jsonl");
    let audit_s = audit.to_string_lossy().to_string();
    let kc = sb.kubeconfig.to_string_lossy().to_string();
    let mut p = Pty::spawn_env(
        &[
            "--config",
            &config_s,
            "--kubeconfig",
            &kc,
            "--audit-log",
            &audit_s,
        ],
        160,
        45,
        &[("USER", "oncall")],
    );
    p.wait_for("apps", T, |s| {
        s.contains("Apps (") && s.contains("checkout")
    });
    p.send("d");
    p.wait_for("the drill menu", T, |s| {
        s.contains("Rollback drills") && s.contains("canary-error-spike")
    });
    p.send("\r");
    p.wait_for("the banner", T, |s| s.contains("DRILL canary-error-spike"));
    // The fault comes within a second; then act as on call: abort the canary.
    std::thread::sleep(Duration::from_secs(3));
    let mut c = Cockpit {
        pty: p,
        audit,
        _dir: dir,
    };
    c.select("checkout");
    c.pty.send("a");
    c.pty.wait_for("dialog", T, |s| s.contains("y/enter apply"));
    c.pty.send("y");
    let s = c
        .pty
        .wait_for("the drill's report", Duration::from_secs(90), |s| {
            s.contains("drill on staging ended")
        });
    assert!(s.contains("canary-error-spike: recovered"), "{s}");
    assert!(s.contains("right action: yes"), "{s}");
    c.pty
        .wait_for("the banner gone", T, |s| !s.contains("DRILL canary"));
    let lines = c.audit_lines();
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "abort" && l["drill"] == true),
        "the abort carries the drill marker: {lines:?}"
    );
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn traefik_and_istio_canaries_from_the_keys() {
    let sb = SandboxProc::start(&[]);
    let mut c = cockpit(&sb, sb.kubeconfig_path(), &[]);
    c.select("inventory");
    c.pty.send("p");
    let s = c.pty.wait_for("the Traefik dialog", T, |s| {
        s.contains("promote inventory") && s.contains("y/enter apply")
    });
    assert!(s.contains("Traefik TraefikService/inventory"), "{s}");
    assert!(
        s.contains("inventory-stable 90 → 75, inventory-canary 10 → 25"),
        "{s}"
    );
    c.pty.send("y");
    c.pty
        .wait_for("applied", T, |s| s.contains("promote inventory: applied"));
    assert_eq!(
        sb.jsonpath(
            "traefikservices.traefik.io",
            "inventory",
            "staging",
            "{.spec.weighted.services[*].weight}"
        ),
        "75 25"
    );
    c.select("reviews");
    c.pty.send("P");
    let s = c.pty.wait_for("the Istio dialog", T, |s| {
        s.contains("promote-full reviews") && s.contains("y/enter apply")
    });
    assert!(
        s.contains("reviews/stable 90 → 0, reviews/canary 10 → 100"),
        "{s}"
    );
    c.pty.send("y");
    c.pty.wait_for("applied", T, |s| {
        s.contains("promote-full reviews: applied")
    });
    assert_eq!(
        sb.jsonpath(
            "virtualservices.networking.istio.io",
            "reviews",
            "staging",
            "{.spec.http[0].route[*].weight}"
        ),
        "0 100"
    );
    assert_eq!(c.audit_lines().len(), 4);
    c.pty.send("q");
    assert_eq!(c.pty.wait_exit(Duration::from_secs(10)), Some(0));
}
