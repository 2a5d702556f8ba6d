//! The selected app's release: a title line (id, version, state, age, `4/6 ✓`) and the exit
//! checklist, one item a line (failing items first when rows are short); and the release
//! menu (`o`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::layout;
use super::text::{sanitize, truncate};
use super::{EnvView, UiContext};
use crate::app::release::{MenuStage, ReleaseMenu, ReleaseView};
use crate::app::state::AppState;
use crate::config::theme::Theme;
use crate::release::State;
use crate::release::checklist::{Status, duration};

fn selected<'a>(v: &EnvView<'a>) -> Option<&'a ReleaseView> {
    v.app.and_then(|a| v.env.releases.get(&a.name))
}

fn git_sync<'a>(v: &EnvView<'a>) -> Option<&'a crate::app::state::GitSyncView> {
    v.app.and_then(|a| v.env.git_sync.get(&a.name))
}

/// Rows the pane wants: 0 without a release or a GitOps change for the selected app.
pub(super) fn rows(v: &EnvView) -> u16 {
    let git = u16::from(git_sync(v).is_some());
    git + match selected(v) {
        None => 0,
        Some(r) => match (&r.checklist, r.release.state) {
            (Some(c), State::Open) => 1 + c.items.len().min(12) as u16,
            _ => 2,
        },
    }
}

/// `GitOps ✓ abc123def456 on origin/main — Flux Kustomization …: ready, applied … · converged`.
fn render_git(buf: &mut Buffer, area: Rect, v: &EnvView, g: &crate::app::state::GitSyncView) {
    let t = v.theme();
    let (mark, style, status) = if g.converged {
        ("✓", t.ok, "cluster converged")
    } else if g.applied {
        ("…", t.warn, "applied, cluster converging")
    } else {
        ("…", t.warn, "waiting for the controller")
    };
    let age = duration((v.now.as_millisecond() - g.pushed_at.as_millisecond()) as f64 / 1000.0);
    // Most important first: narrow panes cut the end.
    let text = format!(
        "{mark} GitOps {status} · pushed {} to {} {age} ago · {}",
        &g.commit[..g.commit.len().min(8)],
        sanitize(&g.remote_branch),
        sanitize(&g.state)
    );
    let line = Line::styled(truncate(&text, usize::from(area.width)).into_owned(), style);
    buf.set_line(area.x, area.y, &line, area.width);
}

fn status_style(t: &Theme, s: Status) -> Style {
    match s {
        Status::Pass => t.ok,
        Status::Fail => t.error,
        Status::Pending | Status::Unknown => t.warn,
        Status::NotApplicable => t.dim,
    }
}

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView) {
    if area.height == 0 {
        return;
    }
    let mut area = layout::padded(area);
    if let Some(g) = git_sync(v) {
        render_git(buf, area, v, g);
        area.y += 1;
        area.height -= 1;
        if area.height == 0 {
            return;
        }
    }
    let Some(r) = selected(v) else { return };
    let t = v.theme();
    let w = usize::from(area.width);
    let rel = &r.release;
    // Open: since it was opened; shelved: since it was shelved.
    let since = match rel.state {
        State::Shelved => rel.transitions.last().map_or(rel.opened(), |t| t.time),
        _ => rel.opened(),
    };
    let age = duration((v.now.as_millisecond() - since.as_millisecond()) as f64 / 1000.0);
    let mut title = format!(
        "Release {} · {} · {} {age}",
        sanitize(&rel.id()),
        sanitize(&rel.version),
        rel.state.name()
    );
    let (summary, summary_style) = match (&r.checklist, rel.state) {
        (_, State::Shelved) => (
            format!(
                " · {}",
                rel.transitions
                    .last()
                    .and_then(|tr| tr.reason.as_deref())
                    .map(|why| format!("blocked: {}", sanitize(why)))
                    .unwrap_or_default()
            ),
            t.warn,
        ),
        (Some(c), _) if c.passed() => (format!(" · {} ready to conclude", c.summary()), t.ok),
        (Some(c), _) => (format!(" · {}", c.summary()), t.warn),
        (None, _) => (" · checking…".to_string(), t.dim),
    };
    title = truncate(&title, w).to_string();
    let rest = w.saturating_sub(super::text::width(&title));
    let line = Line::from(vec![
        Span::styled(title, t.title),
        Span::styled(truncate(&summary, rest), summary_style),
    ]);
    buf.set_line(area.x, area.y, &line, area.width);
    let body = usize::from(area.height - 1);
    let items: Vec<_> = match (&r.checklist, rel.state) {
        (Some(c), State::Open) => {
            let mut items: Vec<_> = c.items.iter().collect();
            if items.len() > body {
                // Failing items first, in their order, then the passing ones.
                items.sort_by_key(|i| i.status.passes());
            }
            items
        }
        _ => {
            if body > 0 {
                let hint = match rel.state {
                    State::Shelved => "shelved: press o to resume or abandon",
                    _ => "evaluating the exit checklist…",
                };
                buf.set_line(
                    area.x,
                    area.y + 1,
                    &Line::styled(truncate(hint, w), t.dim),
                    area.width,
                );
            }
            return;
        }
    };
    let name_w = items
        .iter()
        .map(|i| i.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(22);
    for (row, item) in items.iter().take(body).enumerate() {
        let st = status_style(t, item.status);
        let name = truncate(&sanitize(&item.name), name_w).into_owned();
        let pad = " ".repeat(name_w.saturating_sub(name.chars().count()));
        let head = format!("{} {name}{pad}  ", item.status.mark());
        let detail = truncate(
            &sanitize(&item.detail),
            w.saturating_sub(super::text::width(&head)),
        )
        .into_owned();
        let line = Line::from(vec![Span::styled(head, st), Span::styled(detail, t.base)]);
        buf.set_line(area.x, area.y + 1 + row as u16, &line, area.width);
    }
}

/// The release menu popup.
pub(super) fn render_menu(
    buf: &mut Buffer,
    area: Rect,
    state: &AppState,
    m: &ReleaseMenu,
    ctx: &UiContext,
) {
    let t = &ctx.theme;
    let env = state.envs.get(m.env);
    let env_name = env.map(|e| e.name.as_str()).unwrap_or("?");
    let current = env.and_then(|e| e.releases.get(&m.app));
    let mut lines: Vec<Line> = Vec::new();
    let head = format!(" {} in {}", sanitize(&m.app), sanitize(env_name));
    lines.push(Line::styled(head, t.title));
    lines.push(Line::raw(""));
    match (&m.stage, current) {
        (MenuStage::Busy(step), _) => {
            lines.push(Line::styled(format!(" {}: recording…", step.verb()), t.dim));
        }
        (MenuStage::Reason { step, input }, _) => {
            let green = current
                .and_then(|r| r.checklist.as_ref())
                .is_some_and(|c| c.passed());
            if matches!(step, crate::app::release::StepKind::Conclude) && !green {
                lines.push(Line::styled(" The exit checklist is not green:", t.error));
                if let Some(c) = current.and_then(|r| r.checklist.as_ref()) {
                    for i in c.failing() {
                        lines.push(Line::styled(
                            format!(
                                "   {} {}: {}",
                                i.status.mark(),
                                sanitize(&i.name),
                                sanitize(&i.detail)
                            ),
                            status_style(t, i.status),
                        ));
                    }
                }
                lines.push(Line::raw(
                    " To conclude anyway, type why (it is audited with the failing items):",
                ));
            } else {
                lines.push(Line::raw(format!(" Why {}?", step.verb())));
            }
            let text = input.lines().join(" ");
            let shown = if text.is_empty() {
                Span::styled(input.placeholder_text().to_string(), t.dim)
            } else {
                Span::styled(sanitize(&text).into_owned(), t.base)
            };
            lines.push(Line::from(vec![
                Span::raw(" > "),
                shown,
                Span::styled("▏", t.dim),
            ]));
            lines.push(Line::raw(""));
            lines.push(Line::styled(" enter record · esc back", t.dim));
        }
        (MenuStage::Choose, None) => {
            lines.push(Line::raw(format!(
                " Open a release of version {} ?",
                sanitize(&m.version)
            )));
            lines.push(Line::styled(
                " Its exit checklist: pods Ready, rollout complete, smoke checks, no breach for the observation window, image traceable.",
                t.dim,
            ));
            lines.push(Line::raw(""));
            lines.push(Line::styled(" y open · esc close", t.dim));
        }
        (MenuStage::Choose, Some(r)) => {
            let rel = &r.release;
            lines.push(Line::raw(format!(
                " Release {} · version {} · {}",
                sanitize(&rel.id()),
                sanitize(&rel.version),
                rel.state.name()
            )));
            if let Some(c) = &r.checklist
                && rel.state == State::Open
            {
                for i in &c.items {
                    lines.push(Line::from(vec![
                        Span::styled(
                            format!("   {} ", i.status.mark()),
                            status_style(t, i.status),
                        ),
                        Span::raw(format!("{}: {}", sanitize(&i.name), sanitize(&i.detail))),
                    ]));
                }
            }
            lines.push(Line::raw(""));
            let keys = match rel.state {
                State::Open => {
                    if r.checklist.as_ref().is_some_and(|c| c.passed()) {
                        " c conclude · s shelve · a abandon · esc close"
                    } else {
                        " c conclude (override needed) · s shelve · a abandon · esc close"
                    }
                }
                _ => " r resume · a abandon · esc close",
            };
            lines.push(Line::styled(keys, t.dim));
        }
    }
    if let Some(h) = &m.hint {
        lines.push(Line::styled(format!(" {}", sanitize(h)), t.error));
    }
    super::confirm::menu_popup(buf, area, " Release ", lines, t);
}
