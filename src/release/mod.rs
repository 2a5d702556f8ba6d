//! Release sessions: a tracked release of one app in one environment, from `open` to
//! `conclude` (or `abandon`), with `shelve`/`resume` while it is blocked.
//!
//! The audit log is the only record: every transition is an audit entry (`release-open`,
//! `release-shelve`, `release-resume`, `release-conclude`, `release-abandon`, object
//! `Release/APP`), so the history is tamper-evident like every action, and the cockpit and the
//! command line see the same releases. [`Ledger::load`] rebuilds them from the log.
//!
//! While a release is open its exit checklist ([`checklist`]) is evaluated live. `conclude` is
//! allowed only when every item passes, or with a typed override that is written to the log
//! with the failing items.

pub mod checklist;
pub mod cli;
pub mod live;
pub mod smoke;

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::audit::{self, AuditLog, Entry, Operator, Phase, Target};
use checklist::Checklist;

/// Audit actions of the transitions.
pub const OPEN: &str = "release-open";
pub const SHELVE: &str = "release-shelve";
pub const RESUME: &str = "release-resume";
pub const CONCLUDE: &str = "release-conclude";
pub const ABANDON: &str = "release-abandon";

/// What went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReleaseError {
    /// Not allowed in the release's state (or the checklist is not green); nothing written.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("audit log: {0}; nothing was recorded")]
    Audit(String),
    #[error("{0}")]
    Failed(String),
}

impl ReleaseError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ReleaseError::Refused(_) => crate::command::EXIT_REFUSED,
            ReleaseError::Usage(_) => crate::command::EXIT_USAGE,
            ReleaseError::Audit(_) => crate::command::EXIT_AUDIT,
            ReleaseError::Failed(_) => crate::command::EXIT_FAILED,
        }
    }
}

/// Where a release stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Shelved,
    Concluded,
    Abandoned,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Shelved => "shelved",
            State::Concluded => "concluded",
            State::Abandoned => "abandoned",
        }
    }

    /// Open or shelved: not over yet.
    pub fn active(self) -> bool {
        matches!(self, State::Open | State::Shelved)
    }
}

/// A transition by name, without its data (what the menu and the command line ask for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Open,
    Shelve,
    Resume,
    Conclude,
    Abandon,
}

impl StepKind {
    pub fn verb(self) -> &'static str {
        match self {
            StepKind::Open => "open",
            StepKind::Shelve => "shelve",
            StepKind::Resume => "resume",
            StepKind::Conclude => "conclude",
            StepKind::Abandon => "abandon",
        }
    }
}

/// A transition asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Open {
        version: String,
    },
    Shelve,
    Resume,
    /// With the checklist as evaluated now, and the override reason if it is not green.
    Conclude {
        checklist: Checklist,
        override_reason: Option<String>,
    },
    Abandon,
}

impl Step {
    pub fn action(&self) -> &'static str {
        match self {
            Step::Open { .. } => OPEN,
            Step::Shelve => SHELVE,
            Step::Resume => RESUME,
            Step::Conclude { .. } => CONCLUDE,
            Step::Abandon => ABANDON,
        }
    }

    pub fn verb(&self) -> &'static str {
        self.kind().verb()
    }

    pub fn kind(&self) -> StepKind {
        match self {
            Step::Open { .. } => StepKind::Open,
            Step::Shelve => StepKind::Shelve,
            Step::Resume => StepKind::Resume,
            Step::Conclude { .. } => StepKind::Conclude,
            Step::Abandon => StepKind::Abandon,
        }
    }
}

/// One transition as the log has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub seq: u64,
    pub time: Timestamp,
    /// `open`, `shelve`, `resume`, `conclude`, `abandon`.
    pub verb: String,
    pub operator: Operator,
    pub reason: Option<String>,
    /// Conclude: the checklist then; the override, if any.
    pub detail: Value,
}

/// One release.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub app: String,
    pub environment: String,
    pub context: String,
    pub namespace: String,
    /// 1, 2, 3… per app and environment.
    pub number: u64,
    pub version: String,
    pub state: State,
    pub transitions: Vec<Transition>,
    /// Concluded with a typed override (the checklist was not green).
    pub overridden: bool,
}

impl Release {
    /// `checkout@production #3`.
    pub fn id(&self) -> String {
        format!("{}@{} #{}", self.app, self.environment, self.number)
    }

    pub fn opened(&self) -> Timestamp {
        self.transitions
            .first()
            .map(|t| t.time)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The last open or resume: the observation window never starts before it.
    pub fn started(&self) -> Timestamp {
        self.transitions
            .iter()
            .rev()
            .find(|t| t.verb == "open" || t.verb == "resume")
            .map(|t| t.time)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// `release checkout@staging #1 (1.5.0) concluded with an override (audited)`.
    pub fn summary(&self) -> String {
        format!(
            "release {} ({}) {}{}",
            self.id(),
            self.version,
            self.state.name(),
            if self.overridden {
                " with an override (audited)"
            } else {
                ""
            }
        )
    }

    pub fn ended(&self) -> Option<Timestamp> {
        (!self.state.active())
            .then(|| self.transitions.last().map(|t| t.time))
            .flatten()
    }
}

/// Releases and recent actions, rebuilt from the audit log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// In the order they were opened.
    pub releases: Vec<Release>,
    /// The time of the last successful action per (environment, app): the observation
    /// window restarts there.
    pub last_action: BTreeMap<(String, String), Timestamp>,
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Ledger {
    /// Read the log (a missing log is an empty ledger). Does not verify the chain: run
    /// `kockpit audit verify` for that.
    pub fn load(path: &Path) -> Result<Ledger, ReleaseError> {
        if !path.exists() {
            return Ok(Ledger::default());
        }
        let entries =
            audit::show(path, None, None).map_err(|e| ReleaseError::Audit(e.to_string()))?;
        Ok(Ledger::from_entries(&entries))
    }

    pub fn from_entries(entries: &[Entry]) -> Ledger {
        let mut ledger = Ledger::default();
        for e in entries {
            let Some(app) = e.app.clone() else { continue };
            if e.action.starts_with("release-") && e.phase == Phase::Event {
                ledger.apply(e, app);
            } else if e.phase == Phase::Outcome
                && e.result.as_ref().is_some_and(|r| {
                    r.status.is_some_and(|s| (200..300).contains(&s))
                        && !r.message.starts_with("unchanged")
                })
            {
                let key = (e.environment.clone(), app);
                let t = ledger.last_action.entry(key).or_insert(e.time);
                *t = (*t).max(e.time);
            }
        }
        ledger
    }

    fn apply(&mut self, e: &Entry, app: String) {
        let verb = e.action.trim_start_matches("release-").to_string();
        let t = Transition {
            seq: e.seq,
            time: e.time,
            verb: verb.clone(),
            operator: e.operator.clone(),
            reason: e.reason.clone(),
            detail: e.after.clone(),
        };
        let number = e.after.get("release").and_then(Value::as_u64).unwrap_or(0);
        if verb == "open" {
            self.releases.push(Release {
                app,
                environment: e.environment.clone(),
                context: e.context.clone(),
                namespace: e.namespace.clone(),
                number,
                version: str_of(&e.after, "version"),
                state: State::Open,
                transitions: vec![t],
                overridden: false,
            });
            return;
        }
        let Some(r) = self.releases.iter_mut().rev().find(|r| {
            r.app == app && r.environment == e.environment && (number == 0 || r.number == number)
        }) else {
            return;
        };
        r.state = match verb.as_str() {
            "shelve" => State::Shelved,
            "resume" => State::Open,
            "conclude" => State::Concluded,
            "abandon" => State::Abandoned,
            _ => r.state,
        };
        if verb == "conclude" && e.after.get("override").is_some_and(|o| !o.is_null()) {
            r.overridden = true;
        }
        r.transitions.push(t);
    }

    /// The open or shelved release of `app` in `env`.
    pub fn active(&self, env: &str, app: &str) -> Option<&Release> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.environment == env && r.app == app && r.state.active())
    }

    /// Every open or shelved release.
    pub fn all_active(&self) -> impl Iterator<Item = &Release> {
        self.releases.iter().filter(|r| r.state.active())
    }

    /// The latest release of `app` in `env` (or the one numbered `number`).
    pub fn find(&self, env: &str, app: &str, number: Option<u64>) -> Option<&Release> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.environment == env && r.app == app && number.is_none_or(|n| r.number == n))
    }

    /// Where the observation window of `r` starts: its last open/resume, or the last
    /// successful action on the app since (whichever is later).
    pub fn last_change(&self, r: &Release) -> Timestamp {
        let started = r.started();
        self.last_action
            .get(&(r.environment.clone(), r.app.clone()))
            .map_or(started, |t| (*t).max(started))
    }

    fn next_number(&self, env: &str, app: &str) -> u64 {
        self.releases
            .iter()
            .filter(|r| r.environment == env && r.app == app)
            .map(|r| r.number)
            .max()
            .unwrap_or(0)
            + 1
    }
}

/// Who asks, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Who {
    pub environment: String,
    pub context: String,
    pub namespace: String,
    pub app: String,
    pub operator: Operator,
    pub reason: Option<String>,
    pub drill: bool,
}

/// Check `step` against the release's state in `ledger` and build its audit entry.
pub fn plan_step(ledger: &Ledger, who: &Who, step: &Step) -> Result<Entry, ReleaseError> {
    let env = &who.environment;
    let app = &who.app;
    let active = ledger.active(env, app);
    let refuse = |m: String| Err(ReleaseError::Refused(m));
    let (number, version, before) = match (step, active) {
        (Step::Open { version }, None) => {
            if version.trim().is_empty() {
                return Err(ReleaseError::Usage(
                    "a release needs a version (--version)".into(),
                ));
            }
            (ledger.next_number(env, app), version.clone(), Value::Null)
        }
        (Step::Open { .. }, Some(r)) => {
            return refuse(format!(
                "release {} ({}) is already {} since {}: conclude or abandon it first",
                r.id(),
                r.version,
                r.state.name(),
                r.transitions.last().map(|t| t.time).unwrap_or(r.opened())
            ));
        }
        (_, None) => {
            return refuse(format!(
                "{app} has no open release in {env}: open one with `kockpit release open {app} --env {env}`"
            ));
        }
        (Step::Shelve, Some(r)) if r.state != State::Open => {
            return refuse(format!("release {} is already shelved", r.id()));
        }
        (Step::Resume, Some(r)) if r.state != State::Shelved => {
            return refuse(format!("release {} is open, not shelved", r.id()));
        }
        (Step::Conclude { .. }, Some(r)) if r.state != State::Open => {
            return refuse(format!(
                "release {} is shelved: resume it before concluding",
                r.id()
            ));
        }
        (_, Some(r)) => (r.number, r.version.clone(), json!(r.state.name())),
    };
    let mut after = json!({"release": number, "version": version});
    let state = match step {
        Step::Open { .. } | Step::Resume => State::Open,
        Step::Shelve => State::Shelved,
        Step::Abandon => State::Abandoned,
        Step::Conclude {
            checklist,
            override_reason,
        } => {
            let failing = checklist.failing();
            let reason = override_reason
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty());
            if !failing.is_empty() && reason.is_none() {
                let list: Vec<String> = failing
                    .iter()
                    .map(|i| format!("{}: {}", i.name, i.detail))
                    .collect();
                return refuse(format!(
                    "the exit checklist is not green ({}); conclude with a typed override (--override \"why\") to go on anyway",
                    list.join("; ")
                ));
            }
            after["checklist"] = serde_json::to_value(checklist).unwrap_or(Value::Null);
            if !failing.is_empty() {
                after["override"] = json!(reason);
                after["failing"] =
                    json!(failing.iter().map(|i| i.name.clone()).collect::<Vec<_>>());
            }
            State::Concluded
        }
    };
    if matches!(step, Step::Shelve | Step::Abandon)
        && who.reason.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return Err(ReleaseError::Usage(format!(
            "{} needs a reason (--reason \"why\")",
            step.verb()
        )));
    }
    after["state"] = json!(state.name());
    let mut e = Entry::event(
        who.operator.clone(),
        Target {
            environment: env.clone(),
            context: who.context.clone(),
            namespace: who.namespace.clone(),
            object: format!("Release/{app}"),
        },
        step.action(),
    );
    e.app = Some(app.clone());
    e.before = before;
    e.after = after;
    e.reason = match step {
        Step::Conclude {
            override_reason: Some(o),
            ..
        } if who.reason.is_none() => Some(o.clone()),
        _ => who.reason.clone(),
    };
    e.drill = who.drill;
    Ok(e)
}

/// Record `step`: read the log, check the transition, append it (fsync'd). Returns the
/// release as it is now.
pub fn record(path: &Path, who: &Who, step: &Step) -> Result<Release, ReleaseError> {
    let ledger = Ledger::load(path)?;
    let entry = plan_step(&ledger, who, step)?;
    let written = AuditLog::open(path)
        .and_then(|mut log| log.append(entry.clone()))
        .map_err(|e| ReleaseError::Audit(e.to_string()))?;
    let mut entry = entry;
    entry.seq = written.seq;
    let mut ledger = ledger;
    if let Some(app) = entry.app.clone() {
        ledger.apply(&entry, app);
    }
    ledger
        .find(&who.environment, &who.app, None)
        .cloned()
        .ok_or_else(|| ReleaseError::Failed("the release vanished from the ledger".into()))
}

#[cfg(test)]
mod tests {
    use super::checklist::{Item, Status};
    use super::*;

    fn who(reason: Option<&str>) -> Who {
        Who {
            environment: "staging".into(),
            context: "ctx".into(),
            namespace: "shop".into(),
            app: "checkout".into(),
            operator: Operator {
                os_user: "priya".into(),
                ..Operator::default()
            },
            reason: reason.map(str::to_string),
            drill: false,
        }
    }

    fn list(items: &[(&str, Status)]) -> Checklist {
        Checklist {
            at: Timestamp::UNIX_EPOCH,
            items: items
                .iter()
                .map(|(n, s)| Item {
                    name: n.to_string(),
                    status: *s,
                    detail: "d".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_release_walks_its_states_and_refuses_the_wrong_steps() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("audit.jsonl");
        let open = Step::Open {
            version: "1.4.2".into(),
        };
        let r = record(&log, &who(None), &open).expect("open");
        assert_eq!((r.number, r.state), (1, State::Open));
        assert!(matches!(
            record(&log, &who(None), &open),
            Err(ReleaseError::Refused(m)) if m.contains("already open")
        ));
        assert!(matches!(
            record(&log, &who(None), &Step::Resume),
            Err(ReleaseError::Refused(_))
        ));
        assert!(matches!(
            record(&log, &who(None), &Step::Shelve),
            Err(ReleaseError::Usage(m)) if m.contains("reason")
        ));
        let r = record(
            &log,
            &who(Some("waiting for the DB migration")),
            &Step::Shelve,
        )
        .expect("shelve");
        assert_eq!(r.state, State::Shelved);
        let conclude = |o: Option<&str>, c: Checklist| Step::Conclude {
            checklist: c,
            override_reason: o.map(str::to_string),
        };
        let green = list(&[
            ("Pods Ready", Status::Pass),
            ("Smoke", Status::NotApplicable),
        ]);
        let red = list(&[
            ("Pods Ready", Status::Pass),
            ("Observation", Status::Pending),
        ]);
        assert!(matches!(
            record(&log, &who(None), &conclude(None, green.clone())),
            Err(ReleaseError::Refused(m)) if m.contains("resume")
        ));
        record(&log, &who(None), &Step::Resume).expect("resume");
        assert!(matches!(
            record(&log, &who(None), &conclude(None, red.clone())),
            Err(ReleaseError::Refused(m)) if m.contains("Observation") && m.contains("override")
        ));
        let r = record(
            &log,
            &who(None),
            &conclude(Some("hotfix, SRE lead ok"), red),
        )
        .expect("override");
        assert_eq!(r.state, State::Concluded);
        assert!(r.overridden);
        let last = r.transitions.last().expect("t");
        assert_eq!(last.reason.as_deref(), Some("hotfix, SRE lead ok"));
        assert_eq!(last.detail["failing"], json!(["Observation"]));
        // The next release is number 2, and the log verifies.
        let r = record(&log, &who(None), &open).expect("open 2");
        assert_eq!(r.number, 2);
        let r = record(&log, &who(None), &conclude(None, green)).expect("conclude");
        assert!(!r.overridden);
        let ledger = Ledger::load(&log).expect("ledger");
        assert_eq!(ledger.releases.len(), 2);
        assert_eq!(ledger.releases[0].transitions.len(), 4);
        let report = audit::verify(&log).expect("the chain verifies");
        assert_eq!(report.entries, 6);
    }
}
