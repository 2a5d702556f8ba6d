//! The writer: locked, fsynced appends.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{AuditError, BreakReason, Entry, GENESIS, hash_hex, redact};

/// An open audit log. Each handle may be used from one thread; several handles (in one
/// process or many) may append to the same file concurrently.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

/// What [`AuditLog::append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub seq: u64,
    /// Hex SHA-256 of the written line (the next line's `prev`).
    pub hash: String,
    pub id: String,
}

/// Holds `flock(LOCK_EX)` until dropped.
struct Lock<'a> {
    file: &'a File,
}

impl<'a> Lock<'a> {
    fn exclusive(file: &'a File, path: &Path) -> Result<Lock<'a>, AuditError> {
        loop {
            // SAFETY: the fd is valid for as long as `file` is borrowed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
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
        Ok(AuditLog { path, file })
    }

    /// The file this log writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `entry` (its `seq` and `prev` are overwritten, `before`/`after` redacted) and
    /// `fsync` it. Refuses to append after a truncated last line.
    pub fn append(&mut self, mut entry: Entry) -> Result<Written, AuditError> {
        let _lock = Lock::exclusive(&self.file, &self.path)?;
        let (last_seq, prev) = match self.last_line()? {
            None => (0, hash_hex(GENESIS.as_bytes())),
            Some(bytes) => {
                let seq = serde_json::from_slice::<Entry>(&bytes)
                    .map_err(|e| AuditError::Tail {
                        path: self.path.clone(),
                        reason: BreakReason::NotJson(e.to_string()),
                    })?
                    .seq;
                (seq, hash_hex(&bytes))
            }
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
        Ok(Written {
            seq: entry.seq,
            hash,
            id: entry.id,
        })
    }

    /// The last complete line (without its newline), or `None` for an empty file.
    fn last_line(&self) -> Result<Option<Vec<u8>>, AuditError> {
        let len = self
            .file
            .metadata()
            .map_err(|e| AuditError::io(&self.path, "stat", e))?
            .len();
        if len == 0 {
            return Ok(None);
        }
        let mut last = [0u8; 1];
        self.file
            .read_exact_at(&mut last, len - 1)
            .map_err(|e| AuditError::io(&self.path, "read", e))?;
        if last[0] != b'\n' {
            return Err(AuditError::Tail {
                path: self.path.clone(),
                reason: BreakReason::Truncated,
            });
        }
        // Scan backwards from before the final newline for the previous newline.
        let end = len - 1;
        let mut start = end;
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
