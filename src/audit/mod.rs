//! Tamper-evident, append-only audit log of operator actions.
//!
//! The log is a JSON Lines file (one object per `\n`-terminated line). Every line carries
//! `prev`, the hex SHA-256 of the previous line's exact bytes (without its newline); the first
//! line's `prev` is the SHA-256 of [`GENESIS`]. Editing, removing or reordering any line breaks
//! the chain at the line after the change, which [`verify`] reports.
//!
//! Nothing in the log points at its last line, so the chain alone cannot show that the last
//! lines were removed (or the file truncated at a line boundary) or that the last line was
//! edited. The *head anchor* does: a sidecar file beside the log (`audit.jsonl.head`, see
//! [`anchor_path`]) holding the last line's `seq`, hash and the log's length, rewritten
//! atomically by every append after the line's `fsync`. [`verify`] compares the tail with it:
//! - fewer lines than the anchor records → a failure at the first missing line, saying how many
//!   are missing;
//! - the anchored line's hash differs → a failure: that line was edited;
//! - the anchor exactly one line behind (a crash between the line's `fsync` and the anchor
//!   write) → accepted ([`AnchorState::OneBehind`]); the next append writes a current anchor.
//!   More than one line beyond the anchor is a failure;
//! - no anchor for a non-empty log (a log from before anchors, or the anchor was deleted) → a
//!   warning ([`AnchorState::Missing`]); a failure with [`VerifyOptions::strict`]
//!   (`kockpit audit verify --strict`). The next append writes a new anchor.
//!
//! [`AuditLog::append`] checks the tail against the anchor under the lock and refuses to append
//! ([`AuditError::Refused`]) wherever [`verify`] would fail on the tail, so an append never
//! papers over removed or edited last lines. To go on with such a log as it is (after keeping
//! a copy as evidence), move the anchor aside; the next append writes a new one.
//!
//! What this does not give: the chain has no secret, so someone who can write both files can
//! rewrite them consistently (remove lines and recompute the chain and the anchor, or delete
//! the anchor and let the next append recreate it). While the anchor is one behind (the crash
//! window), removing the one line after it is not detected. Against all that, ship the log
//! elsewhere as it is written.
//!
//! A state-changing action is written twice: an `intent` (made durable with `fsync` before the
//! API call) and an `outcome` with the same `id` after it. An intent without an outcome (a crash
//! in between) is not a chain error; [`verify`] lists it as dangling.
//!
//! Appends from several processes are serialized with an exclusive `flock` on the file; the last
//! line is re-read under the lock so `seq` and `prev` are always computed from the real tail, and
//! the anchor is written under the same lock. [`verify`] reads the log and the anchor under a
//! shared `flock`, so it sees them as one append left them.
//!
//! Secrets never reach the file: [`redact`] runs on `before` and `after` on every append.

mod anchor;
pub mod cli;
mod format;
mod log;
mod verify;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use anchor::{AnchorProblem, AnchorState, HeadAnchor, anchor_path, read_anchor};
pub use format::{format_entries, format_line};
pub use log::{AuditLog, Written};
pub use verify::{BreakReason, Dangling, VerifyOptions, VerifyReport, show, verify, verify_with};

/// The string whose SHA-256 is the first line's `prev`.
pub const GENESIS: &str = "kockpit-audit-genesis-v1";

/// What went wrong with the audit log; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log {path}: line {line}: {reason}")]
    Broken {
        path: PathBuf,
        line: usize,
        reason: BreakReason,
    },
    #[error(
        "audit log {path}: last line: {reason}; refusing to append (run `kockpit audit verify`)"
    )]
    Tail { path: PathBuf, reason: BreakReason },
    /// The log's tail disagrees with its head anchor (see the module docs); nothing was written.
    #[error(
        "audit log {path}: line {line}: {reason}; refusing to append (run `kockpit audit verify`; to go on with the log as it is, move its head anchor aside)"
    )]
    Refused {
        path: PathBuf,
        line: usize,
        reason: BreakReason,
    },
    /// The head anchor is unreadable, or missing where it is required (`strict`).
    #[error("audit log {path}: head anchor {anchor}: {problem}")]
    Anchor {
        path: PathBuf,
        anchor: PathBuf,
        problem: AnchorProblem,
    },
    #[error("audit log {path}: cannot serialize entry: {source}")]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl AuditError {
    pub(crate) fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }
}

/// Which half of an action (or a standalone event) a line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Intent,
    Outcome,
    Event,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Operator {
    pub os_user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_client: Option<String>,
}

impl Operator {
    /// The operator of this process: `$USER` (or `$LOGNAME`, else the uid) and the client
    /// address from `$SSH_CONNECTION`'s first field.
    pub fn current(kube_user: Option<String>) -> Operator {
        let os_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|s| !s.is_empty())
            // SAFETY: getuid has no preconditions and cannot fail.
            .unwrap_or_else(|| format!("uid:{}", unsafe { libc::getuid() }));
        let ssh_client = std::env::var("SSH_CONNECTION").ok().and_then(|s| {
            s.split_whitespace()
                .next()
                .map(str::to_string)
                .filter(|s| !s.is_empty())
        });
        Operator {
            os_user,
            kube_user,
            ssh_client,
        }
    }
}

/// The outcome of the API call: HTTP status when there was a response, and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub message: String,
}

/// Where an action applies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub environment: String,
    pub context: String,
    pub namespace: String,
    /// `Kind/name`, e.g. `HTTPRoute/checkout`.
    pub object: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One line of the log. `seq` and `prev` are filled in by [`AuditLog::append`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub time: jiff::Timestamp,
    pub phase: Phase,
    pub id: String,
    pub operator: Operator,
    pub environment: String,
    pub context: String,
    pub namespace: String,
    pub object: String,
    /// The app acted on, where the action is about one (absent on older lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub action: String,
    pub before: Value,
    pub after: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ActionResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub version: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub drill: bool,
    /// Done by the automated guard, not by a person (absent when false, so older lines and
    /// their hashes are unchanged).
    #[serde(default, skip_serializing_if = "is_false")]
    pub automatic: bool,
    pub prev: String,
}

/// A fresh random id for an intent (32 hex digits).
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Entry {
    fn base(phase: Phase, id: String, operator: Operator, target: Target, action: &str) -> Entry {
        Entry {
            seq: 0,
            time: jiff::Timestamp::now(),
            phase,
            id,
            operator,
            environment: target.environment,
            context: target.context,
            namespace: target.namespace,
            object: target.object,
            app: None,
            action: action.to_string(),
            before: Value::Null,
            after: Value::Null,
            reason: None,
            result: None,
            duration_ms: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
            drill: false,
            automatic: false,
            prev: String::new(),
        }
    }

    /// An intent with a fresh id, stamped now.
    pub fn intent(
        operator: Operator,
        target: Target,
        action: &str,
        before: Value,
        after: Value,
    ) -> Entry {
        let mut e = Entry::base(Phase::Intent, new_id(), operator, target, action);
        e.before = before;
        e.after = after;
        e
    }

    /// A standalone event (no outcome expected), stamped now.
    pub fn event(operator: Operator, target: Target, action: &str) -> Entry {
        Entry::base(Phase::Event, new_id(), operator, target, action)
    }

    /// The outcome of `intent`: same id, operator, target, action, before/after, reason, drill.
    pub fn outcome(intent: &Entry, status: Option<u16>, message: &str, duration_ms: u64) -> Entry {
        let mut e = intent.clone();
        e.seq = 0;
        e.prev = String::new();
        e.time = jiff::Timestamp::now();
        e.phase = Phase::Outcome;
        e.result = Some(ActionResult {
            status,
            message: message.to_string(),
        });
        e.duration_ms = Some(duration_ms);
        e
    }
}

/// Keys whose values are blanked by [`redact`] (compared case-insensitively, `_` and `-` equal).
const SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "client-key-data",
    "client-certificate-data",
    "id-token",
    "refresh-token",
    "access-token",
    "bearer-token",
    "api-key",
    "private-key",
];

/// The placeholder written instead of a secret.
pub const REDACTED: &str = "[redacted]";

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('_', "-");
    SECRET_KEYS.iter().any(|s| {
        k == *s
            || (k.ends_with(s) && k[..k.len() - s.len()].ends_with(['-', '.']))
            || k == s.replace('-', "")
    })
}

/// Blank every value whose key looks like a secret (token, password, secret, authorization,
/// client-key-data, client-certificate-data, ...), at any depth.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) {
                    *v = Value::String(REDACTED.to_string());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// `$XDG_STATE_HOME/kockpit/audit.jsonl`, else `~/.local/state/kockpit/audit.jsonl`.
pub fn default_path() -> PathBuf {
    use etcetera::BaseStrategy;
    let state = etcetera::choose_base_strategy()
        .ok()
        .and_then(|s| s.state_dir())
        .or_else(|| etcetera::home_dir().ok().map(|h| h.join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".local/state"));
    state.join("kockpit").join("audit.jsonl")
}

/// Hex SHA-256 of `bytes`.
pub(crate) fn hash_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_nested_secret_keys() {
        let mut v = json!({
            "spec": {"Token": "abc", "users": [{"user": {"client-key-data": "K", "client_certificate_data": "C"}}]},
            "Authorization": "Bearer x",
            "db_password": "p",
            "secretName": "keep-this-name",
            "replicas": 3
        });
        redact(&mut v);
        assert_eq!(v["spec"]["Token"], REDACTED);
        assert_eq!(v["spec"]["users"][0]["user"]["client-key-data"], REDACTED);
        assert_eq!(
            v["spec"]["users"][0]["user"]["client_certificate_data"],
            REDACTED
        );
        assert_eq!(v["Authorization"], REDACTED);
        assert_eq!(v["db_password"], REDACTED);
        assert_eq!(v["secretName"], "keep-this-name");
        assert_eq!(v["replicas"], 3);
    }

    #[test]
    fn genesis_hash_is_fixed() {
        assert_eq!(hash_hex(GENESIS.as_bytes()).len(), 64);
    }

    #[test]
    fn default_path_honours_xdg_state_home() {
        let p = default_path();
        assert!(p.ends_with("kockpit/audit.jsonl"), "{}", p.display());
    }

    #[test]
    fn entry_json_omits_false_drill_and_outcome_fields() {
        let e = Entry::intent(
            Operator::default(),
            Target::default(),
            "promote",
            json!(10),
            json!(25),
        );
        let s = serde_json::to_string(&e).unwrap_or_default();
        assert!(!s.contains("drill"));
        assert!(!s.contains("result"));
        assert!(s.contains("\"phase\":\"intent\""));
    }
}
