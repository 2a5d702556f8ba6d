//! The only place the state changes: `update(state, msg)` applies one message and returns
//! whether the screen needs redrawing and what the runtime should do next. No I/O, no clock.

use crossterm::event::{KeyCode, KeyModifiers};
use jiff::Timestamp;

use super::action::Action;
use super::derive;
use super::dialog;
use super::msg::{Change, ClusterEvent, Cmd, GuardEvent, Msg};
use super::state::{AppState, EnvState, LogBuffer, Pane};
use crate::cluster::actions::Verb;

/// Chart windows the zoom keys step through (seconds).
pub const WINDOWS: [i64; 5] = [300, 900, 1800, 3600, 10_800];
/// Events kept per environment.
pub const MAX_EVENTS: usize = 200;

/// What an update asks of the runtime.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// The screen shows something different now.
    pub dirty: bool,
    pub cmds: Vec<super::msg::Cmd>,
}

impl Outcome {
    fn dirty() -> Self {
        Outcome {
            dirty: true,
            cmds: Vec::new(),
        }
    }
}

impl AppState {
    pub fn new(envs: Vec<EnvState>, now: Timestamp, chart_window: i64) -> Self {
        AppState {
            envs,
            active_env: 0,
            focus: Pane::Apps,
            now,
            read_only: false,
            sandbox: false,
            help: false,
            filter_input: None,
            chart_window,
            notice: None,
            dialog: None,
            drill_menu: None,
            release_menu: None,
            operator: String::new(),
            size: (80, 24),
            quit: false,
        }
    }

    /// The commands that start following the initial selection (call once at start-up).
    pub fn start(&self) -> Vec<Cmd> {
        (0..self.envs.len())
            .flat_map(|i| [metrics_cmd(self, i)])
            .collect()
    }
}

fn metrics_cmd(state: &AppState, env: usize) -> Cmd {
    Cmd::WatchMetrics {
        env,
        apps: state.envs[env]
            .apps
            .iter()
            .map(|a| a.name.clone())
            .collect(),
        window: state.chart_window,
    }
}

/// Apply one message.
pub fn update(state: &mut AppState, msg: Msg) -> Outcome {
    let mut out = dispatch(state, msg);
    out.cmds.extend(access_checks(state));
    out
}

/// Ask for the selected app's allowed actions whenever the selection settles on a new app.
fn access_checks(state: &mut AppState) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for (i, e) in state.envs.iter_mut().enumerate() {
        let Some(app) = e.apps.get(e.selected_app).map(|a| a.name.clone()) else {
            continue;
        };
        let known = e.access.as_ref().is_some_and(|a| a.app == app);
        if !known && e.access_pending.as_deref() != Some(app.as_str()) {
            e.access_pending = Some(app.clone());
            cmds.push(Cmd::CheckAccess { env: i, app });
        }
    }
    cmds
}

/// The cluster action a key action stands for.
pub fn verb_of(a: Action) -> Option<Verb> {
    Some(match a {
        Action::Promote => Verb::Promote,
        Action::PromoteFull => Verb::PromoteFull,
        Action::Abort => Verb::Abort,
        Action::Flip => Verb::Flip,
        Action::Rollback => Verb::Rollback,
        Action::PauseRollout => Verb::Pause,
        Action::ResumeRollout => Verb::Resume,
        Action::Restart => Verb::Restart,
        _ => return None,
    })
}

fn dispatch(state: &mut AppState, msg: Msg) -> Outcome {
    match msg {
        Msg::DialogKey(k) => Outcome {
            dirty: true,
            cmds: dialog::key(state, k),
        },
        Msg::Planned {
            env,
            app,
            verb,
            result,
        } => Outcome {
            dirty: dialog::planned(state, env, &app, verb, result),
            cmds: Vec::new(),
        },
        Msg::Executed {
            env,
            app,
            verb,
            result,
        } => Outcome {
            dirty: true,
            cmds: dialog::executed(state, env, &app, verb, result),
        },
        Msg::MenuKey(k) => Outcome {
            dirty: true,
            cmds: dialog::drill_menu_key(state, k),
        },
        Msg::DrillDone { env, result } => {
            // Its state file is gone too; no need to wait for the next look at it.
            if let Some(e) = state.envs.get_mut(env) {
                e.drill = None;
            }
            let name = state
                .envs
                .get(env)
                .map(|e| e.name.clone())
                .unwrap_or_default();
            let (text, error) = match result {
                Ok(summary) => (format!("drill on {name} ended: {summary}"), false),
                Err(e) => (format!("drill on {name} failed: {e}"), true),
            };
            state.notice = Some(super::state::Notice {
                text,
                error,
                at: state.now,
            });
            Outcome::dirty()
        }
        Msg::Guard { env, event } => guard_event(state, env, event),
        Msg::ReleaseKey(k) => Outcome {
            dirty: true,
            cmds: super::release::menu_key(state, k),
        },
        Msg::Releases { env, active } => Outcome {
            dirty: super::release::releases(state, env, active),
            cmds: Vec::new(),
        },
        Msg::Checklist {
            env,
            app,
            number,
            checklist,
        } => Outcome {
            dirty: super::release::checklist(state, env, &app, number, checklist),
            cmds: Vec::new(),
        },
        Msg::GitSync { env, app, view } => match state.envs.get_mut(env) {
            Some(e) => {
                let old = e
                    .git_sync
                    .get(&app)
                    .map(|v| (&v.state, v.applied, v.converged));
                let changed = old != Some((&view.state, view.applied, view.converged));
                if let Some(v) = e.git_sync.get_mut(&app) {
                    // Keep the first report's time: when it was pushed.
                    let at = if v.commit == view.commit {
                        v.pushed_at
                    } else {
                        view.pushed_at
                    };
                    *v = view;
                    v.pushed_at = at;
                } else {
                    e.git_sync.insert(app, view);
                }
                Outcome {
                    dirty: changed,
                    cmds: Vec::new(),
                }
            }
            None => Outcome::default(),
        },
        Msg::ReleaseDone { env, app, result } => {
            super::release::done(state, env, &app, result);
            Outcome::dirty()
        }
        Msg::Drill { env, drill } => match state.envs.get_mut(env) {
            Some(e) if e.drill != drill => {
                e.drill = drill;
                Outcome::dirty()
            }
            _ => Outcome::default(),
        },
        Msg::Access { env, access } => match state.envs.get_mut(env) {
            Some(e) => {
                if e.access_pending.as_deref() == Some(access.app.as_str()) {
                    e.access_pending = None;
                }
                let changed = e.access.as_ref() != Some(&access);
                e.access = Some(access);
                Outcome {
                    dirty: changed,
                    cmds: Vec::new(),
                }
            }
            None => Outcome::default(),
        },
        Msg::Action(a) => action(state, a),
        Msg::FilterKey(k) => filter_key(state, k),
        Msg::Resize(w, h) => {
            state.size = (w, h);
            Outcome::dirty()
        }
        Msg::Tick(now) => tick(state, now),
        Msg::Cluster { env, event } => cluster(state, env, event),
        Msg::Conn { env, conn } => match state.envs.get_mut(env) {
            Some(e) if e.conn != conn => {
                e.conn = conn;
                Outcome::dirty()
            }
            _ => Outcome::default(),
        },
        Msg::Logs { env, app, lines } => {
            let Some(e) = state.envs.get_mut(env) else {
                return Outcome::default();
            };
            if e.logs.app.as_deref() != Some(app.as_str()) || lines.is_empty() {
                return Outcome::default();
            }
            push_logs(&mut e.logs, lines);
            Outcome::dirty()
        }
        Msg::Metrics { env, app, result } => {
            let Some(e) = state.envs.get_mut(env) else {
                return Outcome::default();
            };
            match result {
                Ok(m) => {
                    // A refresh that brought nothing new changes nothing on screen.
                    let same = e.metrics.get(&app).is_some_and(|old| {
                        old.error.is_none() && old.range == m.range && old.versions == m.versions
                    });
                    e.metrics.insert(app, m);
                    if same {
                        return Outcome::default();
                    }
                }
                Err(err) => {
                    e.metrics.entry(app).or_default().error = Some(err);
                }
            }
            Outcome::dirty()
        }
    }
}

fn push_logs(b: &mut LogBuffer, lines: Vec<super::state::LogLine>) {
    let n = lines.len();
    for l in lines {
        b.bytes += l.text.len() + l.pod.len();
        b.lines.push_back(l);
    }
    // A paused or scrolled-back view stays on the lines it shows.
    if b.paused || b.scroll > 0 {
        b.scroll += n;
    }
    while b.lines.len() > LogBuffer::MAX_LINES || b.bytes > LogBuffer::MAX_BYTES {
        match b.lines.pop_front() {
            Some(l) => {
                b.bytes -= l.text.len() + l.pod.len();
                b.dropped += 1;
            }
            None => break,
        }
    }
    b.scroll = b.scroll.min(b.lines.len().saturating_sub(1));
}

fn tick(state: &mut AppState, now: Timestamp) -> Outcome {
    let before = state.now;
    state.now = now;
    // The screen changes with time only where it shows the minute, or ages of young objects
    // (kubectl ages count seconds under ten minutes).
    let minute = |t: Timestamp| t.as_second().div_euclid(60);
    let young = state.envs.iter().any(|e| {
        let newest = e.pods.values().filter_map(|p| p.created).max();
        let last_event = e.events.back().and_then(|ev| ev.time);
        [newest, last_event]
            .into_iter()
            .flatten()
            .any(|t| now.duration_since(t).as_secs() < 600)
    });
    // A drill's timer and the guard's countdown count seconds.
    let drill = state
        .envs
        .iter()
        .any(|e| e.drill.is_some() || e.guard.is_some());
    Outcome {
        dirty: minute(before) != minute(now) || young || drill,
        cmds: Vec::new(),
    }
}

/// What an environment's rollback guard reports: a countdown to show, or how it ended.
fn guard_event(state: &mut AppState, env: usize, event: GuardEvent) -> Outcome {
    let Some(e) = state.envs.get_mut(env) else {
        return Outcome::default();
    };
    let name = e.name.clone();
    let (text, error) = match event {
        GuardEvent::Countdown {
            app,
            what,
            failure,
            deadline,
        } => {
            e.guard = Some(super::state::GuardView {
                app,
                what,
                failure,
                deadline,
            });
            return Outcome::dirty();
        }
        GuardEvent::Cancelled { app } => {
            e.guard = None;
            (
                format!("guard: automatic rollback of {app} in {name} cancelled; watching on"),
                false,
            )
        }
        GuardEvent::RolledBack { app, result } => {
            e.guard = None;
            match result {
                Ok(change) => (
                    format!("GUARD rolled back {app} in {name} (automatic): {change}"),
                    false,
                ),
                Err(why) => (
                    format!("GUARD could not roll back {app} in {name}: {why}"),
                    true,
                ),
            }
        }
    };
    state.notice = Some(super::state::Notice {
        text,
        error,
        at: state.now,
    });
    Outcome::dirty()
}

/// Cancel a guard countdown: the one of the environment with the keyboard, else the first
/// running one. The countdown disappears now; the runtime confirms with a notice.
fn cancel_guard(state: &mut AppState) -> Outcome {
    let active = state.active_env;
    let env = match state.envs.get(active) {
        Some(e) if e.guard.is_some() => active,
        _ => match state.envs.iter().position(|e| e.guard.is_some()) {
            Some(i) => i,
            None => return Outcome::default(),
        },
    };
    let Some(e) = state.envs.get_mut(env) else {
        return Outcome::default();
    };
    let app = e.guard.take().map(|g| g.app).unwrap_or_default();
    state.notice = Some(super::state::Notice {
        text: format!("guard: cancelling the automatic rollback of {app}…"),
        error: false,
        at: state.now,
    });
    Outcome {
        dirty: true,
        cmds: vec![Cmd::CancelGuard { env }],
    }
}

fn filter_key(state: &mut AppState, k: crossterm::event::KeyEvent) -> Outcome {
    let Some(input) = state.filter_input.as_mut() else {
        return Outcome::default();
    };
    match k.code {
        KeyCode::Esc => state.filter_input = None,
        KeyCode::Enter => {
            let f = input
                .lines()
                .first()
                .map(|l| l.trim().to_string())
                .unwrap_or_default();
            let env = state.active_env;
            if let Some(e) = state.envs.get_mut(env) {
                e.logs.filter = (!f.is_empty()).then_some(f);
                e.logs.scroll = 0;
            }
            state.filter_input = None;
        }
        // One line only; a filter longer than 200 characters is not a filter.
        KeyCode::Char('m' | 'j') if k.modifiers.contains(KeyModifiers::CONTROL) => {
            return Outcome::default();
        }
        KeyCode::Char(_)
            if input
                .lines()
                .first()
                .is_some_and(|l| l.chars().count() >= 200) =>
        {
            return Outcome::default();
        }
        _ => {
            if !input.input(k) {
                return Outcome::default();
            }
        }
    }
    Outcome::dirty()
}

fn step(i: usize, len: usize, delta: isize) -> usize {
    if len == 0 {
        return 0;
    }
    (i as isize + delta).clamp(0, len as isize - 1) as usize
}

fn action(state: &mut AppState, a: Action) -> Outcome {
    // The help overlay takes the keys: its own key and Back close it, Quit still quits (as it
    // says), anything else waits.
    if state.help {
        if matches!(a, Action::Help | Action::Back) {
            state.help = false;
            return Outcome::dirty();
        }
        if a != Action::Quit {
            return Outcome::default();
        }
    }
    let env_count = state.envs.len();
    let page = (state.size.1 as isize / 3).max(1);
    match a {
        Action::Quit => {
            state.quit = true;
            Outcome {
                dirty: false,
                cmds: vec![Cmd::Quit],
            }
        }
        Action::Help => {
            state.help = true;
            Outcome::dirty()
        }
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => {
            let delta = match a {
                Action::Up => -1,
                Action::Down => 1,
                Action::PageUp => -page,
                Action::PageDown => page,
                Action::Top => -isize::MAX / 2,
                _ => isize::MAX / 2,
            };
            move_selection(state, delta)
        }
        Action::NextPane | Action::PrevPane => {
            let i = Pane::ORDER
                .iter()
                .position(|p| *p == state.focus)
                .unwrap_or(0);
            let n = Pane::ORDER.len();
            let next = if a == Action::NextPane {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            state.focus = Pane::ORDER[next];
            Outcome::dirty()
        }
        Action::NextEnv | Action::PrevEnv if env_count > 0 => {
            state.active_env = if a == Action::NextEnv {
                (state.active_env + 1) % env_count
            } else {
                (state.active_env + env_count - 1) % env_count
            };
            Outcome::dirty()
        }
        Action::Filter => {
            let current = state
                .envs
                .get(state.active_env)
                .and_then(|e| e.logs.filter.clone())
                .unwrap_or_default();
            let mut input = ratatui_textarea::TextArea::new(vec![current]);
            input.move_cursor(ratatui_textarea::CursorMove::End);
            state.filter_input = Some(input);
            state.focus = Pane::Logs;
            Outcome::dirty()
        }
        Action::PauseLogs => match state.envs.get_mut(state.active_env) {
            Some(e) => {
                e.logs.paused = !e.logs.paused;
                if !e.logs.paused {
                    e.logs.scroll = 0;
                }
                Outcome::dirty()
            }
            None => Outcome::default(),
        },
        Action::Back => {
            let env = state.active_env;
            match state.envs.get_mut(env) {
                Some(e) if e.logs.filter.is_some() => {
                    e.logs.filter = None;
                    Outcome::dirty()
                }
                _ if state.notice.is_some() => {
                    state.notice = None;
                    Outcome::dirty()
                }
                _ => Outcome::default(),
            }
        }
        Action::ZoomIn | Action::ZoomOut => {
            let i = WINDOWS
                .iter()
                .position(|w| *w >= state.chart_window)
                .unwrap_or(1);
            let j = if a == Action::ZoomIn {
                i.saturating_sub(1)
            } else {
                (i + 1).min(WINDOWS.len() - 1)
            };
            state.chart_window = WINDOWS[j];
            Outcome {
                dirty: true,
                cmds: (0..state.envs.len())
                    .map(|e| metrics_cmd(state, e))
                    .collect(),
            }
        }
        Action::Drill => {
            dialog::open_drills(state);
            Outcome::dirty()
        }
        Action::Release => {
            super::release::open_menu(state);
            Outcome::dirty()
        }
        Action::CancelGuard => cancel_guard(state),
        a if a.mutates() => match verb_of(a) {
            Some(verb) if state.dialog.is_none() => Outcome {
                dirty: true,
                cmds: dialog::open(state, verb),
            },
            _ => Outcome::default(),
        },
        _ => Outcome::default(),
    }
}

fn move_selection(state: &mut AppState, delta: isize) -> Outcome {
    let focus = state.focus;
    let Some(e) = state.envs.get_mut(state.active_env) else {
        return Outcome::default();
    };
    match focus {
        Pane::Apps => {
            let before = e.selected_app;
            e.selected_app = step(e.selected_app, e.apps.len(), delta);
            if before == e.selected_app {
                return Outcome::default();
            }
            e.selected_pod = 0;
            let env = state.active_env;
            Outcome {
                dirty: true,
                cmds: follow(state, env, true).into_iter().collect(),
            }
        }
        Pane::Pods => {
            let n = e
                .apps
                .get(e.selected_app)
                .map(|a| derive::app_pods(e, a).len())
                .unwrap_or(0);
            e.selected_pod = step(e.selected_pod, n, delta);
            Outcome::dirty()
        }
        Pane::Logs => {
            // Up scrolls back in time.
            let n = e.logs.lines.len();
            e.logs.scroll = step(e.logs.scroll, n.max(1), -delta);
            Outcome::dirty()
        }
        Pane::Events => {
            e.events_scroll = step(e.events_scroll, e.events.len().max(1), delta);
            Outcome::dirty()
        }
    }
}

/// Whether a pod with these labels belongs to the selected app.
fn selected_app_selects(e: &EnvState, labels: &super::state::Labels) -> bool {
    e.apps.get(e.selected_app).is_some_and(|a| {
        derive::app_selectors(e, a)
            .into_iter()
            .any(|s| derive::selects(s, labels))
    })
}

/// Follow the logs of the selected app's pods if they changed (or `reset`: a new app).
fn follow(state: &mut AppState, env: usize, reset: bool) -> Option<Cmd> {
    let e = state.envs.get_mut(env)?;
    let app = e.apps.get(e.selected_app)?.clone();
    let pods: Vec<String> = derive::app_pods(e, &app)
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let same_app = e.logs.app.as_deref() == Some(app.name.as_str());
    if same_app && !reset && e.logs.pods == pods {
        return None;
    }
    if !same_app {
        let filter = e.logs.filter.take();
        e.logs = LogBuffer {
            app: Some(app.name.clone()),
            filter,
            ..Default::default()
        };
    }
    e.logs.pods = pods.clone();
    Some(Cmd::FollowLogs {
        env,
        app: app.name,
        pods,
    })
}

fn apply<T: Clone>(
    map: &mut std::collections::BTreeMap<String, T>,
    change: Change<T>,
    name: impl Fn(&T) -> &str,
) {
    match change {
        Change::Upsert(v) => {
            map.insert(name(&v).to_string(), v);
        }
        Change::Delete(n) => {
            map.remove(&n);
        }
        Change::Reset(all) => {
            map.clear();
            for v in all {
                map.insert(name(&v).to_string(), v);
            }
        }
    }
}

fn cluster(state: &mut AppState, env: usize, event: ClusterEvent) -> Outcome {
    let Some(e) = state.envs.get_mut(env) else {
        return Outcome::default();
    };
    let mut rederive = true;
    let mut follow_changed = true;
    match event {
        ClusterEvent::Deployment(c) => apply(&mut e.deployments, c, |v| &v.name),
        ClusterEvent::ReplicaSet(c) => {
            // Rolling apps read ReplicaSets only for their revision order, which pods bring
            // with them; an Argo app's versions are its ReplicaSets.
            let of_rollout = |name: &str| {
                e.replicasets
                    .get(name)
                    .is_some_and(|rs| rs.rollout.is_some())
            };
            rederive = match &c {
                Change::Upsert(rs) => rs.rollout.is_some() || of_rollout(&rs.name),
                Change::Delete(name) => of_rollout(name),
                Change::Reset(all) => {
                    all.iter().any(|rs| rs.rollout.is_some())
                        || e.replicasets.values().any(|rs| rs.rollout.is_some())
                }
            };
            apply(&mut e.replicasets, c, |v| &v.name);
        }
        ClusterEvent::Pod(c) => {
            // Whether the set of pods whose logs are followed may change: a new pod of the
            // selected app, a followed pod gone, or a re-list. Most events change neither.
            follow_changed = match &c {
                Change::Upsert(p) => {
                    !e.pods.contains_key(&p.name) && selected_app_selects(e, &p.labels)
                }
                Change::Delete(name) => e.logs.pods.iter().any(|n| n == name),
                Change::Reset(_) => true,
            };
            // Rolling apps count ready pods per version: derive again only when a pod's
            // version, readiness, labels or owner may have changed.
            rederive = match &c {
                Change::Upsert(p) => e.pods.get(&p.name).is_none_or(|old| {
                    (&old.version, old.ready, &old.labels, &old.owner)
                        != (&p.version, p.ready, &p.labels, &p.owner)
                }),
                Change::Delete(_) | Change::Reset(_) => true,
            };
            apply(&mut e.pods, c, |v| &v.name);
        }
        ClusterEvent::Service(c) => apply(&mut e.services, c, |v| &v.name),
        ClusterEvent::Route(c) => apply(&mut e.routes, c, |v| &v.name),
        ClusterEvent::Ingress(c) => apply(&mut e.ingresses, c, |v| &v.name),
        ClusterEvent::ArgoRollout(c) => apply(&mut e.argo_rollouts, c, |v| &v.name),
        ClusterEvent::TraefikService { legacy, change } => {
            let map = if legacy {
                &mut e.traefik_services_legacy
            } else {
                &mut e.traefik_services
            };
            apply(map, change, |v| &v.name);
        }
        ClusterEvent::VirtualService(c) => apply(&mut e.virtual_services, c, |v| &v.name),
        ClusterEvent::DestinationRule(c) => apply(&mut e.destination_rules, c, |v| &v.name),
        ClusterEvent::Event(ev) => {
            e.events.push_back(ev);
            while e.events.len() > MAX_EVENTS {
                e.events.pop_front();
            }
            return Outcome::dirty();
        }
    }
    let mut cmds = Vec::new();
    if rederive {
        let selected = e.apps.get(e.selected_app).map(|a| a.name.clone());
        let names_before: Vec<String> = e.apps.iter().map(|a| a.name.clone()).collect();
        e.apps = derive::apps(e);
        e.selected_app = selected
            .and_then(|n| e.apps.iter().position(|a| a.name == n))
            .unwrap_or(0)
            .min(e.apps.len().saturating_sub(1));
        let names_after: Vec<String> = e.apps.iter().map(|a| a.name.clone()).collect();
        if names_before != names_after {
            cmds.push(metrics_cmd(state, env));
        }
    }
    if follow_changed || rederive {
        cmds.extend(follow(state, env, false));
    }
    Outcome { dirty: true, cmds }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_help() -> AppState {
        let mut s = AppState::new(vec![EnvState::default()], Timestamp::UNIX_EPOCH, 900);
        s.help = true;
        s
    }

    fn key(code: KeyCode, mods: KeyModifiers) -> Msg {
        Msg::FilterKey(crossterm::event::KeyEvent::new(code, mods))
    }

    #[test]
    fn the_log_filter_is_edited_like_a_text_field() {
        let mut s = AppState::new(vec![EnvState::default()], Timestamp::UNIX_EPOCH, 900);
        update(&mut s, Msg::Action(Action::Filter));
        for c in "ERO".chars() {
            update(&mut s, key(KeyCode::Char(c), KeyModifiers::NONE));
        }
        // Cursor movement and insertion in the middle.
        update(&mut s, key(KeyCode::Left, KeyModifiers::NONE));
        update(&mut s, key(KeyCode::Char('R'), KeyModifiers::NONE));
        assert_eq!(s.filter_view(), Some(("ERRO".to_string(), 3)));
        update(&mut s, key(KeyCode::End, KeyModifiers::NONE));
        for c in " x".chars() {
            update(&mut s, key(KeyCode::Char(c), KeyModifiers::NONE));
        }
        // ctrl-w deletes the word before the cursor.
        update(&mut s, key(KeyCode::Char('w'), KeyModifiers::CONTROL));
        assert_eq!(s.filter_view().map(|v| v.0), Some("ERRO ".to_string()));
        update(&mut s, key(KeyCode::Enter, KeyModifiers::NONE));
        assert!(s.filter_input.is_none());
        assert_eq!(s.envs[0].logs.filter.as_deref(), Some("ERRO"));
        // `/` again starts from the filter in force; Esc leaves it as it was.
        update(&mut s, Msg::Action(Action::Filter));
        assert_eq!(s.filter_view(), Some(("ERRO".to_string(), 4)));
        update(&mut s, key(KeyCode::Backspace, KeyModifiers::NONE));
        update(&mut s, key(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(s.envs[0].logs.filter.as_deref(), Some("ERRO"));
    }

    #[test]
    fn help_closes_on_its_key_and_back_and_quit_still_quits() {
        for close in [Action::Help, Action::Back] {
            let mut s = with_help();
            assert!(update(&mut s, Msg::Action(close)).dirty);
            assert!(!s.help && !s.quit, "{close:?}");
        }
        let mut s = with_help();
        let out = update(&mut s, Msg::Action(Action::Quit));
        assert!(s.quit);
        assert_eq!(out.cmds, [Cmd::Quit]);
        // Other keys wait for the help to close.
        let mut s = with_help();
        assert_eq!(
            update(&mut s, Msg::Action(Action::NextPane)),
            Outcome::default()
        );
        assert!(s.help && s.focus == Pane::Apps);
    }

    #[test]
    fn an_argo_apps_versions_follow_its_replicasets() {
        use crate::app::state::{ArgoRolloutView, ReplicaSetView, Role};
        let mut s = AppState::new(vec![EnvState::default()], Timestamp::UNIX_EPOCH, 900);
        let cluster = |event| Msg::Cluster { env: 0, event };
        let rs = |hash: &str, tag: &str, ready: i32| ReplicaSetView {
            name: format!("cart-{hash}"),
            rollout: Some("cart".into()),
            hash: hash.into(),
            images: vec![format!("registry.local/cart:{tag}")],
            replicas: 2,
            ready,
            ..Default::default()
        };
        let out = update(
            &mut s,
            cluster(ClusterEvent::ArgoRollout(Change::Upsert(ArgoRolloutView {
                name: "cart".into(),
                phase: "Progressing".into(),
                stable_hash: "aaa".into(),
                current_hash: "bbb".into(),
                ..Default::default()
            }))),
        );
        assert!(out.dirty);
        assert_eq!(s.envs[0].apps.len(), 1);
        update(
            &mut s,
            cluster(ClusterEvent::ReplicaSet(Change::Reset(vec![
                rs("aaa", "2.0.0", 2),
                rs("bbb", "2.1.0", 0),
            ]))),
        );
        update(
            &mut s,
            cluster(ClusterEvent::ReplicaSet(Change::Upsert(rs(
                "bbb", "2.1.0", 1,
            )))),
        );
        let got: Vec<_> = s.envs[0].apps[0]
            .versions
            .iter()
            .map(|v| (v.tag.as_str(), v.role, v.ready))
            .collect();
        assert_eq!(
            got,
            [("2.0.0", Role::Stable, 2), ("2.1.0", Role::Canary, 1)]
        );
        // The canary ReplicaSet gone: the stable alone.
        update(
            &mut s,
            cluster(ClusterEvent::ReplicaSet(Change::Delete("cart-bbb".into()))),
        );
        assert_eq!(s.envs[0].apps[0].versions.len(), 1);
    }

    #[test]
    fn traefiks_two_groups_keep_their_own_objects() {
        use crate::app::state::TraefikServiceView;
        let mut s = AppState::new(vec![EnvState::default()], Timestamp::UNIX_EPOCH, 900);
        let ts = |name: &str| TraefikServiceView {
            name: name.into(),
            services: vec![("inventory".into(), Some(1))],
        };
        let traefik = |legacy, change| Msg::Cluster {
            env: 0,
            event: ClusterEvent::TraefikService { legacy, change },
        };
        update(&mut s, traefik(false, Change::Reset(vec![ts("inventory")])));
        update(&mut s, traefik(true, Change::Upsert(ts("inventory"))));
        update(&mut s, traefik(true, Change::Upsert(ts("old"))));
        // A re-list of one group (or its CRD gone) leaves the other's alone.
        update(&mut s, traefik(true, Change::Reset(Vec::new())));
        let e = &s.envs[0];
        assert!(e.traefik_services_legacy.is_empty());
        assert_eq!(e.traefik_services.keys().collect::<Vec<_>>(), ["inventory"]);
        update(&mut s, traefik(false, Change::Delete("inventory".into())));
        assert!(s.envs[0].traefik_services.is_empty());
    }

    #[test]
    fn a_guard_countdown_shows_counts_down_and_cancels_through_the_runtime() {
        let mut s = AppState::new(
            vec![EnvState::default(), EnvState::default()],
            Timestamp::UNIX_EPOCH,
            900,
        );
        s.envs[1].name = "staging".into();
        let deadline = Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(12);
        let out = update(
            &mut s,
            Msg::Guard {
                env: 1,
                event: GuardEvent::Countdown {
                    app: "checkout".into(),
                    what: "canary v2 at 10 %".into(),
                    failure: "error ratio 4.1 % > 1.0 %".into(),
                    deadline,
                },
            },
        );
        assert!(out.dirty);
        let g = s.envs[1].guard.clone().expect("a countdown");
        assert_eq!(g.app, "checkout");
        assert_eq!(g.seconds_left(s.now), 12);
        // The countdown redraws every second.
        let later = Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_millis(2500);
        assert!(update(&mut s, Msg::Tick(later)).dirty);
        assert_eq!(g.seconds_left(s.now), 10);
        assert_eq!(
            g.seconds_left(deadline + jiff::SignedDuration::from_secs(5)),
            0
        );
        // The key cancels the countdown of the environment that has one (not the active one).
        let out = update(&mut s, Msg::Action(Action::CancelGuard));
        assert_eq!(out.cmds, vec![Cmd::CancelGuard { env: 1 }]);
        assert!(s.envs[1].guard.is_none());
        // Nothing to cancel: nothing asked of the runtime.
        let out = update(&mut s, Msg::Action(Action::CancelGuard));
        assert!(out.cmds.is_empty());
        // The runtime's answers end as notices.
        update(
            &mut s,
            Msg::Guard {
                env: 1,
                event: GuardEvent::Cancelled {
                    app: "checkout".into(),
                },
            },
        );
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("cancelled"))
        );
        update(
            &mut s,
            Msg::Guard {
                env: 1,
                event: GuardEvent::RolledBack {
                    app: "checkout".into(),
                    result: Err("forbidden".into()),
                },
            },
        );
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.error && n.text.contains("forbidden"))
        );
    }
}
