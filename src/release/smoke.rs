//! Smoke checks, run from the operator's machine while a release is open: an HTTP GET that
//! must answer with the expected status, or a command that must exit with the expected code,
//! each within its timeout. `{app}`, `{env}`, `{namespace}` and `{version}` are replaced in the
//! URL and the command's arguments; the command also gets them as `KOCKPIT_APP`,
//! `KOCKPIT_ENV`, `KOCKPIT_NAMESPACE`, `KOCKPIT_VERSION` and `KOCKPIT_CONTEXT`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::file::{SmokeCheck, SmokeKind};

/// What the check is run for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vars {
    pub app: String,
    pub env: String,
    pub namespace: String,
    pub version: String,
    pub context: String,
}

impl Vars {
    pub fn expand(&self, s: &str) -> String {
        s.replace("{app}", &self.app)
            .replace("{env}", &self.env)
            .replace("{namespace}", &self.namespace)
            .replace("{version}", &self.version)
    }
}

/// One run of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokeResult {
    pub name: String,
    pub ok: bool,
    /// `HTTP 200 in 12 ms`, `exit 1 in 0.4 s: connection refused`.
    pub detail: String,
    pub at: Timestamp,
    pub duration_ms: u64,
}

/// A line of output made safe for the terminal: control characters (escape sequences
/// included) dropped, trimmed, at most 120 characters.
fn clean(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    let safe: String = line.chars().filter(|c| !c.is_control()).collect();
    match safe.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &safe[..i]),
        None => safe,
    }
}

fn took(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Run one check now.
pub async fn run(check: &SmokeCheck, vars: &Vars) -> SmokeResult {
    let started = Instant::now();
    let at = Timestamp::now();
    let timeout = Duration::from_secs_f64(check.timeout_seconds.max(0.001));
    let (ok, detail) = match &check.kind {
        SmokeKind::Http { url, expect_status } => {
            http(&vars.expand(url), *expect_status, timeout).await
        }
        SmokeKind::Command { argv, expect_exit } => {
            let argv: Vec<String> = argv.iter().map(|a| vars.expand(a)).collect();
            command(&argv, *expect_exit, timeout, vars).await
        }
    };
    let elapsed = started.elapsed();
    SmokeResult {
        name: check.name.clone(),
        ok,
        detail: format!("{detail} in {}", took(elapsed)),
        at,
        duration_ms: elapsed.as_millis() as u64,
    }
}

async fn http(url: &str, expect: u16, timeout: Duration) -> (bool, String) {
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!(
            "kockpit/",
            env!("CARGO_PKG_VERSION"),
            " (smoke check)"
        ))
        .build()
    {
        Ok(c) => c,
        Err(e) => return (false, format!("GET {url}: {e}")),
    };
    match client.get(url).send().await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if code == expect {
                (true, format!("HTTP {code}"))
            } else {
                (false, format!("HTTP {code}, expected {expect}"))
            }
        }
        Err(e) if e.is_timeout() => (
            false,
            format!("GET {url}: no answer within {}", took(timeout)),
        ),
        Err(e) => {
            // The root cause says it best ("Connection refused (os error 111)").
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            (false, format!("GET {url}: {}", clean(&msg)))
        }
    }
}

async fn command(argv: &[String], expect: i32, timeout: Duration, vars: &Vars) -> (bool, String) {
    let Some((prog, args)) = argv.split_first() else {
        return (false, "empty command".into());
    };
    let child = tokio::process::Command::new(prog)
        .args(args)
        .env("KOCKPIT_APP", &vars.app)
        .env("KOCKPIT_ENV", &vars.env)
        .env("KOCKPIT_NAMESPACE", &vars.namespace)
        .env("KOCKPIT_VERSION", &vars.version)
        .env("KOCKPIT_CONTEXT", &vars.context)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot run {prog}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => (
            false,
            format!("{prog}: killed after the {} timeout", took(timeout)),
        ),
        Ok(Err(e)) => (false, format!("{prog}: {e}")),
        Ok(Ok(out)) => {
            let code = out.status.code();
            let said = {
                let err = clean(&String::from_utf8_lossy(&out.stderr));
                if err.is_empty() {
                    clean(&String::from_utf8_lossy(&out.stdout))
                } else {
                    err
                }
            };
            let tail = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            match code {
                Some(c) if c == expect => (true, format!("exit {c}{tail}")),
                Some(c) => (false, format!("exit {c}, expected {expect}{tail}")),
                None => (false, format!("killed by a signal{tail}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str], expect: i32, timeout: f64) -> SmokeCheck {
        SmokeCheck {
            name: "c".into(),
            kind: SmokeKind::Command {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                expect_exit: expect,
            },
            timeout_seconds: timeout,
            envs: vec![],
        }
    }

    #[tokio::test]
    async fn commands_pass_on_the_expected_exit_and_are_killed_at_the_timeout() {
        let vars = Vars {
            app: "checkout".into(),
            env: "staging".into(),
            version: "1.4.2".into(),
            ..Vars::default()
        };
        let ok = run(
            &cmd(
                &["sh", "-c", "echo \"$KOCKPIT_APP {version}\"; exit 0"],
                0,
                5.0,
            ),
            &vars,
        )
        .await;
        assert!(ok.ok, "{ok:?}");
        assert!(ok.detail.contains("checkout 1.4.2"), "{}", ok.detail);
        let bad = run(
            &cmd(
                &["sh", "-c", "printf '\\033[31mboom\\033[0m' >&2; exit 3"],
                0,
                5.0,
            ),
            &vars,
        )
        .await;
        assert!(!bad.ok);
        assert!(
            bad.detail.starts_with("exit 3, expected 0: [31mboom[0m"),
            "{}",
            bad.detail
        );
        assert!(!bad.detail.contains('\u{1b}'));
        let slow = run(&cmd(&["sleep", "5"], 0, 0.2), &vars).await;
        assert!(
            !slow.ok && slow.detail.contains("killed after"),
            "{}",
            slow.detail
        );
        assert!(slow.duration_ms < 2000);
        let missing = run(&cmd(&["/nonexistent/smoke"], 0, 1.0), &vars).await;
        assert!(
            !missing.ok && missing.detail.contains("cannot run"),
            "{}",
            missing.detail
        );
    }

    #[tokio::test]
    async fn http_checks_compare_the_status_and_name_a_refused_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let check = SmokeCheck {
            name: "health".into(),
            kind: SmokeKind::Http {
                url: format!("http://{addr}/healthz"),
                expect_status: 200,
            },
            timeout_seconds: 2.0,
            envs: vec![],
        };
        let r = run(&check, &Vars::default()).await;
        assert!(!r.ok);
        assert!(
            r.detail.contains(&format!("GET http://{addr}/healthz")),
            "{}",
            r.detail
        );
    }
}
