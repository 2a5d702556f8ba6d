//! The real binaries, measured end to end (release build; run with `cargo bench --bench
//! cockpit_live`): time from launch to the first frame showing pods with 1,000 pods in the
//! namespace, resident memory with 10,000 pods, and CPU time and bytes written to the
//! terminal per minute while nothing changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

struct Sandbox {
    child: Child,
    url: String,
    prometheus: String,
    kubeconfig: String,
    _dir: tempfile::TempDir,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sandbox(extra: &[&str]) -> Sandbox {
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("kubeconfig").to_string_lossy().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kockpit"))
        .args(["sandbox", "--write-kubeconfig", &kubeconfig])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sandbox");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut url, mut prometheus) = (String::new(), String::new());
    while url.is_empty() || prometheus.is_empty() {
        let line = lines.next().expect("sandbox output").expect("line");
        if let Some(u) = line.strip_prefix("kubernetes: ") {
            url = u.into();
        } else if let Some(u) = line.strip_prefix("prometheus: ") {
            prometheus = u.into();
        }
    }
    // Keep draining its output so it never writes into a closed pipe.
    std::thread::spawn(move || lines.by_ref().for_each(drop));
    Sandbox {
        child,
        url,
        prometheus,
        kubeconfig,
        _dir: dir,
    }
}

fn http(method: &str, url: &str, body: &str) -> String {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/merge-patch+json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Scale staging's frontend and wait until every pod is Ready.
fn scale(sb: &Sandbox, replicas: usize) {
    let url = format!(
        "{}/apis/apps/v1/namespaces/staging/deployments/frontend",
        sb.url
    );
    http(
        "PATCH",
        &url,
        &format!("{{\"spec\":{{\"replicas\":{replicas}}}}}"),
    );
    let start = Instant::now();
    loop {
        let body = http("GET", &url, "");
        let ready = body
            .split("\"readyReplicas\":")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        if ready >= replicas {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "pods never became ready"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct Cockpit {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    parser: Arc<Mutex<vt100::Parser>>,
    bytes: Arc<Mutex<usize>>,
    _writer: Box<dyn Write + Send>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
    _home: tempfile::TempDir,
}

fn cockpit(sb: &Sandbox, cols: u16, rows: u16) -> Cockpit {
    let home = tempfile::tempdir().expect("home");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("pty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_kockpit"));
    cmd.args([
        "--kubeconfig",
        &sb.kubeconfig,
        "--env",
        "staging=sandbox/staging",
        "--prometheus",
        &sb.prometheus,
    ]);
    cmd.env("HOME", home.path());
    cmd.env("XDG_CONFIG_HOME", home.path());
    cmd.env("TERM", "xterm-256color");
    let child = pair.slave.spawn_command(cmd).expect("spawn");
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
    let bytes = Arc::new(Mutex::new(0usize));
    let (p, b) = (parser.clone(), bytes.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut p) = p.lock() {
                p.process(&buf[..n]);
            }
            if let Ok(mut b) = b.lock() {
                *b += n;
            }
        }
    });
    let writer = pair.master.take_writer().expect("writer");
    Cockpit {
        child,
        parser,
        bytes,
        _writer: writer,
        _master: pair.master,
        _home: home,
    }
}

impl Cockpit {
    fn screen(&self) -> String {
        self.parser
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }
    fn pid(&self) -> u32 {
        self.child.process_id().unwrap_or(0)
    }
}

impl Drop for Cockpit {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// (user + system) CPU seconds and resident KiB of a process.
fn proc_stats(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    let hz = 100.0; // CLK_TCK on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / hz, rss)
}

fn wait_for(c: &Cockpit, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f(&c.screen()) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}:\n{}",
            c.screen()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs benches with no args only in test mode.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    // 1. Launch to first frame showing pods, 1,000 pods in the namespace.
    let sb = sandbox(&["--backfill", "0"]);
    scale(&sb, 1000);
    let mut times = Vec::new();
    for _ in 0..5 {
        let c = cockpit(&sb, 200, 50);
        let start = Instant::now();
        wait_for(&c, "pods", Duration::from_secs(60), |s| {
            s.contains("Running") && s.contains("frontend")
        });
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "launch to first frame with pods (1,000 pods): median {:?}, min {:?}, max {:?}",
        times[2], times[0], times[4]
    );

    // 2. Resident memory with 10,000 pods.
    scale(&sb, 10_000);
    let c = cockpit(&sb, 200, 50);
    wait_for(&c, "pods", Duration::from_secs(120), |s| {
        s.contains("Running")
    });
    std::thread::sleep(Duration::from_secs(10));
    let (_, rss) = proc_stats(c.pid());
    println!(
        "cockpit RSS with 10,000 pods: {:.1} MiB",
        rss as f64 / 1024.0
    );
    drop(c);
    drop(sb);

    // 3. Idle: a still world (manual clock, no traffic): CPU and bytes per minute.
    let sb = sandbox(&["--manual-clock", "--backfill", "0"]);
    let c = cockpit(&sb, 120, 35);
    wait_for(&c, "pods", Duration::from_secs(60), |s| {
        s.contains("Running")
    });
    std::thread::sleep(Duration::from_secs(15));
    let (cpu0, _) = proc_stats(c.pid());
    let b0 = *c.bytes.lock().expect("bytes");
    let minute = Duration::from_secs(60);
    std::thread::sleep(minute);
    let (cpu1, rss) = proc_stats(c.pid());
    let b1 = *c.bytes.lock().expect("bytes");
    println!(
        "idle for 60 s: CPU {:.2} s ({:.3} %), {} bytes written to the terminal, RSS {:.1} MiB",
        cpu1 - cpu0,
        (cpu1 - cpu0) / 60.0 * 100.0,
        b1 - b0,
        rss as f64 / 1024.0
    );
}
