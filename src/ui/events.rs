//! Recent Kubernetes Events of the namespace, newest first, like `kubectl events`: age, type,
//! reason (with its count), object and message; warnings in the warning style.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use super::EnvView;
use super::text::{ellipsize_start, fit_columns, sanitize, truncate, width};
use super::values::{age, more};
use crate::app::state::Pane;

const HEADER: [&str; 5] = ["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"];
/// Narrower panes leave out TYPE (warnings keep their style).
const WITH_TYPE: u16 = 80;
const MAX_REASON: usize = 24;
const MAX_OBJECT: usize = 36;
const MIN_OBJECT: usize = 16;
const MIN_MESSAGE: usize = 32;

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView) {
    if area.height == 0 {
        return;
    }
    let t = v.theme();
    let events = &v.env.events;
    let inner = v.pane_block(Some(Pane::Events), "").inner(area);
    let skip = v.env.events_scroll.min(events.len().saturating_sub(1));
    let shown = usize::from(inner.height.saturating_sub(1)).min(events.len() - skip);
    let mut title = vec![Span::raw(format!(" Events ({}) ", events.len()))];
    if let Some(more) = more(skip, events.len() - skip - shown).filter(|_| shown > 0) {
        title.push(Span::raw(format!("{more} ")));
    }
    v.pane_block(Some(Pane::Events), title).render(area, buf);
    if events.is_empty() {
        Paragraph::new(Line::styled("no events", t.dim)).render(inner, buf);
        return;
    }

    let rows: Vec<(bool, [String; 5])> = events
        .iter()
        .rev()
        .skip(skip)
        .take(shown)
        .map(|e| {
            let reason = match e.count {
                n if n > 1 => format!("{} ×{n}", sanitize(&e.reason)),
                _ => sanitize(&e.reason).into_owned(),
            };
            let kind = if e.warning { "Warning" } else { "Normal" };
            let object = sanitize(&e.object).into_owned();
            let message = sanitize(&e.message).into_owned();
            (
                e.warning,
                [age(v.now, e.time), kind.into(), reason, object, message],
            )
        })
        .collect();
    let mut widths = HEADER.map(width);
    for (_, row) in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
    // The message says the most: objects give way to it (keeping the kind and the end of the
    // name), and it takes the rest of the row.
    let columns: &[usize] = if inner.width >= WITH_TYPE {
        &[0, 1, 2, 3, 4]
    } else {
        &[0, 2, 3, 4]
    };
    widths[2] = widths[2].min(MAX_REASON);
    let fixed: usize = columns
        .iter()
        .filter(|&&i| i < 3)
        .map(|&i| widths[i] + 1)
        .sum();
    let room = usize::from(inner.width).saturating_sub(fixed + 1 + MIN_MESSAGE);
    widths[3] = widths[3].min(MAX_OBJECT).min(room.max(MIN_OBJECT));
    let mut shown_widths: Vec<usize> = columns.iter().map(|&i| widths[i]).collect();
    let last = shown_widths.len() - 1;
    shown_widths[last] = usize::from(inner.width).saturating_sub(fixed + widths[3] + 1);
    fit_columns(&mut shown_widths, usize::from(inner.width));

    let constraints = shown_widths.iter().map(|&w| Constraint::Length(w as u16));
    let body = rows.into_iter().map(|(warning, cells)| {
        let cells = columns.iter().zip(&shown_widths).map(|(&i, &w)| match i {
            3 => object(&cells[3], w),
            _ => truncate(&cells[i], w).into_owned(),
        });
        Row::new(cells).style(if warning { t.warn } else { Style::new() })
    });
    Table::new(body, constraints)
        .header(Row::new(columns.iter().map(|&i| HEADER[i])).style(t.title))
        .column_spacing(1)
        .render(inner, buf);
}

/// `Kind/name` in at most `max` columns: the kind by its kubectl short name when that helps,
/// then the end of the name (where generated names differ): `rs/…52vv9kj87b`.
fn object(object: &str, max: usize) -> String {
    if width(object) <= max {
        return object.to_string();
    }
    let Some((kind, name)) = object.split_once('/') else {
        return ellipsize_start(object, max).into_owned();
    };
    let kind = short_kind(kind).unwrap_or(kind);
    let short = format!("{kind}/{name}");
    let kind_w = width(kind) + 1;
    if width(&short) <= max {
        short
    } else if kind_w + 2 <= max {
        format!("{kind}/{}", ellipsize_start(name, max - kind_w))
    } else {
        ellipsize_start(&short, max).into_owned()
    }
}

/// kubectl's short name of a kind, for the kinds whose Events a release shows.
fn short_kind(kind: &str) -> Option<&'static str> {
    const SHORT: [(&str, &str); 9] = [
        ("replicaset", "rs"),
        ("deployment", "deploy"),
        ("statefulset", "sts"),
        ("daemonset", "ds"),
        ("service", "svc"),
        ("horizontalpodautoscaler", "hpa"),
        ("persistentvolumeclaim", "pvc"),
        ("configmap", "cm"),
        ("ingress", "ing"),
    ];
    SHORT
        .iter()
        .find(|(long, _)| long.eq_ignore_ascii_case(kind))
        .map(|(_, short)| *short)
}

#[cfg(test)]
mod tests {
    use super::object;

    #[test]
    fn objects_keep_the_kind_and_the_end_of_the_name() {
        let rs = "replicaset/frontend-52vv9kj87b";
        assert_eq!(object(rs, 40), rs);
        assert_eq!(object(rs, 22), "rs/frontend-52vv9kj87b");
        assert_eq!(object(rs, 14), "rs/…52vv9kj87b");
        assert_eq!(
            object("Pod/checkout-canary-5f6d4c8b9-h4n2w", 16),
            "Pod/…4c8b9-h4n2w"
        );
        assert_eq!(object("Deployment/frontend", 16), "deploy/frontend");
        assert_eq!(object("no-kind-here", 8), "…nd-here");
        assert_eq!(object("Deployment/frontend", 4), "…end");
    }
}
