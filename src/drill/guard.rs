//! The automated rollback guard: Flagger-like checks of one app's new version, and after a
//! cancellable countdown the matching rollback (abort a canary, flip back, undo a rolling
//! update) through [`actions::plan`] and [`actions::execute`], audited as automatic.
//!
//! What is watched: a canary while its weight is above 0 (the canary version); blue/green for
//! `after_change` seconds after a flip (the newly active colour's version); a rolling
//! Deployment for `after_change` seconds after its revision changed, or while it is rolling
//! out (the new template's version). A check is one instant reading of that version over the
//! rate window; `checks` failed checks in a row are a breach. No traffic is neither a pass nor
//! a failure: it leaves the count as it is.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

use crate::audit::{AuditLog, Entry, Operator, Phase, Target};
use crate::cluster::actions::{
    self, ExecuteOptions, Operation, PlanOptions, ReleaseKind, Res, Router, RouterKind, Verb,
};
use crate::config::file::Thresholds;

use super::probe::{Health, Probe, judge};
use super::{DrillError, image_tag, secs_between, state};

/// Consecutive failed checks, Flagger's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checker {
    pub needed: u32,
    pub failed: u32,
}

impl Checker {
    pub fn new(needed: u32) -> Checker {
        Checker {
            needed: needed.max(1),
            failed: 0,
        }
    }

    /// Count one check; true once `needed` failed in a row. A healthy check resets the count;
    /// no traffic leaves it as it is.
    pub fn observe(&mut self, h: &Health) -> bool {
        match h {
            Health::Healthy => self.failed = 0,
            Health::Breach(_) => self.failed += 1,
            Health::NoTraffic => {}
        }
        self.failed >= self.needed
    }

    pub fn reset(&mut self) {
        self.failed = 0;
    }
}

/// The guard's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub thresholds: Thresholds,
    /// Seconds between checks.
    pub interval: f64,
    /// Failed checks in a row that make a breach.
    pub checks: u32,
    /// Seconds of countdown before the rollback.
    pub countdown: f64,
    /// Seconds after a flip or a rolling update during which the new version is watched.
    pub after_change: f64,
}

/// What the guard watches now.
#[derive(Debug, Clone, PartialEq)]
pub enum Watched {
    /// Nothing to guard, and why.
    Idle(String),
    /// This version (the metrics' `version` label), and what it is.
    Version { version: String, what: String },
}

/// How a guard run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// It rolled back: the change made.
    RolledBack(String),
    /// `--duration` passed.
    Elapsed,
    /// Ctrl-C or SIGTERM outside a countdown.
    Stopped,
}

/// One guarded app.
pub struct Guard {
    pub client: Client,
    pub environment: String,
    pub context: String,
    pub namespace: String,
    pub app: String,
    pub router: Option<RouterKind>,
    pub steps: Vec<u32>,
    pub probe: Probe,
    pub settings: Settings,
    pub audit_log: PathBuf,
    pub operator: Operator,
    /// GitOps: roll back by a commit to the app's manifests (`[apps.NAME.gitops.ENV]`)
    /// instead of a patch the controller would revert.
    pub gitops: Option<crate::config::file::GitopsConfig>,
    /// Last blue/green colour or rolling revision seen, and when it changed.
    seen: Option<String>,
    changed_at: Option<Timestamp>,
    /// Failed checks in a row.
    checker: Checker,
    /// The last idle reason reported (reported again only when it changes).
    last_idle: String,
    /// After a cancelled countdown: no rollback of this version until it is healthy again.
    spared: Option<String>,
}

/// A breach: `checks` failed checks in a row of `version`; the countdown comes next.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    /// The version (metrics `version` label) that failed.
    pub version: String,
    /// What is watched (e.g. `canary v2 at 10 %`).
    pub what: String,
    /// The failed check (e.g. `error ratio 4.10 % > 1.00 %`).
    pub failure: String,
    /// The whole reason, for the audit log and the rollback.
    pub why: String,
}

/// The version label the metrics carry: the whole digest of a digest reference (not the
/// shortened one the cockpit shows, [`crate::cluster::actions::template_tag`]).
fn deployment_tag(d: &Value) -> Option<String> {
    d.pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .map(|i| image_tag(i).to_string())
}

impl Guard {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        environment: String,
        context: String,
        namespace: String,
        app: String,
        router: Option<RouterKind>,
        steps: Vec<u32>,
        probe: Probe,
        settings: Settings,
        audit_log: PathBuf,
        operator: Operator,
    ) -> Guard {
        Guard {
            client,
            environment,
            context,
            namespace,
            app,
            router,
            steps,
            probe,
            audit_log,
            operator,
            gitops: None,
            seen: None,
            changed_at: None,
            checker: Checker::new(settings.checks),
            last_idle: String::new(),
            spared: None,
            settings,
        }
    }

    fn plan_opts(&self) -> PlanOptions {
        PlanOptions {
            steps: self.steps.clone(),
            router: self.router,
            ..PlanOptions::default()
        }
    }

    /// The last successful flip of `object` in the audit log, if any.
    fn last_flip(&self, object: &str) -> Option<Timestamp> {
        let text = std::fs::read_to_string(&self.audit_log).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
            .filter(|e| {
                e.phase == Phase::Outcome
                    && e.namespace == self.namespace
                    && e.object == object
                    && matches!(e.action.as_str(), "flip" | "rollback")
                    && e.result.as_ref().and_then(|r| r.status) == Some(200)
            })
            .map(|e| e.time)
            .next_back()
    }

    /// Note a colour or revision; a change (or, at the first look, `recent`) arms the guard.
    fn note(&mut self, current: String, recent: Option<Timestamp>) {
        match &self.seen {
            None => self.changed_at = recent,
            Some(prev) if *prev != current => self.changed_at = Some(Timestamp::now()),
            Some(_) => {}
        }
        self.seen = Some(current);
    }

    fn armed(&self) -> bool {
        self.changed_at
            .is_some_and(|t| secs_between(t, Timestamp::now()) <= self.settings.after_change)
    }

    /// What to watch now, read fresh from the cluster.
    pub async fn watched(&mut self) -> Result<Watched, DrillError> {
        let ns = self.namespace.clone();
        let fail = |e: actions::ActionError| DrillError::Failed(e.to_string());
        let release = actions::detect(&self.client, &ns, &self.app, self.router)
            .await
            .map_err(fail)?;
        match &release.kind {
            ReleaseKind::Canary { router, canary, .. } => {
                let abort =
                    actions::plan(&self.client, &ns, &self.app, Verb::Abort, &self.plan_opts())
                        .await
                        .map_err(fail)?;
                if abort.noop {
                    return Ok(Watched::Idle("canary at weight 0: nothing to guard".into()));
                }
                let obj = match (router, canary) {
                    (Router::Argo { rollout }, _) => {
                        actions::get(&self.client, &ns, &Res::ROLLOUT, rollout).await
                    }
                    (_, Some(d)) => actions::get(&self.client, &ns, &Res::DEPLOYMENT, d).await,
                    (_, None) => return Ok(Watched::Idle("no canary Deployment".into())),
                }
                .map_err(fail)?;
                let version = deployment_tag(&obj).unwrap_or_default();
                let weight = match abort.before.get("canary_weight") {
                    Some(w) => format!(" at {w} %"),
                    None => String::new(),
                };
                Ok(Watched::Version {
                    what: format!("canary {version}{weight}"),
                    version,
                })
            }
            ReleaseKind::BlueGreen {
                service,
                active,
                colours,
                ..
            } => {
                let recent = self.last_flip(&format!("Service/{service}"));
                self.note(active.clone(), recent);
                if !self.armed() {
                    return Ok(Watched::Idle(format!(
                        "blue/green on {active}, no flip in the last {:.0} s",
                        self.settings.after_change
                    )));
                }
                let Some((_, dep)) = colours.iter().find(|(c, _)| c == active) else {
                    return Ok(Watched::Idle(format!("no Deployment for colour {active}")));
                };
                let d = actions::get(&self.client, &ns, &Res::DEPLOYMENT, dep)
                    .await
                    .map_err(fail)?;
                let version = deployment_tag(&d).unwrap_or_default();
                Ok(Watched::Version {
                    what: format!("{active} ({version}) after the flip"),
                    version,
                })
            }
            ReleaseKind::Rolling { deployment } => {
                let d = actions::get(&self.client, &ns, &Res::DEPLOYMENT, deployment)
                    .await
                    .map_err(fail)?;
                let revision = d
                    .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
                let rolling = n("/status/updatedReplicas") < n("/spec/replicas");
                self.note(revision.clone(), rolling.then(Timestamp::now));
                if !self.armed() {
                    return Ok(Watched::Idle(format!(
                        "revision {revision}, no rolling update in the last {:.0} s",
                        self.settings.after_change
                    )));
                }
                let version = deployment_tag(&d).unwrap_or_default();
                Ok(Watched::Version {
                    what: format!("revision {revision} ({version})"),
                    version,
                })
            }
        }
    }

    async fn audit_event(&self, action: &str, reason: String, after: Value) {
        let mut e = Entry::event(
            self.operator.clone(),
            Target {
                environment: self.environment.clone(),
                context: self.context.clone(),
                namespace: self.namespace.clone(),
                object: format!("Guard/{}", self.app),
            },
            action,
        );
        e.reason = Some(reason);
        e.app = Some(self.app.clone());
        e.after = after;
        e.drill = state::active_for(&self.environment, &self.namespace).is_some();
        let path = self.audit_log.clone();
        let _ = tokio::task::spawn_blocking(move || {
            AuditLog::open(&path).and_then(|mut l| l.append(e))
        })
        .await;
    }

    /// Roll back now (the countdown is over): `None` when there was nothing to roll back.
    pub async fn roll_back(&self, why: &str) -> Result<Option<String>, DrillError> {
        let plan = actions::plan(
            &self.client,
            &self.namespace,
            &self.app,
            Verb::Rollback,
            &PlanOptions {
                gitops: self.gitops.clone(),
                ..self.plan_opts()
            },
        )
        .await
        .map_err(|e| DrillError::Failed(format!("guard: planning the rollback: {e}")))?;
        if plan.noop {
            return Ok(None);
        }
        let op = Operation {
            environment: self.environment.clone(),
            context: self.context.clone(),
            operator: self.operator.clone(),
            reason: Some(format!("automatic rollback by the guard: {why}")),
            drill: state::active_for(&self.environment, &self.namespace).is_some(),
            automatic: true,
        };
        let done = actions::execute(
            &self.client,
            &plan,
            &op,
            &ExecuteOptions {
                dry_run: false,
                audit_log: self.audit_log.clone(),
            },
        )
        .await
        .map_err(|e| DrillError::Failed(format!("guard: rollback failed: {e}")))?;
        Ok(Some(done.applied.plan.changes.join("; ")))
    }

    /// The opening line of a guard run: what it checks, and how.
    pub fn describe(&self) -> String {
        format!(
            "guard: watching {} in {}/{}: error ratio ≤ {:.2} %, p99 ≤ {:.0} ms, {} failed checks of {} s in a row, then {} s to cancel",
            self.app,
            self.environment,
            self.namespace,
            self.settings.thresholds.max_error_ratio * 100.0,
            self.settings.thresholds.max_p99_seconds * 1000.0,
            self.settings.checks,
            self.settings.interval,
            self.settings.countdown
        )
    }

    /// One check: what is watched now, its sample judged against the thresholds. Progress
    /// goes to `out`; a breach (not of a version the operator spared) is returned, and the
    /// count of failed checks starts again.
    pub async fn check(&mut self, out: &mut (dyn FnMut(&str) + Send)) -> Option<Breach> {
        match self.watched().await {
            Err(e) => out(&format!("guard: {e}")),
            Ok(Watched::Idle(why)) => {
                self.checker.reset();
                if why != self.last_idle {
                    out(&format!("guard: {}: {why}", self.app));
                    self.last_idle = why;
                }
            }
            Ok(Watched::Version { version, what }) => {
                self.last_idle.clear();
                match self
                    .probe
                    .sample(&self.namespace, &self.app, Some(&version))
                    .await
                {
                    Err(e) => out(&format!("guard: {e}")),
                    Ok(sample) => {
                        let health = judge(&sample, &self.settings.thresholds);
                        let breached = self.checker.observe(&health);
                        if health == Health::Healthy && self.spared.as_deref() == Some(&version) {
                            self.spared = None;
                        }
                        out(&format!(
                            "guard: check {}: {what}: {sample}: {}",
                            self.app,
                            match &health {
                                Health::Healthy => "ok".to_string(),
                                Health::NoTraffic =>
                                    "no traffic (neither pass nor fail)".to_string(),
                                Health::Breach(w) => format!(
                                    "FAILED {w} ({}/{})",
                                    self.checker.failed, self.checker.needed
                                ),
                            }
                        ));
                        if let (true, Health::Breach(failure)) = (breached, &health)
                            && self.spared.as_deref() != Some(&version)
                        {
                            let why = format!(
                                "{what}: {failure} for {} checks in a row",
                                self.checker.failed
                            );
                            self.checker.reset();
                            return Some(Breach {
                                version,
                                what,
                                failure: failure.clone(),
                                why,
                            });
                        }
                    }
                }
            }
        }
        None
    }

    /// The operator cancelled the countdown of `breach`: audited; no rollback of its version
    /// until it is healthy again.
    pub async fn cancel(&mut self, breach: Breach, out: &mut (dyn FnMut(&str) + Send)) {
        out(&format!(
            "guard: rollback of {} CANCELLED by the operator; watching on (no rollback of {} until it is healthy again)",
            self.app, breach.version
        ));
        self.audit_event(
            "guard-cancelled",
            format!(
                "the operator cancelled the guard's rollback: {}",
                breach.why
            ),
            json!({"version": breach.version}),
        )
        .await;
        self.spared = Some(breach.version);
    }

    /// Watch until a rollback, `duration` seconds, or Ctrl-C / SIGTERM. During a countdown,
    /// Ctrl-C cancels the rollback and the guard watches on.
    pub async fn run(
        &mut self,
        duration: Option<f64>,
        out: &mut (dyn FnMut(&str) + Send),
    ) -> Result<End, DrillError> {
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| DrillError::Failed(format!("installing the Ctrl-C handler: {e}")))?;
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| DrillError::Failed(format!("installing the SIGTERM handler: {e}")))?;
        let started = Timestamp::now();
        out(&self.describe());
        loop {
            if let Some(d) = duration
                && secs_between(started, Timestamp::now()) >= d
            {
                out(&format!("guard: {d:.0} s passed without a rollback"));
                return Ok(End::Elapsed);
            }
            if let Some(breach) = self.check(out).await {
                out(&format!(
                    "guard: ROLLING BACK {} in {:.0} s ({}) — press Ctrl-C to cancel",
                    self.app, self.settings.countdown, breach.why
                ));
                let deadline =
                    tokio::time::Instant::now() + Duration::from_secs_f64(self.settings.countdown);
                let mut cancelled = false;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(left.min(Duration::from_secs(1))) => {
                            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                            if !left.is_zero() {
                                out(&format!("guard: rollback of {} in {:.0} s", self.app, left.as_secs_f64().ceil()));
                            }
                        }
                        _ = int.recv() => { cancelled = true; break; }
                    }
                }
                if cancelled {
                    self.cancel(breach, out).await;
                } else {
                    match self.roll_back(&breach.why).await? {
                        Some(change) => {
                            out(&format!("guard: rolled back {}: {change}", self.app));
                            return Ok(End::RolledBack(change));
                        }
                        None => out(&format!(
                            "guard: {} was already rolled back; nothing sent",
                            self.app
                        )),
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(self.settings.interval)) => {}
                _ = int.recv() => { out("guard: stopped"); return Ok(End::Stopped); }
                _ = term.recv() => { out("guard: stopped"); return Ok(End::Stopped); }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_failures_with_no_traffic_in_between() {
        let mut c = Checker::new(3);
        let bad = Health::Breach("x".into());
        assert!(!c.observe(&bad));
        assert!(!c.observe(&Health::NoTraffic));
        assert_eq!(c.failed, 1);
        assert!(!c.observe(&bad));
        assert!(!c.observe(&Health::Healthy));
        assert_eq!(c.failed, 0);
        assert!(!c.observe(&bad));
        assert!(!c.observe(&bad));
        assert!(c.observe(&bad));
        // Only no traffic: never a breach.
        let mut c = Checker::new(1);
        for _ in 0..10 {
            assert!(!c.observe(&Health::NoTraffic));
        }
    }
}
