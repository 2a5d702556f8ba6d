//! What a key press means: typed actions, bound to keys by `keymap.toml`.

use serde::{Deserialize, Serialize};

/// Every action a key can be bound to. The names (snake_case) are what `keymap.toml` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave kockpit.
    Quit,
    /// Show or hide the bindings in force.
    Help,
    /// Move the selection up / down in the focused pane.
    Up,
    Down,
    /// Page up / down in the focused pane (logs: scroll by a page).
    PageUp,
    PageDown,
    /// Jump to the first / last row (logs: oldest / newest).
    Top,
    Bottom,
    /// Next / previous pane (apps → pods → logs → events).
    NextPane,
    PrevPane,
    /// Next / previous environment (column, or tab when narrow).
    NextEnv,
    PrevEnv,
    /// Start typing a log filter.
    Filter,
    /// Pause or resume following the logs.
    PauseLogs,
    /// Clear the log filter (or close an overlay).
    Back,
    /// Open the command line (`:`).
    Command,
    /// Shorter / longer chart window.
    ZoomIn,
    ZoomOut,
    /// Step the canary weight up / promote fully / abort.
    Promote,
    PromoteFull,
    Abort,
    /// Flip a blue/green Service selector.
    Flip,
    /// Roll a Deployment back (revision history).
    Rollback,
    /// Pause / resume a rollout.
    PauseRollout,
    ResumeRollout,
    /// Restart a Deployment.
    Restart,
    /// Confirm (dialogs) / open (lists).
    Confirm,
    /// Drill menu.
    Drill,
    /// Cancel the rollback guard's countdown.
    CancelGuard,
    /// Release menu: open, shelve, resume, conclude or abandon a release of the app.
    Release,
}

impl Action {
    /// All actions, in the order the help screen lists them.
    pub const ALL: &'static [Action] = &[
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::NextPane,
        Action::PrevPane,
        Action::NextEnv,
        Action::PrevEnv,
        Action::Filter,
        Action::PauseLogs,
        Action::Back,
        Action::Command,
        Action::ZoomIn,
        Action::ZoomOut,
        Action::Confirm,
        Action::Promote,
        Action::PromoteFull,
        Action::Abort,
        Action::Flip,
        Action::Rollback,
        Action::PauseRollout,
        Action::ResumeRollout,
        Action::Restart,
        Action::Drill,
        Action::Release,
        Action::CancelGuard,
        Action::Help,
        Action::Quit,
    ];

    /// One line for the help screen.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "show/hide this help",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "first row / oldest log line",
            Action::Bottom => "last row / newest log line",
            Action::NextPane => "next pane",
            Action::PrevPane => "previous pane",
            Action::NextEnv => "next environment",
            Action::PrevEnv => "previous environment",
            Action::Filter => "filter logs",
            Action::PauseLogs => "pause/resume logs",
            Action::Back => "clear filter / close",
            Action::Command => "command line",
            Action::ZoomIn => "shorter chart window",
            Action::ZoomOut => "longer chart window",
            Action::Promote => "canary: next weight step",
            Action::PromoteFull => "canary: promote fully",
            Action::Abort => "canary: abort (weight 0)",
            Action::Flip => "blue/green: flip selector",
            Action::Rollback => "roll back (revision history)",
            Action::PauseRollout => "pause rollout",
            Action::ResumeRollout => "resume rollout",
            Action::Restart => "restart deployment",
            Action::Confirm => "confirm / open",
            Action::Drill => "rollback drills",
            Action::CancelGuard => "cancel the guard's rollback",
            Action::Release => "release session, checklist",
        }
    }

    /// Whether the action changes a cluster (disabled by `--read-only`).
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Action::Promote
                | Action::PromoteFull
                | Action::Abort
                | Action::Flip
                | Action::Rollback
                | Action::PauseRollout
                | Action::ResumeRollout
                | Action::Restart
        )
    }
}
