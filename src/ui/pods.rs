//! The selected app's pods, like `kubectl get pods -o wide`: NAME, READY, STATUS, RESTARTS,
//! AGE, VERSION, NODE. Only the visible rows are built, so an app with thousands of pods costs
//! no more than a page of them.

use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use super::EnvView;
use super::text::{ellipsize_middle, sanitize, width};
use super::values::age;
use crate::app::derive::selects;
use crate::app::state::{AppView, EnvState, Labels, Pane, PodView};
use crate::config::theme::Theme;

const HEADER: [&str; 7] = [
    "NAME", "READY", "STATUS", "RESTARTS", "AGE", "VERSION", "NODE",
];
/// Pod names are cut (in the middle) to no less than this.
const MIN_NAME: usize = 16;

/// The pods of `app` as `derive::app_pods` lists them (selected by one of its Deployments, in
/// name order; `EnvState::selected_pod` indexes this sequence), without collecting them.
pub(super) fn app_pods<'a>(
    env: &'a EnvState,
    app: &'a AppView,
) -> impl Iterator<Item = &'a PodView> {
    let selectors: Vec<&Labels> = app
        .versions
        .iter()
        .filter_map(|v| env.deployments.get(&v.deployment))
        .map(|d| &d.selector)
        .collect();
    env.pods
        .values()
        .filter(move |p| selectors.iter().any(|s| selects(s, &p.labels)))
}

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView, total: usize) {
    let t = v.theme();
    let name = v.app.map_or(Cow::Borrowed("-"), |a| sanitize(&a.name));
    let block = v.pane_block(Some(Pane::Pods), format!(" Pods {name} ({total}) "));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(app) = v.app.filter(|_| total > 0) else {
        Paragraph::new(Line::styled("no pods", t.dim)).render(inner, buf);
        return;
    };

    let rows = usize::from(inner.height.saturating_sub(1));
    let selected = v.env.selected_pod.min(total - 1);
    let offset = (selected + 1).saturating_sub(rows);
    let pods: Vec<&PodView> = app_pods(v.env, app).skip(offset).take(rows).collect();

    let cells: Vec<[Cow<str>; 7]> = pods.iter().map(|p| cells(p, v)).collect();
    let mut widths = HEADER.map(width);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
    // Drop NODE, then shorten names (without the app's prefix, then in the middle) to fit.
    let avail = usize::from(inner.width);
    let rest: usize = widths[1..6].iter().map(|w| w + 1).sum();
    let columns = if widths[0] + rest + 1 + widths[6] <= avail {
        7
    } else {
        6
    };
    if columns == 6 {
        widths[0] = widths[0].min(avail.saturating_sub(rest).max(MIN_NAME));
    }
    let header = Row::new(HEADER.into_iter().take(columns)).style(t.dim);
    let body = pods.iter().zip(cells).enumerate().map(|(i, (pod, c))| {
        let [name, ready, status, restarts, age, version, node] = c;
        let ready_style = if pod.ready { t.base } else { t.warn };
        let row = Row::new(
            [
                Span::raw(shorten(name, &app.name, widths[0])),
                Span::styled(ready, ready_style),
                Span::styled(status, status_style(pod, t)),
                Span::raw(restarts),
                Span::raw(age),
                Span::raw(version),
                Span::raw(node),
            ]
            .into_iter()
            .take(columns),
        );
        if v.focused(Pane::Pods) && offset + i == selected {
            row.style(t.selected)
        } else {
            row
        }
    });
    let constraints = widths
        .iter()
        .take(columns)
        .map(|w| Constraint::Length(*w as u16));
    Widget::render(
        Table::new(body, constraints)
            .header(header)
            .column_spacing(1),
        inner,
        buf,
    );
}

/// `name` in at most `max` columns: without the app's prefix (the title names the app), then
/// cut in the middle.
fn shorten<'a>(name: Cow<'a, str>, app: &str, max: usize) -> Cow<'a, str> {
    if width(&name) <= max {
        return name;
    }
    let rest = name.strip_prefix(app).and_then(|r| r.strip_prefix('-'));
    Cow::Owned(ellipsize_middle(rest.unwrap_or(&name), max).into_owned())
}

fn cells<'a>(p: &'a PodView, v: &EnvView) -> [Cow<'a, str>; 7] {
    let restarts = match p.last_restart {
        Some(at) if p.restarts > 0 => format!("{} ({} ago)", p.restarts, age(v.now, Some(at))),
        _ => p.restarts.to_string(),
    };
    [
        sanitize(&p.name),
        format!("{}/{}", p.ready_containers, p.containers).into(),
        sanitize(&p.status),
        restarts.into(),
        age(v.now, p.created).into(),
        sanitize(&p.version),
        sanitize(&p.node),
    ]
}

/// kubectl's STATUS in colour: failures in the error style, anything short of running and
/// ready in the warning style.
fn status_style(p: &PodView, t: &Theme) -> Style {
    let s = p.status.as_str();
    if s.contains("BackOff") || s.contains("Err") || matches!(s, "OOMKilled" | "Failed" | "Evicted")
    {
        t.error
    } else if matches!(s, "Completed" | "Succeeded") {
        t.dim
    } else if s != "Running" || !p.ready {
        t.warn
    } else {
        t.base
    }
}
