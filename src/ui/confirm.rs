//! The action dialog: where (environment, context, namespace), what (the object and the exact
//! before → after), warnings, and how to confirm. Production asks for the app name and a
//! reason; staging takes one key. Fits 80x24.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::UiContext;
use super::text::sanitize;
use crate::app::dialog::{Dialog, Field, Stage};
use crate::app::state::AppState;

/// The text of a one-line input with a cursor block at its end when focused.
fn input_line<'a>(
    label: &'a str,
    text: String,
    focused: bool,
    t: &crate::config::theme::Theme,
) -> Line<'a> {
    let mut spans = vec![
        Span::styled(label, if focused { t.title } else { t.dim }),
        Span::raw(sanitize(&text).into_owned()),
    ];
    if focused {
        spans.push(Span::styled(" ", t.selected));
    }
    Line::from(spans)
}

pub(super) fn render(buf: &mut Buffer, area: Rect, state: &AppState, d: &Dialog, ctx: &UiContext) {
    let t = &ctx.theme;
    let Some(env) = state.envs.get(d.env) else {
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    let where_ = format!(
        " {} · context {} · namespace {} · as {}",
        env.name, env.context, env.namespace, state.operator
    );
    lines.push(Line::styled(sanitize(&where_).into_owned(), t.dim));
    match &d.stage {
        Stage::Planning => {
            lines.push(Line::raw(""));
            lines.push(Line::raw(format!(
                " reading {} from the cluster…",
                sanitize(&d.app)
            )));
        }
        Stage::Confirm(plan) | Stage::Applying(plan) => {
            lines.push(Line::raw(format!(
                " {} is {}",
                sanitize(&plan.app),
                sanitize(&plan.release)
            )));
            lines.push(Line::raw(""));
            for c in &plan.changes {
                lines.push(Line::from(vec![
                    Span::styled(" → ", t.title),
                    Span::raw(sanitize(c).into_owned()),
                ]));
            }
            for w in &plan.warnings {
                lines.push(Line::from(vec![
                    Span::styled(" ⚠ ", t.warn),
                    Span::styled(sanitize(w).into_owned(), t.warn),
                ]));
            }
            if !d.history.is_empty() {
                lines.push(Line::raw(""));
                lines.push(Line::styled(" revisions (↑/↓ to choose):", t.dim));
                for r in d.history.iter().take(6) {
                    let chosen = d.revision == Some(r.revision);
                    let text = format!(
                        "   {} {:>3}  {}{}{}",
                        if chosen { "▶" } else { " " },
                        r.revision,
                        r.images.join(", "),
                        if r.current { "  (running now)" } else { "" },
                        r.change_cause
                            .as_deref()
                            .map(|c| format!("  {c}"))
                            .unwrap_or_default()
                    );
                    lines.push(Line::styled(
                        sanitize(&text).into_owned(),
                        if chosen { t.selected } else { Style::new() },
                    ));
                }
            }
            lines.push(Line::raw(""));
            if matches!(d.stage, Stage::Applying(_)) {
                lines.push(Line::styled(
                    " applying… (esc hides this; the result follows)",
                    t.title,
                ));
            } else if d.production {
                lines.push(input_line(
                    " type the app name: ",
                    Dialog::text(&d.name),
                    d.field == Field::Name,
                    t,
                ));
                lines.push(input_line(
                    " reason:            ",
                    Dialog::text(&d.reason),
                    d.field == Field::Reason,
                    t,
                ));
                if let Some(h) = &d.hint {
                    lines.push(Line::styled(format!(" {h}"), t.error));
                }
                lines.push(Line::styled(
                    " enter confirm · tab next field · esc cancel",
                    t.dim,
                ));
            } else {
                lines.push(Line::styled(" y/enter apply · n/esc cancel", t.dim));
            }
        }
    }
    let width = area.width.saturating_sub(4).clamp(20, 96);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    // Wrapped height: each line takes ceil(width / inner) rows.
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = (rows as u16 + 2).min(area.height);
    let popup = super::layout::centered(area, width, height);
    let via_git = matches!(&d.stage, Stage::Confirm(p) | Stage::Applying(p) if p.git.is_some());
    let title = format!(
        " {} {}{}{} ",
        d.verb,
        d.app,
        if via_git { " via Git" } else { "" },
        if d.production { " — PRODUCTION" } else { "" }
    );
    let block = Block::bordered()
        .border_style(if d.production {
            t.production
        } else {
            t.border_focused
        })
        .title(Line::styled(
            sanitize(&title).into_owned(),
            if d.production { t.production } else { t.title },
        ));
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .style(t.base)
        .wrap(Wrap { trim: false })
        .block(block)
        .render(popup, buf);
}

/// The drill menu: the scenarios, what each injects, and the keys.
pub(super) fn render_drills(
    buf: &mut Buffer,
    area: Rect,
    state: &AppState,
    m: &crate::app::dialog::DrillMenu,
    ctx: &UiContext,
) {
    let t = &ctx.theme;
    let env = state
        .envs
        .get(m.env)
        .map(|e| e.name.as_str())
        .unwrap_or("?");
    let mut lines = vec![Line::styled(
        format!(
            " against {} — the fault comes at a random moment; act as on call",
            sanitize(env)
        ),
        t.dim,
    )];
    lines.push(Line::raw(""));
    for (i, s) in crate::drill::scenario::SCENARIOS.iter().enumerate() {
        let chosen = i == m.selected;
        lines.push(Line::styled(
            format!(
                " {} {:<20} {}",
                if chosen { "▶" } else { " " },
                s.name,
                s.title
            ),
            if chosen { t.selected } else { t.base },
        ));
        if chosen {
            lines.push(Line::styled(format!("     injects: {}", s.injects), t.dim));
            lines.push(Line::styled(
                format!("     recovered: {}", s.recovered),
                t.dim,
            ));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(" ↑/↓ choose · enter start · esc close", t.dim));
    menu_popup(buf, area, " Rollback drills ", lines, t);
}

/// A menu popup: `lines` wrapped in a bordered box centred in `area`, as tall as they need
/// (at most 100 columns wide).
pub(super) fn menu_popup(
    buf: &mut Buffer,
    area: Rect,
    title: &str,
    lines: Vec<Line<'_>>,
    t: &crate::config::theme::Theme,
) {
    let width = area.width.saturating_sub(4).clamp(20, 100);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = (rows as u16 + 2).min(area.height);
    let popup = super::layout::centered(area, width, height);
    let block = Block::bordered()
        .border_style(t.border_focused)
        .title(Line::styled(title.to_string(), t.title));
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .style(t.base)
        .wrap(Wrap { trim: false })
        .block(block)
        .render(popup, buf);
}
