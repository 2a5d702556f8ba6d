//! Recent Kubernetes Events of the namespace, newest first, like `kubectl events`: age, type,
//! reason (with its count), object and message; warnings in the warning style.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use super::EnvView;
use super::text::{ellipsize_middle, sanitize, width};
use super::values::age;
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
    let block = v.pane_block(Some(Pane::Events), format!(" Events ({}) ", events.len()));
    let inner = block.inner(area);
    block.render(area, buf);
    if events.is_empty() {
        Paragraph::new(Line::styled("no events", t.dim)).render(inner, buf);
        return;
    }

    let rows: Vec<(bool, [String; 5])> = events
        .iter()
        .rev()
        .skip(v.env.events_scroll.min(events.len() - 1))
        .take(usize::from(inner.height.saturating_sub(1)))
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
    // The message says the most: objects give way to it, cut in the middle (keeping the kind
    // and the name's suffix).
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

    let constraints = columns.iter().map(|&i| match i {
        4 => Constraint::Fill(1),
        i => Constraint::Length(widths[i] as u16),
    });
    let body = rows.into_iter().map(|(warning, mut cells)| {
        cells[3] = ellipsize_middle(&cells[3], widths[3]).into_owned();
        Row::new(columns.iter().map(|&i| std::mem::take(&mut cells[i]))).style(if warning {
            t.warn
        } else {
            t.base
        })
    });
    Table::new(body, constraints)
        .header(Row::new(columns.iter().map(|&i| HEADER[i])).style(t.dim))
        .column_spacing(1)
        .render(inner, buf);
}
