//! Shared test support: start the real `kockpit sandbox` binary and talk to it with real
//! clients (kubectl, kube-rs, plain HTTP).
#![allow(dead_code)]

pub mod pty;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `kockpit sandbox` process with its kubeconfig; killed on drop.
pub struct SandboxProc {
    child: Child,
    pub url: String,
    /// The sandbox's Prometheus listener (`/metrics` and the HTTP API).
    pub prometheus: String,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

impl SandboxProc {
    /// Start with extra flags (e.g. `["--speed", "20"]`), wait for `kubernetes: URL` and
    /// `prometheus: URL`. Without `--backfill` in `extra`, no traffic history is simulated
    /// (start-up is then quick in debug builds).
    pub fn start(extra: &[&str]) -> SandboxProc {
        let mut args: Vec<&str> = extra.to_vec();
        if !args.contains(&"--backfill") {
            args.extend(["--backfill", "0"]);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kockpit"))
            .arg("sandbox")
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kockpit sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut url, mut prometheus) = (None, None);
        while url.is_none() || prometheus.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(u) = line.strip_prefix("kubernetes: ") {
                        url = Some(u.to_string());
                    } else if let Some(u) = line.strip_prefix("prometheus: ") {
                        prometheus = Some(u.to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("sandbox did not announce its addresses within 30 s");
                }
            }
        }
        SandboxProc {
            child,
            url: url.unwrap_or_default(),
            prometheus: prometheus.unwrap_or_default(),
            kubeconfig,
            dir,
        }
    }

    /// Run kubectl against the sandbox.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(kubectl_bin())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get KIND NAME -n NS -o jsonpath=PATH`: one field of one object.
    pub fn jsonpath(&self, kind: &str, name: &str, ns: &str, path: &str) -> String {
        self.kubectl_ok(&[
            "get",
            kind,
            name,
            "-n",
            ns,
            "-o",
            &format!("jsonpath={path}"),
        ])
    }

    /// kubectl that must fail; returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Spawn kubectl with piped stdout (for `-f` / `-w`).
    pub fn kubectl_spawn(&self, args: &[&str]) -> Child {
        Command::new(kubectl_bin())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl")
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kubectl to test with: `$KUBECTL`, else `kubectl` on PATH. The tests need a real one
/// (`.ci/run` installs it); there is no fallback.
pub fn kubectl_bin() -> PathBuf {
    let bin = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let ok = Command::new(&bin)
        .args(["version", "--client"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need a real kubectl: set KUBECTL or put kubectl on PATH (.ci/run installs one)"
    );
    bin
}

/// Poll `f` until it returns Some, or panic after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Read lines from a child's stdout on a thread, delivered through a channel.
pub fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A plain HTTP/1.1 request on a fresh connection (`Connection: close`); returns the status
/// and the (de-chunked) body.
pub fn http_request(method: &str, url: &str, content_type: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = payload;
        while let Some((len, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        payload.to_string()
    };
    (status, body)
}

/// POST a JSON body and require a 2xx answer.
pub fn http_post_json(url: &str, body: &str) -> String {
    let (status, text) = http_request("POST", url, "application/json", body);
    assert!((200..300).contains(&status), "POST {url}: {status} {text}");
    text
}

/// A loopback HTTP server answering every request 503 until `healthy` is set, then 200.
pub fn health_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match std::io::Read::read(&mut s, &mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let (status, body) = if flag.load(std::sync::atomic::Ordering::SeqCst) {
                ("200 OK", "ok")
            } else {
                ("503 Service Unavailable", "starting")
            };
            let _ = std::io::Write::write_fmt(
                &mut s,
                format_args!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
            );
        }
    });
    (format!("http://{addr}"), healthy)
}
