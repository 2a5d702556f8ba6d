//! From the confirming key press to the API request (a canary weight change on an HTTPRoute,
//! alternately to 100 % and back to 0 %), measured where it arrives: a loopback
//! TCP relay in front of the (in-process) sandbox timestamps the first byte of each PATCH.
//! The path is the cockpit's own: `update` turns the key into `Cmd::Execute`, `execute`
//! writes and fsyncs the audit intent, then sends the patch. Also the whole action (to the
//! audit outcome and the Kubernetes Event). Run with `cargo bench --bench actions`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use kockpit::app::dialog::{Dialog, Stage};
use kockpit::app::msg::{Cmd, Msg};
use kockpit::app::state::{AppState, EnvState};
use kockpit::app::update;
use kockpit::audit::Operator;
use kockpit::cluster::actions::{self, ExecuteOptions, Operation, PlanOptions, Verb};
use kockpit::cluster::client;

/// Relay `listener` → `upstream`, recording when each PATCH request's first bytes arrive.
async fn relay(listener: TcpListener, upstream: String, seen: Arc<Mutex<Vec<Instant>>>) {
    while let Ok((mut down, _)) = listener.accept().await {
        let upstream = upstream.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let Ok(mut up) = TcpStream::connect(&upstream).await else {
                return;
            };
            let (mut dr, mut dw) = down.split();
            let (mut ur, mut uw) = up.split();
            let to_server = async {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match dr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if buf[..n].starts_with(b"PATCH ")
                        && let Ok(mut s) = seen.lock()
                    {
                        s.push(Instant::now());
                    }
                    if uw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            };
            let to_client = tokio::io::copy(&mut ur, &mut dw);
            tokio::select! { _ = to_server => {}, _ = to_client => {} }
        });
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = kockpit::sandbox::Config {
        backfill_seconds: 60,
        ..Default::default()
    };
    let running = rt.block_on(kockpit::sandbox::start(cfg)).expect("sandbox");
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("relay");
    let relay_url = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = running.url().trim_start_matches("http://").to_string();
    rt.spawn(relay(listener, upstream, seen.clone()));
    let _rt_guard = rt.enter();
    let kube = client::for_url(&relay_url, "bench").expect("client");
    let dir = tempfile::tempdir_in(".").expect("audit dir on the project's disk");
    let opts = ExecuteOptions {
        dry_run: false,
        audit_log: dir.path().join("audit.jsonl"),
    };
    let op = Operation {
        environment: "staging".into(),
        context: "sandbox".into(),
        operator: Operator::current(None),
        reason: None,
        drill: false,
        automatic: false,
    };
    let env = EnvState {
        name: "staging".into(),
        namespace: "staging".into(),
        ..Default::default()
    };
    let mut g = c.benchmark_group("actions");
    g.sample_size(30).measurement_time(Duration::from_secs(10));
    for (name, to_request) in [
        ("key press to API request (HTTPRoute weight)", true),
        (
            "key press to outcome audited and Event posted (HTTPRoute weight)",
            false,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    // Untimed: the plan the dialog shows (alternately full promote and abort,
                    // so that each is a change).
                    let verb = if i % 2 == 0 {
                        Verb::PromoteFull
                    } else {
                        Verb::Abort
                    };
                    let mut plan = rt
                        .block_on(actions::plan(
                            &kube,
                            "staging",
                            "checkout",
                            verb,
                            &PlanOptions::default(),
                        ))
                        .expect("plan");
                    if plan.noop {
                        plan = rt
                            .block_on(actions::plan(
                                &kube,
                                "staging",
                                "checkout",
                                Verb::Abort,
                                &PlanOptions::default(),
                            ))
                            .expect("plan");
                    }
                    let mut state = AppState::new(vec![env.clone()], jiff::Timestamp::now(), 900);
                    let mut d = Dialog::new(0, "checkout", plan.verb, false);
                    d.stage = Stage::Confirm(Box::new(plan));
                    state.dialog = Some(d);
                    if let Ok(mut s) = seen.lock() {
                        s.clear();
                    }
                    // Timed: the key, the update, the command, the audited execute.
                    let t0 = Instant::now();
                    let out = update::update(
                        &mut state,
                        Msg::DialogKey(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE)),
                    );
                    let Some(Cmd::Execute { plan, .. }) = out
                        .cmds
                        .into_iter()
                        .find(|c| matches!(c, Cmd::Execute { .. }))
                    else {
                        panic!("y confirms");
                    };
                    let (kube, op, opts) = (kube.clone(), op.clone(), opts.clone());
                    let done = rt.block_on(async move {
                        tokio::spawn(
                            async move { actions::execute(&kube, &plan, &op, &opts).await },
                        )
                        .await
                    });
                    let t_done = Instant::now();
                    assert!(matches!(done, Ok(Ok(_))), "{done:?}");
                    let first = seen.lock().ok().and_then(|s| s.first().copied());
                    total += if to_request {
                        first.map_or(t_done - t0, |t| t - t0)
                    } else {
                        t_done - t0
                    };
                }
                total
            })
        });
    }
    g.finish();
    running.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
