//! The cockpit's hot paths: rendering a frame with 10,000 pods (target < 2 ms), applying
//! watch events to the state (target > 100k events/s), and the memory 10,000 pods take.

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use kockpit::app::msg::{Change, ClusterEvent, Msg};
use kockpit::app::state::{AppState, DeploymentView, EnvState, LogLine, PodView, ServiceView};
use kockpit::app::update::update;
use kockpit::config::keymap::Keymap;
use kockpit::config::theme::Theme;
use kockpit::ui::{UiContext, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(i: usize, now: Timestamp) -> PodView {
    PodView {
        name: format!("frontend-7d9f8c6b5-{i:05}"),
        labels: labels(&[("app", "frontend"), ("pod-template-hash", "7d9f8c6b5")]),
        version: "3.2.0".into(),
        status: "Running".into(),
        ready_containers: 1,
        containers: 1,
        ready: true,
        restarts: (i % 3) as i32,
        last_restart: None,
        created: Some(now - jiff::SignedDuration::from_secs(3600)),
        node: format!("node-{}", i % 50),
        owner: Some("frontend-7d9f8c6b5".into()),
    }
}

/// Two environments; production runs `frontend` with `pods` pods, all selected.
fn state(pods: usize, now: Timestamp) -> AppState {
    let mut envs = Vec::new();
    for (name, production) in [("staging", false), ("production", true)] {
        let mut env = EnvState {
            name: name.into(),
            context: "bench".into(),
            namespace: name.into(),
            production,
            ..Default::default()
        };
        env.deployments.insert(
            "frontend".into(),
            DeploymentView {
                name: "frontend".into(),
                labels: labels(&[("app", "frontend")]),
                selector: labels(&[("app", "frontend")]),
                template_labels: labels(&[("app", "frontend")]),
                replicas: pods as i32,
                images: vec!["registry.local/frontend:3.2.0".into()],
                revision: 3,
                generation: 3,
                observed_generation: 3,
                status_replicas: pods as i32,
                updated: pods as i32,
                ready: pods as i32,
                available: pods as i32,
                ..Default::default()
            },
        );
        env.services.insert(
            "frontend".into(),
            ServiceView {
                name: "frontend".into(),
                selector: labels(&[("app", "frontend")]),
            },
        );
        if production {
            for i in 0..pods {
                let p = pod(i, now);
                env.pods.insert(p.name.clone(), p);
            }
            for i in 0..2000 {
                env.logs.lines.push_back(LogLine {
                    ts: Some(now),
                    pod: format!("frontend-7d9f8c6b5-{:05}", i % 97).into(),
                    text: format!("INFO  GET /api/v1/items 200 {}ms trace={i:016x}", i % 90),
                });
            }
        }
        env.apps = kockpit::app::derive::apps(&env);
        envs.push(env);
    }
    let mut s = AppState::new(envs, now, 900);
    s.size = (200, 50);
    s.active_env = 1;
    s
}

fn ctx() -> UiContext {
    let keymap = Keymap::defaults().expect("built-in keymap");
    UiContext {
        theme: Theme::default(),
        help: keymap.help(),
        max_error_ratio: 0.01,
        max_p99_seconds: 0.5,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::now();
    let before = rss_kib();
    let big = state(10_000, now);
    let after = rss_kib();
    eprintln!(
        "state with 10,000 pods: +{:.1} MiB RSS",
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    let ctx = ctx();

    let mut g = c.benchmark_group("render");
    g.measurement_time(Duration::from_secs(5));
    for (w, h) in [(200u16, 50u16), (80, 24)] {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        let mut s = big.clone();
        s.size = (w, h);
        g.bench_function(format!("frame_10k_pods_{w}x{h}"), |b| {
            b.iter(|| term.draw(|f| render(f, &s, &ctx)).map(|_| ()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("update");
    let n = 10_000u64;
    g.throughput(Throughput::Elements(n));
    let events: Vec<Msg> = (0..n as usize)
        .map(|i| {
            let mut p = pod(i % 10_000, now);
            p.restarts = (i / 10_000) as i32 + 1;
            Msg::Cluster {
                env: 1,
                event: ClusterEvent::Pod(Change::Upsert(p)),
            }
        })
        .collect();
    g.bench_function("pod_watch_events", |b| {
        b.iter_batched(
            || (big.clone(), events.clone()),
            |(mut s, evs)| {
                for m in evs {
                    update(&mut s, m);
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
