//! The top line: `kockpit`, the SANDBOX and READ-ONLY badges, one tab per environment in its
//! staging or production style (the active one marked `▶`) with its connection health and how
//! many apps are failing, and the clock in UTC (to the minute: the screen is not redrawn every
//! second).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::UiContext;
use super::text::sanitize;
use super::values::failing;
use crate::app::state::{AppState, Conn};

pub(super) fn render(buf: &mut Buffer, area: Rect, state: &AppState, ctx: &UiContext) {
    if area.height == 0 {
        return;
    }
    let clock = format!(" {} UTC ", state.now.strftime("%H:%M"));
    let room = usize::from(area.width).saturating_sub(clock.len());
    // With words ("live", "2 failing") if they fit, then without the connection's, then
    // glyphs only.
    let line = [(true, true), (false, true), (false, false)]
        .into_iter()
        .map(|(conn, failing)| tabs(state, ctx, conn, failing))
        .find(|l| l.width() <= room)
        .unwrap_or_else(|| tabs(state, ctx, false, false));
    let left = line.width();
    buf.set_line(area.x, area.y, &line, area.width);
    if left <= room {
        let w = clock.len() as u16;
        buf.set_line(
            area.x + area.width - w,
            area.y,
            &Line::styled(clock, ctx.theme.title),
            w,
        );
    }
}

fn tabs<'a>(
    state: &'a AppState,
    ctx: &UiContext,
    conn_words: bool,
    failing_words: bool,
) -> Line<'a> {
    let t = &ctx.theme;
    let mut spans = vec![Span::styled(" kockpit ", t.title)];
    if state.sandbox {
        spans.extend([Span::raw(" "), Span::styled(" SANDBOX ", t.sandbox_badge)]);
    }
    if state.read_only {
        spans.extend([
            Span::raw(" "),
            Span::styled(" READ-ONLY ", t.read_only_badge),
        ]);
    }
    spans.push(Span::raw(" "));
    for (i, env) in state.envs.iter().enumerate() {
        spans.push(Span::raw(" "));
        let name = sanitize(&env.name);
        let style = if env.production {
            t.production
        } else {
            t.staging
        };
        let mark = if i == state.active_env { "▶ " } else { "" };
        spans.push(Span::styled(format!(" {mark}{name} "), style));
        let (glyph, word, style) = match env.conn {
            Conn::Live => ("●", " live", t.ok),
            Conn::Connecting => ("◌", " connecting", t.warn),
            Conn::Error(_) => ("✖", " error", t.error),
        };
        spans.push(Span::styled(
            format!(" {glyph}{}", if conn_words { word } else { "" }),
            style,
        ));
        if let Some(d) = &env.drill {
            let secs = state.now.duration_since(d.started).as_secs().max(0);
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                format!(
                    " DRILL {} {}:{:02} ",
                    sanitize(&d.scenario),
                    secs / 60,
                    secs % 60
                ),
                t.read_only_badge,
            ));
        }
        let bad = env
            .apps
            .iter()
            .filter(|a| failing(env, a, ctx.max_error_ratio, ctx.max_p99_seconds))
            .count();
        if bad > 0 {
            let text = if failing_words {
                format!(" {bad} failing")
            } else {
                format!(" {bad}✖")
            };
            spans.push(Span::styled(text, t.error));
        }
    }
    Line::from(spans)
}
