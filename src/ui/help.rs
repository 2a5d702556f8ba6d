//! The help overlay: the bindings in force (keys → what they do), centred, in as many columns
//! as the screen's height needs (two at 80x24), with keys and descriptions shortened to fit.

use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::UiContext;
use super::layout::centered;
use super::text::{sanitize, truncate, width};

/// Keys keep at least this many columns when descriptions need the room.
const MIN_KEYS: usize = 8;
const GAP: &str = "  ";

pub(super) fn render(buf: &mut Buffer, area: Rect, ctx: &UiContext) {
    let t = &ctx.theme;
    let entries: Vec<_> = ctx
        .help
        .iter()
        .map(|(k, d)| (sanitize(k), sanitize(d)))
        .collect();
    let keys_full = entries.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let desc_full = entries.iter().map(|(_, d)| width(d)).max().unwrap_or(0);
    // Rows inside the border, less the closing hint.
    let max_rows = usize::from(area.height.saturating_sub(3)).max(1);
    let columns = entries.len().div_ceil(max_rows).max(1);
    let rows = entries.len().div_ceil(columns).max(1);
    // Inside the border: a space, then columns separated by a gap.
    let room = usize::from(area.width).saturating_sub(3);
    let col_room = room.saturating_sub(GAP.len() * (columns - 1)) / columns;
    let keys_w = keys_full.min(col_room.saturating_sub(desc_full + 1).max(MIN_KEYS));
    let desc_w = desc_full.min(col_room.saturating_sub(keys_w + 1));
    let inner_w = 1 + columns * (keys_w + 1 + desc_w) + GAP.len() * (columns - 1);
    let popup = centered(area, (inner_w + 2) as u16, (rows + 3) as u16);

    let mut lines: Vec<Line> = (0..rows)
        .map(|r| {
            let mut spans = vec![Span::raw(" ")];
            for c in 0..columns {
                let Some((k, d)) = entries.get(c * rows + r) else {
                    break;
                };
                if c > 0 {
                    spans.push(Span::raw(GAP));
                }
                spans.push(Span::styled(
                    format!("{:>keys_w$}", fit_keys(k, keys_w)),
                    t.title,
                ));
                spans.push(Span::raw(format!(" {:<desc_w$}", truncate(d, desc_w))));
            }
            Line::from(spans)
        })
        .collect();
    if entries.is_empty() {
        lines.push(Line::styled(" no key bindings", t.dim));
    }
    lines.push(Line::raw(" the help key or esc closes this"));
    Clear.render(popup, buf);
    let block = Block::bordered()
        .border_style(t.border_focused)
        .title(Line::styled(" Keys ", t.title));
    Paragraph::new(lines)
        .style(t.base)
        .block(block)
        .render(popup, buf);
}

/// As many whole keys of `k, up, …` as fit in `max` columns (at least the first, cut).
fn fit_keys(keys: &str, max: usize) -> Cow<'_, str> {
    if width(keys) <= max {
        return Cow::Borrowed(keys);
    }
    let mut end = 0;
    for (i, _) in keys.match_indices(", ") {
        if width(&keys[..i]) > max {
            break;
        }
        end = i;
    }
    if end == 0 {
        truncate(keys, max)
    } else {
        Cow::Borrowed(&keys[..end])
    }
}
