//! Running one drill: set up, inject at a random moment, follow the audit log and the metrics
//! until recovery (or the timeout), clean up, report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::audit::{AuditLog, Entry, Operator, Phase, Target};
use crate::cluster::actions::{
    self, ExecuteOptions, Operation, PlanOptions, ReleaseKind, Res, RouterKind, Verb,
};
use crate::config::file::{EnvConfig, Thresholds};

use super::probe::{Health, Probe, judge};
use super::report::{ActionTaken, DrillReport, Outcome};
use super::scenario::{self, Kind, Scenario};
use super::state::{self, DrillState};
use super::{DrillError, image_tag, secs_between};

/// Everything one drill needs.
#[derive(Clone)]
pub struct DrillRun {
    pub scenario: &'static Scenario,
    pub env: EnvConfig,
    /// The context as shown (`(current)` when none).
    pub context: String,
    pub client: Client,
    pub operator: Operator,
    pub audit_log: PathBuf,
    /// Prometheus to judge recovery by (required except for a real-cluster crash loop).
    pub prometheus: Option<String>,
    pub seed: u64,
    /// The fault comes at a random moment within this many seconds.
    pub window: f64,
    /// Seconds the metrics must stay healthy.
    pub hold: f64,
    /// Seconds after the fault to give up.
    pub timeout: f64,
    /// Seconds between polls of the audit log and the metrics.
    pub poll: f64,
    /// PromQL rate window, seconds (of the server's clock).
    pub rate_window: u64,
    /// Slow burn: seconds (of the cluster's clock) per step.
    pub step: f64,
    pub thresholds: Thresholds,
    pub app: String,
    pub bad_image: Option<String>,
    pub allow_production: bool,
    pub router: Option<RouterKind>,
    pub canary_steps: Vec<u32>,
    pub state_file: PathBuf,
    pub report_dir: PathBuf,
}

/// A request to the sandbox's control API through the cluster client (same URL and auth).
async fn sandbox_call(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, kube::Error> {
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap_or_default())
        .unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(bytes)
        .map_err(kube::Error::HttpError)?;
    let text = client.request_text(req).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Whether the cluster is the kockpit sandbox (it answers `GET /sandbox/v1/clock`).
pub async fn is_sandbox(client: &Client) -> bool {
    sandbox_call(client, "GET", "/sandbox/v1/clock", None)
        .await
        .map(|v| v.get("now").is_some())
        .unwrap_or(false)
}

async fn add_fault(client: &Client, spec: Value) -> Result<String, DrillError> {
    let v = sandbox_call(client, "POST", "/sandbox/v1/faults", Some(spec.clone()))
        .await
        .map_err(|e| DrillError::Failed(format!("injecting fault {spec}: {e}")))?;
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| DrillError::Failed(format!("the sandbox returned no fault id: {v}")))
}

async fn clear_fault(client: &Client, id: &str) -> Result<(), String> {
    match sandbox_call(client, "DELETE", &format!("/sandbox/v1/faults/{id}"), None).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(format!("clearing fault {id}: {e}")),
    }
}

async fn audit(path: &Path, entry: Entry) -> Result<u64, DrillError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        AuditLog::open(&path)
            .and_then(|mut log| log.append(entry))
            .map(|w| w.seq)
            .map_err(|e| DrillError::Audit(e.to_string()))
    })
    .await
    .map_err(|e| DrillError::Audit(e.to_string()))?
}

/// Complete lines of the audit log after byte `offset`; advances `offset` past them.
fn new_entries(path: &Path, offset: &mut u64) -> Vec<Entry> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let start = (*offset as usize).min(bytes.len());
    let rest = &bytes[start..];
    let Some(last_nl) = rest.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    *offset += last_nl as u64 + 1;
    rest[..last_nl]
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Entry>(l).ok())
        .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A fresh drill id: 12 hex digits.
fn new_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// How a setup or injection changed the cluster, for the audit log and the report.
struct Injected {
    faults: Vec<String>,
    /// The rolling scenario: the Deployment and the bad image.
    bad_rollout: Option<(String, String)>,
}

impl DrillRun {
    fn target(&self) -> Target {
        Target {
            environment: self.env.name.clone(),
            context: self.context.clone(),
            namespace: self.env.namespace.clone(),
            object: format!("Drill/{}", self.scenario.name),
        }
    }

    fn event(&self, id: &str, action: &str, after: Value) -> Entry {
        let mut e = Entry::event(self.operator.clone(), self.target(), action);
        e.drill = true;
        e.reason = Some(format!("drill {id}: {}", self.scenario.title));
        e.after = after;
        e
    }

    fn plan_opts(&self) -> PlanOptions {
        PlanOptions {
            steps: self.canary_steps.clone(),
            router: self.router,
            ..PlanOptions::default()
        }
    }

    /// A change the drill itself makes (as a release pipeline would), audited as automatic
    /// with the drill marker.
    async fn drill_action(&self, id: &str, verb: Verb, why: &str) -> Result<(), DrillError> {
        let ns = &self.env.namespace;
        let plan = actions::plan(&self.client, ns, &self.app, verb, &self.plan_opts())
            .await
            .map_err(|e| DrillError::Refused(format!("drill setup: {verb} {}: {e}", self.app)))?;
        if plan.noop {
            return Ok(());
        }
        let op = Operation {
            environment: self.env.name.clone(),
            context: self.context.clone(),
            operator: self.operator.clone(),
            reason: Some(format!("drill {id} setup: {why}")),
            drill: true,
            automatic: true,
        };
        actions::execute(
            &self.client,
            &plan,
            &op,
            &ExecuteOptions {
                dry_run: false,
                audit_log: self.audit_log.clone(),
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| DrillError::Failed(format!("drill setup: {verb} {}: {e}", self.app)))
    }

    /// Checks before anything changes: production, the fault API, the scenario's app.
    async fn preflight(&self, sandbox: bool) -> Result<ReleaseKind, DrillError> {
        if self.env.production && !self.allow_production {
            return Err(DrillError::Refused(format!(
                "{} is production: drills there are refused unless the config sets [drill] allow_production = true",
                self.env.name
            )));
        }
        if !sandbox {
            if self.scenario.kind != Kind::RollingCrashLoop {
                return Err(DrillError::Refused(format!(
                    "{} needs the sandbox's fault API, and {} is a real cluster; there, run rolling-crashloop with a known-bad image ([drill] bad_image in the config)",
                    self.scenario.name, self.env.name
                )));
            }
            if self.bad_image.is_none() {
                return Err(DrillError::Refused(format!(
                    "{} is a real cluster: a drill there rolls out a known-bad image; set [drill] bad_image = \"registry/app:broken\" in the config (or pass --bad-image)",
                    self.env.name
                )));
            }
        }
        if self.prometheus.is_none() && (sandbox || self.scenario.kind != Kind::RollingCrashLoop) {
            return Err(DrillError::Usage(format!(
                "no Prometheus for {}: pass --prometheus URL or set prometheus for the environment in the config (recovery is judged by the metrics)",
                self.env.name
            )));
        }
        let release = actions::detect(&self.client, &self.env.namespace, &self.app, self.router)
            .await
            .map_err(|e| DrillError::Refused(format!("drill {}: {e}", self.scenario.name)))?;
        let fits = matches!(
            (&release.kind, self.scenario.kind),
            (
                ReleaseKind::Canary { .. },
                Kind::CanaryErrors | Kind::CanaryLatency | Kind::SlowBurn
            ) | (ReleaseKind::BlueGreen { .. }, Kind::BlueGreenReadiness)
                | (ReleaseKind::Rolling { .. }, Kind::RollingCrashLoop)
        );
        if !fits {
            return Err(DrillError::Usage(format!(
                "{} needs {}; {} is {}",
                self.scenario.name,
                match self.scenario.kind {
                    Kind::BlueGreenReadiness => "a blue/green app",
                    Kind::RollingCrashLoop => "a rolling Deployment",
                    _ => "a canary",
                },
                self.app,
                release.describe()
            )));
        }
        Ok(release.kind)
    }

    /// Break things. Returns the fault ids and what was rolled out.
    async fn inject(
        &self,
        id: &str,
        sandbox: bool,
        release: &ReleaseKind,
    ) -> Result<Injected, DrillError> {
        let ns = self.env.namespace.clone();
        let app = self.app.clone();
        let fault = |kind: &str, version: &str, value: Option<f64>| {
            let mut f = json!({"namespace": ns, "app": app, "version": version, "kind": kind});
            if let Some(v) = value {
                f["value"] = json!(v);
            }
            f
        };
        let mut faults = Vec::new();
        match self.scenario.kind {
            Kind::CanaryErrors => faults.push(
                add_fault(
                    &self.client,
                    fault("errorRatio", "canary", Some(scenario::SPIKE_ERROR_RATIO)),
                )
                .await?,
            ),
            Kind::CanaryLatency => faults.push(
                add_fault(
                    &self.client,
                    fault("latency", "canary", Some(scenario::ADDED_LATENCY_MS)),
                )
                .await?,
            ),
            Kind::SlowBurn => {
                let n = scenario::BURN_STEPS.len();
                for (i, r) in scenario::BURN_STEPS.iter().enumerate() {
                    let mut f = fault("errorRatio", "canary", Some(*r));
                    f["delaySeconds"] = json!(i as f64 * self.step);
                    if i + 1 < n {
                        f["durationSeconds"] = json!(self.step);
                    }
                    faults.push(add_fault(&self.client, f).await?);
                }
            }
            Kind::BlueGreenReadiness => {
                let ReleaseKind::BlueGreen {
                    active, colours, ..
                } = release
                else {
                    return Err(DrillError::Failed("not blue/green".into()));
                };
                let Some((idle, _)) = colours.iter().find(|(c, _)| c != active) else {
                    return Err(DrillError::Refused(format!(
                        "{}: no idle colour to switch to",
                        self.app
                    )));
                };
                self.drill_action(
                    id,
                    Verb::Flip,
                    &format!(
                        "the release pipeline switches {} from {active} to {idle}",
                        self.app
                    ),
                )
                .await?;
                faults.push(add_fault(&self.client, fault("readinessFailure", idle, None)).await?);
            }
            Kind::RollingCrashLoop => {
                let ReleaseKind::Rolling { deployment } = release else {
                    return Err(DrillError::Failed("not a rolling Deployment".into()));
                };
                let d = Res::DEPLOYMENT
                    .api(&self.client, &ns)
                    .get(deployment)
                    .await
                    .map_err(|e| DrillError::Failed(format!("Deployment/{deployment}: {e}")))?;
                let mut d = serde_json::to_value(d)
                    .map_err(|e| DrillError::Failed(format!("Deployment/{deployment}: {e}")))?;
                let before = d
                    .pointer("/spec/template/spec/containers/0/image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let bad = match (&self.bad_image, sandbox) {
                    (Some(b), _) => b.clone(),
                    (None, _) => {
                        let repo = before
                            .rsplit_once(':')
                            .filter(|(_, t)| !t.contains('/'))
                            .map(|(r, _)| r)
                            .unwrap_or(&before);
                        format!("{repo}:{}", scenario::CRASH_TAG)
                    }
                };
                if sandbox {
                    faults.push(
                        add_fault(&self.client, fault("crashLoop", image_tag(&bad), None)).await?,
                    );
                }
                let Some(containers) = d.pointer_mut("/spec/template/spec/containers") else {
                    return Err(DrillError::Failed(format!(
                        "Deployment/{deployment} has no containers"
                    )));
                };
                if let Some(c0) = containers.get_mut(0) {
                    c0["image"] = json!(bad);
                }
                let patch = json!({
                    "metadata": {"annotations": {"kubernetes.io/change-cause": format!("kockpit drill {id}: set image {bad}")}},
                    "spec": {"template": {"spec": {"containers": containers.clone()}}}
                });
                audit(&self.audit_log, {
                    let mut e = self.event(id, "drill-inject", json!({"image": bad}));
                    e.object = format!("Deployment/{deployment}");
                    e.before = json!({"image": before});
                    e.automatic = true;
                    e
                })
                .await?;
                Res::DEPLOYMENT
                    .api(&self.client, &ns)
                    .patch(
                        deployment,
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await
                    .map_err(|e| {
                        DrillError::Failed(format!("set image on Deployment/{deployment}: {e}"))
                    })?;
                return Ok(Injected {
                    faults,
                    bad_rollout: Some((deployment.clone(), bad)),
                });
            }
        }
        Ok(Injected {
            faults,
            bad_rollout: None,
        })
    }

    /// The rolling scenario's extra condition: off the bad image, every replica updated and
    /// Ready, no old pods left.
    async fn rollout_recovered(&self, deployment: &str, bad: &str) -> bool {
        let Ok(d) = actions::get(
            &self.client,
            &self.env.namespace,
            &Res::DEPLOYMENT,
            deployment,
        )
        .await
        else {
            return false;
        };
        let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let image = d
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let want = n("/spec/replicas");
        image != bad
            && n("/status/observedGeneration") >= n("/metadata/generation")
            && n("/status/updatedReplicas") == want
            && n("/status/readyReplicas") == want
            && n("/status/replicas") == want
    }

    /// Run the drill to its end and write the report.
    pub async fn run(self, progress: &mut dyn FnMut(&str)) -> Result<DrillReport, DrillError> {
        let sandbox = is_sandbox(&self.client).await;
        let release = self.preflight(sandbox).await?;
        if let Some(running) = state::read(&self.state_file) {
            return Err(DrillError::Refused(format!(
                "drill {} ({}) is already running in {} (pid {}); one drill at a time",
                running.id, running.scenario, running.environment, running.pid
            )));
        }
        // A drill that died left faults behind: clear them before starting.
        if let Some(stale) = state::read_any(&self.state_file) {
            for f in &stale.faults {
                let _ = clear_fault(&self.client, f).await;
            }
            state::remove(&self.state_file);
        }
        let probe = match &self.prometheus {
            Some(url) => Some(Probe::new(url, self.rate_window)?),
            None => None,
        };
        let id = new_id();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(self.seed);
        let delay = if self.window > 0.0 {
            rng.random_range(0.0..=self.window)
        } else {
            0.0
        };
        let started = Timestamp::now();
        let mut st = DrillState {
            id: id.clone(),
            scenario: self.scenario.name.to_string(),
            environment: self.env.name.clone(),
            namespace: self.env.namespace.clone(),
            app: self.app.clone(),
            pid: std::process::id(),
            started,
            faults: Vec::new(),
        };
        state::write(&self.state_file, &st)?;
        let mut offset = file_len(&self.audit_log);
        let start_event = self.event(
            &id,
            "drill-start",
            json!({"scenario": self.scenario.name, "app": self.app, "seed": self.seed, "window_seconds": self.window, "hold_seconds": self.hold}),
        );
        if let Err(e) = audit(&self.audit_log, start_event).await {
            state::remove(&self.state_file);
            return Err(e);
        }
        progress(&format!(
            "drill {id}: {} on {} in {}/{} — the fault comes at a random moment within {:.0} s; act as you would on call (right actions are judged at the end)",
            self.scenario.title, self.app, self.env.name, self.env.namespace, self.window
        ));

        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut abandoned = false;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(delay)) => {}
            _ = &mut ctrl_c => abandoned = true,
        }
        let mut fault_at = None;
        let mut injected = Injected {
            faults: Vec::new(),
            bad_rollout: None,
        };
        let mut result: Result<(), DrillError> = Ok(());
        if !abandoned {
            match self.inject(&id, sandbox, &release).await {
                Ok(i) => {
                    injected = i;
                    let at = Timestamp::now();
                    fault_at = Some(at);
                    st.faults = injected.faults.clone();
                    if let Err(e) = state::write(&self.state_file, &st) {
                        result = Err(e);
                    } else if let Err(e) = audit(
                        &self.audit_log,
                        self.event(
                            &id,
                            "drill-fault",
                            json!({"injects": self.scenario.injects, "faults": injected.faults, "image": injected.bad_rollout.as_ref().map(|b| &b.1)}),
                        ),
                    )
                    .await
                    {
                        result = Err(e);
                    }
                }
                Err(e) => result = Err(e),
            }
        }

        let mut actions_taken: Vec<ActionTaken> = Vec::new();
        let mut recovered_at: Option<Timestamp> = None;
        let mut outcome = Outcome::Abandoned;
        if let (Some(fault_at), Ok(())) = (fault_at, &result) {
            let deadline = fault_at.as_millisecond() + (self.timeout * 1000.0) as i64;
            let mut healthy_since: Option<Timestamp> = None;
            outcome = Outcome::NotRecovered;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(self.poll)) => {}
                    _ = &mut ctrl_c => { outcome = Outcome::Abandoned; break; }
                }
                for e in new_entries(&self.audit_log, &mut offset) {
                    if let Some(a) = self.action_of(&e, fault_at) {
                        actions_taken.push(a);
                    }
                }
                let now = Timestamp::now();
                let acted = actions_taken.iter().any(|a| a.ok && a.time >= fault_at);
                let healthy = acted && self.healthy(probe.as_ref(), &injected).await;
                if healthy {
                    let since = *healthy_since.get_or_insert(now);
                    if secs_between(since, now) >= self.hold {
                        recovered_at = Some(since);
                        outcome = Outcome::Recovered;
                        break;
                    }
                } else {
                    healthy_since = None;
                }
                if now.as_millisecond() > deadline {
                    break;
                }
            }
        }

        // Clean up whatever happened: faults cleared, state removed, end recorded.
        let mut cleanup_errors = Vec::new();
        for f in &injected.faults {
            if let Err(e) = clear_fault(&self.client, f).await {
                cleanup_errors.push(e);
            }
        }
        state::remove(&self.state_file);
        let report = self.report(
            &id,
            sandbox,
            started,
            fault_at,
            recovered_at,
            actions_taken,
            outcome,
        );
        audit(
            &self.audit_log,
            self.event(
                &id,
                "drill-end",
                json!({
                    "outcome": report.outcome,
                    "time_to_detect_seconds": report.time_to_detect_seconds,
                    "time_to_mitigate_seconds": report.time_to_mitigate_seconds,
                    "time_to_recover_seconds": report.time_to_recover_seconds,
                    "right_action": report.right_action,
                    "faults_cleared": injected.faults.len(),
                }),
            ),
        )
        .await?;
        for e in cleanup_errors {
            progress(&format!("warning: {e}"));
        }
        result?;
        Ok(report)
    }

    /// An operator's (or the guard's) action during the drill, from one audit line.
    fn action_of(&self, e: &Entry, fault_at: Timestamp) -> Option<ActionTaken> {
        let setup = e.automatic
            && e.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("drill ") && r.contains(" setup: "));
        if !e.drill
            || e.phase != Phase::Outcome
            || e.environment != self.env.name
            || e.namespace != self.env.namespace
            || e.action.starts_with("drill")
            || setup
        {
            return None;
        }
        let result = e.result.as_ref();
        let ok = result.and_then(|r| r.status) == Some(200);
        Some(ActionTaken {
            time: e.time,
            after_fault_seconds: secs_between(fault_at, e.time),
            action: e.action.clone(),
            object: e.object.clone(),
            operator: match &e.operator.ssh_client {
                Some(ip) => format!("{}@{ip}", e.operator.os_user),
                None => e.operator.os_user.clone(),
            },
            result: result.map(|r| r.message.clone()).unwrap_or_default(),
            ok,
            automatic: e.automatic,
            right: self.scenario.is_right(&e.action),
        })
    }

    async fn healthy(&self, probe: Option<&Probe>, injected: &Injected) -> bool {
        if let Some((dep, bad)) = &injected.bad_rollout
            && !self.rollout_recovered(dep, bad).await
        {
            return false;
        }
        match probe {
            Some(p) => match p.sample(&self.env.namespace, &self.app, None).await {
                Ok(s) => judge(&s, &self.thresholds) == Health::Healthy,
                Err(_) => false,
            },
            None => true,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        id: &str,
        sandbox: bool,
        started: Timestamp,
        fault_at: Option<Timestamp>,
        recovered_at: Option<Timestamp>,
        actions: Vec<ActionTaken>,
        outcome: Outcome,
    ) -> DrillReport {
        let after = |t: Option<Timestamp>| match (fault_at, t) {
            (Some(f), Some(t)) => Some(secs_between(f, t)),
            _ => None,
        };
        let first = fault_at.and_then(|f| actions.iter().find(|a| a.time >= f));
        let mitigation = recovered_at.and_then(|r| {
            actions
                .iter()
                .rfind(|a| a.ok && a.time <= r && fault_at.is_some_and(|f| a.time >= f))
        });
        let right_action = match (mitigation, first) {
            (Some(m), _) => Some(m.right),
            (None, Some(f)) => Some(f.right),
            (None, None) => None,
        };
        DrillReport {
            id: id.to_string(),
            scenario: self.scenario.name.to_string(),
            title: self.scenario.title.to_string(),
            environment: self.env.name.clone(),
            namespace: self.env.namespace.clone(),
            app: self.app.clone(),
            sandbox,
            seed: self.seed,
            injects: self.scenario.injects.to_string(),
            recovered_means: self.scenario.recovered.to_string(),
            right_actions: self
                .scenario
                .right_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            started,
            fault_injected_at: fault_at,
            first_action_at: first.map(|a| a.time),
            mitigated_at: mitigation.map(|a| a.time),
            recovered_at,
            ended: Timestamp::now(),
            time_to_detect_seconds: after(first.map(|a| a.time)),
            time_to_mitigate_seconds: after(mitigation.map(|a| a.time)),
            time_to_recover_seconds: after(recovered_at),
            first_action_right: first.map(|a| a.right),
            mitigation_action: mitigation.map(|a| a.action.clone()),
            right_action,
            actions,
            outcome,
            hold_seconds: self.hold,
            max_error_ratio: self.thresholds.max_error_ratio,
            max_p99_seconds: self.thresholds.max_p99_seconds,
        }
    }
}
