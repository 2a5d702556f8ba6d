//! Reading the log back: chain verification and filtered listing.

use std::collections::HashSet;
use std::path::Path;

use super::{AuditError, Entry, GENESIS, Phase, hash_hex};

/// Why a line breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakReason {
    #[error("not a valid audit entry (not JSON or missing fields): {0}")]
    NotJson(String),
    #[error(
        "prev does not match the hash of the line before (that line was edited, or a line was removed or reordered)"
    )]
    PrevMismatch,
    #[error("seq is {found}, expected {expected} (a line was removed, reordered or edited)")]
    SeqGap { expected: u64, found: u64 },
    #[error("truncated: the last line is incomplete (no final newline or partial JSON)")]
    Truncated,
}

/// An intent with no outcome: `(line, id, action, object)`.
pub type Dangling = (usize, String, String, String);

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    pub entries: usize,
    /// Intents without an outcome (a crash between intent and outcome); not a chain error.
    pub dangling_intents: Vec<Dangling>,
}

fn read(path: &Path) -> Result<Vec<u8>, AuditError> {
    std::fs::read(path).map_err(|e| AuditError::io(path, "read", e))
}

/// Split into lines; the flag says whether the line ended with `\n`.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8], bool)> {
    let mut rest = bytes;
    let mut n = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        n += 1;
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                Some((n, line, true))
            }
            None => {
                let line = rest;
                rest = &[];
                Some((n, line, false))
            }
        }
    })
}

/// Recompute the chain from genesis. A broken chain is `Err(AuditError::Broken)` naming the
/// first bad line (1-based) and why.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let total = lines(&bytes).count();
    let mut prev = hash_hex(GENESIS.as_bytes());
    let mut open: Vec<Dangling> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    let broken = |line: usize, reason: BreakReason| AuditError::Broken {
        path: path.to_path_buf(),
        line,
        reason,
    };
    for (n, line, terminated) in lines(&bytes) {
        if !terminated {
            return Err(broken(n, BreakReason::Truncated));
        }
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) if n == total && e.is_eof() => return Err(broken(n, BreakReason::Truncated)),
            Err(e) => return Err(broken(n, BreakReason::NotJson(e.to_string()))),
        };
        if entry.prev != prev {
            return Err(broken(n, BreakReason::PrevMismatch));
        }
        if entry.seq != n as u64 {
            return Err(broken(
                n,
                BreakReason::SeqGap {
                    expected: n as u64,
                    found: entry.seq,
                },
            ));
        }
        prev = hash_hex(line);
        match entry.phase {
            Phase::Intent => open.push((n, entry.id, entry.action, entry.object)),
            Phase::Outcome => {
                done.insert(entry.id);
            }
            Phase::Event => {}
        }
    }
    open.retain(|(_, id, _, _)| !done.contains(id));
    Ok(VerifyReport {
        entries: total,
        dangling_intents: open,
    })
}

/// Entries at or after `since` and in environment `env` (when given), in file order. Does not
/// check the chain (use [`verify`]); a line that does not parse is an error naming it.
pub fn show(
    path: impl AsRef<Path>,
    since: Option<jiff::Timestamp>,
    env: Option<&str>,
) -> Result<Vec<Entry>, AuditError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let mut out = Vec::new();
    for (n, line, _) in lines(&bytes) {
        let entry: Entry = serde_json::from_slice(line).map_err(|e| AuditError::Broken {
            path: path.to_path_buf(),
            line: n,
            reason: BreakReason::NotJson(e.to_string()),
        })?;
        if since.is_some_and(|s| entry.time < s) || env.is_some_and(|e| entry.environment != e) {
            continue;
        }
        out.push(entry);
    }
    Ok(out)
}
