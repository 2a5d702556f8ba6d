//! The drill state file (`$XDG_STATE_HOME/kockpit/drill.json`): which drill is running where,
//! so that actions taken meanwhile, from the CLI or the cockpit, carry the drill marker.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DrillError;

/// The drill in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillState {
    pub id: String,
    pub scenario: String,
    pub environment: String,
    pub namespace: String,
    pub app: String,
    /// The `kockpit drill run` process; a dead one means a stale file.
    pub pid: u32,
    pub started: jiff::Timestamp,
    /// Sandbox fault ids to clear at the end (or, after a crash, at the next drill's start).
    /// When the fault comes is deliberately not written here: nobody should be able to see it
    /// coming.
    #[serde(default)]
    pub faults: Vec<String>,
}

/// `$XDG_STATE_HOME/kockpit/drill.json` (next to the default audit log).
pub fn path() -> PathBuf {
    crate::audit::default_path().with_file_name("drill.json")
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The drill in `file`, if one is running (a file left by a dead process is ignored).
pub fn read(file: &Path) -> Option<DrillState> {
    read_any(file).filter(|st| alive(st.pid))
}

/// The state in `file`, whether its process is alive or not.
pub fn read_any(file: &Path) -> Option<DrillState> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text).ok()
}

/// The drill running in this environment (name and namespace), if any.
pub fn active_for(environment: &str, namespace: &str) -> Option<DrillState> {
    read(&path()).filter(|s| s.environment == environment && s.namespace == namespace)
}

/// Write atomically (temp file + rename).
pub fn write(file: &Path, st: &DrillState) -> Result<(), DrillError> {
    let fail =
        |e: std::io::Error| DrillError::Failed(format!("drill state {}: {e}", file.display()));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = file.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(st)
        .map_err(|e| DrillError::Failed(format!("drill state: {e}")))?;
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, file).map_err(fail)
}

pub fn remove(file: &Path) {
    let _ = std::fs::remove_file(file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_live_state_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("drill.json");
        let mut st = DrillState {
            id: "x".into(),
            scenario: "canary-error-spike".into(),
            environment: "staging".into(),
            namespace: "staging".into(),
            app: "checkout".into(),
            pid: std::process::id(),
            started: jiff::Timestamp::now(),
            faults: vec![],
        };
        write(&file, &st).expect("write");
        assert_eq!(read(&file).map(|s| s.id), Some("x".to_string()));
        // A pid that cannot exist: the file is stale.
        st.pid = u32::MAX - 1;
        write(&file, &st).expect("write");
        assert!(read(&file).is_none());
        remove(&file);
        assert!(read(&file).is_none());
    }
}
