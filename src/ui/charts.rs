//! The selected app's error rate and p99 latency over the chart window: one braille line per
//! version (old version in the stable style, new one in the canary style), the limit as a
//! dotted line, and words instead of an empty chart when there is no data or no traffic.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget};

use super::text::sanitize;
use super::values::{millis, percent, series};
use super::{EnvView, is_old, role_style};
use crate::app::state::{AppMetrics, AppView, Point, VersionSeries};
use crate::config::theme::Theme;
use crate::sandbox::table::human_duration;

/// Below this width the two charts are stacked (or only errors shown).
const SIDE_BY_SIDE: u16 = 40;
/// Plot rows from which the time axis gets labels.
const TIME_LABELS: u16 = 6;

#[derive(Clone, Copy)]
enum Kind {
    Errors,
    P99,
}

impl Kind {
    fn points(self, s: &VersionSeries) -> &[Point] {
        match self {
            Kind::Errors => &s.error_ratio,
            Kind::P99 => &s.p99_seconds,
        }
    }

    /// Plotted units: percent and milliseconds.
    fn scale(self) -> f64 {
        match self {
            Kind::Errors => 100.0,
            Kind::P99 => 1000.0,
        }
    }

    fn label(self, v: f64) -> String {
        match self {
            Kind::Errors => percent(v),
            Kind::P99 => millis(v),
        }
    }
}

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView) {
    if area.height == 0 {
        return;
    }
    if area.width >= SIDE_BY_SIDE {
        let left = Rect {
            width: (area.width - 1) / 2,
            ..area
        };
        let right = Rect {
            x: left.right() + 1,
            width: area.width - left.width - 1,
            ..area
        };
        chart(buf, left, v, Kind::Errors);
        chart(buf, right, v, Kind::P99);
    } else if area.height >= 8 {
        let top = Rect {
            height: area.height / 2,
            ..area
        };
        let bottom = Rect {
            y: top.bottom(),
            height: area.height - top.height,
            ..area
        };
        chart(buf, top, v, Kind::Errors);
        chart(buf, bottom, v, Kind::P99);
    } else {
        chart(buf, area, v, Kind::Errors);
    }
}

fn chart(buf: &mut Buffer, area: Rect, v: &EnvView, kind: Kind) {
    let t = v.theme();
    let window = human_duration(v.chart_window);
    let (limit, name) = match kind {
        Kind::Errors => (v.ctx.max_error_ratio, format!("Errors ({window})")),
        Kind::P99 => (v.ctx.max_p99_seconds, "p99".to_string()),
    };
    let metrics = v.app.and_then(|app| v.env.metrics.get(&app.name));
    let failed = metrics.and_then(|m| m.error.as_deref());
    let mut title = vec![Span::raw(format!(" {name} limit {} ", kind.label(limit)))];
    if failed.is_some() && metrics.is_some_and(|m| !m.versions.is_empty()) {
        title.push(Span::styled("stale ", t.warn));
    }
    let title = Line::from(title);
    let lines = v.app.map(|app| lines(app, metrics, t)).unwrap_or_default();
    let legend = legend(&lines);
    let room = usize::from(area.width).saturating_sub(title.width() + 2);
    let mut block = v.pane_block(None, title);
    // The legend goes on the right chart, when there is room (the apps table's version
    // colours say the same).
    if matches!(kind, Kind::P99) && !lines.is_empty() && legend.width() <= room {
        block = block.title_top(legend.right_aligned());
    }
    let inner = block.inner(area);
    block.render(area, buf);

    let end = v.now.as_second();
    let start = end - v.chart_window.max(1);
    let segments = segments(&lines, kind, start);
    if segments.is_empty() {
        let (msg, style) = if v.app.is_none() {
            ("no app selected".into(), t.dim)
        } else if let Some(e) = failed.filter(|_| lines.is_empty()) {
            (format!("metrics: {}", sanitize(e)), t.error)
        } else if lines.iter().any(|(_, s)| !kind.points(s).is_empty()) {
            ("no traffic".into(), t.dim)
        } else {
            ("no data".into(), t.dim)
        };
        let middle = Rect {
            y: inner.y + inner.height / 2,
            height: inner.height.min(1),
            ..inner
        };
        Paragraph::new(Line::styled(msg, style))
            .alignment(Alignment::Center)
            .render(middle, buf);
        return;
    }
    if inner.width < 12 || inner.height < 2 {
        return;
    }

    let limit_line = limit * kind.scale();
    let highest = segments.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1));
    let top = nice_ceil(highest.fold(limit_line, f64::max) * 1.1);
    let (x0, x1) = (start as f64, end as f64);
    let threshold = [(x0, limit_line), (x1, limit_line)];
    let mut datasets = vec![
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(t.threshold)
            .data(&threshold),
    ];
    datasets.extend(segments.iter().map(|(style, pts)| {
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(*style)
            .data(pts)
    }));
    let mut x_axis = Axis::default().bounds([x0, x1]).style(t.dim);
    if inner.height >= TIME_LABELS {
        x_axis = x_axis.labels([format!("-{window}"), "now".into()]);
    }
    let y_axis = Axis::default()
        .bounds([0.0, top])
        .style(t.dim)
        .labels(["0".to_string(), kind.label(top / kind.scale())]);
    Chart::new(datasets)
        .x_axis(x_axis)
        .y_axis(y_axis)
        .legend_position(None)
        .style(t.base)
        .render(inner, buf);
}

/// The round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at or above `x`,
/// so the axis reads `800ms`, not `744ms`.
fn nice_ceil(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let unit = 10f64.powf(x.log10().floor());
    let step = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .find(|s| s * unit >= x * (1.0 - 1e-9))
        .unwrap_or(10.0);
    step * unit
}

/// The series drawn, with their styles, in drawing order: the new versions, then the old ones
/// (stable, active, replaced) on top, so that a canary with the same values (both at zero
/// errors, say) cannot hide the line it is compared with; last, old versions still reporting
/// that no Deployment runs any more.
fn lines<'a>(
    app: &'a AppView,
    metrics: Option<&'a AppMetrics>,
    theme: &Theme,
) -> Vec<(Style, &'a VersionSeries)> {
    let all = metrics.map_or(&[][..], |m| &m.versions[..]);
    let gone = all
        .iter()
        .filter(|s| !app.versions.iter().any(|v| v.tag == s.version));
    let (old, new): (Vec<_>, Vec<_>) = app.versions.iter().partition(|v| is_old(v.role));
    new.into_iter()
        .chain(old)
        .filter_map(|v| series(metrics, &v.tag).map(|s| (role_style(theme, v.role), s)))
        .chain(gone.map(|s| (theme.stable, s)))
        .collect()
}

/// Runs of consecutive points with traffic, in plotted units; gaps stay gaps.
fn segments(
    lines: &[(Style, &VersionSeries)],
    kind: Kind,
    start: i64,
) -> Vec<(Style, Vec<(f64, f64)>)> {
    let mut out = Vec::new();
    for (style, s) in lines {
        let mut run = Vec::new();
        for (ts, value) in kind.points(s).iter().filter(|(ts, _)| *ts >= start) {
            match value {
                Some(y) => run.push((*ts as f64, y * kind.scale())),
                None if !run.is_empty() => out.push((*style, std::mem::take(&mut run))),
                None => {}
            }
        }
        if !run.is_empty() {
            out.push((*style, run));
        }
    }
    out
}

/// `━ 1.4.2 ━ 1.5.0`: which line is which version, old ones first.
fn legend<'a>(lines: &[(Style, &'a VersionSeries)]) -> Line<'a> {
    let mut spans = Vec::new();
    for (style, s) in lines.iter().rev() {
        spans.push(Span::styled(" ━ ", *style));
        spans.push(Span::styled(sanitize(&s.version), *style));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::nice_ceil;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceil(682.0), 800.0);
        assert_eq!(nice_ceil(1.1), 1.5);
        assert_eq!(nice_ceil(550.0), 600.0);
        assert!((nice_ceil(0.013) - 0.015).abs() < 1e-12);
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(f64::NAN), 1.0);
    }
}
