//! Audit log: chain round trip, tamper detection, crash between intent and outcome,
//! concurrent appenders, redaction, and the `kockpit audit` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use kockpit::audit::{
    AuditError, AuditLog, BreakReason, Entry, Operator, REDACTED, Target, verify,
};
use serde_json::{Value, json};

fn target() -> Target {
    Target {
        environment: "production".into(),
        context: "prod".into(),
        namespace: "shop".into(),
        object: "HTTPRoute/checkout".into(),
    }
}

fn op() -> Operator {
    Operator {
        os_user: "priya".into(),
        kube_user: Some("priya@example".into()),
        ssh_client: Some("10.0.0.5".into()),
    }
}

/// Write `n` intent/outcome pairs (2n lines).
fn write_pairs(path: &Path, n: usize) {
    let mut log = AuditLog::open(path).unwrap();
    for i in 0..n {
        let intent = Entry::intent(op(), target(), "promote", json!(i), json!(i + 1));
        log.append(intent.clone()).unwrap();
        log.append(Entry::outcome(&intent, Some(200), "OK", 5))
            .unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

fn broken_at(path: &Path) -> (usize, BreakReason) {
    match verify(path) {
        Err(AuditError::Broken { line, reason, .. }) => (line, reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

fn fresh(dir: &tempfile::TempDir) -> PathBuf {
    let p = dir.path().join("state/kockpit/audit.jsonl");
    write_pairs(&p, 3);
    p
}

#[test]
fn append_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let report = verify(&p).unwrap();
    assert_eq!(report.entries, 6);
    assert!(report.dangling_intents.is_empty());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first: Value = serde_json::from_str(&lines(&p)[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
    assert!(first.get("drill").is_none());
    // Reopening continues the chain.
    write_pairs(&p, 1);
    assert_eq!(verify(&p).unwrap().entries, 8);
    let shown = kockpit::audit::show(&p, None, Some("production")).unwrap();
    assert_eq!(shown.len(), 8);
    assert!(
        kockpit::audit::show(&p, None, Some("staging"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn editing_any_field_of_a_middle_line_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let orig = lines(&p);
    let fields = [
        ("time", json!("2020-01-01T00:00:00Z")),
        ("id", json!("x")),
        ("operator", json!({"os_user": "mallory"})),
        ("environment", json!("staging")),
        ("namespace", json!("other")),
        ("object", json!("HTTPRoute/other")),
        ("action", json!("rollback")),
        ("before", json!(99)),
        ("after", json!(99)),
        ("version", json!("9.9.9")),
        ("phase", json!("event")),
        ("seq", json!(77)),
        ("prev", json!("00")),
    ];
    for (field, value) in fields {
        let mut ls = orig.clone();
        let mut v: Value = serde_json::from_str(&ls[2]).unwrap();
        v[field] = value;
        ls[2] = serde_json::to_string(&v).unwrap();
        write_lines(&p, &ls);
        let (line, reason) = broken_at(&p);
        // The edited line (3) is caught by its successor's prev, unless seq/prev itself changed.
        let expected = if field == "seq" || field == "prev" {
            3
        } else {
            4
        };
        assert_eq!(line, expected, "field {field}: {reason}");
    }
}

#[test]
fn deleting_a_line_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let mut ls = lines(&p);
    ls.remove(2);
    write_lines(&p, &ls);
    assert_eq!(broken_at(&p), (3, BreakReason::PrevMismatch));
    // Deleting the first line.
    let dir2 = tempfile::tempdir().unwrap();
    let p2 = fresh(&dir2);
    let mut ls = lines(&p2);
    ls.remove(0);
    write_lines(&p2, &ls);
    assert_eq!(broken_at(&p2), (1, BreakReason::PrevMismatch));
}

#[test]
fn swapping_two_lines_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let mut ls = lines(&p);
    ls.swap(1, 2);
    write_lines(&p, &ls);
    assert_eq!(broken_at(&p), (2, BreakReason::PrevMismatch));
}

#[test]
fn truncated_last_line_is_detected_and_blocks_appends() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let bytes = std::fs::read(&p).unwrap();
    // Partial JSON, no newline.
    std::fs::write(&p, &bytes[..bytes.len() - 20]).unwrap();
    assert_eq!(broken_at(&p), (6, BreakReason::Truncated));
    let mut log = AuditLog::open(&p).unwrap();
    let e = Entry::event(op(), target(), "note");
    assert!(matches!(log.append(e), Err(AuditError::Tail { .. })));
    // Only the newline missing.
    std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    assert_eq!(broken_at(&p), (6, BreakReason::Truncated));
    // Garbage in the middle.
    let mut ls = lines(&p);
    ls[1] = "{not json".into();
    write_lines(&p, &ls);
    assert!(matches!(broken_at(&p), (2, BreakReason::NotJson(_))));
}

const CRASH_ENV: &str = "KOCKPIT_AUDIT_TEST_CRASH_FILE";

/// Helper run in a child process: append an intent, then die without an outcome.
#[test]
fn crash_helper() {
    let Ok(path) = std::env::var(CRASH_ENV) else {
        return;
    };
    let mut log = AuditLog::open(&path).unwrap();
    let e = Entry::intent(op(), target(), "rollback", json!(25), json!(0));
    log.append(e).unwrap();
    std::process::abort();
}

#[test]
fn crash_between_intent_and_outcome_leaves_a_dangling_intent() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_helper", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, &p)
        .status()
        .unwrap();
    assert!(!status.success(), "the helper must abort");
    let report = verify(&p).unwrap();
    assert_eq!(report.entries, 7);
    assert_eq!(report.dangling_intents.len(), 1);
    let (line, _, action, object) = &report.dangling_intents[0];
    assert_eq!(
        (*line, action.as_str(), object.as_str()),
        (7, "rollback", "HTTPRoute/checkout")
    );
    // The log stays appendable after the crash.
    write_pairs(&p, 1);
    assert_eq!(verify(&p).unwrap().entries, 9);
}

#[test]
fn eight_concurrent_appenders_keep_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut log = AuditLog::open(&p).unwrap();
                for i in 0..200 {
                    let e = Entry::intent(op(), target(), "promote", json!(t), json!(i));
                    log.append(e).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let report = verify(&p).unwrap();
    assert_eq!(report.entries, 1600);
    assert_eq!(report.dangling_intents.len(), 1600);
}

#[test]
fn secrets_are_redacted_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&p).unwrap();
    let e = Entry::intent(
        op(),
        target(),
        "edit",
        json!({"users": [{"user": {"token": "s3cr3t-token", "Client-Key-Data": "s3cr3t-key"}}]}),
        json!({"headers": {"Authorization": "Bearer s3cr3t-bearer"}, "password": "s3cr3t-pw", "replicas": 2}),
    );
    log.append(e).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains(REDACTED));
    assert!(text.contains("\"replicas\":2"));
}

#[test]
fn fsync_cost_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&p).unwrap();
    let n = 200;
    let start = std::time::Instant::now();
    for i in 0..n {
        log.append(Entry::intent(
            op(),
            target(),
            "promote",
            json!(i),
            json!(i + 1),
        ))
        .unwrap();
    }
    let mean = start.elapsed().as_micros() / n;
    eprintln!("audit append+fsync: mean {mean} µs/entry over {n} entries");
    assert_eq!(verify(&p).unwrap().entries, 200);
}

fn kockpit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kockpit"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_verify_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let ps = p.to_str().unwrap();
    let out = kockpit(&["audit", "verify", "--file", ps]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok: 6 entries, chain intact"
    );
    let out = kockpit(&["audit", "show", "--file", ps, "--env", "production"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout.contains("promote 0 → 1  priya@10.0.0.5  OK 200"),
        "{stdout}"
    );
    let out = kockpit(&[
        "audit",
        "show",
        "--file",
        ps,
        "--json",
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());

    let mut ls = lines(&p);
    ls.remove(3);
    write_lines(&p, &ls);
    let out = kockpit(&["audit", "verify", "--file", ps]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("line 4: prev does not match"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
