//! The cockpit's state: compact view models of what the watchers and pollers reported, and
//! what the operator is looking at. Rendering is a pure function of this; only
//! [`super::update`] changes it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use jiff::Timestamp;

/// Which pane of an environment has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    #[default]
    Apps,
    Pods,
    Logs,
    Events,
}

impl Pane {
    pub const ORDER: [Pane; 4] = [Pane::Apps, Pane::Pods, Pane::Logs, Pane::Events];
}

/// The connection to one environment's cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Conn {
    #[default]
    Connecting,
    Live,
    /// Failing; the message says why (and the watchers keep retrying).
    Error(String),
}

/// A status message in the footer.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    pub at: Timestamp,
}

/// Everything the cockpit shows.
#[derive(Debug, Clone)]
pub struct AppState {
    pub envs: Vec<EnvState>,
    /// The environment with the keyboard (the visible tab when narrow).
    pub active_env: usize,
    pub focus: Pane,
    /// The time of the last tick (renders ages and "now" on charts).
    pub now: Timestamp,
    pub read_only: bool,
    /// Running on the built-in sandbox.
    pub sandbox: bool,
    pub help: bool,
    /// The log filter being typed (`/`), if any: a one-line text area (cursor movement,
    /// word deletion and the other editing keys of ratatui-textarea).
    pub filter_input: Option<ratatui_textarea::TextArea<'static>>,
    /// Chart window in seconds.
    pub chart_window: i64,
    pub notice: Option<Notice>,
    /// The action being confirmed or applied.
    pub dialog: Option<super::dialog::Dialog>,
    /// The drill menu, when open.
    pub drill_menu: Option<super::dialog::DrillMenu>,
    /// The release menu, when open.
    pub release_menu: Option<super::release::ReleaseMenu>,
    /// Who acts (`user` or `user@ssh-client`), shown in dialogs.
    pub operator: String,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    pub quit: bool,
}

/// One environment: its cluster objects, derived apps, metrics and logs.
#[derive(Debug, Clone, Default)]
pub struct EnvState {
    pub name: String,
    pub context: String,
    pub namespace: String,
    pub production: bool,
    pub read_only: bool,
    pub conn: Conn,
    pub deployments: BTreeMap<String, DeploymentView>,
    pub replicasets: BTreeMap<String, ReplicaSetView>,
    pub pods: BTreeMap<String, PodView>,
    pub services: BTreeMap<String, ServiceView>,
    pub routes: BTreeMap<String, RouteView>,
    pub ingresses: BTreeMap<String, IngressView>,
    /// Argo Rollouts (`argoproj.io/v1alpha1` Rollout); empty where the CRD is not installed.
    pub argo_rollouts: BTreeMap<String, ArgoRolloutView>,
    /// Traefik TraefikServices of `traefik.io`, and of the older `traefik.containo.us` (two
    /// kinds, each with objects of its own); empty where the CRDs are not installed.
    pub traefik_services: BTreeMap<String, TraefikServiceView>,
    pub traefik_services_legacy: BTreeMap<String, TraefikServiceView>,
    /// Istio (`networking.istio.io`) VirtualServices and DestinationRules.
    pub virtual_services: BTreeMap<String, VirtualServiceView>,
    pub destination_rules: BTreeMap<String, DestinationRuleView>,
    /// Newest last; bounded.
    pub events: VecDeque<EventView>,
    /// Derived from the objects above after every change, sorted by name.
    pub apps: Vec<AppView>,
    pub selected_app: usize,
    pub selected_pod: usize,
    pub events_scroll: usize,
    /// Per app name.
    pub metrics: BTreeMap<String, AppMetrics>,
    pub logs: LogBuffer,
    /// Which actions the selected app allows (from the runtime's checks).
    pub access: Option<super::dialog::Access>,
    /// The app whose access check is under way.
    pub access_pending: Option<String>,
    /// A rollback drill running against this environment (from `kockpit drill run`).
    pub drill: Option<DrillBanner>,
    /// The rollback guard's countdown, while one runs.
    pub guard: Option<GuardView>,
    /// Open and shelved releases by app, with their checklists.
    pub releases: BTreeMap<String, super::release::ReleaseView>,
    /// The last change pushed to Git per app, and its sync state.
    pub git_sync: BTreeMap<String, GitSyncView>,
}

/// A change pushed to Git, as its controller applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct GitSyncView {
    pub commit: String,
    pub remote_branch: String,
    /// `Flux Kustomization flux-system/apps`.
    pub controller: String,
    /// The controller's state in words.
    pub state: String,
    /// The controller has applied the commit.
    pub applied: bool,
    /// And the cluster's fields are as committed.
    pub converged: bool,
    pub pushed_at: Timestamp,
}

/// The rollback guard found a breach and rolls back when the countdown ends.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardView {
    pub app: String,
    /// What is watched (`canary v2 at 10 %`).
    pub what: String,
    /// The failed check (`error ratio 4.1 % > 1.0 %`).
    pub failure: String,
    pub deadline: Timestamp,
}

impl GuardView {
    /// Whole seconds left at `now` (rounded up).
    pub fn seconds_left(&self, now: Timestamp) -> i64 {
        let ms = self.deadline.as_millisecond() - now.as_millisecond();
        (ms.max(0) + 999) / 1000
    }
}

/// What the header says about a running drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillBanner {
    pub scenario: String,
    pub app: String,
    pub started: Timestamp,
}

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentView {
    pub name: String,
    pub labels: Labels,
    /// `spec.selector.matchLabels`.
    pub selector: Labels,
    pub template_labels: Labels,
    pub annotations: Labels,
    pub replicas: i32,
    /// Image references of the template's containers.
    pub images: Vec<String>,
    pub revision: i64,
    pub generation: i64,
    pub observed_generation: i64,
    pub status_replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub paused: bool,
    /// `Progressing` condition: reason and message.
    pub progressing: Option<(String, String)>,
    pub created: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaSetView {
    pub name: String,
    /// Owning Deployment.
    pub owner: Option<String>,
    /// Owning Argo Rollout.
    pub rollout: Option<String>,
    /// Its pod template's hash: the `rollouts-pod-template-hash` label (Argo), else
    /// `pod-template-hash`.
    pub hash: String,
    /// `deployment.kubernetes.io/revision` (or, of a Rollout's, `rollout.argoproj.io/revision`).
    pub revision: i64,
    pub images: Vec<String>,
    pub change_cause: Option<String>,
    pub replicas: i32,
    pub ready: i32,
    pub created: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    pub name: String,
    pub labels: Labels,
    /// Image tag of the first container: the pod's version.
    pub version: String,
    /// kubectl's STATUS column (`Running`, `CrashLoopBackOff`, `Terminating`, …).
    pub status: String,
    pub ready_containers: u16,
    pub containers: u16,
    pub ready: bool,
    pub restarts: i32,
    pub last_restart: Option<Timestamp>,
    pub created: Option<Timestamp>,
    pub node: String,
    /// Owning ReplicaSet.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceView {
    pub name: String,
    pub selector: Labels,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteView {
    pub name: String,
    /// `(service, weight)` of the first rule's backendRefs.
    pub backends: Vec<(String, i64)>,
}

/// An Ingress, as ingress-nginx's canary annotations see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngressView {
    pub name: String,
    /// `nginx.ingress.kubernetes.io/canary: "true"`.
    pub canary: bool,
    /// `nginx.ingress.kubernetes.io/canary-weight` and `…/canary-weight-total`, as written
    /// (strings; ingress-nginx defaults them to 0 and 100).
    pub canary_weight: Option<String>,
    pub canary_weight_total: Option<String>,
    /// Backend Service names: the default backend's, then every rule path's.
    pub backends: Vec<String>,
}

/// A Traefik `TraefikService`'s weighted round robin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraefikServiceView {
    pub name: String,
    /// `spec.weighted.services[]`: `(name, weight)`, the name a Kubernetes Service's; the
    /// weight as written (None where missing or not a whole number).
    pub services: Vec<(String, Option<i64>)>,
}

/// One destination of an Istio VirtualService's HTTP route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IstioDestination {
    /// `destination.host`: a Service's name, short or fully qualified.
    pub host: String,
    /// `destination.subset`, defined by a DestinationRule for the host.
    pub subset: Option<String>,
    /// `weight` (None where missing or not a whole number).
    pub weight: Option<i64>,
}

/// An Istio `VirtualService`: the destinations of each `spec.http[]` route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VirtualServiceView {
    pub name: String,
    /// `spec.http[].route[]`.
    pub http: Vec<Vec<IstioDestination>>,
}

/// An Istio `DestinationRule`: the subsets of its host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationRuleView {
    pub name: String,
    /// `spec.host`: a Service's name, short or fully qualified.
    pub host: String,
    /// `spec.subsets[]`: `(name, labels)`.
    pub subsets: Vec<(String, Labels)>,
}

/// An Argo Rollout (canary strategy), as its status reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArgoRolloutView {
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// `spec.selector.matchLabels`.
    pub selector: Labels,
    pub template_labels: Labels,
    /// Image references of the template's containers.
    pub images: Vec<String>,
    pub replicas: i32,
    /// `rollout.argoproj.io/revision`.
    pub revision: i64,
    pub generation: i64,
    pub observed_generation: i64,
    /// `spec.paused`.
    pub paused: bool,
    /// `status.pauseConditions` is not empty.
    pub pause_conditions: bool,
    /// `status.abort`.
    pub abort: bool,
    /// `status.phase`: Healthy, Progressing, Paused, Degraded (empty before the controller
    /// has looked at it).
    pub phase: String,
    pub message: String,
    /// `status.canary.weights.canary.weight` (absent without traffic routing).
    pub canary_weight: Option<i64>,
    /// `status.currentStepIndex`, and how many `spec.strategy.canary.steps` there are.
    pub step_index: Option<i64>,
    pub steps: i64,
    /// `status.stableRS` and `status.currentPodHash`: pod-template hashes of the stable and
    /// the current (canary) ReplicaSet.
    pub stable_hash: String,
    pub current_hash: String,
    pub ready: i32,
    pub created: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventView {
    pub time: Option<Timestamp>,
    pub warning: bool,
    pub reason: String,
    /// `Kind/name` of the object.
    pub object: String,
    pub message: String,
    pub count: i32,
}

/// How an app releases.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Stable and canary Deployments; `canary_weight` in percent (None: unknown).
    Canary {
        router: Router,
        canary_weight: Option<f64>,
    },
    /// Blue and green Deployments behind one Service; the colour it selects.
    BlueGreen { service: String, active: String },
    /// One Deployment, rolling updates.
    Rolling,
}

/// What splits canary traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum Router {
    HttpRoute(String),
    /// One Service selecting both tracks: weight = ready replica ratio.
    ReplicaRatio(String),
    /// ingress-nginx: the canary Ingress (its `canary-weight` annotation).
    Nginx(String),
    /// Argo Rollouts: the Rollout (its status's canary weight).
    Argo(String),
    /// Traefik: the TraefikService (its weighted services' weights, proportional).
    Traefik(String),
    /// Istio: the VirtualService (the weights of its HTTP route to both tracks, of 100).
    Istio(String),
    /// A stable and a canary Deployment, but nothing seen that splits traffic between them.
    Unknown,
}

/// A version's role within its app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Stable,
    Canary,
    /// Blue/green: the colour the Service selects.
    Active,
    Idle,
    /// A rolling app's current template (the new version during an update).
    Primary,
    /// A rolling app's older version whose pods are still running during an update.
    Old,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionView {
    /// The Deployment running this version (of an Argo app: the Rollout).
    pub deployment: String,
    pub role: Role,
    /// `track`/`version` label (stable, canary, blue, green) if any.
    pub track: Option<String>,
    /// Image tag.
    pub tag: String,
    /// Ready pods, of `desired` (a rolling app counts its pods of this version; other
    /// strategies take their Deployment's counts).
    pub ready: i32,
    pub desired: i32,
    /// Share of the app's traffic in percent, where the router says.
    pub weight: Option<f64>,
}

/// Rollout progress as `kubectl rollout status` computes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollout {
    Complete,
    /// Waiting for the controller to observe the new spec.
    WaitingForSpec,
    /// `n of m updated`, `old replicas pending termination`, `n of m available`.
    Progressing(String),
    /// Progress deadline exceeded.
    Failed(String),
    Paused,
    /// An Argo Rollout walking its canary steps: at step `step` (from 1) of `steps`, paused
    /// there (a pause step, a promote awaited, or `spec.paused`) or progressing.
    Step {
        step: i64,
        steps: i64,
        paused: bool,
    },
    /// An Argo Rollout that is Degraded (aborted, or failed): its status message.
    Degraded {
        aborted: bool,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppView {
    pub name: String,
    pub strategy: Strategy,
    /// Stable/active/primary first.
    pub versions: Vec<VersionView>,
    /// The primary Deployment's revision and rollout (canary: the canary's; blue/green:
    /// the idle colour's, which is what is being prepared).
    pub revision: i64,
    pub rollout: Rollout,
    /// Argo CD or Flux manage it (labels/annotations).
    pub gitops: Option<String>,
}

/// One point of a chart: (unix seconds, value); `None` = no traffic at that point.
pub type Point = (i64, Option<f64>);

/// Panel data for one version of one app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionSeries {
    pub version: String,
    pub error_ratio: Vec<Point>,
    pub p99_seconds: Vec<Point>,
    pub rps: Vec<Point>,
}

/// Metrics of one app, as last fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppMetrics {
    pub fetched_at: Option<Timestamp>,
    /// Chart range: start and end (unix seconds).
    pub range: (i64, i64),
    /// Empty: no data (the query returned nothing, or no Prometheus).
    pub versions: Vec<VersionSeries>,
    /// Why the last fetch failed, if it did.
    pub error: Option<String>,
}

/// One log line, already made safe for the terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub ts: Option<Timestamp>,
    pub pod: Arc<str>,
    pub text: String,
}

/// The logs pane: a bounded buffer following one app's pods.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer {
    /// The app followed.
    pub app: Option<String>,
    /// Its pods whose logs are being streamed.
    pub pods: Vec<String>,
    pub lines: VecDeque<LogLine>,
    pub bytes: usize,
    /// Lines dropped from the front to stay within bounds.
    pub dropped: u64,
    /// Case-insensitive substring filter.
    pub filter: Option<String>,
    pub paused: bool,
    /// Lines scrolled back from the newest.
    pub scroll: usize,
}

impl AppState {
    /// The filter being typed and the cursor's character offset in it.
    pub fn filter_view(&self) -> Option<(String, usize)> {
        let t = self.filter_input.as_ref()?;
        let text = t.lines().first().cloned().unwrap_or_default();
        Some((text, t.cursor().1))
    }
}

impl LogBuffer {
    pub const MAX_LINES: usize = 5_000;
    pub const MAX_BYTES: usize = 2 * 1024 * 1024;
}
