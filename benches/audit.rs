//! The cost of one audit log append (`cargo bench --bench audit`): a typical intent entry
//! (promote 10 → 25 with a reason), written under the lock and made durable — the line's
//! `fsync` plus the head anchor (temp file, `fsync`, rename, directory `fsync`).
//!
//! Measured twice: in a temp dir on the disk that holds `$TMPDIR` (what an operator's
//! `~/.local/state` sees) and in `/dev/shm` (tmpfs, where `fsync` is free: the CPU and syscall
//! cost alone). Each prints which filesystem it ran on. Criterion's estimates, including the
//! median, are in `target/criterion/audit_append/*/new/estimates.json`.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kockpit::audit::{AuditLog, Entry, Operator, Target};
use serde_json::json;

fn typical_intent() -> Entry {
    let mut e = Entry::intent(
        Operator {
            os_user: "priya".into(),
            kube_user: Some("priya@example".into()),
            ssh_client: Some("10.0.0.5".into()),
        },
        Target {
            environment: "production".into(),
            context: "prod".into(),
            namespace: "shop".into(),
            object: "HTTPRoute/checkout".into(),
        },
        "promote",
        json!({"canary": 10, "stable": 90}),
        json!({"canary": 25, "stable": 75}),
    );
    e.reason = Some("canary healthy for 15m, error rate 0.1%".into());
    e
}

/// `tmpfs` or `disk (statfs type 0x…)` for the filesystem holding `dir`.
fn filesystem(dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-buffer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    #[allow(clippy::unnecessary_cast)]
    let kind = st.f_type as i64;
    if kind == TMPFS_MAGIC {
        "tmpfs".into()
    } else {
        format!("disk (statfs type {kind:#x})")
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("audit_append");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(10));
    g.sample_size(50);
    let mut dirs = vec![("tmpdir", tempfile::tempdir().expect("temp dir"))];
    if Path::new("/dev/shm").is_dir() {
        dirs.push((
            "dev_shm",
            tempfile::tempdir_in("/dev/shm").expect("temp dir in /dev/shm"),
        ));
    }
    let entry = typical_intent();
    for (name, dir) in &dirs {
        eprintln!(
            "audit_append/{name}: {} on {}",
            dir.path().display(),
            filesystem(dir.path())
        );
        let mut log = AuditLog::open(dir.path().join("audit.jsonl")).expect("open log");
        g.bench_function(*name, |b| {
            b.iter(|| log.append(entry.clone()).expect("append"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
