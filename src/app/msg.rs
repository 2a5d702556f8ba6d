//! Messages into the core: what background tasks report and what the operator does.

use crossterm::event::KeyEvent;
use jiff::Timestamp;

use super::action::Action;
use super::dialog::Access;
use super::state::{
    AppMetrics, ArgoRolloutView, Conn, DeploymentView, DestinationRuleView, EventView, IngressView,
    LogLine, PodView, ReplicaSetView, RouteView, ServiceView, TraefikServiceView,
    VirtualServiceView,
};
use crate::cluster::actions::{Plan, Revision, Verb};

/// A change to one kind of object, as a watcher reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    Upsert(T),
    Delete(String),
    /// The watcher (re)listed: these are all the objects now.
    Reset(Vec<T>),
}

/// What a watcher saw in one environment.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    Deployment(Change<DeploymentView>),
    ReplicaSet(Change<ReplicaSetView>),
    Pod(Change<PodView>),
    Service(Change<ServiceView>),
    Route(Change<RouteView>),
    Ingress(Change<IngressView>),
    ArgoRollout(Change<ArgoRolloutView>),
    /// TraefikServices of `traefik.io`, or (`legacy`) of `traefik.containo.us`.
    TraefikService {
        legacy: bool,
        change: Change<TraefikServiceView>,
    },
    VirtualService(Change<VirtualServiceView>),
    DestinationRule(Change<DestinationRuleView>),
    Event(EventView),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A key bound to an action.
    Action(Action),
    /// A key while the filter is being typed.
    FilterKey(KeyEvent),
    Resize(u16, u16),
    Tick(Timestamp),
    Cluster {
        env: usize,
        event: ClusterEvent,
    },
    Conn {
        env: usize,
        conn: Conn,
    },
    /// New log lines for the app an environment follows.
    Logs {
        env: usize,
        app: String,
        lines: Vec<LogLine>,
    },
    Metrics {
        env: usize,
        app: String,
        result: Result<AppMetrics, String>,
    },
    /// A key while an action dialog is open.
    DialogKey(KeyEvent),
    /// An action worked out against the cluster (with a Deployment's revisions for rollback).
    Planned {
        env: usize,
        app: String,
        verb: Verb,
        result: Result<(Plan, Vec<Revision>), String>,
    },
    /// An action finished: a one-line summary, or why it failed.
    Executed {
        env: usize,
        app: String,
        verb: Verb,
        result: Result<String, String>,
    },
    /// Which actions the selected app allows (RBAC and release kind).
    Access {
        env: usize,
        access: Access,
    },
    /// A key while the drill menu is open.
    MenuKey(KeyEvent),
    /// A drill the cockpit started has ended: its report summary, or why it failed.
    DrillDone {
        env: usize,
        result: Result<String, String>,
    },
    /// A drill started or ended for an environment.
    Drill {
        env: usize,
        drill: Option<super::state::DrillBanner>,
    },
    /// What an environment's rollback guard reports.
    Guard {
        env: usize,
        event: GuardEvent,
    },
    /// A key while the release menu is open.
    ReleaseKey(KeyEvent),
    /// The open and shelved releases of an environment (from the audit log).
    Releases {
        env: usize,
        active: Vec<crate::release::Release>,
    },
    /// The exit checklist of release `number` of `app`, evaluated now.
    Checklist {
        env: usize,
        app: String,
        number: u64,
        checklist: crate::release::checklist::Checklist,
    },
    /// The GitOps controller's view of a change pushed for `app`.
    GitSync {
        env: usize,
        app: String,
        view: super::state::GitSyncView,
    },
    /// A release step was recorded (a one-line summary) or refused.
    ReleaseDone {
        env: usize,
        app: String,
        result: Result<String, String>,
    },
}

/// What the rollback guard of an environment reports.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardEvent {
    /// A breach: the guard rolls `app` back at `deadline` unless the operator cancels.
    Countdown {
        app: String,
        /// What is watched (`canary v2 at 10 %`).
        what: String,
        /// The failed check (`error ratio 4.1 % > 1.0 %`).
        failure: String,
        deadline: Timestamp,
    },
    /// The countdown was cancelled; the guard watches on.
    Cancelled { app: String },
    /// The guard's rollback ran: what changed, or why it failed.
    RolledBack {
        app: String,
        result: Result<String, String>,
    },
}

/// Work for the runtime, returned by `update`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// Follow the logs of these pods of `app` in `env` (an empty list stops following).
    FollowLogs {
        env: usize,
        app: String,
        pods: Vec<String>,
    },
    /// Poll metrics for these apps of `env` over the last `window` seconds.
    WatchMetrics {
        env: usize,
        apps: Vec<String>,
        window: i64,
    },
    /// Work out `verb` on `app` (rollback: to `to_revision`, else the previous one).
    Plan {
        env: usize,
        app: String,
        verb: Verb,
        to_revision: Option<i64>,
    },
    /// Run a confirmed plan (audit, request, Event).
    Execute {
        env: usize,
        plan: Box<Plan>,
        reason: Option<String>,
    },
    /// Run a drill scenario against an environment (a `kockpit drill run` child).
    StartDrill {
        env: usize,
        scenario: String,
    },
    /// Find out which actions `app` allows.
    CheckAccess {
        env: usize,
        app: String,
    },
    /// Cancel the rollback countdown of `env`'s guard.
    CancelGuard {
        env: usize,
    },
    /// Record a release step (open: of `version`; conclude: with the checklist shown, and
    /// `text` as the override when it is not green; shelve/abandon: `text` is the reason).
    ReleaseStep {
        env: usize,
        app: String,
        version: String,
        step: super::release::StepKind,
        text: Option<String>,
        checklist: Option<Box<crate::release::checklist::Checklist>>,
    },
    Quit,
}
