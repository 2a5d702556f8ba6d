//! The sandbox's Prometheus: memory of one hour of 1 s history, and `query_range` latency for
//! a 30-minute, 120-step query of the cockpit's p99 panel (in the engine, and over HTTP).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kockpit::sandbox::{self, prom};

const P99: &str = r#"histogram_quantile(0.99, sum by (le, version) (rate(http_request_duration_seconds_bucket{namespace="production",app="checkout"}[1m])))"#;
const ERRORS: &str = r#"sum by (version) (rate(http_requests_total{namespace="production",app="checkout",code=~"5.."}[1m])) / sum by (version) (rate(http_requests_total{namespace="production",app="checkout"}[1m]))"#;

fn http_get(addr: std::net::SocketAddr, path: &str) -> usize {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    buf.len()
}

fn enc(q: &str) -> String {
    url::form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = sandbox::Config {
        manual_clock: true,
        backfill_seconds: 3600,
        ..Default::default()
    };
    let running = rt.block_on(sandbox::start(cfg)).expect("sandbox");
    let sb = running.sandbox.clone();
    let end = sb.store.clock.now().as_millisecond() / 1000 * 1000;
    let start = end - 30 * 60 * 1000;
    let step = 15_000; // 30 min / 120 steps
    {
        let db = sb.metrics.tsdb.read().expect("tsdb");
        eprintln!(
            "sample history after 1 h: {} series, {} samples, {:.1} MiB",
            db.series_count(),
            db.sample_count(),
            db.memory_bytes() as f64 / (1024.0 * 1024.0)
        );
    }
    let mut g = c.benchmark_group("sandbox_query_range_30m_120_steps");
    g.measurement_time(Duration::from_secs(5));
    for (name, q) in [("p99_latency", P99), ("error_ratio", ERRORS)] {
        g.bench_function(format!("engine_{name}"), |b| {
            b.iter(|| {
                let db = sb.metrics.tsdb.read().expect("tsdb");
                prom::range(&db, q, start, end, step).expect("query")
            })
        });
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=15",
            enc(q),
            start / 1000,
            end / 1000
        );
        let addr = running.prometheus_addr;
        g.bench_function(format!("http_{name}"), |b| b.iter(|| http_get(addr, &path)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
