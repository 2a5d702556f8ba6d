//! Actions that change a cluster, shared by the cockpit and the command line.
//!
//! An action runs in two halves. [`plan`] reads the app's objects fresh from the cluster,
//! finds how it releases ([`detect`]: canary router, blue/green Service, rolling Deployment),
//! and works out the exact change: the human lines the confirmation shows, the before → after
//! that the audit log records, the permissions it needs, GitOps warnings, and the patches (each
//! carrying the `resourceVersion` it read). [`apply`] sends the patches. A 409 (someone changed
//! the object in between) re-plans on fresh state toward the same *goal* (an absolute target
//! such as "canary weight 25 %", never "one more step"): if the object is still as the
//! operator saw it the change is sent again; if it already is what was asked, nothing is sent;
//! otherwise the conflict is reported. So nothing is ever applied twice. (Only when the
//! conflict came from fields the action does not touch, such as a controller's status
//! updates, is a second conflict retried again; three attempts at most.)
//!
//! [`execute`] wraps [`apply`] with the audit log (intent made durable before the request,
//! outcome after) and a Kubernetes Event on the object.

mod access;
mod detect;
mod execute;
mod flip;
mod gitops;
mod mesh;
mod rollback;
mod weights;
mod workload;

use std::fmt;

use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::Value;

pub use access::{Permission, check_permissions, denied_reason, required};
pub use detect::{Release, ReleaseKind, Router, RouterKind, detect};
pub use execute::{ExecuteOptions, Executed, Operation, execute};
pub(crate) use flip::pod_ready;
pub use rollback::{Revision, history};

/// What the operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// Canary: the next weight step.
    Promote,
    /// Canary: all traffic to the new version.
    PromoteFull,
    /// Canary: weight back to 0.
    Abort,
    /// Blue/green: point the Service at the other colour.
    Flip,
    /// Back to the previous (or a chosen) revision; for a canary this is an abort, for
    /// blue/green a flip back.
    Rollback,
    Pause,
    Resume,
    Restart,
}

impl Verb {
    pub const ALL: [Verb; 8] = [
        Verb::Promote,
        Verb::PromoteFull,
        Verb::Abort,
        Verb::Flip,
        Verb::Rollback,
        Verb::Pause,
        Verb::Resume,
        Verb::Restart,
    ];

    /// The name used on the command line and in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Promote => "promote",
            Verb::PromoteFull => "promote-full",
            Verb::Abort => "abort",
            Verb::Flip => "flip",
            Verb::Rollback => "rollback",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Restart => "restart",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong. `Refused` is a precondition the operator can read and act on; `Api` is the
/// server's answer; `Conflict` a concurrent change that the retry could not reconcile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Refused(String),
    #[error("{object}: {message} (HTTP {code})")]
    Api {
        object: String,
        code: u16,
        message: String,
    },
    #[error("{object} was changed by someone else since it was read: {now}; nothing was sent")]
    Conflict { object: String, now: String },
    #[error("{object}: {message}")]
    Client { object: String, message: String },
    #[error("audit log: {0}; nothing was sent")]
    Audit(String),
}

impl ActionError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ActionError::Api { code, .. } => Some(*code),
            ActionError::Conflict { .. } => Some(409),
            _ => None,
        }
    }

    /// RBAC said no (403).
    pub fn is_denied(&self) -> bool {
        matches!(self, ActionError::Api { code: 403, .. })
    }
}

pub(crate) fn api_err(object: &str, e: kube::Error) -> ActionError {
    match e {
        kube::Error::Api(s) => ActionError::Api {
            object: object.to_string(),
            code: s.code,
            message: s.message,
        },
        other => ActionError::Client {
            object: object.to_string(),
            message: other.to_string(),
        },
    }
}

/// A resource type, as the actions address it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Res {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Res {
    pub const DEPLOYMENT: Res = Res::new("apps", "v1", "Deployment", "deployments");
    pub const REPLICASET: Res = Res::new("apps", "v1", "ReplicaSet", "replicasets");
    pub const POD: Res = Res::new("", "v1", "Pod", "pods");
    pub const SERVICE: Res = Res::new("", "v1", "Service", "services");
    pub const HTTPROUTE: Res =
        Res::new("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes");
    pub const INGRESS: Res = Res::new("networking.k8s.io", "v1", "Ingress", "ingresses");
    pub const ROLLOUT: Res = Res::new("argoproj.io", "v1alpha1", "Rollout", "rollouts");

    pub const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Res {
        Res {
            group,
            version,
            kind,
            plural,
        }
    }

    fn api_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, self.version, self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }

    pub(crate) fn api(&self, client: &Client, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), ns, &self.api_resource())
    }

    /// `plural.group` (or just `plural` for the core group), as RBAC names it.
    pub fn rbac_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Read one object as JSON.
pub(crate) async fn get(
    client: &Client,
    ns: &str,
    res: &Res,
    name: &str,
) -> Result<Value, ActionError> {
    let object = format!("{}/{name}", res.kind);
    let o = res
        .api(client, ns)
        .get(name)
        .await
        .map_err(|e| api_err(&object, e))?;
    serde_json::to_value(o).map_err(|e| ActionError::Client {
        object,
        message: e.to_string(),
    })
}

/// List objects as JSON; a resource the cluster does not serve (404: CRD not installed) is an
/// empty list.
pub(crate) async fn list(
    client: &Client,
    ns: &str,
    res: &Res,
    labels: Option<&str>,
) -> Result<Vec<Value>, ActionError> {
    let mut lp = ListParams::default();
    if let Some(l) = labels {
        lp = lp.labels(l);
    }
    match res.api(client, ns).list(&lp).await {
        Ok(l) => Ok(l
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(api_err(&res.rbac_name(), e)),
    }
}

pub(crate) fn name_of(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn rv_of(o: &Value) -> &str {
    o.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The image tag of a workload's (Deployment's, Rollout's) first container: its version as
/// the cockpit shows it ([`crate::app::derive::image_tag`]).
pub(crate) fn template_tag(o: &Value) -> Option<String> {
    str_at(o, "/spec/template/spec/containers/0/image")
        .map(|i| crate::app::derive::image_tag(i).to_string())
}

pub(crate) fn str_at<'a>(o: &'a Value, ptr: &str) -> Option<&'a str> {
    o.pointer(ptr).and_then(Value::as_str)
}

/// A patch body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// JSON merge patch (RFC 7386).
    Merge(Value),
    /// JSON patch (RFC 6902): an array of operations.
    Json(Value),
}

/// One request of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub res: Res,
    pub name: String,
    /// `status` for the Argo Rollouts verbs.
    pub subresource: Option<&'static str>,
    pub body: Body,
}

impl Write {
    /// A merge patch that also pins the `resourceVersion` read (optimistic concurrency).
    pub(crate) fn merge(res: Res, obj: &Value, mut body: Value) -> Write {
        body["metadata"]["resourceVersion"] = Value::String(rv_of(obj).to_string());
        Write {
            res,
            name: name_of(obj).to_string(),
            subresource: None,
            body: Body::Merge(body),
        }
    }

    pub fn object(&self) -> String {
        format!("{}/{}", self.res.kind, self.name)
    }

    /// The permission this write needs.
    pub fn permission(&self) -> Permission {
        Permission {
            verb: "patch",
            res: self.res.clone(),
            subresource: self.subresource,
            name: Some(self.name.clone()),
        }
    }

    async fn send(&self, client: &Client, ns: &str, dry_run: bool) -> Result<(), ActionError> {
        let api = self.res.api(client, ns);
        let pp = PatchParams {
            dry_run,
            ..PatchParams::default()
        };
        let object = self.object();
        let r = match (&self.body, self.subresource) {
            (Body::Merge(v), Some(sub)) => {
                api.patch_subresource(sub, &self.name, &pp, &Patch::Merge(v))
                    .await
            }
            (Body::Merge(v), None) => api.patch(&self.name, &pp, &Patch::Merge(v)).await,
            (Body::Json(ops), sub) => {
                let patch: json_patch::Patch =
                    serde_json::from_value(ops.clone()).map_err(|e| ActionError::Client {
                        object: object.clone(),
                        message: format!("building the JSON patch: {e}"),
                    })?;
                match sub {
                    Some(sub) => {
                        api.patch_subresource(sub, &self.name, &pp, &Patch::Json::<()>(patch))
                            .await
                    }
                    None => api.patch(&self.name, &pp, &Patch::Json::<()>(patch)).await,
                }
            }
        };
        r.map(|_| ()).map_err(|e| api_err(&object, e))
    }
}

/// The absolute target of an action: re-planning toward it on fresh state is safe.
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// Canary weight in percent through a router that takes weights.
    Weight { percent: u32 },
    /// Argo Rollouts: the plugin's verbs on the Rollout.
    Argo(ArgoVerb),
    /// Service selector `key` → `to`.
    Selector {
        service: String,
        key: String,
        to: String,
    },
    /// Deployment template of this revision (kubectl's undo).
    Revision { deployment: String, revision: i64 },
    /// `spec.paused` on a Deployment or Rollout.
    Paused {
        res: Res,
        name: String,
        paused: bool,
    },
    /// `kubectl.kubernetes.io/restartedAt` on the template.
    Restart { res: Res, name: String, at: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgoVerb {
    /// Past the current pause step (toward `to_step`).
    Promote {
        to_step: i64,
    },
    PromoteFull,
    Abort,
    /// Clear an abort (the plugin's `retry`).
    Retry,
}

/// A change worked out against the cluster, ready to confirm and apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub verb: Verb,
    pub app: String,
    pub namespace: String,
    /// The object the action is about (`Kind/name`): audit log, Kubernetes Event.
    pub object: String,
    /// Its uid and apiVersion, for the Event's involvedObject.
    pub object_uid: String,
    pub object_api_version: String,
    /// How the app releases, for the dialog ("canary via HTTPRoute/checkout").
    pub release: String,
    /// The exact change, one line each: `HTTPRoute/checkout weight checkout-canary: 10 → 25`.
    pub changes: Vec<String>,
    pub before: Value,
    pub after: Value,
    /// Things the operator should know before confirming (GitOps, rounding, header rules).
    pub warnings: Vec<String>,
    pub goal: Goal,
    pub writes: Vec<Write>,
    /// Nothing to send: the cluster already is as asked (`changes` says why).
    pub noop: bool,
    /// GitOps: the change goes to the manifests in Git (commit and push) instead of the
    /// cluster, whose controller then applies it.
    pub git: Option<Box<GitPlan>>,
}

/// A plan's route through Git.
#[derive(Debug, Clone, PartialEq)]
pub struct GitPlan {
    pub config: crate::config::file::GitopsConfig,
    /// The edits as the checkout's work tree is now (they are made again on the fresh
    /// checkout when confirmed).
    pub edits: Vec<crate::gitops::change::FieldEdit>,
    pub skipped: Vec<String>,
    /// The live objects and the objects as the action leaves them.
    pub objects: Vec<crate::gitops::change::ObjectChange>,
    /// `Flux Kustomization flux-system/apps`.
    pub controller: String,
    pub owner: Option<crate::gitops::sync::Owner>,
}

impl Plan {
    /// Every permission the plan needs (one per write).
    pub fn permissions(&self) -> Vec<Permission> {
        let mut out: Vec<Permission> = Vec::new();
        for w in &self.writes {
            let p = w.permission();
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// What else a plan needs besides the verb.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanOptions {
    /// Rollback to this revision (0 or none: the previous one).
    pub to_revision: Option<i64>,
    /// Canary steps in percent (strictly increasing, ending at 100).
    pub steps: Vec<u32>,
    /// Force a router kind instead of detecting one (from the config).
    pub router: Option<RouterKind>,
    /// The Deployment to pause/resume/restart when the app has several.
    pub deployment: Option<String>,
    /// Restart stamp (RFC 3339); now when absent.
    pub now: Option<String>,
    /// Where the app's manifests live in Git for this environment: promote, abort, flip and
    /// rollback of GitOps-managed objects are then committed there.
    pub gitops: Option<crate::config::file::GitopsConfig>,
}

/// Work out `verb` on `app` in `ns` against the cluster as it is now.
pub async fn plan(
    client: &Client,
    ns: &str,
    app: &str,
    verb: Verb,
    opts: &PlanOptions,
) -> Result<Plan, ActionError> {
    let release = detect(client, ns, app, opts.router).await?;
    let goal = goal_for(client, ns, &release, verb, opts).await?;
    let mut plan = plan_goal(client, ns, &release, verb, goal).await?;
    if let Some(cfg) = &opts.gitops {
        route_through_git(client, ns, &mut plan, cfg).await?;
    }
    Ok(plan)
}

/// The object as `body` leaves it (the patch applied locally).
fn patched(obj: &Value, body: &Body) -> Result<Value, ActionError> {
    let mut after = obj.clone();
    match body {
        Body::Merge(v) => json_patch::merge(&mut after, v),
        Body::Json(ops) => {
            let p: json_patch::Patch =
                serde_json::from_value(ops.clone()).map_err(|e| ActionError::Client {
                    object: String::new(),
                    message: format!("reading the JSON patch: {e}"),
                })?;
            json_patch::patch(&mut after, &p).map_err(|e| ActionError::Client {
                object: String::new(),
                message: format!("applying the JSON patch locally: {e}"),
            })?;
        }
    }
    Ok(after)
}

/// GitOps: when the objects a plan writes are managed by Argo CD or Flux and the app has a
/// GitOps repository for this environment, turn the plan into manifest edits (see
/// [`crate::gitops::change`]). Weights, selectors and rollbacks go to Git; Argo Rollouts'
/// verbs, pause, resume and restart stay cluster actions (their fields are not in Git).
async fn route_through_git(
    client: &Client,
    ns: &str,
    plan: &mut Plan,
    cfg: &crate::config::file::GitopsConfig,
) -> Result<(), ActionError> {
    use crate::gitops::change::{ObjectChange, edits_for};
    use crate::gitops::sync::Owner;
    let by_git = matches!(
        plan.goal,
        Goal::Weight { .. } | Goal::Selector { .. } | Goal::Revision { .. }
    );
    if plan.noop || !by_git || plan.writes.iter().any(|w| w.subresource.is_some()) {
        return Ok(());
    }
    let mut objects = Vec::new();
    let mut owner = None;
    for w in &plan.writes {
        let cur = get(client, ns, &w.res, &w.name).await?;
        owner = owner.or_else(|| Owner::of(&cur));
        let after = patched(&cur, &w.body).map_err(|e| match e {
            ActionError::Client { message, .. } => ActionError::Client {
                object: w.object(),
                message,
            },
            other => other,
        })?;
        objects.push(ObjectChange {
            res: w.res.clone(),
            name: w.name.clone(),
            before: cur,
            after,
        });
    }
    let Some(owner) = owner else {
        // Not managed by a GitOps controller: a cluster patch, as usual.
        return Ok(());
    };
    let refuse = |m: String| ActionError::Refused(format!("GitOps: {m}"));
    // Fetch now, so a dirty, ahead or diverged checkout is refused before anything is
    // confirmed or audited, and the edits shown are those of the remote's latest manifests
    // (a checkout that is only behind is fast-forwarded, like `git pull --ff-only`).
    let (cfg2, objs) = (cfg.clone(), objects.clone());
    let (root, current_branch, edits, skipped) = tokio::task::spawn_blocking(move || {
        let mut checkout =
            crate::gitops::repo::Checkout::open(&cfg2.repo).map_err(|e| e.to_string())?;
        checkout
            .prepare(&cfg2.remote, cfg2.branch.as_deref())
            .map_err(|e| e.to_string())?;
        let root = checkout.workdir().to_path_buf();
        let (edits, _, skipped) = edits_for(&root, &cfg2.path, &objs).map_err(|e| e.to_string())?;
        Ok::<_, String>((root, checkout.branch().to_string(), edits, skipped))
    })
    .await
    .map_err(|e| refuse(format!("git worker: {e}")))?
    .map_err(refuse)?;
    if edits.is_empty() {
        return Err(refuse(format!(
            "the manifests in {} of {} already say this; {} has not applied them yet (nothing to commit)",
            cfg.path.display(),
            root.display(),
            owner.describe()
        )));
    }
    let branch = cfg.branch.clone().unwrap_or(current_branch);
    plan.warnings
        .retain(|w| !w.contains("a direct change will be reverted"));
    plan.warnings.push(format!(
        "GitOps: written to Git, not to the cluster — a commit on {}/{branch} in {}; {} applies it",
        cfg.remote,
        root.display(),
        owner.describe()
    ));
    for s in &skipped {
        plan.warnings
            .push(format!("not in the manifest, left to the cluster: {s}"));
    }
    for e in &edits {
        plan.changes.push(format!("Git {}", e.describe()));
    }
    plan.git = Some(Box::new(GitPlan {
        config: cfg.clone(),
        edits,
        skipped,
        objects,
        controller: owner.describe(),
        owner: Some(owner),
    }));
    Ok(())
}

/// Resolve a verb to an absolute goal against the current state.
async fn goal_for(
    client: &Client,
    ns: &str,
    release: &Release,
    verb: Verb,
    opts: &PlanOptions,
) -> Result<Goal, ActionError> {
    let app = &release.app;
    let wrong = |what: &str| {
        ActionError::Refused(format!(
            "{verb} is for {what}; {app} is {}",
            release.describe()
        ))
    };
    match (&release.kind, verb) {
        (ReleaseKind::Canary { router, .. }, Verb::Promote) => {
            weights::next_step_goal(client, ns, router, &opts.steps).await
        }
        (ReleaseKind::Canary { router, .. }, Verb::PromoteFull) => Ok(match router {
            Router::Argo { .. } => Goal::Argo(ArgoVerb::PromoteFull),
            _ => Goal::Weight { percent: 100 },
        }),
        (ReleaseKind::Canary { router, .. }, Verb::Abort | Verb::Rollback) => Ok(match router {
            Router::Argo { .. } => Goal::Argo(ArgoVerb::Abort),
            _ => Goal::Weight { percent: 0 },
        }),
        (ReleaseKind::BlueGreen { .. }, Verb::Flip | Verb::Rollback) => {
            flip::goal(client, ns, release).await
        }
        (ReleaseKind::Rolling { deployment }, Verb::Rollback) => Ok(Goal::Revision {
            deployment: deployment.clone(),
            revision: rollback::resolve(client, ns, deployment, opts.to_revision.unwrap_or(0))
                .await?,
        }),
        (_, Verb::Pause | Verb::Resume) => {
            let (res, name) = workload::target(release, verb, opts.deployment.as_deref())?;
            Ok(Goal::Paused {
                res,
                name,
                paused: verb == Verb::Pause,
            })
        }
        (_, Verb::Restart) => {
            let (res, name) = workload::target(release, verb, opts.deployment.as_deref())?;
            Ok(Goal::Restart {
                res,
                name,
                at: opts.now.clone().unwrap_or_else(now_rfc3339),
            })
        }
        (_, Verb::Promote | Verb::PromoteFull | Verb::Abort) => Err(wrong("canaries")),
        (_, Verb::Flip) => Err(wrong("blue/green apps")),
    }
}

/// Now as RFC 3339, to the millisecond (kubectl writes seconds; two restarts within a second
/// must still both restart).
pub(crate) fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Millisecond)
        .unwrap_or(now)
        .to_string()
}

/// Plan toward a goal on the state as it is now.
async fn plan_goal(
    client: &Client,
    ns: &str,
    release: &Release,
    verb: Verb,
    goal: Goal,
) -> Result<Plan, ActionError> {
    let mut plan = match &goal {
        Goal::Weight { percent } => {
            let ReleaseKind::Canary { router, .. } = &release.kind else {
                return Err(ActionError::Refused(format!(
                    "{} is not a canary",
                    release.app
                )));
            };
            weights::plan(client, ns, router, *percent).await?
        }
        Goal::Argo(v) => {
            let ReleaseKind::Canary {
                router: Router::Argo { rollout },
                ..
            } = &release.kind
            else {
                return Err(ActionError::Refused(format!(
                    "{} is not an Argo Rollout",
                    release.app
                )));
            };
            weights::plan_argo(client, ns, rollout, *v).await?
        }
        Goal::Selector { service, key, to } => flip::plan(client, ns, service, key, to).await?,
        Goal::Revision {
            deployment,
            revision,
        } => rollback::plan(client, ns, deployment, *revision).await?,
        Goal::Paused { res, name, paused } => {
            workload::plan_pause(client, ns, res, name, *paused).await?
        }
        Goal::Restart { res, name, at } => {
            workload::plan_restart(client, ns, res, name, at).await?
        }
    };
    plan.verb = verb;
    plan.app = release.app.clone();
    plan.namespace = ns.to_string();
    plan.release = release.describe();
    plan.goal = goal;
    plan.warnings.extend(release.warnings.iter().cloned());
    Ok(plan)
}

/// A plan skeleton for the planners to fill.
pub(crate) fn blank(object: &Value, kind: &str, goal: Goal) -> Plan {
    Plan {
        verb: Verb::Promote,
        app: String::new(),
        namespace: String::new(),
        object: format!("{kind}/{}", name_of(object)),
        object_uid: str_at(object, "/metadata/uid")
            .unwrap_or_default()
            .to_string(),
        object_api_version: str_at(object, "/apiVersion")
            .unwrap_or_default()
            .to_string(),
        release: String::new(),
        changes: Vec::new(),
        before: Value::Null,
        after: Value::Null,
        warnings: gitops::warnings(object, kind),
        goal,
        writes: Vec::new(),
        noop: false,
        git: None,
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The plan actually sent (after a conflict, the re-planned one).
    pub plan: Plan,
    /// Nothing needed sending (already as asked, possibly after a conflict).
    pub unchanged: bool,
    /// A 409 was retried on fresh state.
    pub retried: bool,
}

/// Send a plan's writes; on a 409 re-plan once toward the same goal (see the module docs).
pub async fn apply(client: &Client, plan: &Plan, dry_run: bool) -> Result<Applied, ActionError> {
    if plan.noop {
        return Ok(Applied {
            plan: plan.clone(),
            unchanged: true,
            retried: false,
        });
    }
    match send_all(client, plan, dry_run).await {
        Ok(()) => Ok(Applied {
            plan: plan.clone(),
            unchanged: false,
            retried: false,
        }),
        Err((0, e)) if e.status() == Some(409) => {
            // Re-plan on fresh state. A controller writing the object's status also changes
            // its resourceVersion (a Deployment mid-rollout does so several times a second),
            // so a conflict that left the fields we change as they were is retried again, up
            // to MAX_ATTEMPTS in all; a change to those fields is reported at once.
            let mut last = e;
            for _ in 1..MAX_ATTEMPTS {
                let release = detect::detect(client, &plan.namespace, &plan.app, None).await?;
                let fresh = plan_goal(
                    client,
                    &plan.namespace,
                    &release,
                    plan.verb,
                    plan.goal.clone(),
                )
                .await?;
                if fresh.noop || fresh.before == plan.after {
                    return Ok(Applied {
                        plan: fresh,
                        unchanged: true,
                        retried: true,
                    });
                }
                if fresh.before != plan.before {
                    return Err(ActionError::Conflict {
                        object: plan.object.clone(),
                        now: compact(&fresh.before),
                    });
                }
                match send_all(client, &fresh, dry_run).await {
                    Ok(()) => {
                        return Ok(Applied {
                            plan: fresh,
                            unchanged: false,
                            retried: true,
                        });
                    }
                    Err((0, e)) if e.status() == Some(409) => last = e,
                    Err((_, e)) => return Err(e),
                }
            }
            Err(last)
        }
        Err((_, e)) => Err(e),
    }
}

/// Attempts at most, when conflicts leave the fields an action changes untouched.
const MAX_ATTEMPTS: usize = 3;

/// Send the writes in order; the error says how many went through before it.
async fn send_all(client: &Client, plan: &Plan, dry_run: bool) -> Result<(), (usize, ActionError)> {
    for (i, w) in plan.writes.iter().enumerate() {
        w.send(client, &plan.namespace, dry_run)
            .await
            .map_err(|e| (i, e))?;
    }
    Ok(())
}

/// One-line JSON for messages.
pub(crate) fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
