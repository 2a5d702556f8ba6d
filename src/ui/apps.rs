//! The apps table: one row per app with its strategy, versions (one line each, plus an old
//! version still serving during a rolling update), revision, rollout status and the latest
//! error ratio and p99 of each version. As the pane narrows the router's name shortens
//! (`Argo Rollouts` → `Argo`) and goes, then the track names and the revision go, then the
//! status shortens and the two metrics share a column.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    HighlightSpacing, Paragraph, Row, StatefulWidget, Table, TableState, Widget,
};

use super::text::{sanitize, truncate, width};
use super::values::{Latest, latest, millis, old_series, percent};
use super::{EnvView, role_style};
use crate::app::state::{AppView, Conn, EnvState, Pane, Rollout, Router, Strategy};

/// How much to say, from the widest form to the tersest.
#[derive(Clone, Copy)]
struct Detail {
    router: bool,
    /// The router's short name.
    short_router: bool,
    track: bool,
    rev: bool,
    /// Short rollout words, errors and p99 in one column.
    compact: bool,
}

const DETAILS: [Detail; 6] = [
    Detail {
        router: true,
        short_router: false,
        track: true,
        rev: true,
        compact: false,
    },
    Detail {
        router: true,
        short_router: true,
        track: true,
        rev: true,
        compact: false,
    },
    Detail {
        router: false,
        short_router: true,
        track: true,
        rev: true,
        compact: false,
    },
    Detail {
        router: false,
        short_router: true,
        track: false,
        rev: true,
        compact: false,
    },
    Detail {
        router: false,
        short_router: true,
        track: false,
        rev: false,
        compact: false,
    },
    Detail {
        router: false,
        short_router: true,
        track: false,
        rev: false,
        compact: true,
    },
];

/// Widest app name, track and tag (cut with `…` beyond).
const MAX_NAME: usize = 24;
const MAX_TRACK: usize = 10;
const MAX_TAG: usize = 20;
/// Widest rollout text, in full and compact form.
const ROLLOUT_MAX: [usize; 2] = [24, 12];

/// Text lines the rows need (an app shows one line per version).
pub(super) fn lines(env: &EnvState) -> u16 {
    env.apps.iter().map(|a| row_height(env, a)).sum()
}

fn row_height(env: &EnvState, app: &AppView) -> u16 {
    let status = if progress(env, app, false).is_some() {
        2
    } else {
        1
    };
    let old = old_series(env.metrics.get(&app.name), app).count();
    (app.versions.len() + old).max(status) as u16
}

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView) {
    let t = v.theme();
    let env = v.env;
    let block = v.pane_block(Some(Pane::Apps), format!(" Apps ({}) ", env.apps.len()));
    let inner = block.inner(area);
    block.render(area, buf);
    if env.apps.is_empty() {
        // With nothing to list, the whole reason for a failed connection fits here.
        let (msg, style) = match &env.conn {
            Conn::Connecting => ("connecting…".to_string(), t.dim),
            Conn::Error(e) => (format!("cannot list apps: {}", sanitize(e)), t.error),
            Conn::Live => (
                format!("no apps in namespace {}", sanitize(&env.namespace)),
                t.dim,
            ),
        };
        Paragraph::new(Line::styled(msg, style))
            .wrap(ratatui::widgets::Wrap { trim: true })
            .render(inner, buf);
        return;
    }

    // The most detailed form that fits beside the selection marker; the tersest otherwise.
    let avail = usize::from(inner.width);
    let build = |d: Detail| {
        let rows: Vec<Vec<Text>> = env.apps.iter().map(|app| cells(v, app, d)).collect();
        let widths = widths(&rows, d);
        (d, rows, widths)
    };
    let fits = |w: &[u16]| w.iter().map(|w| usize::from(*w) + 1).sum::<usize>() <= avail;
    let (detail, rows, widths) = DETAILS
        .into_iter()
        .map(&build)
        .find(|(_, _, w)| fits(w))
        .unwrap_or_else(|| build(DETAILS[DETAILS.len() - 1]));
    let header = Row::new(headers(detail)).style(t.title);
    let selected = env.selected_app.min(env.apps.len() - 1);
    // The selection goes under the cells, so coloured versions and statuses keep their colour.
    let rows = rows
        .into_iter()
        .zip(&env.apps)
        .enumerate()
        .map(|(i, (cells, app))| {
            let row = Row::new(cells).height(row_height(env, app));
            if v.active() && i == selected {
                row.style(t.selected)
            } else {
                row
            }
        });
    let table = Table::new(rows, widths.iter().map(|w| Constraint::Length(*w)))
        .header(header)
        .column_spacing(1)
        .highlight_symbol("▸")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(selected);
    StatefulWidget::render(table, inner, buf, &mut state);
}

fn headers(d: Detail) -> Vec<&'static str> {
    let mut h = vec!["APP", "STRATEGY", "VERSIONS"];
    if d.rev {
        h.push("REV");
    }
    h.push("ROLLOUT");
    if d.compact {
        h.push("ERR/P99");
    } else {
        h.extend(["ERRORS", "P99"]);
    }
    h
}

/// Column widths: the widest cell or header of each column.
fn widths(rows: &[Vec<Text>], d: Detail) -> Vec<u16> {
    headers(d)
        .into_iter()
        .enumerate()
        .map(|(i, h)| rows.iter().map(|r| r[i].width()).fold(width(h), usize::max) as u16)
        .collect()
}

fn cells<'a>(v: &EnvView<'a>, app: &'a AppView, d: Detail) -> Vec<Text<'a>> {
    let t = v.theme();
    let metrics = v.env.metrics.get(&app.name);
    let mut versions = Vec::new();
    let mut health = Vec::new();
    for ver in &app.versions {
        let mut line = Vec::new();
        if let Some(track) = ver.track.as_deref().filter(|_| d.track) {
            line.push(Span::raw(format!(
                "{} ",
                truncate(&sanitize(track), MAX_TRACK)
            )));
        }
        let tag = truncate(&sanitize(&ver.tag), MAX_TAG).into_owned();
        line.push(Span::styled(tag, role_style(t, ver.role)));
        let ready = if ver.ready < ver.desired {
            t.warn
        } else {
            Style::new()
        };
        line.push(Span::styled(
            format!(" {}/{}", ver.ready, ver.desired),
            ready,
        ));
        versions.push(Line::from(line));
        health.push(latest(metrics, &ver.tag));
    }
    for s in old_series(metrics, app) {
        versions.push(Line::from(vec![
            Span::styled(
                truncate(&sanitize(&s.version), MAX_TAG).into_owned(),
                t.stable,
            ),
            Span::styled(" old", t.dim),
        ]));
        health.push((Latest::of(&s.error_ratio), Latest::of(&s.p99_seconds)));
    }

    let mut status = vec![rollout_line(app, v, d.compact)];
    if let Some(p) = progress(v.env, app, d.compact) {
        status.push(Line::styled(p, t.dim));
    }
    let mut row = vec![
        Text::from(truncate(&sanitize(&app.name), MAX_NAME).into_owned()),
        Text::from(strategy(app, d.router.then_some(d.short_router))),
        Text::from(versions),
    ];
    if d.rev {
        row.push(Text::from(app.revision.to_string()));
    }
    row.push(Text::from(status));
    let (max_err, max_p99) = (v.ctx.max_error_ratio, v.ctx.max_p99_seconds);
    let err = |l: Latest| metric(l, max_err, percent, v);
    let p99 = |l: Latest| metric(l, max_p99, millis, v);
    if d.compact {
        row.push(Text::from_iter(health.iter().map(|&(e, p)| match (e, p) {
            (Latest::Value(_), _) => Line::from(vec![err(e), Span::raw(" "), p99(p)]),
            // Absent for the same reason: say it once.
            _ if e == p => Line::from(err(e)),
            _ => Line::from(vec![err(e), Span::raw(" "), p99(p)]),
        })));
    } else {
        row.push(Text::from_iter(
            health.iter().map(|&(e, _)| Line::from(err(e))),
        ));
        row.push(Text::from_iter(
            health.iter().map(|&(_, p)| Line::from(p99(p))),
        ));
    }
    row
}

/// A latest value: over the limit in the error style; absence in words, dimmed.
fn metric<'a>(value: Latest, limit: f64, fmt: fn(f64) -> String, v: &EnvView) -> Span<'a> {
    let t = v.theme();
    let style = match value {
        Latest::Value(_) if value.exceeds(limit) => t.error,
        Latest::Value(_) => Style::new(),
        Latest::NoData | Latest::NoTraffic => t.dim,
    };
    let text = value.show(fmt);
    // Values align in the compact column.
    Span::styled(
        if matches!(value, Latest::Value(_)) {
            format!("{text:<5}")
        } else {
            text
        },
        style,
    )
}

/// What splits the traffic, by kind: in full, or short.
fn router_name(r: &Router, short: bool) -> &'static str {
    match (r, short) {
        (Router::HttpRoute(_), _) => "HTTPRoute",
        (Router::ReplicaRatio(_), _) => "replicas",
        (Router::Nginx(_), false) => "ingress-nginx",
        (Router::Nginx(_), true) => "nginx",
        (Router::Argo(_), false) => "Argo Rollouts",
        (Router::Argo(_), true) => "Argo",
        (Router::Traefik(_), _) => "Traefik",
        (Router::Istio(_), _) => "Istio",
        (Router::Unknown, _) => "no router",
    }
}

/// `canary 10% (HTTPRoute)`, `blue/green → blue`, `rolling`; shorter without the router
/// (`router`: whether to name it, and shortly).
fn strategy(app: &AppView, router: Option<bool>) -> String {
    match &app.strategy {
        Strategy::Canary {
            router: r,
            canary_weight,
        } => {
            let weight = canary_weight.map_or("?".into(), |w| format!("{w:.0}"));
            match router {
                Some(short) => format!("canary {weight}% ({})", router_name(r, short)),
                None => format!("canary {weight}%"),
            }
        }
        Strategy::BlueGreen { active, .. } => {
            let active = truncate(&sanitize(active), MAX_TRACK).into_owned();
            if router.is_some() {
                format!("blue/green → {active}")
            } else {
                format!("b/g → {active}")
            }
        }
        Strategy::Rolling => "rolling".into(),
    }
}

fn rollout_line<'a>(app: &'a AppView, v: &EnvView, compact: bool) -> Line<'a> {
    let t = v.theme();
    let max = ROLLOUT_MAX[usize::from(compact)];
    match &app.rollout {
        Rollout::Complete => Line::styled("complete", t.ok),
        Rollout::WaitingForSpec if compact => Line::styled("waiting", t.warn),
        Rollout::WaitingForSpec => Line::styled("waiting for spec", t.warn),
        Rollout::Progressing(s) => Line::styled(truncate(&sanitize(s), max).into_owned(), t.warn),
        Rollout::Failed(_) if compact => Line::styled("timed out", t.error),
        Rollout::Failed(_) => Line::styled("deadline exceeded", t.error),
        Rollout::Paused => Line::styled("paused", t.warn),
        Rollout::Step {
            step,
            steps,
            paused: true,
        } if compact => Line::styled(format!("paused {step}/{steps}"), t.warn),
        Rollout::Step {
            step,
            steps,
            paused: true,
        } => Line::styled(format!("paused at step {step}/{steps}"), t.warn),
        Rollout::Step { step, steps, .. } => Line::styled(format!("step {step}/{steps}"), t.warn),
        Rollout::Degraded { aborted: true, .. } => Line::styled("aborted", t.error),
        Rollout::Degraded { .. } => Line::styled("degraded", t.error),
    }
}

/// For a failed rollout, how far it got (`2 of 6 updated`), from its Deployments.
fn progress(env: &EnvState, app: &AppView, compact: bool) -> Option<String> {
    if !matches!(app.rollout, Rollout::Failed(_)) {
        return None;
    }
    let d = app
        .versions
        .iter()
        .filter_map(|ver| env.deployments.get(&ver.deployment))
        .find(|d| d.updated < d.replicas)?;
    Some(if compact {
        format!("{}/{} updated", d.updated, d.replicas)
    } else {
        format!("{} of {} updated", d.updated, d.replicas)
    })
}
