//! Reading the log back: chain verification and filtered listing.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use super::anchor::{self, AnchorProblem, AnchorState, HeadAnchor};
use super::log::Lock;
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
    #[error(
        "missing: the log ends after line {last} but its head anchor records {anchored} lines: the last {} line(s) were removed (or the file was truncated)",
        .anchored - .last
    )]
    Missing { last: u64, anchored: u64 },
    #[error(
        "edited: the line's hash differs from the one its head anchor records (or the anchor was edited)"
    )]
    AnchorMismatch,
    #[error(
        "appended without updating the head anchor, which records line {anchored} (an interrupted append leaves at most one line after it)"
    )]
    Unanchored { anchored: u64 },
}

/// An intent with no outcome: `(line, id, action, object)`.
pub type Dangling = (usize, String, String, String);

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    pub entries: usize,
    /// Intents without an outcome (a crash between intent and outcome); not a chain error.
    pub dangling_intents: Vec<Dangling>,
    /// How the tail relates to the head anchor ([`AnchorState::Missing`] is a warning).
    pub anchor: AnchorState,
}

/// How strictly [`verify_with`] judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyOptions {
    /// A missing head anchor for a non-empty log is an error ([`AuditError::Anchor`]) rather
    /// than [`AnchorState::Missing`].
    pub strict: bool,
}

fn read(path: &Path) -> Result<Vec<u8>, AuditError> {
    std::fs::read(path).map_err(|e| AuditError::io(path, "read", e))
}

/// The log's bytes and its anchor, read under a shared lock so that no append is halfway. A
/// missing log with an anchor reads as empty (every line removed).
fn read_with_anchor(path: &Path) -> Result<(Vec<u8>, Option<HeadAnchor>), AuditError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match anchor::read_anchor(path)? {
                Some(a) => Ok((Vec::new(), Some(a))),
                None => Err(AuditError::io(path, "read", e)),
            };
        }
        Err(e) => return Err(AuditError::io(path, "open", e)),
    };
    let lock = Lock::shared(&file, path)?;
    let mut bytes = Vec::new();
    (&file)
        .read_to_end(&mut bytes)
        .map_err(|e| AuditError::io(path, "read", e))?;
    let anchor = anchor::read_anchor(path)?;
    drop(lock);
    Ok((bytes, anchor))
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

/// Recompute the chain from genesis and compare its tail with the head anchor (see the module
/// docs). A broken chain, or a tail that disagrees with the anchor, is `Err(AuditError::Broken)`
/// naming the first bad line (1-based) and why; an unreadable anchor is `Err(AuditError::Anchor)`.
/// A missing anchor is only reported in [`VerifyReport::anchor`].
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, AuditError> {
    verify_with(path, VerifyOptions::default())
}

/// [`verify`], with a missing anchor an error when `options.strict`.
pub fn verify_with(
    path: impl AsRef<Path>,
    options: VerifyOptions,
) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let (bytes, head) = read_with_anchor(path)?;
    let total = lines(&bytes).count();
    let mut prev = hash_hex(GENESIS.as_bytes());
    let mut open: Vec<Dangling> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    let broken = |line: usize, reason: BreakReason| AuditError::Broken {
        path: path.to_path_buf(),
        line,
        reason,
    };
    // The hash and end offset of the line the anchor records.
    let mut anchored: Option<(String, u64)> = None;
    let mut end: u64 = 0;
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
        end += line.len() as u64 + 1;
        if head.as_ref().is_some_and(|h| h.seq == n as u64) {
            anchored = Some((prev.clone(), end));
        }
        match entry.phase {
            Phase::Intent => open.push((n, entry.id, entry.action, entry.object)),
            Phase::Outcome => {
                done.insert(entry.id);
            }
            Phase::Event => {}
        }
    }
    let anchor = match &head {
        Some(h) => anchor::compare(
            h,
            total as u64,
            anchored.as_ref().map(|(hash, end)| (hash.as_str(), *end)),
        )
        .map_err(|(line, reason)| broken(usize::try_from(line).unwrap_or(usize::MAX), reason))?,
        None if total == 0 => AnchorState::Empty,
        None if options.strict => {
            return Err(AuditError::Anchor {
                path: path.to_path_buf(),
                anchor: anchor::anchor_path(path),
                problem: AnchorProblem::Missing,
            });
        }
        None => AnchorState::Missing,
    };
    open.retain(|(_, id, _, _)| !done.contains(id));
    Ok(VerifyReport {
        entries: total,
        dangling_intents: open,
        anchor,
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
