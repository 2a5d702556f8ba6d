//! Audit log: chain round trip, tamper detection (every line of a six-line log, the last lines
//! through the head anchor), crash between intent and outcome, crash between a line and its
//! anchor, concurrent appenders (threads and processes), redaction, and the `kockpit audit` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use kockpit::audit::{
    AnchorProblem, AnchorState, AuditError, AuditLog, BreakReason, Entry, Operator, REDACTED,
    Target, VerifyOptions, anchor_path, read_anchor, verify, verify_with,
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

/// `bytes` split into lines, each with its newline.
fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Rewrite field `field` of a JSON line (without newline) to `value`.
fn with_field(line: &[u8], field: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(line).unwrap();
    v[field] = value;
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn every_single_line_tamper_of_a_six_line_log_is_detected_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let orig = std::fs::read(&p).unwrap();
    let ls = split_lines(&orig);
    assert_eq!(ls.len(), 6);
    let mut checked = 0;
    let mut expect = |what: String, bytes: Vec<u8>, line: usize, reason: BreakReason| {
        std::fs::write(&p, &bytes).unwrap();
        match verify(&p) {
            Err(AuditError::Broken {
                line: l, reason: r, ..
            }) => assert_eq!((l, r), (line, reason), "{what}"),
            other => panic!("{what}: expected line {line}: {reason}, got {other:?}"),
        }
        checked += 1;
    };
    let join = |ls: &[Vec<u8>]| ls.concat();
    for k in 1..=6usize {
        let i = k - 1;
        // Edits that leave seq and prev alone are caught by the next line's prev, or for the
        // last line by the head anchor.
        let (at, why) = if k < 6 {
            (k + 1, BreakReason::PrevMismatch)
        } else {
            (6, BreakReason::AnchorMismatch)
        };
        let body = &ls[i][..ls[i].len() - 1];
        for (field, value) in [
            ("action", json!("rollback")),
            ("after", json!(99)),
            ("time", json!("2020-01-01T00:00:00Z")),
        ] {
            let mut e = ls.clone();
            e[i] = [with_field(body, field, value), b"\n".to_vec()].concat();
            expect(
                format!("edit {field} of line {k}"),
                join(&e),
                at,
                why.clone(),
            );
        }
        // One byte of whitespace, same JSON.
        let mut e = ls.clone();
        e[i] = [b"{ ".as_slice(), &ls[i][1..]].concat();
        expect(
            format!("add a space to line {k}"),
            join(&e),
            at,
            why.clone(),
        );
        // Edits of seq and prev are caught on the line itself.
        let mut e = ls.clone();
        e[i] = [with_field(body, "seq", json!(77)), b"\n".to_vec()].concat();
        expect(
            format!("edit seq of line {k}"),
            join(&e),
            k,
            BreakReason::SeqGap {
                expected: k as u64,
                found: 77,
            },
        );
        let mut e = ls.clone();
        e[i] = [
            with_field(body, "prev", json!("0".repeat(64))),
            b"\n".to_vec(),
        ]
        .concat();
        expect(
            format!("edit prev of line {k}"),
            join(&e),
            k,
            BreakReason::PrevMismatch,
        );
        // Deletion: the next line's prev, or for the last line the anchor.
        let mut e = ls.clone();
        e.remove(i);
        let why = if k < 6 {
            BreakReason::PrevMismatch
        } else {
            BreakReason::Missing {
                last: 5,
                anchored: 6,
            }
        };
        expect(format!("delete line {k}"), join(&e), k, why);
        // Swap with the next line.
        if k < 6 {
            let mut e = ls.clone();
            e.swap(i, i + 1);
            expect(
                format!("swap lines {k} and {}", k + 1),
                join(&e),
                k,
                BreakReason::PrevMismatch,
            );
        }
        // Truncation mid-line: in the middle, and just before the newline.
        let start = join(&ls[..i]).len();
        for cut in [ls[i].len() / 2, ls[i].len() - 1] {
            expect(
                format!("truncate line {k} after {cut} bytes"),
                orig[..start + cut].to_vec(),
                k,
                BreakReason::Truncated,
            );
        }
    }
    // Truncation after every complete line but the last (0: the file emptied).
    for k in 0..6usize {
        expect(
            format!("truncate after line {k}"),
            join(&ls[..k]),
            k + 1,
            BreakReason::Missing {
                last: k as u64,
                anchored: 6,
            },
        );
    }
    // Per line: 3 field edits, a space, seq, prev, deletion, 2 cuts; 5 swaps; 6 truncations.
    assert_eq!(checked, 6 * 9 + 5 + 6);
    // The log file deleted, its anchor left.
    std::fs::remove_file(&p).unwrap();
    assert_eq!(
        broken_at(&p),
        (
            1,
            BreakReason::Missing {
                last: 0,
                anchored: 6
            }
        )
    );
    // And the original still verifies.
    std::fs::write(&p, &orig).unwrap();
    assert_eq!(verify(&p).unwrap().anchor, AnchorState::Matches);
}

#[test]
fn anchor_one_behind_verifies_and_the_next_append_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let anchor = anchor_path(&p);
    let behind = std::fs::read(&anchor).unwrap();
    // A crash between the seventh line's fsync and its anchor: the anchor still records line 6.
    let mut log = AuditLog::open(&p).unwrap();
    log.append(Entry::event(op(), target(), "note")).unwrap();
    std::fs::write(&anchor, &behind).unwrap();
    let report = verify_with(&p, VerifyOptions { strict: true }).unwrap();
    assert_eq!((report.entries, report.anchor), (7, AnchorState::OneBehind));
    let out = kockpit(&["audit", "verify", "--file", p.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("note: the head anchor is one line behind"),
        "{stdout}"
    );
    // Tampering behind the anchor is still caught: the anchored line (6) edited.
    let orig = std::fs::read(&p).unwrap();
    let mut ls = lines(&p);
    ls[5] = ls[5].replacen("\"OK\"", "\"KO\"", 1);
    write_lines(&p, &ls);
    assert_eq!(broken_at(&p), (7, BreakReason::PrevMismatch));
    std::fs::write(&p, &orig).unwrap();
    // Two lines past the anchor is more than a crash leaves.
    log.append(Entry::event(op(), target(), "note")).unwrap();
    std::fs::write(&anchor, &behind).unwrap();
    assert_eq!(broken_at(&p), (8, BreakReason::Unanchored { anchored: 6 }));
    std::fs::write(&p, &orig).unwrap();
    std::fs::write(&anchor, &behind).unwrap();
    // The next append repairs the anchor.
    let w = log.append(Entry::event(op(), target(), "note")).unwrap();
    assert_eq!(w.seq, 8);
    assert_eq!(verify(&p).unwrap().anchor, AnchorState::Matches);
    assert_sequential_and_anchored(&p, 8);
}

#[test]
fn missing_anchor_warns_and_fails_only_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let ps = p.to_str().unwrap();
    std::fs::remove_file(anchor_path(&p)).unwrap();
    let report = verify(&p).unwrap();
    assert_eq!((report.entries, report.anchor), (6, AnchorState::Missing));
    assert!(matches!(
        verify_with(&p, VerifyOptions { strict: true }),
        Err(AuditError::Anchor {
            problem: AnchorProblem::Missing,
            ..
        })
    ));
    let out = kockpit(&["audit", "verify", "--file", ps]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("ok: 6 entries, chain intact\nwarning: no head anchor"),
        "{stdout}"
    );
    let out = kockpit(&["audit", "verify", "--strict", "--file", ps]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("head anchor "), "{stdout}");
    assert!(stdout.contains("audit.jsonl.head: missing"), "{stdout}");
    // An empty log needs no anchor.
    let empty = dir.path().join("empty.jsonl");
    AuditLog::open(&empty).unwrap();
    let report = verify_with(&empty, VerifyOptions { strict: true }).unwrap();
    assert_eq!((report.entries, report.anchor), (0, AnchorState::Empty));
    // The next append writes a new anchor (a log from before anchors carries on).
    write_pairs(&p, 1);
    let report = verify_with(&p, VerifyOptions { strict: true }).unwrap();
    assert_eq!((report.entries, report.anchor), (8, AnchorState::Matches));
    // A damaged anchor is a failure, never a warning.
    std::fs::write(anchor_path(&p), b"{\"seq\":8}").unwrap();
    assert!(matches!(
        verify(&p),
        Err(AuditError::Anchor {
            problem: AnchorProblem::Unreadable(_),
            ..
        })
    ));
    let out = kockpit(&["audit", "verify", "--file", ps]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unreadable"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn append_refuses_to_paper_over_removed_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = fresh(&dir);
    let mut ls = lines(&p);
    ls.truncate(4);
    write_lines(&p, &ls);
    let before = std::fs::read(&p).unwrap();
    let mut log = AuditLog::open(&p).unwrap();
    match log.append(Entry::event(op(), target(), "note")) {
        Err(e @ AuditError::Refused { line: 5, .. }) => {
            assert!(e.to_string().contains("refusing to append"), "{e}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&p).unwrap(), before);
    assert_eq!(
        broken_at(&p),
        (
            5,
            BreakReason::Missing {
                last: 4,
                anchored: 6
            }
        )
    );
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

/// The log's lines carry seq 1..=n in order, and the head anchor records the last one: its
/// seq, its hash and the file's length.
fn assert_sequential_and_anchored(p: &Path, n: u64) {
    let ls = lines(p);
    let seqs: Vec<u64> = ls
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    let head = read_anchor(p).unwrap().expect("an anchor");
    assert_eq!(head.seq, n);
    use sha2::Digest;
    let last = ls.last().unwrap();
    assert_eq!(
        head.hash,
        hex::encode(sha2::Sha256::digest(last.as_bytes()))
    );
    assert_eq!(head.len, std::fs::metadata(p).unwrap().len());
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
    let report = verify_with(&p, VerifyOptions { strict: true }).unwrap();
    assert_eq!(report.entries, 1600);
    assert_eq!(report.dangling_intents.len(), 1600);
    assert_eq!(report.anchor, AnchorState::Matches);
    assert_sequential_and_anchored(&p, 1600);
}

const APPEND_ENV: &str = "KOCKPIT_AUDIT_TEST_APPEND_FILE";
const APPEND_TAG_ENV: &str = "KOCKPIT_AUDIT_TEST_APPEND_TAG";

/// Helper run in child processes: append 200 intents tagged with the process's tag.
#[test]
fn append_helper() {
    let (Ok(path), Ok(tag)) = (std::env::var(APPEND_ENV), std::env::var(APPEND_TAG_ENV)) else {
        return;
    };
    let mut log = AuditLog::open(&path).unwrap();
    for i in 0..200 {
        let e = Entry::intent(op(), target(), "promote", json!(tag), json!(i));
        log.append(e).unwrap();
    }
}

#[test]
fn two_concurrent_processes_keep_the_chain_and_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "append_helper", "--test-threads=1"])
                .env(APPEND_ENV, &p)
                .env(APPEND_TAG_ENV, tag)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let report = verify_with(&p, VerifyOptions { strict: true }).unwrap();
    assert_eq!(report.entries, 400);
    assert_eq!(report.anchor, AnchorState::Matches);
    assert_sequential_and_anchored(&p, 400);
    // Each process's entries are all there, in its own order.
    for tag in ["a", "b"] {
        let mine: Vec<u64> = lines(&p)
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["before"] == tag)
            .map(|v| v["after"].as_u64().unwrap())
            .collect();
        assert_eq!(mine, (0..200).collect::<Vec<_>>(), "process {tag}");
    }
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

    for (since, shown) in [("2h", 3), ("1d", 3), ("30m", 3), ("1h30m", 3), ("0s", 0)] {
        let out = kockpit(&["audit", "show", "--file", ps, "--since", since]);
        assert_eq!(out.status.code(), Some(0), "--since {since}");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(stdout.lines().count(), shown, "--since {since}: {stdout}");
    }
    let out = kockpit(&["audit", "show", "--file", ps, "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'yesterday' for '--since <WHEN>'")
            && stderr.contains("expected an RFC 3339 time")
            && stderr.contains("30m, 2h, 1d"),
        "{stderr}"
    );

    let orig = std::fs::read(&p).unwrap();
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

    // The last two lines removed: only the head anchor shows it.
    let mut ls = split_lines(&orig);
    ls.truncate(4);
    std::fs::write(&p, ls.concat()).unwrap();
    let out = kockpit(&["audit", "verify", "--file", ps]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "line 5: missing: the log ends after line 4 but its head anchor records 6 lines: the last 2 line(s) were removed (or the file was truncated)"
    );

    // The last line edited.
    let mut ls = split_lines(&orig);
    ls[5] = String::from_utf8_lossy(&ls[5])
        .replacen("\"OK\"", "\"KO\"", 1)
        .into_bytes();
    std::fs::write(&p, ls.concat()).unwrap();
    let out = kockpit(&["audit", "verify", "--file", ps]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("line 6: edited: "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
