//! Release sessions in the cockpit: the release menu (`o`) on the selected app — open a
//! release, or shelve / resume / conclude / abandon the one that is open — and what the
//! runtime reports (the environment's open releases from the audit log, their checklists).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::msg::Cmd;
use super::state::{AppState, AppView, Notice, Role};
use crate::release::checklist::Checklist;
use crate::release::{Release, State};

pub use crate::release::StepKind;

/// The release menu's stage.
#[derive(Debug, Clone)]
pub enum MenuStage {
    /// Pick a step (its key).
    Choose,
    /// Type the reason (shelve, abandon) or the override (conclude with a checklist that is
    /// not green); Enter records it.
    Reason {
        step: StepKind,
        input: Box<TextArea<'static>>,
    },
    /// Sent to the runtime.
    Busy(StepKind),
}

#[derive(Debug, Clone)]
pub struct ReleaseMenu {
    pub env: usize,
    pub app: String,
    /// Open: the version the release will track.
    pub version: String,
    pub stage: MenuStage,
    /// Why the last Enter was not accepted.
    pub hint: Option<String>,
}

/// The release's view in an environment: the release and its latest checklist.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseView {
    pub release: Release,
    pub checklist: Option<Checklist>,
}

/// The version a new release of `app` tracks: the canary's, the idle colour's when it runs
/// something else than the live one, else the current template's.
pub fn new_version(app: &AppView) -> String {
    let tag = |role: Role| {
        app.versions
            .iter()
            .find(|v| v.role == role)
            .map(|v| v.tag.clone())
    };
    if let Some(t) = tag(Role::Canary) {
        return t;
    }
    if let (Some(idle), Some(active)) = (tag(Role::Idle), tag(Role::Active))
        && idle != active
    {
        return idle;
    }
    tag(Role::Primary)
        .or(tag(Role::Active))
        .or(tag(Role::Stable))
        .or_else(|| app.versions.first().map(|v| v.tag.clone()))
        .unwrap_or_default()
}

fn notice(state: &mut AppState, text: String, error: bool) {
    state.notice = Some(Notice {
        text,
        error,
        at: state.now,
    });
}

/// `o`: the release menu for the selected app of the active environment.
pub fn open_menu(state: &mut AppState) {
    let env = state.active_env;
    let Some(e) = state.envs.get(env) else { return };
    let Some(app) = e.apps.get(e.selected_app) else {
        notice(state, "releases: select an app first".into(), true);
        return;
    };
    let version = match e.releases.get(&app.name) {
        Some(r) => r.release.version.clone(),
        None => new_version(app),
    };
    state.release_menu = Some(ReleaseMenu {
        env,
        app: app.name.clone(),
        version,
        stage: MenuStage::Choose,
        hint: None,
    });
}

fn reason_input(placeholder: &str) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_placeholder_text(placeholder.to_string());
    t
}

/// A key while the release menu is open.
pub fn menu_key(state: &mut AppState, k: KeyEvent) -> Vec<Cmd> {
    let Some(m) = state.release_menu.as_mut() else {
        return Vec::new();
    };
    let current = state
        .envs
        .get(m.env)
        .and_then(|e| e.releases.get(&m.app))
        .cloned();
    match &mut m.stage {
        MenuStage::Busy(_) => {
            if k.code == KeyCode::Esc {
                state.release_menu = None;
            }
            Vec::new()
        }
        MenuStage::Choose => {
            let state_now = current.as_ref().map(|r| r.release.state);
            let step = match (k.code, state_now) {
                (KeyCode::Esc | KeyCode::Char('q'), _) => {
                    state.release_menu = None;
                    return Vec::new();
                }
                (KeyCode::Char('y') | KeyCode::Enter, None) => StepKind::Open,
                (KeyCode::Char('s'), Some(State::Open)) => StepKind::Shelve,
                (KeyCode::Char('c'), Some(State::Open)) => StepKind::Conclude,
                (KeyCode::Char('r'), Some(State::Shelved)) => StepKind::Resume,
                (KeyCode::Char('a'), Some(State::Open | State::Shelved)) => StepKind::Abandon,
                _ => return Vec::new(),
            };
            let green = current
                .as_ref()
                .and_then(|r| r.checklist.as_ref())
                .is_some_and(Checklist::passed);
            let evaluated = current.as_ref().is_some_and(|r| r.checklist.is_some());
            m.hint = None;
            match step {
                StepKind::Conclude if !evaluated => {
                    m.hint = Some(NOT_EVALUATED.into());
                    Vec::new()
                }
                StepKind::Shelve => {
                    m.stage = MenuStage::Reason {
                        step,
                        input: Box::new(reason_input("why is it blocked?")),
                    };
                    Vec::new()
                }
                StepKind::Abandon => {
                    m.stage = MenuStage::Reason {
                        step,
                        input: Box::new(reason_input("why abandon it?")),
                    };
                    Vec::new()
                }
                StepKind::Conclude if !green => {
                    m.stage = MenuStage::Reason {
                        step,
                        input: Box::new(reason_input("override: why conclude anyway?")),
                    };
                    Vec::new()
                }
                _ => submit(state, step, None, current.and_then(|r| r.checklist)),
            }
        }
        MenuStage::Reason { step, input } => {
            let step = *step;
            match k.code {
                KeyCode::Esc => {
                    m.stage = MenuStage::Choose;
                    m.hint = None;
                    Vec::new()
                }
                KeyCode::Enter => {
                    let text = input.lines().join(" ").trim().to_string();
                    if text.is_empty() {
                        m.hint = Some(match step {
                            StepKind::Conclude => {
                                "the checklist is not green: type why you conclude anyway (it is audited)".into()
                            }
                            _ => format!("{} needs a reason", step.verb()),
                        });
                        return Vec::new();
                    }
                    submit(state, step, Some(text), current.and_then(|r| r.checklist))
                }
                _ => {
                    if !(k.modifiers.contains(KeyModifiers::CONTROL)
                        && k.code == KeyCode::Char('m'))
                    {
                        input.input(k);
                    }
                    Vec::new()
                }
            }
        }
    }
}

const NOT_EVALUATED: &str = "the checklist has not been evaluated yet: try again in a moment";

fn submit(
    state: &mut AppState,
    step: StepKind,
    text: Option<String>,
    checklist: Option<Checklist>,
) -> Vec<Cmd> {
    let Some(m) = state.release_menu.as_mut() else {
        return Vec::new();
    };
    // Not even with an override: it would be recorded with an empty checklist, i.e. clean.
    if step == StepKind::Conclude && checklist.is_none() {
        m.hint = Some(NOT_EVALUATED.into());
        return Vec::new();
    }
    m.stage = MenuStage::Busy(step);
    m.hint = None;
    vec![Cmd::ReleaseStep {
        env: m.env,
        app: m.app.clone(),
        version: m.version.clone(),
        step,
        text,
        checklist: checklist.map(Box::new),
    }]
}

/// The runtime recorded a step (or could not).
pub fn done(state: &mut AppState, env: usize, app: &str, result: Result<String, String>) {
    if state
        .release_menu
        .as_ref()
        .is_some_and(|m| m.env == env && m.app == app)
    {
        state.release_menu = None;
    }
    match result {
        Ok(text) => notice(state, text, false),
        Err(e) => notice(state, format!("release {app}: {e}"), true),
    }
}

/// The environment's open and shelved releases, from the audit log.
pub fn releases(state: &mut AppState, env: usize, active: Vec<Release>) -> bool {
    let Some(e) = state.envs.get_mut(env) else {
        return false;
    };
    let mut next = std::collections::BTreeMap::new();
    for r in active {
        let checklist = e
            .releases
            .get(&r.app)
            .filter(|old| old.release.number == r.number && r.state == State::Open)
            .and_then(|old| old.checklist.clone());
        next.insert(
            r.app.clone(),
            ReleaseView {
                release: r,
                checklist,
            },
        );
    }
    let changed = next != e.releases;
    e.releases = next;
    changed
}

/// A checklist evaluated for release `number` of `app`.
pub fn checklist(
    state: &mut AppState,
    env: usize,
    app: &str,
    number: u64,
    checklist: Checklist,
) -> bool {
    let Some(r) = state
        .envs
        .get_mut(env)
        .and_then(|e| e.releases.get_mut(app))
        .filter(|r| r.release.number == number)
    else {
        return false;
    };
    // Only what is shown counts: the evaluation time alone changes nothing on screen.
    let same = r
        .checklist
        .as_ref()
        .is_some_and(|old| old.items == checklist.items);
    r.checklist = Some(checklist);
    !same
}
