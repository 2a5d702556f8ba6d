//! Release sessions from the cockpit's keys: the real binary in a pseudo-terminal against the
//! sandbox, with a config giving a short observation window and two smoke checks (an HTTP one
//! against a loopback server the test turns healthy, a command that passes). A release is
//! opened with `o` `y`, watched turning green, concluded with `c`; a second one is shelved and
//! resumed with typed reasons, then concluded with a typed override while a smoke check fails.
//! The audit log is read back and verified with `kockpit audit verify`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
    healthy: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

/// The cockpit on staging only, `cols`×`rows`, with an observation window of
/// `observation` seconds and the two smoke checks of `checkout` (run every second).
fn cockpit(sb: &SandboxProc, cols: u16, rows: u16, observation: u32) -> Cockpit {
    let (url, healthy) = common::health_server();
    let dir = tempfile::tempdir().expect("dir");
    let audit = dir.path().join("audit.jsonl");
    let config = dir.path().join("config.toml");
    // The error threshold is raised so that a random error of staging's thin canary traffic
    // never breaches (the window would restart).
    std::fs::write(
        &config,
        format!(
            r#"[[env]]
name = "staging"
context = "sandbox"
namespace = "staging"
prometheus = "{prometheus}"

[thresholds]
max_error_ratio = 0.2
max_p99_seconds = 5

[release]
observation_seconds = {observation}
smoke_interval_seconds = 1

[[apps.checkout.smoke]]
name = "api"
http = "{url}/healthz"
timeout_seconds = 2

[[apps.checkout.smoke]]
name = "cmd"
command = "test \"$KOCKPIT_VERSION\" = {{version}} && echo smoke ok for $KOCKPIT_APP"
timeout_seconds = 5
"#,
            prometheus = sb.prometheus
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
        cols,
        rows,
        &[("USER", "oncall"), ("XDG_STATE_HOME", &state)],
    );
    // Every app (the Argo Rollout's arrives from its own watch), so the order is final.
    pty.wait_for("apps", T, |s| s.contains("Apps (8)") && s.contains("cart"));
    Cockpit {
        pty,
        audit,
        healthy,
        _dir: dir,
    }
}

impl Cockpit {
    /// Select `app` with the keyboard: top, then down to it.
    fn select(&mut self, app: &str) {
        let i = APPS.iter().position(|a| *a == app).expect("a known app");
        let marker = format!("▸{app}");
        for _ in 0..5 {
            self.pty.send("g");
            for _ in 0..i {
                self.pty.send("j");
            }
            let deadline = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < deadline {
                if self.pty.screen().contains(&marker) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.pty
            .wait_for(&format!("{app} selected"), T, |s| s.contains(&marker));
    }

    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        self.pty.wait_for(what, T, f)
    }

    /// `o`: the release menu, once it shows `what`.
    fn menu(&mut self, what: &str) -> String {
        self.pty.send("o");
        self.wait(&format!("the release menu with {what:?}"), |s| {
            s.contains("checkout in staging") && s.contains(what)
        })
    }

    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
            .collect()
    }

    fn quit(mut self) {
        self.pty.send("q");
        assert_eq!(self.pty.wait_exit(Duration::from_secs(10)), Some(0));
    }
}

/// The screen's line holding `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{screen}"))
}

fn kockpit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kockpit"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run kockpit");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn releases_from_the_keys_at_80x24_conclude_green_and_with_an_override() {
    let started = Instant::now();
    let sb = SandboxProc::start(&[]);
    let mut c = cockpit(&sb, 80, 24, 4);
    c.select("checkout");

    // Open: the menu names the version being rolled out (the canary's).
    c.menu("Open a release of version 1.5.0 ?");
    c.pty.send("y");
    c.wait("opened", |s| {
        s.contains("release checkout@staging #1 (1.5.0) open")
    });
    // The pane under the apps: the title, failing items first (three rows at 80x24). The
    // loopback server answers 503: the HTTP smoke check fails and says so.
    let s = c.wait("the failing HTTP smoke check", |s| {
        s.contains("Release checkout@staging #1 · 1.5.0 · open")
            && s.lines()
                .any(|l| l.contains("✗ Smoke: api") && l.contains("HTTP 503, expected 200"))
    });
    let title = line_with(&s, "Release checkout@staging #1");
    assert!(title.contains("/6 ✓"), "{title}");
    assert!(!title.contains("ready to conclude"), "{title}");

    // Healthy: the check passes on its next run; the menu lists every item.
    c.healthy.store(true, Ordering::SeqCst);
    let s = c.menu("✓ Smoke: api: HTTP 200");
    assert!(
        s.contains("Release checkout@staging #1 · version 1.5.0 · open"),
        "{s}"
    );
    assert!(
        s.contains("✓ Smoke: cmd: exit 0: smoke ok for checkout"),
        "{s}"
    );
    assert!(s.contains("✓ Pods Ready: 1/1 pods of 1.5.0 Ready"), "{s}");
    // The observation window (4 s) passes while the menu is open: the keys say so.
    let s = c.wait("the checklist green", |s| {
        s.contains("✓ Observation: no breach for") && s.contains("c conclude · s shelve")
    });
    assert!(!s.contains("override needed"), "{s}");
    for item in [
        "✓ Pods Ready",
        "✓ Rollout complete",
        "✓ Smoke: api",
        "✓ Smoke: cmd",
        "✓ Image traceable",
    ] {
        assert!(s.contains(item), "{item:?}:\n{s}");
    }
    // Green: `c` concludes at once, no prompt.
    c.pty.send("c");
    let s = c.wait("concluded", |s| {
        s.contains("release checkout@staging #1 (1.5.0) concluded")
    });
    assert!(!s.contains("override"), "{s}");
    c.wait("the pane gone", |s| !s.contains("Release checkout@staging"));
    let t1 = started.elapsed();

    // A second release while the API answers 503 again: never green.
    c.healthy.store(false, Ordering::SeqCst);
    c.menu("Open a release of version 1.5.0 ?");
    c.pty.send("\r");
    c.wait("release #2 with its failing check", |s| {
        s.contains("Release checkout@staging #2 · 1.5.0 · open")
            && s.lines()
                .any(|l| l.contains("✗ Smoke: api") && l.contains("HTTP 503"))
    });

    // Shelve needs a reason: Enter on nothing says so; the typed one is recorded.
    c.menu("c conclude (override needed) · s shelve · a abandon");
    c.pty.send("s");
    c.wait("the shelve prompt", |s| {
        s.contains("Why shelve?") && s.contains("why is it blocked?")
    });
    c.pty.send("\r");
    c.wait("the hint", |s| s.contains("shelve needs a reason"));
    c.pty.send("payments API returns 503");
    c.wait("the reason typed", |s| {
        s.contains("> payments API returns 503")
    });
    c.pty.send("\r");
    let s = c.wait("shelved", |s| {
        s.contains("release checkout@staging #2 (1.5.0) shelved")
            && s.contains("shelved: press o to resume or abandon")
    });
    let title = line_with(&s, "Release checkout@staging #2");
    assert!(
        title.contains("shelved") && title.contains("blocked: payments API"),
        "{title}"
    );

    // Resume: one key.
    c.menu("r resume · a abandon · esc close");
    c.pty.send("r");
    c.wait("resumed", |s| {
        s.contains("release checkout@staging #2 (1.5.0) open")
            && s.lines()
                .any(|l| l.contains("✗ Smoke: api") && l.contains("HTTP 503"))
    });

    // Conclude while not green: the failing items, then a typed override.
    c.menu("c conclude (override needed)");
    c.pty.send("c");
    let s = c.wait("the override prompt", |s| {
        s.contains("The exit checklist is not green:")
            && s.contains("override: why conclude anyway?")
    });
    assert!(s.contains("✗ Smoke: api: HTTP 503, expected 200"), "{s}");
    assert!(s.contains("enter record · esc back"), "{s}");
    c.pty.send("\r");
    c.wait("the override hint", |s| {
        s.contains("the checklist is not green: type why you conclude anyway")
    });
    let reason = "hotfix, api owner on call";
    c.pty.send(reason);
    c.wait("the override typed", |s| s.contains(&format!("> {reason}")));
    c.pty.send("\r");
    c.wait("concluded with an override", |s| {
        s.contains("release checkout@staging #2 (1.5.0) concluded with an override (audited)")
    });
    c.wait("the pane gone", |s| !s.contains("Release checkout@staging"));

    // The audit log: one event per transition, in order.
    let lines = c.audit_lines();
    let actions: Vec<&str> = lines.iter().filter_map(|l| l["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "release-open",
            "release-conclude",
            "release-open",
            "release-shelve",
            "release-resume",
            "release-conclude"
        ],
        "{lines:?}"
    );
    for l in &lines {
        assert_eq!(l["app"], "checkout", "{l}");
        assert_eq!(l["object"], "Release/checkout", "{l}");
        assert_eq!(l["environment"], "staging", "{l}");
        assert_eq!(l["namespace"], "staging", "{l}");
        assert_eq!(l["operator"]["os_user"], "oncall", "{l}");
        assert_eq!(l["after"]["version"], "1.5.0", "{l}");
    }
    let numbers: Vec<u64> = lines
        .iter()
        .filter_map(|l| l["after"]["release"].as_u64())
        .collect();
    assert_eq!(numbers, [1, 1, 2, 2, 2, 2]);
    // #1 concluded green: the checklist recorded, every item passing, no override.
    let green = &lines[1];
    assert_eq!(green["after"]["state"], "concluded", "{green}");
    assert!(green["after"].get("override").is_none(), "{green}");
    assert!(green["after"].get("failing").is_none(), "{green}");
    let items = green["after"]["checklist"]["items"]
        .as_array()
        .expect("the checklist");
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "Pods Ready",
            "Rollout complete",
            "Smoke: api",
            "Smoke: cmd",
            "Observation",
            "Image traceable"
        ]
    );
    assert!(items.iter().all(|i| i["status"] == "pass"), "{green}");
    // #2: the shelve's reason, the override with the failing items.
    assert_eq!(lines[3]["reason"], "payments API returns 503");
    assert_eq!(lines[3]["after"]["state"], "shelved");
    assert_eq!(lines[4]["after"]["state"], "open");
    let over = &lines[5];
    assert_eq!(over["reason"], reason, "{over}");
    assert_eq!(over["after"]["override"], reason, "{over}");
    let failing = over["after"]["failing"].as_array().expect("failing");
    assert!(failing.contains(&json!("Smoke: api")), "{over}");
    let api = over["after"]["checklist"]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == "Smoke: api"))
        .expect("Smoke: api in the checklist");
    assert_eq!(api["status"], "fail", "{api}");

    // The chain verifies, by --file and by the global --audit-log.
    let audit = c.audit.to_string_lossy().to_string();
    let (code, out) = kockpit(&["audit", "verify", "--file", &audit]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: 6 entries, chain intact"), "{out}");
    let (code, out) = kockpit(&["--audit-log", &audit, "audit", "verify"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: 6 entries"), "{out}");
    c.quit();
    eprintln!(
        "first release concluded after {t1:?}, all done in {:?}",
        started.elapsed()
    );
}

#[test]
fn a_wide_cockpit_lists_every_item_and_abandons_with_a_reason() {
    let started = Instant::now();
    let sb = SandboxProc::start(&[]);
    let mut c = cockpit(&sb, 160, 45, 600);
    c.select("checkout");
    c.menu("Open a release of version 1.5.0 ?");
    c.pty.send("y");
    // Room for every item, in their order, the failing HTTP check among them.
    let s = c.wait("the checklist", |s| {
        s.lines()
            .any(|l| l.contains("✗ Smoke: api") && l.contains("HTTP 503, expected 200"))
            && s.contains("✓ Smoke: cmd")
    });
    let order = [
        "Release checkout@staging #1 · 1.5.0 · open",
        "Pods Ready",
        "Rollout complete",
        "Smoke: api",
        "Smoke: cmd",
        "Observation",
        "Image traceable",
    ];
    let rows: Vec<usize> = order
        .iter()
        .map(|item| {
            s.lines()
                .position(|l| l.contains(item))
                .unwrap_or_else(|| panic!("{item:?} on screen:\n{s}"))
        })
        .collect();
    assert!(
        rows.windows(2).all(|w| w[1] == w[0] + 1),
        "one item a line, in order: {rows:?}\n{s}"
    );
    let obs = line_with(&s, "Observation");
    // Counting towards ten minutes, or waiting for the canary's first traffic.
    assert!(obs.contains("… Observation"), "{obs}");
    let title = line_with(&s, "Release checkout@staging #1");
    assert!(
        title.contains("· 3/6 ✓") || title.contains("· 4/6 ✓"),
        "{title}"
    );

    // The server turns healthy: the item turns green in the pane.
    c.healthy.store(true, Ordering::SeqCst);
    let s = c.wait("the HTTP check passing", |s| {
        s.lines()
            .any(|l| l.contains("✓ Smoke: api") && l.contains("HTTP 200"))
    });
    assert!(line_with(&s, "Release checkout@staging #1").contains("5/6 ✓"));

    // Abandon: Esc backs out of the prompt, then a reason is typed.
    c.menu("c conclude (override needed) · s shelve · a abandon");
    c.pty.send("a");
    c.wait("the abandon prompt", |s| {
        s.contains("Why abandon?") && s.contains("why abandon it?")
    });
    c.pty.send("\x1b");
    c.wait("back to the keys", |s| {
        s.contains("c conclude (override needed)") && !s.contains("Why abandon?")
    });
    c.pty.send("a");
    c.wait("the abandon prompt again", |s| s.contains("Why abandon?"));
    c.pty.send("superseded by 1.5.1\r");
    c.wait("abandoned", |s| {
        s.contains("release checkout@staging #1 (1.5.0) abandoned")
    });
    c.wait("the pane gone", |s| !s.contains("Release checkout@staging"));
    let lines = c.audit_lines();
    let actions: Vec<&str> = lines.iter().filter_map(|l| l["action"].as_str()).collect();
    assert_eq!(actions, ["release-open", "release-abandon"], "{lines:?}");
    assert_eq!(lines[1]["reason"], "superseded by 1.5.1");
    assert_eq!(lines[1]["app"], "checkout");
    assert_eq!(lines[1]["after"]["state"], "abandoned");
    let (code, out) = kockpit(&["audit", "verify", "--file", &c.audit.to_string_lossy()]);
    assert_eq!(code, Some(0), "{out}");
    c.quit();
    eprintln!("took {:?}", started.elapsed());
}

// ---------- the menu in-process: concluding needs an evaluated checklist ----------

mod menu {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use jiff::Timestamp;
    use kockpit::app::release::{self, MenuStage, ReleaseView, StepKind};
    use kockpit::app::state::{AppState, DeploymentView, EnvState, Pane};
    use kockpit::app::{Cmd, derive};
    use kockpit::audit::Operator;
    use kockpit::release::checklist::{Checklist, Item, Status};
    use kockpit::release::{Release, State, Transition};
    use serde_json::json;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(s: &mut AppState, text: &str) {
        for ch in text.chars() {
            assert!(release::menu_key(s, key(KeyCode::Char(ch))).is_empty());
        }
    }

    /// Staging with `checkout` (one Deployment at 1.5.0) selected and release #1 open, its
    /// checklist not evaluated yet (just opened or resumed, or the cockpit just started).
    fn state() -> AppState {
        let now: Timestamp = "2026-11-21T02:14:07Z".parse().unwrap();
        let sel: std::collections::BTreeMap<String, String> =
            [("app".to_string(), "checkout".to_string())].into();
        let mut env = EnvState {
            name: "staging".into(),
            context: "sandbox".into(),
            namespace: "staging".into(),
            ..Default::default()
        };
        env.deployments.insert(
            "checkout".into(),
            DeploymentView {
                name: "checkout".into(),
                labels: sel.clone(),
                selector: sel.clone(),
                template_labels: sel,
                replicas: 1,
                images: vec!["registry.local/checkout:1.5.0".into()],
                ..Default::default()
            },
        );
        env.apps = derive::apps(&env);
        env.selected_app = 0;
        let release = Release {
            app: "checkout".into(),
            environment: "staging".into(),
            context: "sandbox".into(),
            namespace: "staging".into(),
            number: 1,
            version: "1.5.0".into(),
            state: State::Open,
            transitions: vec![Transition {
                seq: 1,
                time: now,
                verb: "open".into(),
                operator: Operator::default(),
                reason: None,
                detail: json!({"release": 1, "version": "1.5.0", "state": "open"}),
            }],
            overridden: false,
        };
        env.releases.insert(
            "checkout".into(),
            ReleaseView {
                release,
                checklist: None,
            },
        );
        AppState {
            envs: vec![env],
            active_env: 0,
            focus: Pane::Apps,
            now,
            read_only: false,
            sandbox: true,
            help: false,
            filter_input: None,
            chart_window: 900,
            notice: None,
            dialog: None,
            drill_menu: None,
            release_menu: None,
            operator: "oncall".into(),
            size: (80, 24),
            quit: false,
        }
    }

    /// Before the first evaluation there is nothing to conclude on, not even with a typed
    /// override: the step would be recorded with an empty checklist and no failing items,
    /// i.e. as a clean conclusion.
    #[test]
    fn conclude_waits_for_the_first_evaluation_of_the_checklist() {
        let mut s = state();
        release::open_menu(&mut s);
        assert!(release::menu_key(&mut s, key(KeyCode::Char('c'))).is_empty());
        let m = s.release_menu.as_ref().expect("the menu");
        assert!(
            matches!(m.stage, MenuStage::Choose),
            "no override prompt before the checklist is known: {:?}",
            m.stage
        );
        assert!(
            m.hint
                .as_deref()
                .is_some_and(|h| h.contains("not been evaluated")),
            "{:?}",
            m.hint
        );

        // Evaluated now: the key opens the override prompt, the stale hint gone.
        s.envs[0].releases.get_mut("checkout").unwrap().checklist = Some(Checklist {
            at: s.now,
            items: vec![Item {
                name: "Observation".into(),
                status: Status::Pending,
                detail: "clean for 3s of 40s".into(),
            }],
        });
        assert!(release::menu_key(&mut s, key(KeyCode::Char('c'))).is_empty());
        let m = s.release_menu.as_ref().expect("the menu");
        assert!(matches!(m.stage, MenuStage::Reason { .. }), "{:?}", m.stage);
        assert_eq!(m.hint, None);

        // A typed override entered while the checklist is still unknown records nothing.
        let mut s = state();
        let failing = Checklist {
            at: s.now,
            items: vec![
                Item {
                    name: "Pods Ready".into(),
                    status: Status::Pass,
                    detail: "1/1 pods of 1.5.0 Ready".into(),
                },
                Item {
                    name: "Observation".into(),
                    status: Status::Pending,
                    detail: "clean for 3s of 40s".into(),
                },
            ],
        };
        s.envs[0].releases.get_mut("checkout").unwrap().checklist = Some(failing.clone());
        release::open_menu(&mut s);
        assert!(release::menu_key(&mut s, key(KeyCode::Char('c'))).is_empty());
        assert!(matches!(
            s.release_menu.as_ref().unwrap().stage,
            MenuStage::Reason {
                step: StepKind::Conclude,
                ..
            }
        ));
        // Resumed meanwhile: the checklist is gone again.
        s.envs[0].releases.get_mut("checkout").unwrap().checklist = None;
        typed(&mut s, "hotfix");
        assert!(release::menu_key(&mut s, key(KeyCode::Enter)).is_empty());
        let m = s.release_menu.as_ref().expect("the menu stays");
        assert!(
            m.hint
                .as_deref()
                .is_some_and(|h| h.contains("not been evaluated")),
            "{:?}",
            m.hint
        );

        // Evaluated (not green): the override goes out with the checklist it overrides.
        s.envs[0].releases.get_mut("checkout").unwrap().checklist = Some(failing.clone());
        let cmds = release::menu_key(&mut s, key(KeyCode::Enter));
        match cmds.as_slice() {
            [
                Cmd::ReleaseStep {
                    step: StepKind::Conclude,
                    text: Some(t),
                    checklist: Some(c),
                    version,
                    ..
                },
            ] => {
                assert_eq!(t, "hotfix");
                assert_eq!(**c, failing);
                assert_eq!(version, "1.5.0");
            }
            other => panic!("one conclude step with the checklist: {other:?}"),
        }
    }
}
