//! The head anchor: a sidecar file (`audit.jsonl.head`) that records the log's last line, so
//! that removing or editing the last lines — which no later line points at — is detectable.
//!
//! It is one JSON line, `{"seq":N,"hash":"<hex sha-256 of line N>","len":<bytes up to and
//! including line N's newline>}`, rewritten by every append under the log's lock after the
//! line's `fsync`: written to `<anchor>.tmp`, `fsync`ed, renamed over the anchor, and the
//! directory `fsync`ed, so a crash leaves either the old anchor or the new one, never a torn one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AuditError, BreakReason};

/// The contents of the head anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadAnchor {
    /// `seq` of the line the anchor records (the last line when it was written).
    pub seq: u64,
    /// Hex SHA-256 of that line's bytes, without its newline.
    pub hash: String,
    /// The log's length in bytes up to and including that line's newline.
    pub len: u64,
}

/// How the log's tail relates to its head anchor, when nothing is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnchorState {
    /// The log is empty and there is no anchor.
    #[default]
    Empty,
    /// The anchor records the last line.
    Matches,
    /// The anchor records the line before the last: an append stopped between making its line
    /// durable and writing the anchor. Not an error; the next append writes a current anchor.
    OneBehind,
    /// The log has lines but no anchor: a log from before head anchors, or the anchor was
    /// deleted. Removal of the last lines cannot be detected. A warning, or with `strict` an
    /// error; the next append writes a new anchor.
    Missing,
}

/// What is wrong with the anchor file itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorProblem {
    #[error(
        "missing: the removal of the last lines of the log cannot be detected (a log from before head anchors, or the anchor was deleted; the next append writes a new one)"
    )]
    Missing,
    #[error("unreadable (only kockpit writes it, so it was edited or damaged): {0}")]
    Unreadable(String),
}

/// The head anchor of the log at `log`: `audit.jsonl` → `audit.jsonl.head`.
pub fn anchor_path(log: &Path) -> PathBuf {
    let mut name = log
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".head");
    log.with_file_name(name)
}

fn tmp_path(anchor: &Path) -> PathBuf {
    let mut name = anchor.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The log's directory, for `fsync` after the rename.
pub(crate) fn open_dir(log: &Path) -> Result<File, AuditError> {
    let dir = match log.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).map_err(|e| AuditError::io(log, "open directory", e))
}

fn unreadable(log: &Path, why: String) -> AuditError {
    AuditError::Anchor {
        path: log.to_path_buf(),
        anchor: anchor_path(log),
        problem: AnchorProblem::Unreadable(why),
    }
}

/// The anchor of the log at `log`, or `None` if there is none.
pub fn read_anchor(log: &Path) -> Result<Option<HeadAnchor>, AuditError> {
    let path = anchor_path(log);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(log, "read head anchor", e)),
    };
    let anchor: HeadAnchor =
        serde_json::from_slice(&bytes).map_err(|e| unreadable(log, e.to_string()))?;
    if anchor.seq == 0 {
        return Err(unreadable(log, "seq is 0".into()));
    }
    if anchor.hash.len() != 64 || !anchor.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unreadable(log, "hash is not 64 hex digits".into()));
    }
    if anchor.len == 0 {
        return Err(unreadable(log, "len is 0".into()));
    }
    Ok(Some(anchor))
}

/// Atomically replace the anchor of the log at `log` (`dir` is the log's directory): temp file,
/// `fsync`, rename, directory `fsync`. The caller holds the log's exclusive lock.
pub(crate) fn write_anchor(log: &Path, dir: &File, anchor: &HeadAnchor) -> Result<(), AuditError> {
    let path = anchor_path(log);
    let tmp = tmp_path(&path);
    let mut line = serde_json::to_vec(anchor).map_err(|source| AuditError::Serialize {
        path: log.to_path_buf(),
        source,
    })?;
    line.push(b'\n');
    let io = |op: &'static str| move |e| AuditError::io(log, op, e);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create head anchor"))?;
    f.write_all(&line).map_err(io("write head anchor"))?;
    f.sync_data().map_err(io("fsync head anchor"))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io("rename head anchor"))?;
    dir.sync_all().map_err(io("fsync directory"))?;
    Ok(())
}

/// Compare a log whose chain is intact up to line `last` with its anchor. `anchored` is the
/// hash and end offset of the line whose seq is `anchor.seq`, if the log has that line.
/// On failure, the first bad line and why.
pub(crate) fn compare(
    anchor: &HeadAnchor,
    last: u64,
    anchored: Option<(&str, u64)>,
) -> Result<AnchorState, (u64, BreakReason)> {
    if anchor.seq > last {
        return Err((
            last + 1,
            BreakReason::Missing {
                last,
                anchored: anchor.seq,
            },
        ));
    }
    match anchored {
        Some((hash, end)) if hash == anchor.hash && end == anchor.len => {}
        _ => return Err((anchor.seq, BreakReason::AnchorMismatch)),
    }
    match last - anchor.seq {
        0 => Ok(AnchorState::Matches),
        1 => Ok(AnchorState::OneBehind),
        _ => Err((
            anchor.seq + 2,
            BreakReason::Unanchored {
                anchored: anchor.seq,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(seq: u64) -> HeadAnchor {
        HeadAnchor {
            seq,
            hash: "ab".repeat(32),
            len: 100,
        }
    }

    #[test]
    fn anchor_sits_beside_the_log() {
        assert_eq!(
            anchor_path(Path::new("/s/kockpit/audit.jsonl")),
            Path::new("/s/kockpit/audit.jsonl.head")
        );
        assert_eq!(
            anchor_path(Path::new("audit.jsonl")),
            Path::new("audit.jsonl.head")
        );
    }

    #[test]
    fn write_then_read_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("audit.jsonl");
        assert_eq!(read_anchor(&log).ok(), Some(None));
        let d = open_dir(&log).expect("dir");
        for seq in [1, 2] {
            write_anchor(&log, &d, &anchor(seq)).expect("write");
            assert_eq!(read_anchor(&log).ok(), Some(Some(anchor(seq))));
        }
        assert!(!tmp_path(&anchor_path(&log)).exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(anchor_path(&log))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn damaged_anchors_are_unreadable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("audit.jsonl");
        for bad in [
            "",
            "{\"seq\":3,\"hash\":\"",
            "{\"seq\":0,\"hash\":\"00\",\"len\":1}",
            "{\"seq\":3,\"hash\":\"xyz\",\"len\":10}",
            &format!("{{\"seq\":3,\"hash\":\"{}\",\"len\":0}}", "0".repeat(64)),
            &format!(
                "{{\"seq\":3,\"hash\":\"{}\",\"len\":9,\"extra\":1}}",
                "0".repeat(64)
            ),
        ] {
            std::fs::write(anchor_path(&log), bad).expect("write");
            assert!(
                matches!(
                    read_anchor(&log),
                    Err(AuditError::Anchor {
                        problem: AnchorProblem::Unreadable(_),
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn compare_classifies_the_tail() {
        let a = anchor(5);
        let h = a.hash.as_str();
        assert_eq!(compare(&a, 5, Some((h, 100))), Ok(AnchorState::Matches));
        assert_eq!(compare(&a, 6, Some((h, 100))), Ok(AnchorState::OneBehind));
        assert_eq!(
            compare(&a, 7, Some((h, 100))),
            Err((7, BreakReason::Unanchored { anchored: 5 }))
        );
        assert_eq!(
            compare(&a, 3, None),
            Err((
                4,
                BreakReason::Missing {
                    last: 3,
                    anchored: 5
                }
            ))
        );
        assert_eq!(
            compare(&a, 0, None),
            Err((
                1,
                BreakReason::Missing {
                    last: 0,
                    anchored: 5
                }
            ))
        );
        let other = "cd".repeat(32);
        assert_eq!(
            compare(&a, 5, Some((&other, 100))),
            Err((5, BreakReason::AnchorMismatch))
        );
        assert_eq!(
            compare(&a, 6, Some((h, 99))),
            Err((5, BreakReason::AnchorMismatch))
        );
    }
}
