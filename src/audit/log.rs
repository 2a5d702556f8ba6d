//! The writer: locked, fsynced appends, each followed by the head anchor.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::anchor::{self, HeadAnchor};
use super::{AuditError, BreakReason, Entry, GENESIS, hash_hex, redact};

/// An open audit log. Each handle may be used from one thread; several handles (in one
/// process or many) may append to the same file concurrently.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    /// The log's directory, `fsync`ed after the head anchor's rename.
    dir: File,
}

/// What [`AuditLog::append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub seq: u64,
    /// Hex SHA-256 of the written line (the next line's `prev`).
    pub hash: String,
    pub id: String,
}

/// Holds `flock(LOCK_EX)` or `flock(LOCK_SH)` until dropped.
pub(crate) struct Lock<'a> {
    file: &'a File,
}

impl<'a> Lock<'a> {
    /// For appending.
    pub(crate) fn exclusive(file: &'a File, path: &Path) -> Result<Lock<'a>, AuditError> {
        Lock::take(file, path, libc::LOCK_EX)
    }

    /// For reading the log and its anchor as one append left them.
    pub(crate) fn shared(file: &'a File, path: &Path) -> Result<Lock<'a>, AuditError> {
        Lock::take(file, path, libc::LOCK_SH)
    }

    fn take(file: &'a File, path: &Path, op: libc::c_int) -> Result<Lock<'a>, AuditError> {
        loop {
            // SAFETY: the fd is valid for as long as `file` is borrowed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(Lock { file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(AuditError::io(path, "lock", err));
            }
        }
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; closing the file would release the lock anyway.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

impl AuditLog {
    /// Open (creating it, mode 0600, and its parent directories) the log at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| AuditError::io(&path, "create directory", e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| AuditError::io(&path, "open", e))?;
        let dir = anchor::open_dir(&path)?;
        Ok(AuditLog { path, file, dir })
    }

    /// The file this log writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `entry` (its `seq` and `prev` are overwritten, `before`/`after` redacted),
    /// `fsync` it, then replace the head anchor with one recording it.
    ///
    /// Refuses to append after a truncated last line, and when the tail disagrees with the
    /// anchor ([`AuditError::Refused`]: last lines removed, the anchored line edited, or more
    /// than one line past the anchor). An anchor one line behind (a crash after a line's
    /// `fsync`) is accepted and repaired; a missing one is recreated.
    ///
    /// An error from writing the anchor comes after the line was made durable: the line is in
    /// the log and the anchor one behind, which [`super::verify`] accepts.
    pub fn append(&mut self, mut entry: Entry) -> Result<Written, AuditError> {
        let _lock = Lock::exclusive(&self.file, &self.path)?;
        let len = self.len()?;
        let tail = if len == 0 {
            None
        } else {
            let bytes = self.line_ending_at(len)?.ok_or_else(|| AuditError::Tail {
                path: self.path.clone(),
                reason: BreakReason::Truncated,
            })?;
            let last = serde_json::from_slice::<Entry>(&bytes).map_err(|e| AuditError::Tail {
                path: self.path.clone(),
                reason: BreakReason::NotJson(e.to_string()),
            })?;
            Some((last, hash_hex(&bytes)))
        };
        if let Some(anchor) = anchor::read_anchor(&self.path)? {
            self.check_anchor(&anchor, len, tail.as_ref())?;
        }
        let (last_seq, prev) = match tail {
            None => (0, hash_hex(GENESIS.as_bytes())),
            Some((last, hash)) => (last.seq, hash),
        };
        entry.seq = last_seq + 1;
        entry.prev = prev;
        redact(&mut entry.before);
        redact(&mut entry.after);
        let mut line = serde_json::to_vec(&entry).map_err(|source| AuditError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        let hash = hash_hex(&line);
        line.push(b'\n');
        (&self.file)
            .write_all(&line)
            .map_err(|e| AuditError::io(&self.path, "write", e))?;
        self.file
            .sync_data()
            .map_err(|e| AuditError::io(&self.path, "fsync", e))?;
        let head = HeadAnchor {
            seq: entry.seq,
            hash,
            len: len + line.len() as u64,
        };
        anchor::write_anchor(&self.path, &self.dir, &head)?;
        Ok(Written {
            seq: entry.seq,
            hash: head.hash,
            id: entry.id,
        })
    }

    /// Refuse (as [`super::verify`] would fail) unless the tail — the last line, its hash, and
    /// the file length `len` — agrees with `anchor`. Checks the tail only, not the whole chain.
    fn check_anchor(
        &self,
        anchor: &HeadAnchor,
        len: u64,
        tail: Option<&(Entry, String)>,
    ) -> Result<(), AuditError> {
        let last_seq = tail.map_or(0, |(last, _)| last.seq);
        let anchored_hash = match tail {
            Some((last, hash)) if last.seq == anchor.seq => Some(hash.clone()),
            Some((last, _)) if last.seq > anchor.seq && anchor.len < len => {
                // The anchored line ends at `anchor.len`; with one line after it, the last
                // line must chain to it.
                let chained = last.seq != anchor.seq + 1 || last.prev == anchor.hash;
                match self.line_ending_at(anchor.len)? {
                    Some(bytes) if chained => Some(hash_hex(&bytes)),
                    _ => None,
                }
            }
            _ => None,
        };
        let anchored = anchored_hash.as_deref().map(|h| {
            let end = if last_seq == anchor.seq {
                len
            } else {
                anchor.len
            };
            (h, end)
        });
        anchor::compare(anchor, last_seq, anchored)
            .map(|_| ())
            .map_err(|(line, reason)| AuditError::Refused {
                path: self.path.clone(),
                line: usize::try_from(line).unwrap_or(usize::MAX),
                reason,
            })
    }

    fn len(&self) -> Result<u64, AuditError> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| AuditError::io(&self.path, "stat", e))?
            .len())
    }

    /// The line (without its newline) whose newline is the byte before `end` (`end` > 0), or
    /// `None` if that byte is not a newline.
    fn line_ending_at(&self, end: u64) -> Result<Option<Vec<u8>>, AuditError> {
        let mut last = [0u8; 1];
        self.file
            .read_exact_at(&mut last, end - 1)
            .map_err(|e| AuditError::io(&self.path, "read", e))?;
        if last[0] != b'\n' {
            return Ok(None);
        }
        // Scan backwards from before that newline for the previous newline.
        let mut start = end - 1;
        let mut tail: Vec<u8> = Vec::new();
        const CHUNK: u64 = 8192;
        while start > 0 {
            let from = start.saturating_sub(CHUNK);
            let mut buf = vec![0u8; (start - from) as usize];
            self.file
                .read_exact_at(&mut buf, from)
                .map_err(|e| AuditError::io(&self.path, "read", e))?;
            if let Some(pos) = buf.iter().rposition(|&b| b == b'\n') {
                buf.drain(..=pos);
                buf.extend_from_slice(&tail);
                return Ok(Some(buf));
            }
            buf.extend_from_slice(&tail);
            tail = buf;
            start = from;
        }
        Ok(Some(tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AnchorState, Operator, Target, read_anchor, verify};

    fn event() -> Entry {
        Entry::event(Operator::default(), Target::default(), "note")
    }

    /// A log of `n` events in a fresh temp dir.
    fn log_of(n: usize) -> (tempfile::TempDir, AuditLog, Vec<Written>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = AuditLog::open(dir.path().join("audit.jsonl")).expect("open");
        let written = (0..n)
            .map(|_| log.append(event()).expect("append"))
            .collect();
        (dir, log, written)
    }

    fn anchor_file(log: &AuditLog) -> PathBuf {
        anchor::anchor_path(log.path())
    }

    #[test]
    fn every_append_anchors_its_line() {
        let (_dir, log, written) = log_of(3);
        let len = std::fs::metadata(log.path()).map(|m| m.len()).ok();
        let head = read_anchor(log.path()).ok().flatten();
        let last = written.last().cloned();
        assert_eq!(head.as_ref().map(|h| h.seq), last.as_ref().map(|w| w.seq));
        assert_eq!(
            head.as_ref().map(|h| &h.hash),
            last.as_ref().map(|w| &w.hash)
        );
        assert_eq!(head.map(|h| h.len), len);
    }

    #[test]
    fn append_repairs_an_anchor_one_behind_and_recreates_a_missing_one() {
        let (_dir, mut log, _) = log_of(2);
        let behind = std::fs::read(anchor_file(&log)).expect("anchor");
        log.append(event()).expect("append");
        // A crash between the third line's fsync and its anchor.
        std::fs::write(anchor_file(&log), &behind).expect("write");
        assert_eq!(
            verify(log.path()).map(|r| r.anchor).ok(),
            Some(AnchorState::OneBehind)
        );
        let w = log.append(event()).expect("append after the crash window");
        assert_eq!(w.seq, 4);
        assert_eq!(
            verify(log.path()).map(|r| r.anchor).ok(),
            Some(AnchorState::Matches)
        );
        std::fs::remove_file(anchor_file(&log)).expect("remove");
        assert_eq!(
            verify(log.path()).map(|r| r.anchor).ok(),
            Some(AnchorState::Missing)
        );
        log.append(event()).expect("append without an anchor");
        assert_eq!(
            verify(log.path()).map(|r| (r.entries, r.anchor)).ok(),
            Some((5, AnchorState::Matches))
        );
    }

    #[test]
    fn append_refuses_a_tail_that_disagrees_with_the_anchor() {
        let refused = |log: &mut AuditLog| match log.append(event()) {
            Err(AuditError::Refused { line, reason, .. }) => Some((line, reason)),
            _ => None,
        };
        // Last line removed.
        let (_dir, mut log, _) = log_of(3);
        let bytes = std::fs::read(log.path()).expect("read");
        let cut = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        std::fs::write(log.path(), &bytes[..cut]).expect("write");
        assert_eq!(
            refused(&mut log),
            Some((
                3,
                BreakReason::Missing {
                    last: 2,
                    anchored: 3
                }
            ))
        );
        // Everything removed.
        std::fs::write(log.path(), b"").expect("write");
        assert_eq!(
            refused(&mut log),
            Some((
                1,
                BreakReason::Missing {
                    last: 0,
                    anchored: 3
                }
            ))
        );
        // Last line edited (same length, so only the hash tells).
        let mut edited = bytes.clone();
        let at = cut
            + String::from_utf8_lossy(&bytes[cut..])
                .find("note")
                .unwrap_or(0);
        edited[at + 1] = b'a';
        std::fs::write(log.path(), &edited).expect("write");
        assert_eq!(refused(&mut log), Some((3, BreakReason::AnchorMismatch)));
        // Nothing was appended by the refusals.
        assert_eq!(
            std::fs::read(log.path()).map(|b| b.len()).ok(),
            Some(edited.len())
        );

        // Two lines past the anchor.
        let (_dir, mut log, _) = log_of(2);
        let old = std::fs::read(anchor_file(&log)).expect("anchor");
        log.append(event()).expect("append");
        log.append(event()).expect("append");
        std::fs::write(anchor_file(&log), &old).expect("write");
        assert_eq!(
            refused(&mut log),
            Some((4, BreakReason::Unanchored { anchored: 2 }))
        );
        // An unreadable anchor.
        std::fs::write(anchor_file(&log), b"{").expect("write");
        assert!(matches!(
            log.append(event()),
            Err(AuditError::Anchor { .. })
        ));
    }

    #[test]
    fn an_anchor_one_behind_must_chain_to_the_last_line() {
        let (_dir, mut log, _) = log_of(2);
        let old = std::fs::read(anchor_file(&log)).expect("anchor");
        log.append(event()).expect("append");
        std::fs::write(anchor_file(&log), &old).expect("write");
        // Edit the anchored line (2) in place, keeping the byte length.
        let text = std::fs::read_to_string(log.path()).expect("read");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[1] = lines[1].replacen("\"note\"", "\"nope\"", 1);
        std::fs::write(log.path(), lines.join("\n") + "\n").expect("write");
        assert!(matches!(
            log.append(event()),
            Err(AuditError::Refused {
                line: 2,
                reason: BreakReason::AnchorMismatch,
                ..
            })
        ));
    }
}
