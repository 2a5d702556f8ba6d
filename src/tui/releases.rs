//! The cockpit's release poller: per environment, the open releases from the audit log (read
//! again whenever the log changes, so a release opened with `kockpit release open` elsewhere
//! appears within two seconds), each open one's exit checklist every two seconds, and its smoke
//! checks every `[release] smoke_interval_seconds`. Recording a step from the menu goes
//! through the same code as `kockpit release …`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::app::msg::Msg;
use crate::app::release::StepKind;
use crate::audit::Operator;
use crate::release::checklist::Checklist;
use crate::release::live::Evaluator;
use crate::release::smoke::SmokeResult;
use crate::release::{self, Ledger, State, Step, Who};

/// How often an open release's checklist is evaluated.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Smoke results per (app, release number, last open/resume): a resumed release runs its
/// checks afresh rather than showing results from before it was shelved.
type RunKey = (String, u64, Timestamp);
type SmokeRuns = Arc<Mutex<BTreeMap<RunKey, (Instant, BTreeMap<String, SmokeResult>)>>>;

/// Watch `env`'s releases until cancelled. `wake` makes it look at once (after a step).
pub async fn run(
    env: usize,
    ev: Evaluator,
    audit_log: PathBuf,
    tx: UnboundedSender<Msg>,
    cancel: CancellationToken,
    wake: Arc<Notify>,
) {
    // The log's length and mtime when it was last read (None: no log), and whether it was.
    let mut seen: Option<(u64, Option<SystemTime>)> = None;
    let mut read_once = false;
    let mut ledger = Ledger::default();
    let smoke: SmokeRuns = Arc::default();
    let running: Arc<Mutex<std::collections::BTreeSet<RunKey>>> = Arc::default();
    let interval = Duration::from_secs_f64(ev.config.release.smoke_interval_seconds.max(1.0));
    loop {
        let meta = std::fs::metadata(&audit_log)
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        if meta != seen || !read_once {
            let path = audit_log.clone();
            if let Ok(Ok(l)) = tokio::task::spawn_blocking(move || Ledger::load(&path)).await {
                seen = meta;
                read_once = true;
                ledger = l;
                let active = ledger
                    .all_active()
                    .filter(|r| r.environment == ev.env.name)
                    .cloned()
                    .collect();
                let _ = tx.send(Msg::Releases { env, active });
            }
        }
        let open: Vec<_> = ledger
            .all_active()
            .filter(|r| r.environment == ev.env.name && r.state == State::Open)
            .cloned()
            .collect();
        for r in open {
            let key = (r.app.clone(), r.number, r.started());
            let due = smoke
                .lock()
                .map(|m| m.get(&key).is_none_or(|(t, _)| t.elapsed() >= interval))
                .unwrap_or(false);
            let idle = running.lock().map(|s| !s.contains(&key)).unwrap_or(false);
            if due && idle && !ev.config.smoke_for(&r.app, &ev.env.name).is_empty() {
                if let Ok(mut s) = running.lock() {
                    s.insert(key.clone());
                }
                let (ev2, r2, smoke2, running2, wake2) = (
                    ev.clone(),
                    r.clone(),
                    smoke.clone(),
                    running.clone(),
                    wake.clone(),
                );
                tokio::spawn(async move {
                    let results = ev2.run_smoke(&r2).await;
                    let key = (r2.app.clone(), r2.number, r2.started());
                    if let Ok(mut m) = smoke2.lock() {
                        m.insert(key.clone(), (Instant::now(), results));
                    }
                    if let Ok(mut s) = running2.lock() {
                        s.remove(&key);
                    }
                    wake2.notify_one();
                });
            }
            let results = smoke
                .lock()
                .ok()
                .and_then(|m| m.get(&key).map(|(_, r)| r.clone()))
                .unwrap_or_default();
            let checklist = ev
                .checklist(&r, ledger.last_change(&r), &results, Timestamp::now())
                .await;
            let _ = tx.send(Msg::Checklist {
                env,
                app: r.app.clone(),
                number: r.number,
                checklist,
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = wake.notified() => {}
        }
    }
}

/// What recording a step needs.
pub struct StepRequest {
    pub env: usize,
    pub environment: String,
    pub context: String,
    pub namespace: String,
    pub app: String,
    pub version: String,
    pub operator: Operator,
    pub drill: bool,
    pub step: StepKind,
    pub text: Option<String>,
    pub checklist: Option<Checklist>,
    pub audit_log: PathBuf,
}

/// Record a step from the menu (as `kockpit release …` would) and report it.
pub async fn record(req: StepRequest, tx: UnboundedSender<Msg>, wake: Option<Arc<Notify>>) {
    let (env, app) = (req.env, req.app.clone());
    let result = tokio::task::spawn_blocking(move || {
        let step = match req.step {
            StepKind::Open => Step::Open {
                version: req.version.clone(),
            },
            StepKind::Shelve => Step::Shelve,
            StepKind::Resume => Step::Resume,
            StepKind::Abandon => Step::Abandon,
            StepKind::Conclude => Step::Conclude {
                checklist: req.checklist.clone().unwrap_or(Checklist {
                    at: Timestamp::now(),
                    items: Vec::new(),
                }),
                override_reason: req.text.clone(),
            },
        };
        let who = Who {
            environment: req.environment.clone(),
            context: req.context.clone(),
            namespace: req.namespace.clone(),
            app: req.app.clone(),
            operator: req.operator.clone(),
            reason: match req.step {
                StepKind::Conclude => None,
                _ => req.text.clone(),
            },
            drill: req.drill,
        };
        release::record(&req.audit_log, &who, &step).map(|r| r.summary())
    })
    .await
    .map_err(|e| format!("release writer: {e}"))
    .and_then(|r| r.map_err(|e| e.to_string()));
    let _ = tx.send(Msg::ReleaseDone { env, app, result });
    if let Some(w) = wake {
        w.notify_one();
    }
}

/// After a change was pushed to Git: the controller's sync state and whether the cluster has
/// converged to the commit (every edited field live as committed), every two seconds until it
/// has (or for 15 minutes).
#[allow(clippy::too_many_arguments)]
pub async fn watch_sync(
    env: usize,
    client: kube::Client,
    namespace: String,
    app: String,
    owner: crate::gitops::sync::Owner,
    pushed: crate::gitops::change::Pushed,
    objects: Vec<crate::gitops::change::ObjectChange>,
    tx: UnboundedSender<Msg>,
) {
    use crate::app::state::GitSyncView;
    let commit = pushed.commits.last().cloned().unwrap_or_default();
    let started = Instant::now();
    loop {
        let state = crate::gitops::sync::state(&client, &owner).await;
        let applied = state.as_ref().is_ok_and(|s| s.applied(&commit));
        let converged = applied
            && crate::gitops::change::converged(&client, &namespace, &objects, &pushed.edits).await;
        let view = GitSyncView {
            commit: commit.clone(),
            remote_branch: pushed.remote_branch.clone(),
            controller: owner.describe(),
            state: match &state {
                Ok(s) => s.to_string(),
                Err(e) => e.clone(),
            },
            applied,
            converged,
            pushed_at: Timestamp::now(),
        };
        let _ = tx.send(Msg::GitSync {
            env,
            app: app.clone(),
            view,
        });
        if converged || started.elapsed() > Duration::from_secs(900) {
            return;
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}
