//! `kockpit promote|abort|flip|rollback|pause|resume|restart` as a script would run them: the
//! real binary against the sandbox, checking the cluster afterwards with a real kubectl, the
//! exit codes, the audit log (`kockpit audit verify|show`) and the Events posted.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{SandboxProc, http_post_json};

const BIN: &str = env!("CARGO_BIN_EXE_kockpit");

struct Cli {
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cli {
    fn new(sb: &SandboxProc) -> Cli {
        Cli {
            home: tempfile::tempdir().expect("temp home"),
            kubeconfig: sb.kubeconfig_path().to_path_buf(),
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
            .env("SSH_CONNECTION", "10.1.2.3 50000 10.0.0.1 22")
            .stdin(std::process::Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run kockpit")
    }

    /// Run; assert the exit code; stdout + stderr.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "kockpit {args:?}:\n{text}");
        text
    }
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

const STAGING: &str = "staging=sandbox/staging";
const PRODUCTION: &str = "production=sandbox/production";

#[test]
fn promote_abort_and_the_audit_trail() {
    let sb = SandboxProc::start(&[]);
    let cli = Cli::new(&sb);
    let weights = |ns| {
        sb.jsonpath(
            "httproute",
            "checkout",
            ns,
            "{.spec.rules[0].backendRefs[*].weight}",
        )
    };

    let out = cli.expect(0, &["promote", "checkout", "--env", STAGING, "--yes"]);
    assert!(
        out.contains(
            "HTTPRoute/checkout rule 0 weights: checkout-stable 90 → 75, checkout-canary 10 → 25"
        ),
        "{out}"
    );
    assert!(out.contains("applied in"), "{out}");
    assert_eq!(weights("staging"), "75 25");

    // Production: --yes alone is not enough; nothing changes.
    let out = cli.expect(6, &["promote", "checkout", "--env", PRODUCTION, "--yes"]);
    assert!(out.contains("needs --reason"), "{out}");
    // No terminal and no --yes: not confirmed either.
    cli.expect(6, &["promote", "checkout", "--env", STAGING]);
    assert_eq!(weights("production"), "90 10");
    let out = cli.expect(
        0,
        &[
            "promote",
            "checkout",
            "--env",
            PRODUCTION,
            "--yes",
            "--full",
            "--reason",
            "canary clean for 30 minutes",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("--json prints one object");
    assert_eq!(v["result"], "applied");
    assert_eq!(v["after"]["canary_weight"], 100);
    assert_eq!(weights("production"), "0 100");

    // A dry run goes to the server, changes nothing and is not audited.
    let out = cli.expect(0, &["abort", "checkout", "--env", PRODUCTION, "--dry-run"]);
    assert!(out.contains("dry run passed"), "{out}");
    assert_eq!(weights("production"), "0 100");

    cli.expect(
        0,
        &[
            "abort", "checkout", "--env", PRODUCTION, "-y", "--reason", "drill",
        ],
    );
    assert_eq!(weights("production"), "100 0");

    // Wrong verb for the release, unknown app, unknown environment.
    let out = cli.expect(3, &["flip", "checkout", "--env", STAGING, "-y"]);
    assert!(
        out.contains("flip is for blue/green apps; checkout is a canary"),
        "{out}"
    );
    let out = cli.expect(3, &["promote", "nope", "--env", STAGING, "-y"]);
    assert!(out.contains("no app nope in namespace staging"), "{out}");
    let out = cli.expect(2, &["promote", "checkout", "--env", "qa", "-y"]);
    assert!(out.contains("no environment \"qa\""), "{out}");

    // The audit log: intent and outcome for each of the three changes, with who, where, why.
    let lines = audit_lines(&cli.audit());
    assert_eq!(lines.len(), 6, "{lines:?}");
    let phases: Vec<&str> = lines.iter().filter_map(|l| l["phase"].as_str()).collect();
    assert_eq!(
        phases,
        [
            "intent", "outcome", "intent", "outcome", "intent", "outcome"
        ]
    );
    let full = &lines[3];
    assert_eq!(full["action"], "promote-full");
    assert_eq!(full["environment"], "production");
    assert_eq!(full["context"], "sandbox");
    assert_eq!(full["object"], "HTTPRoute/checkout");
    assert_eq!(full["operator"]["os_user"], "oncall");
    assert_eq!(full["operator"]["kube_user"], "sandbox-admin");
    assert_eq!(full["operator"]["ssh_client"], "10.1.2.3");
    assert_eq!(full["reason"], "canary clean for 30 minutes");
    assert_eq!(full["result"]["status"], 200);
    assert_eq!(full["before"]["canary_weight"], 10);
    assert_eq!(full["after"]["canary_weight"], 100);
    let text = std::fs::read_to_string(cli.audit()).unwrap_or_default();
    assert!(
        !text.contains("kockpit-sandbox-admin"),
        "no token in the log"
    );

    let audit = cli.audit();
    let audit_arg = audit.to_str().unwrap_or_default();
    let out = cli.expect(0, &["audit", "verify", "--file", audit_arg]);
    assert!(out.contains("ok: 6 entries, chain intact"), "{out}");
    let out = cli.expect(
        0,
        &["audit", "show", "--file", audit_arg, "--env", "production"],
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("canary clean for 30 minutes"), "{out}");

    // The cluster's side: an Event on the route naming the operator, and kockpit as the
    // field manager (from its User-Agent).
    let ev = sb.kubectl_ok(&[
        "get",
        "events",
        "-n",
        "production",
        "--field-selector",
        "reason=KockpitPromoteFull",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        ev.contains("kockpit promote-full by oncall@10.1.2.3"),
        "{ev}"
    );
    assert!(ev.contains("(reason: canary clean for 30 minutes)"), "{ev}");
    let managers = sb.jsonpath(
        "httproute",
        "checkout",
        "production",
        "{.metadata.managedFields[*].manager}",
    );
    assert!(
        managers.split_whitespace().any(|m| m == "kockpit"),
        "{managers}"
    );
}

#[test]
fn flip_refused_while_the_target_is_unready_then_flip_and_flip_back() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let cli = Cli::new(&sb);
    http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        r#"{"namespace":"staging","app":"payments","version":"green","kind":"readinessFailure"}"#,
    );
    // Wait with kubectl (a flip tried too early would go through while green is still Ready).
    common::eventually(Duration::from_secs(15), "green unready", || {
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
    let out = cli.expect(3, &["flip", "payments", "--env", STAGING, "-y"]);
    assert!(
        out.contains("refusing to flip Service/payments to version=green"),
        "{out}"
    );
    assert!(out.contains("pods are not Ready: payments-green-"), "{out}");
    assert_eq!(
        sb.jsonpath("svc", "payments", "staging", "{.spec.selector.version}"),
        "blue"
    );
    assert!(
        audit_lines(&cli.audit()).is_empty(),
        "a refusal sends nothing, audits nothing"
    );

    common::http_request(
        "DELETE",
        &format!("{}/sandbox/v1/faults", sb.url),
        "application/json",
        "",
    );
    common::eventually(Duration::from_secs(30), "flip goes through", || {
        let out = cli.run(&["flip", "payments", "--env", STAGING, "-y"]);
        (out.status.code() == Some(0)).then_some(())
    });
    assert_eq!(
        sb.jsonpath("svc", "payments", "staging", "{.spec.selector.version}"),
        "green"
    );
    let out = cli.expect(0, &["rollback", "payments", "--env", STAGING, "-y"]);
    assert!(
        out.contains("Service/payments selector version: green → blue"),
        "{out}"
    );
    assert_eq!(
        sb.jsonpath("svc", "payments", "staging", "{.spec.selector.version}"),
        "blue"
    );
}

/// The error ratio of an app over the last `window`, from the sandbox's Prometheus API.
fn error_ratio(sb: &SandboxProc, ns: &str, app: &str, window: &str) -> Option<f64> {
    let q = format!(
        r#"sum(rate(http_requests_total{{namespace="{ns}",app="{app}",code=~"5.."}}[{window}])) / sum(rate(http_requests_total{{namespace="{ns}",app="{app}"}}[{window}]))"#
    );
    query(sb, &q)?.and_then(|s| s.parse().ok())
}

/// An instant query on the sandbox's Prometheus API: the first sample's value as text (`None`
/// inside when the result is empty); `None` when the answer is not JSON.
fn query(sb: &SandboxProc, q: &str) -> Option<Option<String>> {
    let url = format!(
        "{}/api/v1/query?query={}",
        sb.prometheus,
        percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC)
    );
    let (status, body) = common::http_request("GET", &url, "application/json", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(
        v.pointer("/data/result/0/value/1")
            .and_then(|x| x.as_str())
            .map(str::to_string),
    )
}

#[test]
fn rollback_undoes_a_bad_set_image_and_errors_recover() {
    let sb = SandboxProc::start(&["--speed", "10"]);
    let cli = Cli::new(&sb);
    sb.kubectl_ok(&[
        "set",
        "image",
        "deployment/frontend",
        "frontend=registry.local/frontend:3.3.0-errors",
        "-n",
        "staging",
    ]);
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "staging",
        "--timeout=60s",
    ]);
    let bad = common::eventually(Duration::from_secs(30), "errors climb", || {
        error_ratio(&sb, "staging", "frontend", "1m").filter(|r| *r > 0.1)
    });
    let out = cli.expect(
        0,
        &[
            "rollback",
            "frontend",
            "--env",
            STAGING,
            "-y",
            "--reason",
            "5xx after 3.3.0",
        ],
    );
    assert!(
        out.contains("image registry.local/frontend:3.3.0-errors → registry.local/frontend:3.2.0"),
        "{out}"
    );
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "staging",
        "--timeout=60s",
    ]);
    let started = Instant::now();
    let good = common::eventually(Duration::from_secs(60), "errors recover", || {
        error_ratio(&sb, "staging", "frontend", "30s").filter(|r| *r < 0.01)
    });
    eprintln!(
        "error ratio {bad:.3} → {good:.4}, recovered {:?} after the rollout",
        started.elapsed()
    );
    assert_eq!(
        sb.jsonpath(
            "deploy",
            "frontend",
            "staging",
            "{.spec.template.spec.containers[0].image}"
        ),
        "registry.local/frontend:3.2.0"
    );

    // Paused: refused with what to do; resume; restart.
    cli.expect(0, &["pause", "frontend", "--env", STAGING, "-y"]);
    assert_eq!(
        sb.jsonpath("deploy", "frontend", "staging", "{.spec.paused}"),
        "true"
    );
    let out = cli.expect(3, &["rollback", "frontend", "--env", STAGING, "-y"]);
    assert!(
        out.contains("is paused: resume it before rolling back"),
        "{out}"
    );
    let out = cli.expect(0, &["pause", "frontend", "--env", STAGING, "-y"]);
    assert!(
        out.contains("already paused") && out.contains("nothing to do"),
        "{out}"
    );
    cli.expect(0, &["resume", "frontend", "--env", STAGING, "-y"]);
    assert_eq!(
        sb.jsonpath("deploy", "frontend", "staging", "{.spec.paused}"),
        "false"
    );
    cli.expect(0, &["restart", "frontend", "--env", STAGING, "-y"]);
    let at = sb.jsonpath(
        "deploy",
        "frontend",
        "staging",
        "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    );
    assert!(at.parse::<jiff::Timestamp>().is_ok(), "restartedAt {at:?}");
    let out = cli.expect(
        3,
        &[
            "rollback",
            "frontend",
            "--env",
            STAGING,
            "-y",
            "--to-revision",
            "42",
        ],
    );
    assert!(out.contains("has no revision 42; revisions:"), "{out}");
}

#[test]
fn read_only_and_rbac_denials_change_nothing() {
    let sb = SandboxProc::start(&[]);
    let cli = Cli::new(&sb);
    let out = cli.expect(
        4,
        &["--read-only", "promote", "checkout", "--env", STAGING, "-y"],
    );
    assert!(out.contains("--read-only is set"), "{out}");
    // Global flags also work after the subcommand.
    cli.expect(
        4,
        &["promote", "checkout", "--env", STAGING, "-y", "--read-only"],
    );
    // A per-environment read_only in the config.
    let config = cli.home.path().join("kockpit.toml");
    std::fs::write(
        &config,
        "[[env]]\nname = \"staging\"\ncontext = \"sandbox\"\nnamespace = \"staging\"\nread_only = true\n",
    )
    .expect("config");
    let out = cli.expect(
        4,
        &[
            "promote",
            "checkout",
            "--env",
            "staging",
            "-y",
            "--config",
            config.to_str().unwrap_or_default(),
        ],
    );
    assert!(out.contains("read_only"), "{out}");

    // A viewer: the SelfSubjectAccessReview says no before anything is sent.
    let viewer = cli.home.path().join("viewer.kubeconfig");
    std::fs::write(
        &viewer,
        kockpit::sandbox::kubeconfig_for(&sb.url, "kockpit-sandbox-viewer"),
    )
    .expect("kubeconfig");
    let out = cli.expect(
        4,
        &[
            "promote",
            "checkout",
            "--env",
            STAGING,
            "-y",
            "--kubeconfig",
            viewer.to_str().unwrap_or_default(),
        ],
    );
    assert!(out.contains("not permitted: cannot patch httproutes.gateway.networking.k8s.io checkout in namespace staging"), "{out}");
    assert_eq!(
        sb.jsonpath(
            "httproute",
            "checkout",
            "staging",
            "{.spec.rules[0].backendRefs[*].weight}"
        ),
        "90 10"
    );
    assert!(audit_lines(&cli.audit()).is_empty());
}

#[test]
fn kill_9_between_intent_and_outcome_leaves_a_dangling_intent_that_verifies() {
    let sb = SandboxProc::start(&[]);
    let cli = Cli::new(&sb);
    // Hold writes in staging for 30 s, so the process is killed while its request waits.
    http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        r#"{"namespace":"staging","kind":"apiDelay","value":30}"#,
    );
    let mut child = cli
        .command(&["restart", "frontend", "--env", STAGING, "-y"])
        .spawn()
        .expect("spawn");
    common::eventually(Duration::from_secs(10), "intent on disk", || {
        (audit_lines(&cli.audit()).len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("kill -9");
    let _ = child.wait();
    let audit = cli.audit();
    let file = audit.to_str().unwrap_or_default();
    let out = cli.expect(0, &["audit", "verify", "--file", file]);
    assert!(out.contains("ok: 1 entries, chain intact"), "{out}");
    assert!(
        out.contains("dangling intent: line 1: restart Deployment/frontend"),
        "{out}"
    );
    let out = cli.expect(0, &["audit", "show", "--file", file]);
    assert!(out.contains("restart"), "{out}");
    // The log goes on after the crash.
    common::http_request(
        "DELETE",
        &format!("{}/sandbox/v1/faults", sb.url),
        "application/json",
        "",
    );
    cli.expect(0, &["pause", "frontend", "--env", STAGING, "-y"]);
    let out = cli.expect(0, &["audit", "verify", "--file", file]);
    assert!(out.contains("ok: 3 entries"), "{out}");
}

#[test]
fn two_processes_appending_at_once_keep_one_valid_chain() {
    let sb = SandboxProc::start(&[]);
    let cli = Cli::new(&sb);
    let n = 8;
    let spawn = |env: &'static str| {
        let cmds: Vec<Command> = (0..n)
            .map(|i| {
                cli.command(&[
                    "restart",
                    "frontend",
                    "--env",
                    env,
                    "-y",
                    "--reason",
                    &format!("load test {i}"),
                ])
            })
            .collect();
        std::thread::spawn(move || {
            for mut c in cmds {
                let out = c.output().expect("run");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        })
    };
    let a = spawn(STAGING);
    let b = spawn(PRODUCTION);
    a.join().expect("staging runs");
    b.join().expect("production runs");
    let lines = audit_lines(&cli.audit());
    assert_eq!(lines.len(), 4 * n);
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=(4 * n) as u64).collect::<Vec<_>>());
    let audit = cli.audit();
    let out = cli.expect(
        0,
        &[
            "audit",
            "verify",
            "--file",
            audit.to_str().unwrap_or_default(),
        ],
    );
    assert!(
        out.contains(&format!("ok: {} entries, chain intact", 4 * n)),
        "{out}"
    );
    assert!(!out.contains("dangling"), "{out}");
}

/// The share of an app's requests that `version` served over the last `window`.
fn share(sb: &SandboxProc, ns: &str, app: &str, version: &str, window: &str) -> Option<f64> {
    let q = format!(
        r#"sum(rate(http_requests_total{{namespace="{ns}",app="{app}",version="{version}"}}[{window}])) / sum(rate(http_requests_total{{namespace="{ns}",app="{app}"}}[{window}]))"#
    );
    match query(sb, &q)? {
        Some(s) => s.parse().ok(),
        // No series for that version: it served nothing.
        None => Some(0.0),
    }
}

/// Wait until the canary's share of traffic is within `tol` of `want`.
fn traffic_settles(sb: &SandboxProc, app: &str, version: &str, want: f64, tol: f64) {
    common::eventually(
        Duration::from_secs(60),
        &format!("{app} {version} at {want}"),
        || share(sb, "staging", app, version, "20s").filter(|s| (s - want).abs() <= tol),
    );
}

#[test]
fn ingress_nginx_and_replica_ratio_canaries_step_and_move_traffic() {
    let sb = SandboxProc::start(&["--speed", "10"]);
    let cli = Cli::new(&sb);
    let weight = || {
        sb.jsonpath(
            "ingress",
            "catalog-canary",
            "staging",
            "{.metadata.annotations.nginx\\.ingress\\.kubernetes\\.io/canary-weight}",
        )
    };
    let out = cli.expect(0, &["promote", "catalog", "--env", STAGING, "-y"]);
    assert!(
        out.contains("ingress-nginx Ingress/catalog-canary"),
        "{out}"
    );
    assert_eq!(weight(), "25");
    traffic_settles(&sb, "catalog", "7.1.0", 0.25, 0.08);
    cli.expect(0, &["promote", "catalog", "--env", STAGING, "-y", "--full"]);
    assert_eq!(weight(), "100");
    traffic_settles(&sb, "catalog", "7.1.0", 1.0, 0.02);
    cli.expect(0, &["abort", "catalog", "--env", STAGING, "-y"]);
    assert_eq!(weight(), "0");
    traffic_settles(&sb, "catalog", "7.1.0", 0.0, 0.02);
    // A malformed weight is refused, nothing written.
    sb.kubectl_ok(&[
        "annotate",
        "ingress",
        "catalog-canary",
        "-n",
        "staging",
        "--overwrite",
        "nginx.ingress.kubernetes.io/canary-weight=ten",
    ]);
    let out = cli.expect(3, &["promote", "catalog", "--env", STAGING, "-y"]);
    assert!(out.contains("not a whole number"), "{out}");
    assert_eq!(weight(), "ten");

    // Replica ratio: 2 stable + 1 canary pods behind one Service.
    let replicas = || {
        format!(
            "{}/{}",
            sb.jsonpath("deploy", "search", "staging", "{.spec.replicas}"),
            sb.jsonpath("deploy", "search-canary", "staging", "{.spec.replicas}")
        )
    };
    assert_eq!(replicas(), "2/1");
    let out = cli.expect(0, &["promote", "search", "--env", STAGING, "-y"]);
    assert!(out.contains("replica ratio behind Service/search"), "{out}");
    assert!(out.contains("nearest split to 50 % is 2 of 3"), "{out}");
    assert_eq!(replicas(), "1/2");
    traffic_settles(&sb, "search", "4.2.0", 2.0 / 3.0, 0.1);
    cli.expect(0, &["promote", "search", "--env", STAGING, "-y", "--full"]);
    assert_eq!(replicas(), "0/3");
    traffic_settles(&sb, "search", "4.2.0", 1.0, 0.02);
    cli.expect(0, &["abort", "search", "--env", STAGING, "-y"]);
    assert_eq!(replicas(), "3/0");
    traffic_settles(&sb, "search", "4.2.0", 0.0, 0.02);
}

#[test]
fn argo_rollouts_promote_full_and_abort_drive_the_rollout() {
    let sb = SandboxProc::start(&["--speed", "10"]);
    let cli = Cli::new(&sb);
    let status = |path: &str| sb.jsonpath("rollout", "cart", "staging", path);
    assert_eq!(status("{.status.canary.weights.canary.weight}"), "20");
    let out = cli.expect(0, &["promote", "cart", "--env", STAGING, "-y"]);
    assert!(out.contains("Argo Rollouts Rollout/cart"), "{out}");
    assert!(out.contains("canary weight 20 % → 50 %"), "{out}");
    common::eventually(Duration::from_secs(30), "weight 50", || {
        (status("{.status.canary.weights.canary.weight}") == "50").then_some(())
    });
    traffic_settles(&sb, "cart", "2.1.0", 0.5, 0.1);
    cli.expect(0, &["promote", "cart", "--env", STAGING, "-y", "--full"]);
    common::eventually(Duration::from_secs(60), "rollout complete", || {
        (status("{.status.phase}") == "Healthy"
            && status("{.status.stableRS}") == status("{.status.currentPodHash}"))
        .then_some(())
    });
    traffic_settles(&sb, "cart", "2.1.0", 1.0, 0.02);
    let out = cli.expect(3, &["promote", "cart", "--env", STAGING, "-y"]);
    assert!(out.contains("no update in progress"), "{out}");

    // A new version, then abort: back to the stable ReplicaSet.
    sb.kubectl_ok(&[
        "patch", "rollout", "cart", "-n", "staging", "--type=json", "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.local/cart:2.2.0"}]"#,
    ]);
    common::eventually(Duration::from_secs(30), "canary at 20", || {
        (status("{.status.canary.weights.canary.weight}") == "20").then_some(())
    });
    let out = cli.expect(
        0,
        &[
            "abort",
            "cart",
            "--env",
            STAGING,
            "-y",
            "--reason",
            "p99 regression",
        ],
    );
    assert!(out.contains("status.abort: true"), "{out}");
    common::eventually(Duration::from_secs(30), "aborted", || {
        (status("{.status.phase}") == "Degraded"
            && status("{.status.canary.weights.canary.weight}") == "0")
            .then_some(())
    });
    traffic_settles(&sb, "cart", "2.2.0", 0.0, 0.02);
}

#[test]
fn traefik_and_istio_canaries_step_move_traffic_and_refuse_bad_objects() {
    let sb = SandboxProc::start(&["--speed", "10"]);
    let cli = Cli::new(&sb);
    let traefik = || {
        sb.jsonpath(
            "traefikservices.traefik.io",
            "inventory",
            "staging",
            "{.spec.weighted.services[*].weight}",
        )
    };
    let out = cli.expect(0, &["promote", "inventory", "--env", STAGING, "-y"]);
    assert!(out.contains("Traefik TraefikService/inventory"), "{out}");
    assert!(
        out.contains("inventory-stable 90 → 75, inventory-canary 10 → 25"),
        "{out}"
    );
    assert_eq!(traefik(), "75 25");
    traffic_settles(&sb, "inventory", "5.3.0", 0.25, 0.08);
    cli.expect(
        0,
        &["promote", "inventory", "--env", STAGING, "-y", "--full"],
    );
    assert_eq!(traefik(), "0 100");
    traffic_settles(&sb, "inventory", "5.3.0", 1.0, 0.02);
    cli.expect(0, &["abort", "inventory", "--env", STAGING, "-y"]);
    assert_eq!(traefik(), "100 0");
    traffic_settles(&sb, "inventory", "5.3.0", 0.0, 0.02);

    let istio = || {
        sb.jsonpath(
            "virtualservices.networking.istio.io",
            "reviews",
            "staging",
            "{.spec.http[0].route[*].weight}",
        )
    };
    let out = cli.expect(0, &["promote", "reviews", "--env", STAGING, "-y"]);
    assert!(
        out.contains("Istio VirtualService/reviews http[0]"),
        "{out}"
    );
    assert!(
        out.contains("reviews/stable 90 → 75, reviews/canary 10 → 25"),
        "{out}"
    );
    assert_eq!(istio(), "75 25");
    traffic_settles(&sb, "reviews", "1.9.0", 0.25, 0.08);
    cli.expect(0, &["abort", "reviews", "--env", STAGING, "-y"]);
    assert_eq!(istio(), "100 0");
    traffic_settles(&sb, "reviews", "1.9.0", 0.0, 0.02);

    // Malformed objects: a clear refusal, nothing written.
    let vs = "virtualservices.networking.istio.io";
    sb.kubectl_ok(&[
        "patch",
        vs,
        "reviews",
        "-n",
        "staging",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/http/0/route/0/weight","value":80}]"#,
    ]);
    let out = cli.expect(3, &["promote", "reviews", "--env", STAGING, "-y"]);
    assert!(out.contains("sum to 80, not 100"), "{out}");
    assert_eq!(istio(), "80 0");
    sb.kubectl_ok(&[
        "patch", vs, "reviews", "-n", "staging", "--type=json", "-p",
        r#"[{"op":"replace","path":"/spec/http/0/route/0/weight","value":100},{"op":"replace","path":"/spec/http/0/route/1/destination/subset","value":"v9"}]"#,
    ]);
    let out = cli.expect(3, &["promote", "reviews", "--env", STAGING, "-y"]);
    assert!(
        out.contains("subset v9 of reviews.staging.svc.cluster.local is not defined"),
        "{out}"
    );
    assert_eq!(istio(), "100 0");
    sb.kubectl_ok(&[
        "patch",
        "traefikservices.traefik.io",
        "inventory",
        "-n",
        "staging",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/weighted/services/1/weight"}]"#,
    ]);
    let out = cli.expect(3, &["promote", "inventory", "--env", STAGING, "-y"]);
    assert!(
        out.contains("service inventory-canary has no weight"),
        "{out}"
    );

    // Owned by a progressive-delivery controller: refused.
    sb.kubectl_ok(&[
        "patch",
        "traefikservices.traefik.io",
        "inventory",
        "-n",
        "staging",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/weighted/services/1/weight","value":0}]"#,
    ]);
    sb.kubectl_ok(&[
        "annotate",
        "traefikservices.traefik.io",
        "inventory",
        "-n",
        "staging",
        "flagger.app/primary=inventory-stable",
    ]);
    let out = cli.expect(3, &["promote", "inventory", "--env", STAGING, "-y"]);
    assert!(out.contains("managed by Flagger"), "{out}");
    assert_eq!(traefik(), "100 0");
}
