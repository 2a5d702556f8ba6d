//! The bottom line: the rollback guard's countdown (loud, above all else), else the filter
//! being typed, else the latest notice (errors in the error style), else the main keys, taken
//! from the bindings in force.

use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::UiContext;
use super::text::{sanitize, width};
use super::values::age;
use crate::app::Action;
use crate::app::dialog::Availability;
use crate::app::state::{AppState, Strategy};

/// The keys worth a reminder, with their short names, in order of importance.
const MAIN_KEYS: [(Action, &str); 9] = [
    (Action::Help, "help"),
    (Action::Quit, "quit"),
    (Action::Filter, "filter"),
    (Action::NextPane, "pane"),
    (Action::NextEnv, "env"),
    (Action::Rollback, "rollback"),
    (Action::Promote, "promote"),
    (Action::Abort, "abort"),
    (Action::Flip, "flip"),
];

pub(super) fn render(buf: &mut Buffer, area: Rect, state: &AppState, ctx: &UiContext) {
    if area.height == 0 {
        return;
    }
    let t = &ctx.theme;
    let line = if let Some(line) = guard_line(state, ctx) {
        line
    } else if let Some((input, cursor)) = state.filter_view() {
        // The text with the cursor cell where the text area's cursor is.
        let at = input
            .char_indices()
            .nth(cursor)
            .map_or(input.len(), |(i, _)| i);
        let (before, rest) = input.split_at(at);
        let mut chars = rest.chars();
        let under = chars.next().map_or(" ".to_string(), String::from);
        Line::from(vec![
            Span::styled(" /", t.title),
            Span::raw(sanitize(before).into_owned()),
            Span::styled(sanitize(&under).into_owned(), t.selected),
            Span::raw(sanitize(chars.as_str()).into_owned()),
            Span::styled(
                format!(
                    "  {} apply · {} cancel",
                    key_for(ctx, Action::Confirm).unwrap_or_default(),
                    key_for(ctx, Action::Back).unwrap_or_default()
                ),
                t.dim,
            ),
        ])
    } else if let Some(n) = &state.notice {
        let (mark, style) = if n.error {
            ("✖ ", t.error)
        } else {
            ("", Style::new())
        };
        Line::from(vec![
            Span::styled(format!(" {mark}{}", sanitize(&n.text)), style),
            Span::styled(format!("  {} ago", age(state.now, Some(n.at))), t.dim),
        ])
    } else {
        hints(state, ctx, usize::from(area.width))
    };
    buf.set_line(area.x, area.y, &line, area.width);
}

/// `GUARD: staging/checkout canary v2 at 10 %: error ratio 4.1 % > 1.0 % — rolling back in
/// 12 s — press x to cancel`: the countdown of the environment with the keyboard, else the
/// first one running.
fn guard_line<'a>(state: &AppState, ctx: &'a UiContext) -> Option<Line<'a>> {
    let e = state
        .envs
        .get(state.active_env)
        .filter(|e| e.guard.is_some())
        .or_else(|| state.envs.iter().find(|e| e.guard.is_some()))?;
    let g = e.guard.as_ref()?;
    let cancel = match key_for(ctx, Action::CancelGuard) {
        Some(k) => format!("press {k} to cancel"),
        None => "no key bound to cancel_guard".to_string(),
    };
    let text = format!(
        " GUARD: {}/{} {}: {} — rolling back in {} s — {cancel} ",
        e.name,
        g.app,
        g.what,
        g.failure,
        g.seconds_left(state.now)
    );
    Some(Line::from(Span::styled(
        sanitize(&text).into_owned(),
        ctx.theme
            .error
            .add_modifier(Modifier::BOLD | Modifier::REVERSED),
    )))
}

/// `? help  q quit  / filter  …`: the most important keys that fit, leaving out those that do
/// nothing for the selected app (promote and abort are for canaries, flip for blue/green) and
/// mutating ones when read-only (the whole cockpit or the environment with the keyboard).
fn hints<'a>(state: &AppState, ctx: &'a UiContext, room: usize) -> Line<'a> {
    let env = state.envs.get(state.active_env);
    let read_only = state.read_only || env.is_some_and(|e| e.read_only);
    let strategy = env
        .and_then(|e| e.apps.get(e.selected_app))
        .map(|a| &a.strategy);
    // What the runtime found out for the selected app (release kind and RBAC), when known.
    let access = env.and_then(|e| {
        let app = e.apps.get(e.selected_app)?;
        e.access.as_ref().filter(|a| a.app == app.name)
    });
    let availability = |a: Action| {
        let verb = crate::app::update::verb_of(a)?;
        access.and_then(|x| x.of(verb))
    };
    let applies = |a: Action| match availability(a) {
        Some(Availability::NotApplicable(_)) => false,
        Some(_) => true,
        None => match a {
            Action::Promote | Action::Abort => matches!(strategy, Some(Strategy::Canary { .. })),
            Action::Flip => matches!(strategy, Some(Strategy::BlueGreen { .. })),
            _ => true,
        },
    };
    let mut spans = Vec::new();
    let mut used = 0;
    let keys = MAIN_KEYS
        .iter()
        .filter(|(a, _)| applies(*a) && !(read_only && a.mutates()));
    for (action, label) in keys {
        let Some(key) = key_for(ctx, *action) else {
            continue;
        };
        let w = 1 + width(&key) + 1 + label.len() + 1;
        if used + w > room {
            break;
        }
        used += w;
        // RBAC says no: still listed (so it is not a mystery), struck through; the key
        // says why.
        if matches!(availability(*action), Some(Availability::Denied(_))) {
            let struck = ctx.theme.dim.add_modifier(Modifier::CROSSED_OUT);
            spans.push(Span::styled(format!(" {key}"), struck));
            spans.push(Span::styled(format!(" {label}"), struck));
            spans.push(Span::raw(" "));
            continue;
        }
        spans.push(Span::styled(format!(" {key}"), ctx.theme.title));
        spans.push(Span::raw(format!(" {label} ")));
    }
    Line::from(spans)
}

/// The first key bound to `action` (one is reminder enough), from the help lines.
fn key_for(ctx: &UiContext, action: Action) -> Option<Cow<'_, str>> {
    let (keys, _) = ctx.help.iter().find(|(_, d)| d == action.describe())?;
    Some(sanitize(keys.split(", ").next().unwrap_or(keys)))
}
