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
use super::layout::MAX_POD_ROWS;
use super::text::{ellipsize_middle, fit_columns, sanitize, truncate, width};
use super::values::{age, more};
use crate::app::derive::{app_selectors, selects};
use crate::app::state::{AppView, EnvState, Labels, Pane, PodView};
use crate::config::theme::Theme;

const HEADER: [&str; 7] = [
    "NAME", "READY", "STATUS", "RESTARTS", "AGE", "VERSION", "NODE",
];
/// Cells are cut to these widths so the name keeps its room.
const MAX_STATUS: usize = 24;
const MAX_VERSION: usize = 20;
const MAX_NODE: usize = 40;
/// Pod names are cut (in the middle) to no less than this.
const MIN_NAME: usize = 16;

/// The selected app's pods around the selection, and how many it has.
pub(super) struct AppPods<'a> {
    pub total: usize,
    /// Index of `near[0]` among the app's pods.
    first: usize,
    /// The pods that a table of up to `MAX_POD_ROWS` rows showing the selection can show.
    near: Vec<&'a PodView>,
}

impl<'a> AppPods<'a> {
    /// One pass over the environment's pods, keeping only those near the selection. The app's
    /// pods are those `derive::app_pods` lists (selected by one of its Deployments or its
    /// Rollout, in name order), which `EnvState::selected_pod` indexes.
    pub fn near_selection(env: &'a EnvState, app: Option<&AppView>) -> AppPods<'a> {
        let Some(app) = app else {
            return AppPods {
                total: 0,
                first: 0,
                near: Vec::new(),
            };
        };
        let selectors: Vec<&Labels> = app_selectors(env, app);
        let scan = |selected: usize| {
            let first = (selected + 1).saturating_sub(MAX_POD_ROWS);
            let keep = first..selected + MAX_POD_ROWS;
            let mut near = Vec::with_capacity(keep.len());
            let mut total = 0;
            for p in env.pods.values() {
                if selectors.iter().any(|s| selects(s, &p.labels)) {
                    if keep.contains(&total) {
                        near.push(p);
                    }
                    total += 1;
                }
            }
            AppPods { total, first, near }
        };
        let found = scan(env.selected_pod);
        // A selection past the end (pods just went away) shows the last ones: rare, so a
        // second pass is fine.
        if found.total > 0 && env.selected_pod >= found.total {
            scan(found.total - 1)
        } else {
            found
        }
    }

    /// The (at most) `rows` pods to show with `selected` among them, and its row.
    fn window(&self, selected: usize, rows: usize) -> (&[&'a PodView], usize) {
        let offset = (selected + 1).saturating_sub(rows).max(self.first);
        let start = (offset - self.first).min(self.near.len());
        let end = (start + rows).min(self.near.len());
        (&self.near[start..end], selected - offset)
    }
}

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView, pods: &AppPods) {
    let t = v.theme();
    let inner = v.pane_block(Some(Pane::Pods), "").inner(area);
    let rows = usize::from(inner.height.saturating_sub(1)).min(MAX_POD_ROWS);
    let total = pods.total;
    let name = v.app.map_or(Cow::Borrowed("-"), |a| sanitize(&a.name));
    let mut title = vec![Span::raw(format!(" Pods {name} ({total}) "))];
    let app = v.app.filter(|_| total > 0 && rows > 0);
    let (pods, selected_row, above) = match app {
        Some(_) => {
            let selected = v.env.selected_pod.min(total - 1);
            let (pods, row) = pods.window(selected, rows);
            (pods, row, selected - row)
        }
        None => (&[][..], 0, 0),
    };
    // Say how many pods do not fit, above and below the window.
    if let Some(more) = more(above, total - above - pods.len()).filter(|_| app.is_some()) {
        title.push(Span::raw(format!("{more} ")));
    }
    v.pane_block(Some(Pane::Pods), title).render(area, buf);
    let Some(app) = app else {
        if total == 0 {
            Paragraph::new(Line::styled("no pods", t.dim)).render(inner, buf);
        }
        return;
    };

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
    // Still too wide: the last columns give way, their cells cut with `…`.
    fit_columns(&mut widths[..columns], avail);
    let header = Row::new(HEADER.into_iter().take(columns)).style(t.title);
    let body = pods.iter().zip(cells).enumerate().map(|(i, (pod, c))| {
        let [name, ready, status, restarts, age, version, node] = c;
        let ready_style = if pod.ready { Style::new() } else { t.warn };
        let cut = |i: usize, text: &str| truncate(text, widths[i]).into_owned();
        let row = Row::new(
            [
                Span::raw(shorten(name, &app.name, widths[0])),
                Span::styled(cut(1, &ready), ready_style),
                Span::styled(cut(2, &status), status_style(pod, t)),
                Span::raw(cut(3, &restarts)),
                Span::raw(cut(4, &age)),
                Span::raw(cut(5, &version)),
                Span::raw(cut(6, &node)),
            ]
            .into_iter()
            .take(columns),
        );
        if v.focused(Pane::Pods) && i == selected_row {
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
    let cut = |s: &'a str, max| Cow::Owned(truncate(&sanitize(s), max).into_owned());
    [
        sanitize(&p.name),
        format!("{}/{}", p.ready_containers, p.containers).into(),
        cut(&p.status, MAX_STATUS),
        restarts.into(),
        age(v.now, p.created).into(),
        cut(&p.version, MAX_VERSION),
        cut(&p.node, MAX_NODE),
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
        Style::new()
    }
}
