//! How many `GET pods` lists per second the sandbox serves, over keep-alive HTTP/1.1 on
//! loopback, for the seeded world (11 pods in production) and for 1,000 pods.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kockpit::sandbox;

/// A minimal keep-alive HTTP/1.1 client: the sandbox answers lists with Content-Length.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn new(addr: std::net::SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            writer: s.try_clone().expect("clone"),
            reader: BufReader::new(s),
        }
    }

    fn get(&mut self, path: &str) -> usize {
        write!(
            self.writer,
            "GET {path} HTTP/1.1\r\nHost: sandbox\r\nAccept: application/json\r\n\r\n"
        )
        .expect("write");
        let mut len = 0;
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("read header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).expect("body");
        len
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let running = rt
        .block_on(sandbox::start(sandbox::Config::default()))
        .expect("sandbox");
    let addr = running.addr;
    let mut conn = Conn::new(addr);

    let mut g = c.benchmark_group("sandbox_get_pods");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(5));
    let bytes = conn.get("/api/v1/namespaces/production/pods");
    eprintln!("seeded world: production pod list = {bytes} bytes");
    g.bench_function("list_11_pods", |b| {
        b.iter(|| conn.get("/api/v1/namespaces/production/pods"))
    });

    // Scale one Deployment to 1,000 pods and let them all start.
    let body = r#"{"spec":{"replicas":1000}}"#;
    write!(
        conn.writer,
        "PATCH /apis/apps/v1/namespaces/staging/deployments/frontend HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/merge-patch+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write patch");
    let mut drain = Conn::new(addr);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let n = drain.get("/api/v1/namespaces/staging/pods?labelSelector=app%3Dfrontend&limit=1");
        let _ = n;
        let rs = running.sandbox.store.list(
            sandbox::resources::find("apps", "v1", "deployments").expect("deployments"),
            Some("staging"),
        );
        let ready =
            rs.0.iter()
                .find(|d| sandbox::store::name_of(d) == "frontend")
                .and_then(|d| d.pointer("/status/readyReplicas").and_then(|v| v.as_i64()))
                .unwrap_or(0);
        if ready >= 1000 {
            break;
        }
    }
    let mut conn = Conn::new(addr);
    let bytes = conn.get("/api/v1/namespaces/staging/pods");
    eprintln!("1,000-pod list = {bytes} bytes");
    g.bench_function("list_1000_pods", |b| {
        b.iter(|| conn.get("/api/v1/namespaces/staging/pods"))
    });
    g.finish();
    drop(running);
}

criterion_group!(benches, bench);
criterion_main!(benches);
