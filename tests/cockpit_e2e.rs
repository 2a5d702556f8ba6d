//! The real `kockpit` binary in a pseudo-terminal against the sandbox: what an operator sees
//! and what happens to their terminal.

mod common;

use std::time::Duration;

use common::SandboxProc;
use common::pty::Pty;

const T: Duration = Duration::from_secs(30);

#[test]
fn opens_on_the_embedded_sandbox_with_both_environments() {
    let mut p = Pty::spawn(&[], 160, 45);
    let s = p.wait_for("both environments with their apps and pods", T, |s| {
        s.contains("staging")
            && s.contains("production")
            && s.matches("checkout").count() >= 2
            && s.contains("SANDBOX")
    });
    assert!(s.contains("PRODUCTION"), "production is marked:\n{s}");
    // The selected app's pods are listed with kubectl's columns.
    p.wait_for("pods of the selected app", T, |s| {
        s.contains("Running") && s.contains("1/1")
    });
    p.send("q");
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
    p.with_screen(|s| {
        assert!(!s.alternate_screen(), "left the alternate screen");
        assert!(!s.hide_cursor(), "cursor visible again");
    });
}

#[test]
fn usable_at_80x24_with_tabs() {
    let mut p = Pty::spawn(&[], 80, 24);
    // Eight apps: the first three (by name) fit above the charts.
    let s = p.wait_for("apps at 80x24", T, |s| {
        s.contains("Apps (8)")
            && s.contains("cart")
            && s.contains("catalog")
            && s.contains("checkout")
            && s.contains("paused at step 2/5")
    });
    assert!(
        s.contains("staging") && s.contains("production"),
        "both tabs named:\n{s}"
    );
    // Next environment.
    p.send("l");
    p.wait_for("the production tab", T, |s| s.contains("PRODUCTION"));
    p.send("q");
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn every_canary_names_its_router_where_there_is_room() {
    let mut p = Pty::spawn(&[], 240, 50);
    // The sandbox's canaries above the charts by their own routers, in both environments
    // (`search`, the replica ratio, is below the fold). `catalog`'s tracks carry the `track`
    // labels `reviews`' Istio subsets name, and stay ingress-nginx's.
    let s = p.wait_for("every router", T, |s| {
        [
            "canary 10% (HTTPRoute)",
            "canary 10% (ingress-nginx)",
            "canary 10% (Traefik)",
            "canary 10% (Istio)",
            "canary 20% (Argo Rollouts)",
        ]
        .iter()
        .all(|want| s.matches(want).count() >= 2)
    });
    for (app, router) in [
        ("catalog", "ingress-nginx"),
        ("inventory", "Traefik"),
        ("reviews", "Istio"),
    ] {
        let rows: Vec<&str> = s
            .lines()
            .filter(|l| l.contains(&format!("{app} ")) && l.contains("% ("))
            .collect();
        assert!(
            !rows.is_empty()
                && rows
                    .iter()
                    .all(|l| l.matches(&format!("({router})")).count() == 2),
            "{app} by {router}:\n{s}"
        );
    }
    p.send("q");
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
}

/// A cockpit pointed at an external sandbox through a kubeconfig, like a real cluster.
fn cockpit_on(sb: &SandboxProc, cols: u16, rows: u16) -> Pty {
    let kc = sb.kubeconfig.to_string_lossy().to_string();
    Pty::spawn(
        &[
            "--kubeconfig",
            &kc,
            "--env",
            "staging=sandbox/staging",
            "--env",
            "production=sandbox/production",
            "--prometheus",
            &sb.prometheus,
        ],
        cols,
        rows,
    )
}

#[test]
fn a_rollout_started_with_kubectl_shows_progress_and_logs_stream() {
    let sb = SandboxProc::start(&["--speed", "2", "--backfill", "120"]);
    let mut p = cockpit_on(&sb, 200, 50);
    p.wait_for("apps", T, |s| {
        s.contains("frontend") && s.contains("checkout")
    });
    // Logs of the selected app stream in (access-log lines carry trace ids).
    p.wait_for("streaming logs", T, |s| s.contains("trace="));
    sb.kubectl_ok(&[
        "set",
        "image",
        "deployment/frontend",
        "frontend=registry.local/frontend:3.9.0",
        "-n",
        "production",
    ]);
    p.wait_for("the new version and rollout progress", T, |s| {
        s.contains("3.9.0")
    });
    p.wait_for("the rollout completing", Duration::from_secs(60), |s| {
        s.lines()
            .any(|l| l.contains("frontend") && l.contains("complete"))
    });
    p.send("q");
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn escape_sequences_in_logs_are_shown_inert() {
    let sb = SandboxProc::start(&["--speed", "2"]);
    // A fresh pod logs the hostile start-up line near the end of its log.
    sb.kubectl_ok(&["rollout", "restart", "deployment/checkout", "-n", "staging"]);
    let mut p = cockpit_on(&sb, 200, 50);
    // Select checkout (the third app: cart, catalog, checkout) once every app is listed.
    // (`search`, the last, is below the fold among eight.)
    p.wait_for("all apps", T, |s| {
        s.contains("Apps (8)") && s.contains("cart")
    });
    for _ in 0..5 {
        p.send("gjj");
        std::thread::sleep(Duration::from_millis(300));
        if p.screen().contains("▸checkout") {
            break;
        }
    }
    let s = p.wait_for(
        "the hostile log line, inert",
        Duration::from_secs(45),
        |s| s.contains("pwned"),
    );
    assert!(s.contains("FAKE ALERT"), "the text is there, as text:\n{s}");
    assert!(!s.contains("\u{1b}"), "no escape characters on screen");
    let raw = p.raw.lock().expect("raw").clone();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        !text.contains("\u{1b}]0;pwned") && !text.contains("\u{1b}[31mFAKE"),
        "the OSC sequence never reached the terminal"
    );
    p.send("q");
    let _ = p.wait_exit(Duration::from_secs(10));
}

#[test]
fn sighup_and_sigterm_restore_the_terminal() {
    for sig in [libc::SIGHUP, libc::SIGTERM] {
        let mut p = Pty::spawn(&[], 120, 40);
        p.wait_for("the cockpit", T, |s| s.contains("checkout"));
        p.with_screen(|s| assert!(s.alternate_screen()));
        p.signal(sig);
        assert!(
            p.wait_exit(Duration::from_secs(10)).is_some(),
            "exits on signal {sig}"
        );
        std::thread::sleep(Duration::from_millis(200));
        p.with_screen(|s| {
            assert!(
                !s.alternate_screen(),
                "signal {sig}: left the alternate screen"
            );
            assert!(!s.hide_cursor(), "signal {sig}: cursor visible");
        });
    }
}

#[test]
fn broken_config_keymap_and_theme_files_name_file_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        (
            "config.toml",
            "[[env]]\nname = \"staging\"\nnamespace = \"shop\"\nbogus = 1\n",
            "--config",
            ":4",
        ),
        (
            "keymap.toml",
            "[keys]\nquit = [\"q\"]\npromte = [\"x\"]\n",
            "--keymap",
            ":3",
        ),
        (
            "theme.toml",
            "base = { fg = \"no-such-colour\" }\n",
            "--theme",
            ":1",
        ),
    ];
    for (file, text, flag, line) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kockpit"))
            .args([flag, path.to_str().unwrap_or_default()])
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file}: non-zero exit");
        assert!(
            err.contains(&format!("{file}{line}")),
            "{file}: message names file and line:\n{err}"
        );
    }
}

#[test]
fn an_unreachable_cluster_is_shown_not_fatal() {
    let dir = tempfile::tempdir().expect("dir");
    let kc = dir.path().join("kubeconfig");
    // Nothing listens on port 9 (discard) of loopback here: connection refused.
    std::fs::write(
        &kc,
        kockpit::sandbox::kubeconfig_for("http://127.0.0.1:9", "x"),
    )
    .expect("write");
    let kc = kc.to_string_lossy().to_string();
    let mut p = Pty::spawn(
        &[
            "--kubeconfig",
            &kc,
            "--env",
            "staging=sandbox/staging",
            "--env",
            "prod=nope/production",
        ],
        120,
        35,
    );
    let s = p.wait_for("the connection errors", T, |s| {
        s.contains("refused") && s.contains("nope")
    });
    assert!(s.contains("staging") && s.contains("prod"), "{s}");
    p.send("q");
    assert_eq!(
        p.wait_exit(Duration::from_secs(10)),
        Some(0),
        "quits normally"
    );
}
