//! Drawing: [`render`] turns an [`AppState`] into one frame. It is a pure function of the state
//! and the [`UiContext`]: it reads no clock (ages use `state.now`), does no I/O and changes
//! nothing. One file per panel; `layout` decides where they go, `text` makes cluster strings
//! safe to draw.

mod apps;
mod charts;
mod confirm;
mod env;
mod events;
mod footer;
mod header;
mod help;
mod layout;
mod logs;
mod pods;
mod release;
pub mod text;
mod values;

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Padding};

use crate::app::state::{AppState, AppView, EnvState, Pane, Role};
use crate::config::theme::Theme;

/// What rendering needs besides the state: colours, the key bindings in force and the limits
/// drawn on the charts.
#[derive(Debug, Clone)]
pub struct UiContext {
    pub theme: Theme,
    /// `(keys, description)` of every binding in force, in help order.
    pub help: Vec<(String, String)>,
    /// Error ratio (0..1) above which a version is unhealthy.
    pub max_error_ratio: f64,
    /// p99 latency in seconds above which a version is unhealthy.
    pub max_p99_seconds: f64,
}

/// Draws the whole screen.
pub fn render(frame: &mut Frame, state: &AppState, ctx: &UiContext) {
    let area = frame.area();
    let buf = frame.buffer_mut();
    // The whole screen in the base style; what is drawn on it patches that (so a theme's
    // background leaves no holes, and plain cells keep a selection's background).
    buf.set_style(area, ctx.theme.base);
    let [header_area, body, footer_area] = layout::screen(area);
    header::render(buf, header_area, state, ctx);
    let filter_view = state.filter_view();
    let filter_preview = filter_view.as_ref().map(|(text, _)| text.as_str());
    for (i, rect) in layout::env_areas(body, state.envs.len(), state.active_env) {
        let env = &state.envs[i];
        let active = i == state.active_env;
        let view = EnvView {
            env,
            app: env.apps.get(env.selected_app),
            focus: active.then_some(state.focus),
            now: state.now,
            chart_window: state.chart_window,
            // While the operator types a filter, the logs follow it live.
            log_filter: filter_preview
                .filter(|_| active)
                .or(env.logs.filter.as_deref()),
            ctx,
        };
        env::render(buf, rect, &view);
    }
    if state.envs.is_empty() && !body.is_empty() {
        let msg = Line::styled("no environments configured", ctx.theme.dim);
        buf.set_line(body.x, body.y, &msg, body.width);
    }
    footer::render(buf, footer_area, state, ctx);
    if let Some(d) = &state.dialog {
        confirm::render(buf, area, state, d, ctx);
    }
    if let Some(m) = &state.drill_menu {
        confirm::render_drills(buf, area, state, m, ctx);
    }
    if let Some(m) = &state.release_menu {
        release::render_menu(buf, area, state, m, ctx);
    }
    if state.help {
        help::render(buf, area, ctx);
    }
}

/// One environment as its panels see it.
pub(crate) struct EnvView<'a> {
    pub env: &'a EnvState,
    /// The selected app, if any.
    pub app: Option<&'a AppView>,
    /// The focused pane when this environment has the keyboard.
    pub focus: Option<Pane>,
    pub now: Timestamp,
    pub chart_window: i64,
    /// The log filter in effect, in any case.
    pub log_filter: Option<&'a str>,
    pub ctx: &'a UiContext,
}

impl EnvView<'_> {
    pub fn theme(&self) -> &Theme {
        &self.ctx.theme
    }

    pub fn active(&self) -> bool {
        self.focus.is_some()
    }

    pub fn focused(&self, pane: Pane) -> bool {
        self.focus == Some(pane)
    }

    /// A pane's frame: one rule on top carrying the title, highlighted when focused, and a
    /// column of padding on each side so that nothing inside touches the environment's frame.
    pub fn pane_block<'t>(&self, pane: Option<Pane>, title: impl Into<Line<'t>>) -> Block<'t> {
        let t = self.theme();
        let focused = pane.is_some_and(|p| self.focused(p));
        let border = if focused { t.border_focused } else { t.border };
        // The title is drawn over the rule: reset what the rule's style set, so an unfocused
        // title reads in the normal text colour rather than the dim border's.
        let title_style = Style::reset().patch(t.base).patch(t.title);
        Block::new()
            .borders(Borders::TOP)
            .border_style(border)
            .title(title)
            .title_style(if focused {
                title_style.patch(t.border_focused)
            } else {
                title_style
            })
            .padding(Padding::horizontal(1))
    }
}

/// Whether a version is the old one (stable, the active colour, a version a rolling update is
/// replacing) rather than the new one (canary, the idle colour, the Deployment's current
/// template).
pub(crate) fn is_old(role: Role) -> bool {
    match role {
        Role::Stable | Role::Active | Role::Old => true,
        Role::Canary | Role::Idle | Role::Primary => false,
    }
}

/// The chart and label style of a version: old versions in the stable style, new ones in the
/// canary style.
pub(crate) fn role_style(theme: &Theme, role: Role) -> Style {
    if is_old(role) {
        theme.stable
    } else {
        theme.canary
    }
}
