//! One environment's block: a frame in the production or staging style (thick for production,
//! with a `PRODUCTION` label), a connection-error line if any, then the panes.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget};

use super::layout::{self, Needs};
use super::pods::AppPods;
use super::text::{sanitize, truncate};
use super::{EnvView, apps, charts, events, logs, pods, release};
use crate::app::state::Conn;

pub(super) fn render(buf: &mut Buffer, area: Rect, v: &EnvView) {
    let t = v.theme();
    let env = v.env;
    let style = if env.production {
        t.production
    } else {
        t.staging
    };
    let mut title = vec![Span::raw(if v.active() { " ▶ " } else { " " })];
    if env.production {
        title.push(Span::raw("PRODUCTION · "));
    }
    title.push(Span::raw(sanitize(&env.name)));
    title.push(Span::raw(format!(
        " · {}/{} ",
        sanitize(&env.context),
        sanitize(&env.namespace)
    )));
    if env.read_only {
        title.push(Span::raw("· read-only "));
    }
    // On short screens the footer closes the frame: one more row for the panes.
    let borders = if area.height < layout::FULL_FRAME {
        Borders::TOP | Borders::LEFT | Borders::RIGHT
    } else {
        Borders::ALL
    };
    let block = Block::new()
        .borders(borders)
        .border_type(if env.production {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(style)
        .title(Line::from(title).style(style));
    let inner = block.inner(area);
    block.render(area, buf);

    let app_pods = AppPods::near_selection(env, v.app);
    let needs = Needs {
        banner: matches!(env.conn, Conn::Error(_)),
        app_lines: apps::lines(env),
        release: release::rows(v),
        pods: app_pods.total,
        events: env.events.len(),
    };
    let heights = layout::panes(inner.height, needs);
    let [
        banner,
        apps_area,
        release_area,
        charts_area,
        pods_area,
        logs_area,
        events_area,
    ] = layout::stack(inner, &heights);
    if let Conn::Error(msg) = &env.conn {
        let banner = layout::padded(banner);
        let text = format!("✖ disconnected, data may be stale: {}", sanitize(msg));
        let line = Line::styled(truncate(&text, usize::from(banner.width)), t.error);
        Paragraph::new(line).render(banner, buf);
    }
    apps::render(buf, apps_area, v);
    release::render(buf, release_area, v);
    charts::render(buf, charts_area, v);
    pods::render(buf, pods_area, v, &app_pods);
    logs::render(buf, logs_area, v);
    events::render(buf, events_area, v);
}
