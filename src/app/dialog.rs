//! The confirmation dialog of a cluster action: planning → confirm (staging: one key;
//! production: type the app name and a reason) → applying → a notice with the result. Also
//! what the runtime reports about which actions the selected app allows.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::msg::Cmd;
use super::state::{AppState, Notice};
use crate::cluster::actions::{Plan, Revision, Verb};

/// Whether an action can be offered for the selected app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// RBAC (a SelfSubjectAccessReview) says no; the reason says what is missing.
    Denied(String),
    /// Not for this kind of release (promote on a rolling Deployment).
    NotApplicable(String),
}

/// What the runtime found out about one app's actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub app: String,
    /// "a canary via Gateway API HTTPRoute/checkout".
    pub release: String,
    pub verbs: Vec<(Verb, Availability)>,
}

impl Access {
    pub fn of(&self, verb: Verb) -> Option<&Availability> {
        self.verbs.iter().find(|(v, _)| *v == verb).map(|(_, a)| a)
    }
}

#[derive(Debug, Clone)]
pub enum Stage {
    /// Reading the cluster to work out the change.
    Planning,
    Confirm(Box<Plan>),
    /// Sent; waiting for the answer.
    Applying(Box<Plan>),
}

/// Which field of the production confirmation has the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Reason,
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub env: usize,
    pub app: String,
    pub verb: Verb,
    pub production: bool,
    pub stage: Stage,
    /// Production: the app name, typed.
    pub name: TextArea<'static>,
    /// Production: why (required), staging: optional.
    pub reason: TextArea<'static>,
    pub field: Field,
    /// Rollback of a Deployment: its revisions (newest first) and the one chosen.
    pub history: Vec<Revision>,
    pub revision: Option<i64>,
    /// Why the last confirm was not accepted.
    pub hint: Option<String>,
}

impl Dialog {
    pub fn new(env: usize, app: &str, verb: Verb, production: bool) -> Dialog {
        Dialog {
            env,
            app: app.to_string(),
            verb,
            production,
            stage: Stage::Planning,
            name: TextArea::default(),
            reason: TextArea::default(),
            field: Field::Name,
            history: Vec::new(),
            revision: None,
            hint: None,
        }
    }

    pub fn plan(&self) -> Option<&Plan> {
        match &self.stage {
            Stage::Confirm(p) | Stage::Applying(p) => Some(p),
            Stage::Planning => None,
        }
    }

    /// The text of a one-line input.
    pub fn text(t: &TextArea<'_>) -> String {
        t.lines().first().cloned().unwrap_or_default()
    }

    fn reason_text(&self) -> Option<String> {
        let r = Dialog::text(&self.reason).trim().to_string();
        (!r.is_empty()).then_some(r)
    }
}

fn notice(state: &mut AppState, text: String, error: bool) {
    state.notice = Some(Notice {
        text,
        error,
        at: state.now,
    });
}

/// A mutating action key on the selected app: open the dialog and ask for a plan.
pub fn open(state: &mut AppState, verb: Verb) -> Vec<Cmd> {
    let env_i = state.active_env;
    let Some(env) = state.envs.get(env_i) else {
        return Vec::new();
    };
    if state.read_only || env.read_only {
        let why = if state.read_only {
            "--read-only"
        } else {
            "this environment is read-only in the config"
        };
        notice(
            state,
            format!("{verb}: not available ({why}): actions that change the cluster are disabled"),
            true,
        );
        return Vec::new();
    }
    let Some(app) = env.apps.get(env.selected_app).map(|a| a.name.clone()) else {
        notice(state, format!("{verb}: no app selected"), true);
        return Vec::new();
    };
    if let Some(access) = env.access.as_ref().filter(|a| a.app == app) {
        match access.of(verb) {
            Some(Availability::Denied(why)) => {
                notice(state, format!("{verb} {app}: not permitted: {why}"), true);
                return Vec::new();
            }
            Some(Availability::NotApplicable(why)) => {
                notice(state, format!("{verb} {app}: {why}"), true);
                return Vec::new();
            }
            _ => {}
        }
    }
    let production = env.production;
    state.dialog = Some(Dialog::new(env_i, &app, verb, production));
    vec![Cmd::Plan {
        env: env_i,
        app,
        verb,
        to_revision: None,
    }]
}

/// The plan arrived (or planning failed).
pub fn planned(
    state: &mut AppState,
    env: usize,
    app: &str,
    verb: Verb,
    result: Result<(Plan, Vec<Revision>), String>,
) -> bool {
    let Some(d) = state.dialog.as_mut() else {
        return false;
    };
    if d.env != env || d.app != app || d.verb != verb || !matches!(d.stage, Stage::Planning) {
        return false;
    }
    match result {
        Ok((plan, history)) if plan.noop => {
            let _ = history;
            let text = format!("{verb} {app}: nothing to do: {}", plan.changes.join("; "));
            state.dialog = None;
            notice(state, text, false);
        }
        Ok((plan, history)) => {
            if !history.is_empty() {
                d.history = history;
            }
            if let crate::cluster::actions::Goal::Revision { revision, .. } = plan.goal {
                d.revision = Some(revision);
            }
            d.stage = Stage::Confirm(Box::new(plan));
        }
        Err(e) => {
            state.dialog = None;
            notice(state, format!("{verb} {app}: {e}"), true);
        }
    }
    true
}

/// The action finished (whether or not its dialog is still open).
pub fn executed(
    state: &mut AppState,
    env: usize,
    app: &str,
    verb: Verb,
    result: Result<String, String>,
) -> Vec<Cmd> {
    if state
        .dialog
        .as_ref()
        .is_some_and(|d| d.env == env && d.app == app && d.verb == verb)
    {
        state.dialog = None;
    }
    match result {
        Ok(text) => notice(state, format!("{verb} {app}: {text}"), false),
        Err(e) => notice(state, format!("{verb} {app} failed: {e}"), true),
    }
    vec![Cmd::CheckAccess {
        env,
        app: app.to_string(),
    }]
}

/// A key while the dialog is open.
pub fn key(state: &mut AppState, k: KeyEvent) -> Vec<Cmd> {
    let Some(d) = state.dialog.as_mut() else {
        return Vec::new();
    };
    let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
    if k.code == KeyCode::Esc || ctrl_c {
        if matches!(d.stage, Stage::Applying(_)) {
            // The request is on its way; its result will arrive as a notice.
            let text = format!(
                "{} {}: still applying; the result will follow",
                d.verb, d.app
            );
            state.dialog = None;
            notice(state, text, false);
        } else {
            state.dialog = None;
            notice(state, "cancelled: nothing was changed".into(), false);
        }
        return Vec::new();
    }
    if !matches!(d.stage, Stage::Confirm(_)) {
        return Vec::new();
    }
    // Rollback: choose another revision.
    if !d.history.is_empty() && matches!(k.code, KeyCode::Up | KeyCode::Down) {
        let revs: Vec<i64> = d.history.iter().map(|r| r.revision).collect();
        let at = d
            .revision
            .and_then(|r| revs.iter().position(|x| *x == r))
            .unwrap_or(0);
        let next = if k.code == KeyCode::Up {
            at.saturating_sub(1)
        } else {
            (at + 1).min(revs.len() - 1)
        };
        if next == at || d.history[next].current {
            return Vec::new();
        }
        d.revision = Some(revs[next]);
        d.stage = Stage::Planning;
        return vec![Cmd::Plan {
            env: d.env,
            app: d.app.clone(),
            verb: d.verb,
            to_revision: Some(revs[next]),
        }];
    }
    if !d.production {
        // Staging: one key.
        match k.code {
            KeyCode::Enter | KeyCode::Char('y') => return apply(state),
            KeyCode::Char('n') => {
                state.dialog = None;
                notice(state, "cancelled: nothing was changed".into(), false);
            }
            _ => {}
        }
        return Vec::new();
    }
    match k.code {
        KeyCode::Tab | KeyCode::BackTab => {
            d.field = match d.field {
                Field::Name => Field::Reason,
                Field::Reason => Field::Name,
            };
        }
        KeyCode::Enter => {
            let typed = Dialog::text(&d.name);
            if typed.trim() != d.app {
                d.hint = Some(format!("type the app name ({}) to confirm", d.app));
                d.field = Field::Name;
            } else if d.reason_text().is_none() {
                if d.field == Field::Name {
                    d.field = Field::Reason;
                    d.hint = None;
                } else {
                    d.hint = Some("a reason is required in production".into());
                }
            } else {
                return apply(state);
            }
        }
        _ => {
            d.hint = None;
            match d.field {
                Field::Name => d.name.input(k),
                Field::Reason => d.reason.input(k),
            };
        }
    }
    Vec::new()
}

fn apply(state: &mut AppState) -> Vec<Cmd> {
    let Some(d) = state.dialog.as_mut() else {
        return Vec::new();
    };
    let Stage::Confirm(plan) = &d.stage else {
        return Vec::new();
    };
    let plan = plan.clone();
    let reason = d.reason_text();
    d.stage = Stage::Applying(plan.clone());
    vec![Cmd::Execute {
        env: d.env,
        plan,
        reason,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::msg::Msg;
    use crate::app::state::{AppView, EnvState, Rollout, Strategy};
    use crate::app::{Action, update};
    use crate::cluster::actions::Goal;
    use jiff::Timestamp;
    use serde_json::json;

    fn state(production: bool) -> AppState {
        let env = EnvState {
            name: if production { "production" } else { "staging" }.into(),
            context: "sandbox".into(),
            namespace: "ns".into(),
            production,
            apps: vec![AppView {
                name: "checkout".into(),
                strategy: Strategy::Rolling,
                versions: Vec::new(),
                revision: 1,
                rollout: Rollout::Complete,
                gitops: None,
            }],
            ..Default::default()
        };
        AppState::new(vec![env], Timestamp::UNIX_EPOCH, 900)
    }

    fn plan() -> Plan {
        Plan {
            verb: Verb::Promote,
            app: "checkout".into(),
            namespace: "ns".into(),
            object: "HTTPRoute/checkout".into(),
            object_uid: String::new(),
            object_api_version: String::new(),
            release: "a canary".into(),
            changes: vec!["HTTPRoute/checkout weights: a 90 → 75, b 10 → 25".into()],
            before: json!({"canary_weight": 10}),
            after: json!({"canary_weight": 25}),
            warnings: Vec::new(),
            goal: Goal::Weight { percent: 25 },
            writes: Vec::new(),
            noop: false,
            git: None,
        }
    }

    fn key(s: &mut AppState, code: KeyCode) -> Vec<Cmd> {
        update(s, Msg::DialogKey(KeyEvent::new(code, KeyModifiers::NONE))).cmds
    }

    fn typed(s: &mut AppState, text: &str) {
        for c in text.chars() {
            key(s, KeyCode::Char(c));
        }
    }

    fn open_and_plan(s: &mut AppState) {
        let cmds = update(s, Msg::Action(Action::Promote)).cmds;
        assert!(
            cmds.iter().any(
                |c| matches!(c, Cmd::Plan { verb: Verb::Promote, app, .. } if app == "checkout")
            ),
            "{cmds:?}"
        );
        assert!(matches!(
            s.dialog.as_ref().map(|d| &d.stage),
            Some(Stage::Planning)
        ));
        update(
            s,
            Msg::Planned {
                env: 0,
                app: "checkout".into(),
                verb: Verb::Promote,
                result: Ok((plan(), Vec::new())),
            },
        );
        assert!(matches!(
            s.dialog.as_ref().map(|d| &d.stage),
            Some(Stage::Confirm(_))
        ));
    }

    #[test]
    fn staging_confirms_with_one_key_and_reports_the_result() {
        let mut s = state(false);
        open_and_plan(&mut s);
        let cmds = key(&mut s, KeyCode::Char('y'));
        assert!(
            matches!(
                cmds.as_slice(),
                [Cmd::Execute {
                    env: 0,
                    reason: None,
                    ..
                }]
            ),
            "{cmds:?}"
        );
        assert!(matches!(
            s.dialog.as_ref().map(|d| &d.stage),
            Some(Stage::Applying(_))
        ));
        let cmds = update(
            &mut s,
            Msg::Executed {
                env: 0,
                app: "checkout".into(),
                verb: Verb::Promote,
                result: Ok("applied in 3 ms".into()),
            },
        )
        .cmds;
        assert!(s.dialog.is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| !n.error && n.text == "promote checkout: applied in 3 ms")
        );
        assert!(cmds.iter().any(|c| matches!(c, Cmd::CheckAccess { .. })));
    }

    #[test]
    fn production_needs_the_app_name_and_a_reason() {
        let mut s = state(true);
        open_and_plan(&mut s);
        // One key is not enough in production.
        assert!(key(&mut s, KeyCode::Char('y')).is_empty());
        assert!(key(&mut s, KeyCode::Enter).is_empty());
        assert!(
            s.dialog
                .as_ref()
                .and_then(|d| d.hint.as_deref())
                .is_some_and(|h| h.contains("type the app name (checkout)"))
        );
        // Clear the stray "y", type the name; enter moves to the reason, which is required.
        key(&mut s, KeyCode::Backspace);
        typed(&mut s, "checkout");
        assert!(key(&mut s, KeyCode::Enter).is_empty());
        assert_eq!(s.dialog.as_ref().map(|d| d.field), Some(Field::Reason));
        assert!(key(&mut s, KeyCode::Enter).is_empty());
        assert!(
            s.dialog
                .as_ref()
                .and_then(|d| d.hint.as_deref())
                .is_some_and(|h| h.contains("reason is required"))
        );
        typed(&mut s, "canary healthy for 30m");
        let cmds = key(&mut s, KeyCode::Enter);
        assert!(
            matches!(cmds.as_slice(), [Cmd::Execute { reason: Some(r), .. }] if r == "canary healthy for 30m"),
            "{cmds:?}"
        );
    }

    #[test]
    fn escape_cancels_and_nothing_is_sent() {
        let mut s = state(true);
        open_and_plan(&mut s);
        typed(&mut s, "checkout");
        assert!(key(&mut s, KeyCode::Esc).is_empty());
        assert!(s.dialog.is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("nothing was changed"))
        );
    }

    #[test]
    fn read_only_and_denied_actions_open_no_dialog() {
        let mut s = state(false);
        s.read_only = true;
        let out = update(&mut s, Msg::Action(Action::Promote));
        assert!(s.dialog.is_none());
        assert!(!out.cmds.iter().any(|c| matches!(c, Cmd::Plan { .. })));
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.error && n.text.contains("--read-only"))
        );

        let mut s = state(false);
        s.envs[0].access = Some(Access {
            app: "checkout".into(),
            release: "a canary".into(),
            verbs: vec![(
                Verb::Promote,
                Availability::Denied("cannot patch httproutes.gateway.networking.k8s.io checkout in namespace ns: no RBAC".into()),
            )],
        });
        let out = update(&mut s, Msg::Action(Action::Promote));
        assert!(s.dialog.is_none());
        assert!(!out.cmds.iter().any(|c| matches!(c, Cmd::Plan { .. })));
        assert!(
            s.notice.as_ref().is_some_and(
                |n| n.error && n.text.contains("not permitted: cannot patch httproutes")
            )
        );
    }

    #[test]
    fn a_failed_plan_closes_the_dialog_with_the_reason() {
        let mut s = state(false);
        update(&mut s, Msg::Action(Action::Promote));
        update(
            &mut s,
            Msg::Planned {
                env: 0,
                app: "checkout".into(),
                verb: Verb::Promote,
                result: Err("promote is for canaries; checkout is a rolling update".into()),
            },
        );
        assert!(s.dialog.is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.error && n.text.contains("promote is for canaries"))
        );
    }
}

#[cfg(test)]
mod drill_banner_tests {
    use crate::app::msg::Msg;
    use crate::app::state::{AppState, DrillBanner, EnvState};
    use crate::app::update;
    use jiff::Timestamp;

    #[test]
    fn a_drill_shows_and_its_timer_redraws_every_second() {
        let mut s = AppState::new(vec![EnvState::default()], Timestamp::UNIX_EPOCH, 900);
        let banner = DrillBanner {
            scenario: "canary-error-spike".into(),
            app: "checkout".into(),
            started: Timestamp::UNIX_EPOCH,
        };
        let at = |secs| Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH);
        assert!(!update(&mut s, Msg::Tick(at(1))).dirty, "nothing moves");
        assert!(
            update(
                &mut s,
                Msg::Drill {
                    env: 0,
                    drill: Some(banner.clone())
                }
            )
            .dirty
        );
        assert!(update(&mut s, Msg::Tick(at(2))).dirty, "the timer moves");
        assert!(
            !update(
                &mut s,
                Msg::Drill {
                    env: 0,
                    drill: Some(banner)
                }
            )
            .dirty
        );
        assert!(
            update(
                &mut s,
                Msg::Drill {
                    env: 0,
                    drill: None
                }
            )
            .dirty
        );
        assert!(!update(&mut s, Msg::Tick(at(3))).dirty);
    }
}

/// The drill menu (`d`): the scenarios; enter starts one against the environment with the
/// keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillMenu {
    pub env: usize,
    pub selected: usize,
}

/// `d`: open the drill menu (staging only unless the drill itself allows production).
pub fn open_drills(state: &mut AppState) {
    let env = state.active_env;
    if state.envs.get(env).is_some_and(|e| e.drill.is_some()) {
        notice(
            state,
            "a drill is already running against this environment".into(),
            true,
        );
        return;
    }
    if state.read_only || state.envs.get(env).is_some_and(|e| e.read_only) {
        notice(
            state,
            "drills: not available in read-only mode (a drill changes the cluster)".into(),
            true,
        );
        return;
    }
    state.drill_menu = Some(DrillMenu { env, selected: 0 });
}

/// A key while the drill menu is open.
pub fn drill_menu_key(state: &mut AppState, k: KeyEvent) -> Vec<Cmd> {
    let Some(m) = state.drill_menu.as_mut() else {
        return Vec::new();
    };
    let n = crate::drill::scenario::SCENARIOS.len();
    match k.code {
        KeyCode::Esc | KeyCode::Char('q') => state.drill_menu = None,
        KeyCode::Up | KeyCode::Char('k') => m.selected = m.selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => m.selected = (m.selected + 1).min(n - 1),
        KeyCode::Enter => {
            let (env, scenario) = (
                m.env,
                crate::drill::scenario::SCENARIOS[m.selected.min(n - 1)].name,
            );
            state.drill_menu = None;
            notice(
                state,
                format!("drill {scenario}: starting; the fault comes at a random moment"),
                false,
            );
            return vec![Cmd::StartDrill {
                env,
                scenario: scenario.to_string(),
            }];
        }
        _ => {}
    }
    Vec::new()
}
