//! Following pod logs: one stream per pod of the followed app, lines batched into messages,
//! and a dropped stream resumed from the last timestamp seen (`sinceTime`), skipping the
//! lines it already delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, LogParams};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::app::msg::Msg;
use crate::app::state::LogLine;

/// Lines fetched from each pod's history when following starts.
const TAIL: i64 = 100;
/// Longest a line may be before it is cut (a runaway line must not eat the buffer).
const MAX_LINE: usize = 4096;

/// Follows the logs of one app's pods in one environment.
pub struct LogFollower {
    env: usize,
    api: Api<Pod>,
    tx: UnboundedSender<Msg>,
    app: Option<String>,
    streams: HashMap<String, CancellationToken>,
    parent: CancellationToken,
}

impl LogFollower {
    pub fn new(
        env: usize,
        client: Client,
        namespace: &str,
        tx: UnboundedSender<Msg>,
        parent: CancellationToken,
    ) -> Self {
        LogFollower {
            env,
            api: Api::namespaced(client, namespace),
            tx,
            app: None,
            streams: HashMap::new(),
            parent,
        }
    }

    /// Follow exactly these pods of `app` (stopping the others).
    pub fn follow(&mut self, app: &str, pods: &[String]) {
        if self.app.as_deref() != Some(app) {
            for (_, c) in self.streams.drain() {
                c.cancel();
            }
            self.app = Some(app.to_string());
        }
        self.streams.retain(|pod, c| {
            let keep = pods.contains(pod);
            if !keep {
                c.cancel();
            }
            keep
        });
        for pod in pods {
            if self.streams.contains_key(pod) {
                continue;
            }
            let cancel = self.parent.child_token();
            self.streams.insert(pod.clone(), cancel.clone());
            tokio::spawn(stream_pod(
                self.env,
                app.to_string(),
                self.api.clone(),
                pod.clone(),
                self.tx.clone(),
                cancel,
            ));
        }
    }
}

/// Split `2026-11-21T23:30:12.831761123Z rest` into its timestamp and the line.
pub fn split_timestamp(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((ts, rest)) => match ts.parse::<Timestamp>() {
            Ok(t) => (Some(t), rest),
            Err(_) => (None, line),
        },
        None => (line.parse().ok(), ""),
    }
}

async fn stream_pod(
    env: usize,
    app: String,
    api: Api<Pod>,
    pod: String,
    tx: UnboundedSender<Msg>,
    cancel: CancellationToken,
) {
    let pod_name: Arc<str> = Arc::from(pod.as_str());
    let mut seen = Resume::default();
    let mut backoff = Duration::from_millis(500);
    loop {
        let params = LogParams {
            follow: true,
            timestamps: true,
            tail_lines: seen.last.is_none().then_some(TAIL),
            since_time: seen.last,
            ..Default::default()
        };
        let opened = tokio::select! {
            _ = cancel.cancelled() => return,
            r = api.log_stream(&pod, &params) => r,
        };
        match opened {
            Ok(reader) => {
                backoff = Duration::from_millis(500);
                let mut lines = reader.lines();
                let mut batch: Vec<LogLine> = Vec::new();
                let mut flush_at = tokio::time::Instant::now() + Duration::from_millis(100);
                loop {
                    let next = tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep_until(flush_at), if !batch.is_empty() => {
                            if !send(&tx, env, &app, &mut batch) { return; }
                            continue;
                        }
                        l = lines.next() => l,
                    };
                    let Some(Ok(raw)) = next else { break };
                    let (ts, text) = split_timestamp(&raw);
                    if !seen.accept(ts, text) {
                        continue;
                    }
                    let mut text = crate::ui::text::sanitize(text).into_owned();
                    if text.len() > MAX_LINE {
                        let mut cut = MAX_LINE;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                        text.push('…');
                    }
                    if batch.is_empty() {
                        flush_at = tokio::time::Instant::now() + Duration::from_millis(100);
                    }
                    batch.push(LogLine {
                        ts,
                        pod: pod_name.clone(),
                        text,
                    });
                    if batch.len() >= 200 && !send(&tx, env, &app, &mut batch) {
                        return;
                    }
                }
                if !batch.is_empty() && !send(&tx, env, &app, &mut batch) {
                    return;
                }
            }
            Err(kube::Error::Api(e)) if e.code == 404 => return,
            Err(_) => {}
        }
        // The stream ended (pod restarted, API server went away): resume after a pause.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Where a pod's log stream got to, so a resumed stream (`sinceTime` = the last timestamp,
/// which the server repeats from) delivers only lines not yet delivered.
#[derive(Debug, Default)]
struct Resume {
    last: Option<Timestamp>,
    /// Lines already delivered with exactly the `last` timestamp.
    at_last: Vec<String>,
}

impl Resume {
    /// Whether a line is new; remembers it if so.
    fn accept(&mut self, ts: Option<Timestamp>, text: &str) -> bool {
        if let (Some(t), Some(l)) = (ts, self.last)
            && (t < l || (t == l && self.at_last.iter().any(|s| s == text)))
        {
            return false;
        }
        if ts.is_some() && ts != self.last {
            self.last = ts;
            self.at_last.clear();
        }
        self.at_last.push(text.to_string());
        true
    }
}

fn send(tx: &UnboundedSender<Msg>, env: usize, app: &str, batch: &mut Vec<LogLine>) -> bool {
    let lines = std::mem::take(batch);
    tx.send(Msg::Logs {
        env,
        app: app.to_string(),
        lines,
    })
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(r: &mut Resume, lines: &[&str]) -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| {
                let (ts, text) = split_timestamp(l);
                r.accept(ts, text).then(|| text.to_string())
            })
            .collect()
    }

    #[test]
    fn a_resumed_stream_repeats_nothing_and_loses_nothing() {
        let mut r = Resume::default();
        let first = feed(
            &mut r,
            &[
                "2026-11-22T01:00:00.100000000Z a",
                "2026-11-22T01:00:01.000000000Z b",
                "2026-11-22T01:00:01.000000000Z c",
            ],
        );
        assert_eq!(first, ["a", "b", "c"]);
        assert_eq!(r.last, "2026-11-22T01:00:01Z".parse().ok());
        // The stream dropped; resuming with sinceTime = the last timestamp, the server repeats
        // the lines at that instant: only the new ones pass. (A new line identical to one
        // already seen at the very same instant cannot be told apart and is dropped.)
        let resumed = feed(
            &mut r,
            &[
                "2026-11-22T01:00:01.000000000Z b",
                "2026-11-22T01:00:01.000000000Z c",
                "2026-11-22T01:00:01.000000000Z d",
                "2026-11-22T01:00:02.500000000Z e",
            ],
        );
        assert_eq!(resumed, ["d", "e"]);
        // Older lines (a server that ignores sinceTime) are dropped too.
        assert!(feed(&mut r, &["2026-11-22T00:59:00Z old"]).is_empty());
    }

    #[test]
    fn timestamps_are_split_off_lines() {
        let (ts, text) = split_timestamp("2026-11-22T01:00:00.123456789Z INFO  started");
        assert!(ts.is_some());
        assert_eq!(text, "INFO  started");
        assert_eq!(
            split_timestamp("no timestamp here"),
            (None, "no timestamp here")
        );
    }
}
