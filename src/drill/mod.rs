//! Rollback drills and the automated rollback guard.
//!
//! A drill ([`run`]) injects a fault at a random moment (the sandbox's fault API, or on a real
//! staging namespace a rollout of a configured known-bad image), follows the audit log for the
//! operator's drill-marked actions, polls the metrics until they are back under the thresholds
//! for a hold time, then clears its faults and writes a report ([`report`]). While a drill
//! runs, a state file ([`state`]) tells every kockpit (CLI and cockpit) to mark its actions as
//! part of the drill.
//!
//! The guard ([`guard`]) watches one app's new version (a canary with weight, or the version
//! just switched to by a flip or a rolling update) with Flagger-like checks and, after a
//! cancellable countdown, rolls back through the same action code, audited as automatic.

pub mod cli;
pub mod guard;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod state;

/// What went wrong in a drill or the guard; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Bad usage or configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A precondition (exit 3): production not allowed, no fault API and no bad image, another
    /// drill running.
    #[error("{0}")]
    Refused(String),
    /// The cluster, the sandbox or Prometheus failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// Not permitted: read-only (exit 4).
    #[error("{0}")]
    Denied(String),
    /// The audit log could not be written (exit 7).
    #[error("audit log: {0}")]
    Audit(String),
}

impl DrillError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DrillError::Usage(_) => crate::command::EXIT_USAGE,
            DrillError::Refused(_) => crate::command::EXIT_REFUSED,
            DrillError::Denied(_) => crate::command::EXIT_DENIED,
            DrillError::Failed(_) => crate::command::EXIT_FAILED,
            DrillError::Audit(_) => crate::command::EXIT_AUDIT,
        }
    }
}

/// The tag of an image reference (`registry/app:1.2.3` → `1.2.3`), as the sandbox's metrics
/// label versions.
pub fn image_tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once('@') {
        Some((_, digest)) => digest,
        None => last.split_once(':').map(|(_, t)| t).unwrap_or("latest"),
    }
}

/// Seconds from `a` to `b` (negative if `b` is earlier).
pub fn secs_between(a: jiff::Timestamp, b: jiff::Timestamp) -> f64 {
    (b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0
}
