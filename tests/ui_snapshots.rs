//! What the operator sees: the cockpit's screens rendered into a `TestBackend` from fixed
//! states (a fixed `now`), as plain-text snapshots at 80x24 (tabs), 120x35 (tmux, columns) and
//! 200x50. Styles that carry meaning (production's frame, selection, failures, the limit line)
//! are checked by assertions beside them, and hostile strings must never reach the terminal.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use kockpit::app::derive;
use kockpit::app::state::{
    AppMetrics, AppState, ArgoRolloutView, Conn, DeploymentView, DestinationRuleView, EnvState,
    EventView, IngressView, IstioDestination, Labels, LogLine, Notice, Pane, PodView,
    ReplicaSetView, Rollout, RouteView, Router, ServiceView, Strategy, TraefikServiceView,
    VersionSeries, VirtualServiceView,
};
use kockpit::config::keymap::Keymap;
use kockpit::config::theme::Theme;
use kockpit::ui::{self, UiContext};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Modifier, Style};

// ---- fixtures ----

fn now() -> Timestamp {
    "2026-11-21T02:14:07Z".parse().unwrap()
}

fn ago(seconds: i64) -> Timestamp {
    Timestamp::from_second(now().as_second() - seconds).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ctx(theme: Theme) -> UiContext {
    UiContext {
        theme,
        help: Keymap::defaults().unwrap().help(),
        max_error_ratio: 0.01,
        max_p99_seconds: 0.5,
    }
}

/// A Deployment whose rollout is complete: `ready` of `replicas` ready.
fn deploy(
    env: &mut EnvState,
    name: &str,
    sel: &[(&str, &str)],
    tag: &str,
    replicas: i32,
    ready: i32,
) {
    let app = sel[0].1;
    env.deployments.insert(
        name.into(),
        DeploymentView {
            name: name.into(),
            labels: labels(sel),
            selector: labels(sel),
            template_labels: labels(sel),
            replicas,
            images: vec![format!("registry.example/shop/{app}:{tag}")],
            revision: 4,
            generation: 2,
            observed_generation: 2,
            status_replicas: replicas,
            updated: replicas,
            ready,
            available: ready,
            created: Some(ago(40 * 86_400)),
            ..Default::default()
        },
    );
}

/// Pods of a ReplicaSet: (suffix, status, ready, restarts).
fn pods(
    env: &mut EnvState,
    rs: &str,
    sel: &[(&str, &str)],
    tag: &str,
    specs: &[(&str, &str, bool, i32)],
) {
    for (i, (suffix, status, ready, restarts)) in specs.iter().enumerate() {
        let name = format!("{rs}-{suffix}");
        env.pods.insert(
            name.clone(),
            PodView {
                name,
                labels: labels(sel),
                version: tag.into(),
                status: (*status).into(),
                ready_containers: u16::from(*ready),
                containers: 1,
                ready: *ready,
                restarts: *restarts,
                last_restart: (*restarts > 0).then(|| ago(75)),
                created: Some(ago(3_600 * 5 + 600 * i as i64)),
                node: format!(
                    "ip-10-0-{}-{}.eu-west-1.compute.internal",
                    1 + i % 3,
                    20 + i
                ),
                owner: Some(rs.into()),
            },
        );
    }
}

/// A series over the last 15 minutes, one point per 15 s: `f(i)` for i in 0..=60.
fn points(f: impl Fn(i64) -> Option<f64>) -> Vec<(i64, Option<f64>)> {
    let end = now().as_second();
    (0..=60).map(|i| (end - 900 + 15 * i, f(i))).collect()
}

fn series(
    version: &str,
    err: impl Fn(i64) -> Option<f64>,
    p99: impl Fn(i64) -> Option<f64>,
) -> VersionSeries {
    VersionSeries {
        version: version.into(),
        error_ratio: points(err),
        p99_seconds: points(p99),
        rps: points(|_| Some(40.0)),
    }
}

/// A small wobble so lines look like lines.
fn wobble(i: i64) -> f64 {
    [0.0, 0.04, -0.03, 0.02, -0.05, 0.03][(i % 6) as usize]
}

fn metrics(versions: Vec<VersionSeries>) -> AppMetrics {
    let end = now().as_second();
    AppMetrics {
        fetched_at: Some(ago(4)),
        range: (end - 900, end),
        versions,
        error: None,
    }
}

fn event(
    ago_s: i64,
    warning: bool,
    reason: &str,
    object: &str,
    message: &str,
    count: i32,
) -> EventView {
    EventView {
        time: Some(ago(ago_s)),
        warning,
        reason: reason.into(),
        object: object.into(),
        message: message.into(),
        count,
    }
}

fn log(pod: &str, text: &str) -> LogLine {
    LogLine {
        ts: Some(ago(10)),
        pod: Arc::from(pod),
        text: text.into(),
    }
}

/// One environment with the three release styles: `checkout` (canary 10 % by HTTPRoute),
/// `payments` (blue/green, blue active) and `frontend` (rolling).
fn shop(name: &str, context: &str, production: bool) -> EnvState {
    let mut env = EnvState {
        name: name.into(),
        context: context.into(),
        namespace: "shop".into(),
        production,
        conn: Conn::Live,
        ..Default::default()
    };
    let stable = [("app", "checkout"), ("track", "stable")];
    let canary = [("app", "checkout"), ("track", "canary")];
    deploy(&mut env, "checkout", &stable, "1.4.2", 3, 3);
    deploy(&mut env, "checkout-canary", &canary, "1.5.0", 1, 1);
    pods(
        &mut env,
        "checkout-7d9f8b6c5",
        &stable,
        "1.4.2",
        &[
            ("x2x9k", "Running", true, 0),
            ("b7m4q", "Running", true, 0),
            ("kq8zt", "Running", true, 1),
        ],
    );
    pods(
        &mut env,
        "checkout-canary-5f6d4c8b9",
        &canary,
        "1.5.0",
        &[("h4n2w", "Running", true, 0)],
    );
    for (svc, sel) in [("checkout-stable", &stable), ("checkout-canary", &canary)] {
        env.services.insert(
            svc.into(),
            ServiceView {
                name: svc.into(),
                selector: labels(sel),
            },
        );
    }
    env.routes.insert(
        "checkout".into(),
        RouteView {
            name: "checkout".into(),
            backends: vec![
                ("checkout-stable".into(), 90),
                ("checkout-canary".into(), 10),
            ],
        },
    );

    let blue = [("app", "payments"), ("version", "blue")];
    let green = [("app", "payments"), ("version", "green")];
    deploy(&mut env, "payments-blue", &blue, "2.7.1", 2, 2);
    deploy(&mut env, "payments-green", &green, "2.8.0", 2, 2);
    pods(
        &mut env,
        "payments-blue-6c7b8d9f4",
        &blue,
        "2.7.1",
        &[("r5t6y", "Running", true, 0), ("u7i8o", "Running", true, 0)],
    );
    pods(
        &mut env,
        "payments-green-84f9c7d5b",
        &green,
        "2.8.0",
        &[("a1s2d", "Running", true, 0), ("f3g4h", "Running", true, 0)],
    );
    env.services.insert(
        "payments".into(),
        ServiceView {
            name: "payments".into(),
            selector: labels(&blue),
        },
    );

    let fe = [("app", "frontend")];
    deploy(&mut env, "frontend", &fe, "3.2.0", 3, 3);
    pods(
        &mut env,
        "frontend-6b8c9d7f5",
        &fe,
        "3.2.0",
        &[
            ("p0o9i", "Running", true, 0),
            ("l8k7j", "Running", true, 0),
            ("m6n5b", "Running", true, 0),
        ],
    );

    env.metrics.insert(
        "checkout".into(),
        metrics(vec![
            series(
                "1.4.2",
                |i| Some(0.001 * (1.0 + wobble(i))),
                |i| Some(0.170 * (1.0 + wobble(i))),
            ),
            series(
                "1.5.0",
                |i| Some(0.002 * (1.0 + wobble(i + 2))),
                |i| Some(0.180 * (1.0 + wobble(i + 1))),
            ),
        ]),
    );
    env.metrics.insert(
        "payments".into(),
        metrics(vec![
            series(
                "2.7.1",
                |i| Some(0.0005 * (1.0 + wobble(i))),
                |i| Some(0.120 * (1.0 + wobble(i))),
            ),
            series("2.8.0", |_| None, |_| None),
        ]),
    );
    env.metrics.insert(
        "frontend".into(),
        metrics(vec![series(
            "3.2.0",
            |i| Some(0.0008 * (1.0 + wobble(i))),
            |i| Some(0.090 * (1.0 + wobble(i))),
        )]),
    );
    env.events = VecDeque::from(vec![
        event(
            1_500,
            false,
            "ScalingReplicaSet",
            "Deployment/checkout-canary",
            "Scaled up replica set checkout-canary-5f6d4c8b9 to 1",
            1,
        ),
        event(
            1_200,
            false,
            "Pulled",
            "Pod/checkout-canary-5f6d4c8b9-h4n2w",
            "Container image \"registry.example/shop/checkout:1.5.0\" already present on machine",
            1,
        ),
        event(
            300,
            false,
            "Started",
            "Pod/checkout-canary-5f6d4c8b9-h4n2w",
            "Started container checkout",
            1,
        ),
    ]);
    env.logs.app = Some("checkout".into());
    env.logs.lines = VecDeque::from(vec![
        log("checkout-7d9f8b6c5-x2x9k", "GET /cart 200 12ms"),
        log("checkout-canary-5f6d4c8b9-h4n2w", "GET /cart 200 15ms"),
        log("checkout-7d9f8b6c5-b7m4q", "POST /checkout 201 88ms"),
        log("checkout-canary-5f6d4c8b9-h4n2w", "POST /checkout 201 97ms"),
        log("checkout-7d9f8b6c5-kq8zt", "GET /cart 200 11ms"),
    ]);
    env
}

/// Production: the canary's p99 is climbing past 500 ms; `frontend` 3.2.0 is stuck at 2 of 6
/// with CrashLoopBackOff while 3.1.0 still serves.
fn production() -> EnvState {
    let mut env = shop("production", "prd", true);
    let canary = env.metrics.get_mut("checkout").unwrap();
    canary.versions[1].p99_seconds = points(|i| {
        Some(if i < 40 {
            0.180
        } else {
            0.180 + 0.022 * (i - 40) as f64
        })
    });

    let fe = [("app", "frontend")];
    let d = env.deployments.get_mut("frontend").unwrap();
    (
        d.replicas,
        d.updated,
        d.ready,
        d.available,
        d.status_replicas,
    ) = (6, 2, 4, 4, 6);
    d.revision = 9;
    d.progressing = Some((
        "ProgressDeadlineExceeded".into(),
        "ReplicaSet \"frontend-6b8c9d7f5\" has timed out progressing.".into(),
    ));
    env.pods.retain(|name, _| !name.starts_with("frontend-"));
    pods(
        &mut env,
        "frontend-55d4c7b8f6",
        &fe,
        "3.1.0",
        &[
            ("q1w2e", "Running", true, 0),
            ("r3t4y", "Running", true, 0),
            ("u5i6o", "Running", true, 0),
            ("p7a8s", "Running", true, 0),
        ],
    );
    pods(
        &mut env,
        "frontend-6b8c9d7f5",
        &fe,
        "3.2.0",
        &[
            ("z9x8c", "CrashLoopBackOff", false, 5),
            ("v7b6n", "CrashLoopBackOff", false, 4),
        ],
    );
    env.metrics.insert(
        "frontend".into(),
        metrics(vec![
            series(
                "3.1.0",
                |i| Some(0.0009 * (1.0 + wobble(i))),
                |i| Some(0.150 * (1.0 + wobble(i))),
            ),
            series("3.2.0", |_| None, |_| None),
        ]),
    );
    env.events.extend([
        event(
            600,
            true,
            "ProgressDeadlineExceeded",
            "Deployment/frontend",
            "ReplicaSet \"frontend-6b8c9d7f5\" has timed out progressing.",
            1,
        ),
        event(
            75,
            true,
            "BackOff",
            "Pod/frontend-6b8c9d7f5-z9x8c",
            "Back-off restarting failed container frontend in pod frontend-6b8c9d7f5-z9x8c",
            23,
        ),
        event(
            40,
            true,
            "BackOff",
            "Pod/frontend-6b8c9d7f5-v7b6n",
            "Back-off restarting failed container frontend in pod frontend-6b8c9d7f5-v7b6n",
            19,
        ),
    ]);
    env.events.make_contiguous().sort_by_key(|e| e.time);
    env
}

fn select(env: &mut EnvState, app: &str) {
    env.apps = derive::apps(env);
    env.selected_app = env.apps.iter().position(|a| a.name == app).unwrap();
}

/// Staging and production side by side, production with the keyboard, `checkout` selected.
fn dashboard() -> AppState {
    let mut staging = shop("staging", "stg", false);
    let mut prod = production();
    select(&mut staging, "checkout");
    select(&mut prod, "checkout");
    AppState {
        envs: vec![staging, prod],
        active_env: 1,
        focus: Pane::Apps,
        now: now(),
        read_only: false,
        sandbox: true,
        help: false,
        filter_input: None,
        chart_window: 900,
        notice: None,
        dialog: None,
        drill_menu: None,
        release_menu: None,
        operator: String::new(),
        size: (80, 24),
        quit: false,
    }
}

/// Production's `frontend` selected, with the logs following it.
fn frontend(focus: Pane) -> AppState {
    let mut s = dashboard();
    select(&mut s.envs[1], "frontend");
    s.focus = focus;
    let logs = &mut s.envs[1].logs;
    logs.app = Some("frontend".into());
    logs.dropped = 120;
    logs.lines = VecDeque::from(vec![
        log("frontend-55d4c7b8f6-q1w2e", "GET / 200 31ms"),
        log(
            "frontend-6b8c9d7f5-z9x8c",
            "ERROR config key SHOP_API_URL is missing",
        ),
        log(
            "frontend-6b8c9d7f5-z9x8c",
            "Exception in thread \"main\" java.lang.IllegalStateException: SHOP_API_URL",
        ),
        log(
            "frontend-6b8c9d7f5-z9x8c",
            "\tat shop.frontend.Config.require(Config.java:42)",
        ),
        log(
            "frontend-6b8c9d7f5-z9x8c",
            "\tat shop.frontend.Main.main(Main.java:17)",
        ),
        log("frontend-55d4c7b8f6-r3t4y", "GET /product/42 200 44ms"),
        log(
            "frontend-6b8c9d7f5-v7b6n",
            "ERROR config key SHOP_API_URL is missing",
        ),
        log("frontend-55d4c7b8f6-u5i6o", "GET /cart 200 27ms"),
    ]);
    s
}

/// One environment with a canary per other router: `catalog` (ingress-nginx canary Ingress at
/// canary-weight 10), `cart` (an Argo Rollout at 20 %, paused at step 2 of 5; in staging
/// promoted on to 50 %, step 3) and `search` (replica ratio: one Service over both tracks).
fn routers_env(name: &str, context: &str, production: bool) -> EnvState {
    let mut env = EnvState {
        name: name.into(),
        context: context.into(),
        namespace: "shop".into(),
        production,
        conn: Conn::Live,
        ..Default::default()
    };
    let service = |env: &mut EnvState, name: &str, sel: &[(&str, &str)]| {
        env.services.insert(
            name.into(),
            ServiceView {
                name: name.into(),
                selector: labels(sel),
            },
        );
    };

    // catalog: two Services, one per track; the canary Ingress in front of the canary's.
    let stable = [("app", "catalog"), ("track", "stable")];
    let canary = [("app", "catalog"), ("track", "canary")];
    deploy(&mut env, "catalog", &stable, "7.0.3", 3, 3);
    deploy(&mut env, "catalog-canary", &canary, "7.1.0", 1, 1);
    pods(
        &mut env,
        "catalog-5c8d7f9b4",
        &stable,
        "7.0.3",
        &[
            ("a8s7d", "Running", true, 0),
            ("f6g5h", "Running", true, 0),
            ("j4k3l", "Running", true, 0),
        ],
    );
    pods(
        &mut env,
        "catalog-canary-7b9c6d5f8",
        &canary,
        "7.1.0",
        &[("q2w3e", "Running", true, 0)],
    );
    service(&mut env, "catalog", &stable);
    service(&mut env, "catalog-canary", &canary);
    for (ingress, backend, weight) in [
        ("catalog", "catalog", None),
        ("catalog-canary", "catalog-canary", Some("10")),
    ] {
        env.ingresses.insert(
            ingress.into(),
            IngressView {
                name: ingress.into(),
                canary: weight.is_some(),
                canary_weight: weight.map(str::to_string),
                canary_weight_total: None,
                backends: vec![backend.into()],
            },
        );
    }

    // cart: an Argo Rollout; its ReplicaSets carry the versions.
    let cart = [("app", "cart")];
    let (step, weight, paused) = if production {
        (1, 20, true)
    } else {
        (2, 50, false)
    };
    env.argo_rollouts.insert(
        "cart".into(),
        ArgoRolloutView {
            name: "cart".into(),
            labels: labels(&cart),
            selector: labels(&cart),
            template_labels: labels(&cart),
            images: vec!["registry.example/shop/cart:2.1.0".into()],
            replicas: 4,
            revision: 2,
            generation: 3,
            observed_generation: 3,
            pause_conditions: paused,
            phase: if paused { "Paused" } else { "Progressing" }.into(),
            message: if paused { "CanaryPauseStep" } else { "" }.into(),
            canary_weight: Some(weight),
            step_index: Some(step),
            steps: 5,
            stable_hash: "6f7d9c8b5".into(),
            current_hash: "58b4f7d6c".into(),
            ready: if paused { 5 } else { 6 },
            created: Some(ago(40 * 86_400)),
            ..Default::default()
        },
    );
    let canary_pods: &[(&str, &str, bool, i32)] = if paused {
        &[("k1j2h", "Running", true, 0)]
    } else {
        &[("k1j2h", "Running", true, 0), ("g3f4d", "Running", true, 0)]
    };
    for (hash, revision, tag, specs) in [
        (
            "6f7d9c8b5",
            1,
            "2.0.0",
            &[
                ("m1n2b", "Running", true, 0),
                ("v3c4x", "Running", true, 0),
                ("z5l6k", "Running", true, 0),
                ("p7o8i", "Running", true, 0),
            ][..],
        ),
        ("58b4f7d6c", 2, "2.1.0", canary_pods),
    ] {
        let rs = format!("cart-{hash}");
        let sel = [("app", "cart"), ("rollouts-pod-template-hash", hash)];
        pods(&mut env, &rs, &sel, tag, specs);
        env.replicasets.insert(
            rs.clone(),
            ReplicaSetView {
                name: rs,
                rollout: Some("cart".into()),
                hash: hash.into(),
                revision,
                images: vec![format!("registry.example/shop/cart:{tag}")],
                replicas: specs.len() as i32,
                ready: specs.len() as i32,
                created: Some(ago(3_600)),
                ..Default::default()
            },
        );
    }
    service(
        &mut env,
        "cart-stable",
        &[("app", "cart"), ("rollouts-pod-template-hash", "6f7d9c8b5")],
    );
    service(
        &mut env,
        "cart-canary",
        &[("app", "cart"), ("rollouts-pod-template-hash", "58b4f7d6c")],
    );

    // search: one Service over both tracks: the replica ratio.
    let stable = [("app", "search"), ("track", "stable")];
    let canary = [("app", "search"), ("track", "canary")];
    deploy(&mut env, "search", &stable, "4.1.0", 3, 3);
    deploy(&mut env, "search-canary", &canary, "4.2.0", 1, 1);
    service(&mut env, "search", &[("app", "search")]);

    for (app, old, new) in [
        ("catalog", "7.0.3", "7.1.0"),
        ("cart", "2.0.0", "2.1.0"),
        ("search", "4.1.0", "4.2.0"),
    ] {
        env.metrics.insert(
            app.into(),
            metrics(vec![
                series(
                    old,
                    |i| Some(0.001 * (1.0 + wobble(i))),
                    |i| Some(0.150 * (1.0 + wobble(i))),
                ),
                series(
                    new,
                    |i| Some(0.0015 * (1.0 + wobble(i + 2))),
                    |i| Some(0.160 * (1.0 + wobble(i + 1))),
                ),
            ]),
        );
    }
    env.events = VecDeque::from(vec![
        event(
            600,
            false,
            "RolloutPaused",
            "Rollout/cart",
            "Rollout is paused (CanaryPauseStep)",
            1,
        ),
        event(
            590,
            false,
            "TrafficWeightUpdated",
            "Rollout/cart",
            "Traffic weight updated from 0 to 20",
            1,
        ),
    ]);
    env.logs.app = Some("cart".into());
    env.logs.lines = VecDeque::from(vec![
        log("cart-6f7d9c8b5-m1n2b", "GET /cart 200 9ms"),
        log("cart-58b4f7d6c-k1j2h", "POST /cart/items 201 14ms"),
    ]);
    env.apps = derive::apps(&env);
    env
}

/// Staging and production with the ingress-nginx, Argo Rollouts and replica-ratio canaries,
/// production with the keyboard, `cart` selected.
fn routers() -> AppState {
    let mut s = dashboard();
    s.envs = vec![
        routers_env("staging", "stg", false),
        routers_env("production", "prd", true),
    ];
    for env in &mut s.envs {
        select(env, "cart");
    }
    s
}

/// One environment with a canary per service-mesh router: `inventory` (a Traefik
/// TraefikService weighing a Service per track 9 to 1; in staging, the older
/// traefik.containo.us group's, 3 to 1) and `reviews` (an Istio VirtualService sending 80/20
/// to DestinationRule subsets of one Service; in staging its weights sum to 110, so the
/// share is unknown).
fn mesh_env(name: &str, context: &str, production: bool) -> EnvState {
    let mut env = EnvState {
        name: name.into(),
        context: context.into(),
        namespace: "shop".into(),
        production,
        conn: Conn::Live,
        ..Default::default()
    };
    let service = |env: &mut EnvState, name: &str, sel: &[(&str, &str)]| {
        env.services.insert(
            name.into(),
            ServiceView {
                name: name.into(),
                selector: labels(sel),
            },
        );
    };

    // inventory: a Service per track, weighed by a TraefikService.
    let stable = [("app", "inventory"), ("track", "stable")];
    let canary = [("app", "inventory"), ("track", "canary")];
    deploy(&mut env, "inventory", &stable, "5.4.0", 3, 3);
    deploy(&mut env, "inventory-canary", &canary, "5.5.0", 1, 1);
    pods(
        &mut env,
        "inventory-6d9f8c7b5",
        &stable,
        "5.4.0",
        &[
            ("b4n5m", "Running", true, 0),
            ("c6v7x", "Running", true, 0),
            ("d8z9a", "Running", true, 0),
        ],
    );
    pods(
        &mut env,
        "inventory-canary-8f7e6d5c4",
        &canary,
        "5.5.0",
        &[("e1s2d", "Running", true, 0)],
    );
    service(&mut env, "inventory", &stable);
    service(&mut env, "inventory-canary", &canary);
    let (stable_w, canary_w) = if production { (90, 10) } else { (3, 1) };
    let ts = TraefikServiceView {
        name: "inventory".into(),
        services: vec![
            ("inventory".into(), Some(stable_w)),
            ("inventory-canary".into(), Some(canary_w)),
        ],
    };
    if production {
        env.traefik_services.insert(ts.name.clone(), ts);
    } else {
        env.traefik_services_legacy.insert(ts.name.clone(), ts);
    }

    // reviews: one Service over both tracks; subsets pick a track's pods.
    let stable = [("app", "reviews"), ("track", "stable")];
    let canary = [("app", "reviews"), ("track", "canary")];
    deploy(&mut env, "reviews", &stable, "1.8.0", 4, 4);
    deploy(&mut env, "reviews-canary", &canary, "1.9.0", 1, 1);
    pods(
        &mut env,
        "reviews-7c6b5a4d3",
        &stable,
        "1.8.0",
        &[
            ("f2g3h", "Running", true, 0),
            ("j4k5l", "Running", true, 0),
            ("m6n7p", "Running", true, 0),
            ("q8r9s", "Running", true, 0),
        ],
    );
    pods(
        &mut env,
        "reviews-canary-5b4c3d2e1",
        &canary,
        "1.9.0",
        &[("t1u2v", "Running", true, 0)],
    );
    service(&mut env, "reviews", &[("app", "reviews")]);
    env.destination_rules.insert(
        "reviews".into(),
        DestinationRuleView {
            name: "reviews".into(),
            host: "reviews.shop.svc.cluster.local".into(),
            subsets: vec![
                ("v1".into(), labels(&[("track", "stable")])),
                ("v2".into(), labels(&[("track", "canary")])),
            ],
        },
    );
    let dest = |host: &str, subset: &str, weight: i64| IstioDestination {
        host: host.into(),
        subset: Some(subset.into()),
        weight: Some(weight),
    };
    env.virtual_services.insert(
        "reviews".into(),
        VirtualServiceView {
            name: "reviews".into(),
            http: vec![vec![
                dest("reviews.shop.svc.cluster.local", "v1", 80),
                dest("reviews", "v2", if production { 20 } else { 30 }),
            ]],
        },
    );

    for (app, old, new) in [
        ("inventory", "5.4.0", "5.5.0"),
        ("reviews", "1.8.0", "1.9.0"),
    ] {
        env.metrics.insert(
            app.into(),
            metrics(vec![
                series(
                    old,
                    |i| Some(0.001 * (1.0 + wobble(i))),
                    |i| Some(0.120 * (1.0 + wobble(i))),
                ),
                series(
                    new,
                    |i| Some(0.0012 * (1.0 + wobble(i + 2))),
                    |i| Some(0.130 * (1.0 + wobble(i + 1))),
                ),
            ]),
        );
    }
    env.logs.app = Some("reviews".into());
    env.logs.lines = VecDeque::from(vec![
        log("reviews-7c6b5a4d3-f2g3h", "GET /reviews/42 200 12ms"),
        log("reviews-canary-5b4c3d2e1-t1u2v", "GET /reviews/7 200 15ms"),
    ]);
    env.apps = derive::apps(&env);
    env
}

/// Staging and production with the Traefik and Istio canaries, production with the keyboard,
/// `reviews` selected.
fn mesh_routers() -> AppState {
    let mut s = dashboard();
    s.envs = vec![
        mesh_env("staging", "stg", false),
        mesh_env("production", "prd", true),
    ];
    for env in &mut s.envs {
        select(env, "reviews");
    }
    s
}

// ---- rendering ----

fn draw(state: &AppState, ctx: &UiContext, width: u16, height: u16) -> Buffer {
    let mut state = state.clone();
    state.size = (width, height);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::render(f, &state, ctx)).unwrap();
    terminal.backend().buffer().clone()
}

/// The screen as text, one line per row, trailing spaces trimmed.
fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..buf.area.width {
            let cell = &buf[(x, y)];
            if skip == 0 {
                line.push_str(cell.symbol());
            }
            skip = skip.max(Span::raw(cell.symbol()).width()).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

use ratatui::text::Span;

/// Snapshots of `state` at each size, named `{name}_{w}x{h}`.
fn snap(name: &str, state: &AppState, sizes: &[(u16, u16)]) {
    let ctx = ctx(Theme::default());
    for &(w, h) in sizes {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text(&draw(state, &ctx, w, h)));
    }
}

/// Where `needle` first appears on screen.
fn find(buf: &Buffer, needle: &str) -> (u16, u16) {
    text(buf)
        .lines()
        .enumerate()
        .find_map(|(y, line)| {
            line.find(needle)
                .map(|i| (line[..i].chars().count() as u16, y as u16))
        })
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", text(buf)))
}

const SMALL: (u16, u16) = (80, 24);
const TMUX: (u16, u16) = (120, 35);
const LARGE: (u16, u16) = (200, 50);

// ---- screens ----

#[test]
fn dashboard_shows_both_environments_with_versions_and_charts() {
    snap("dashboard", &dashboard(), &[SMALL, TMUX, LARGE]);
}

#[test]
fn narrow_tabs_show_staging_when_it_is_active() {
    let mut s = dashboard();
    s.active_env = 0;
    snap("tabs_staging", &s, &[SMALL]);
}

#[test]
fn pods_focused_show_the_crashloop() {
    let mut s = frontend(Pane::Pods);
    s.envs[1].selected_pod = 4; // the first 3.2.0 pod, after the four 3.1.0 ones
    snap("pods_crashloop", &s, &[SMALL, LARGE]);
}

#[test]
fn logs_filtered_with_a_hostile_line() {
    let mut s = frontend(Pane::Logs);
    let logs = &mut s.envs[1].logs;
    logs.filter = Some("error".into());
    logs.paused = true;
    logs.lines.push_back(log(
        "frontend-6b8c9d7f5-z9x8c",
        concat!(
            "\x1b]0;owned\x07\x1b[2J\x1b[31mERROR\x1b[0m see ",
            "\x1b]8;;https://evil.example\x1b\\docs\x1b]8;;\x1b\\ \u{9b}1;1H \u{202e}gpj.exe",
        ),
    ));
    snap("logs_filter", &s, &[SMALL, LARGE]);
}

#[test]
fn typing_a_filter_shows_it_in_the_footer_and_filters_live() {
    let mut s = frontend(Pane::Logs);
    s.filter_input = Some(typed("missing"));
    snap("filter_typing", &s, &[SMALL]);
}

#[test]
fn help_overlay_lists_the_keys_in_force() {
    let mut s = dashboard();
    s.help = true;
    snap("help", &s, &[SMALL, LARGE]);
}

#[test]
fn connection_error_marks_the_environment() {
    let mut s = dashboard();
    s.envs[1].conn = Conn::Error("dial tcp 10.20.0.1:6443: connect: connection refused".into());
    s.notice = Some(Notice {
        text: "production: watch failed, retrying in 4s".into(),
        error: true,
        at: ago(3),
    });
    snap("conn_error", &s, &[SMALL, LARGE]);
}

#[test]
fn no_data_and_no_traffic_are_never_zero() {
    let mut s = dashboard();
    // Staging: checkout has no metrics at all; production: payments has no traffic anywhere.
    s.envs[0].metrics.remove("checkout");
    let payments = s.envs[1].metrics.get_mut("payments").unwrap();
    for v in &mut payments.versions {
        v.error_ratio = points(|_| None);
        v.p99_seconds = points(|_| None);
    }
    select(&mut s.envs[1], "payments");
    s.active_env = 0;
    snap("no_data", &s, &[SMALL, LARGE]);
    let screen = text(&draw(&s, &ctx(Theme::default()), 200, 50));
    assert!(!screen.contains("0.00%"), "{screen}");
}

#[test]
fn nginx_argo_and_replica_ratio_canaries_name_their_router() {
    let s = routers();
    let prod = &s.envs[1];
    let strategy = |app: &str| {
        prod.apps
            .iter()
            .find(|a| a.name == app)
            .map(|a| a.strategy.clone())
            .unwrap()
    };
    assert_eq!(
        strategy("catalog"),
        Strategy::Canary {
            router: Router::Nginx("catalog-canary".into()),
            canary_weight: Some(10.0)
        }
    );
    assert_eq!(
        strategy("cart"),
        Strategy::Canary {
            router: Router::Argo("cart".into()),
            canary_weight: Some(20.0)
        }
    );
    assert_eq!(
        strategy("search"),
        Strategy::Canary {
            router: Router::ReplicaRatio("search".into()),
            canary_weight: Some(25.0)
        }
    );
    snap("routers", &s, &[SMALL, TMUX, LARGE]);
    // Where there is room, the router's full name; the pause is always in sight.
    let wide = text(&draw(&s, &ctx(Theme::default()), 250, 50));
    assert!(wide.contains("canary 20% (Argo Rollouts)"), "{wide}");
    assert!(wide.contains("canary 10% (ingress-nginx)"), "{wide}");
    for (w, h) in [SMALL, TMUX, LARGE] {
        let screen = text(&draw(&s, &ctx(Theme::default()), w, h));
        assert!(screen.contains("paused"), "{w}x{h}:\n{screen}");
        assert!(screen.contains("Pods cart (5)"), "{w}x{h}:\n{screen}");
    }
}

#[test]
fn traefik_and_istio_canaries_name_their_router() {
    let s = mesh_routers();
    let strategy = |env: usize, app: &str| {
        s.envs[env]
            .apps
            .iter()
            .find(|a| a.name == app)
            .map(|a| a.strategy.clone())
            .unwrap()
    };
    assert_eq!(
        strategy(1, "inventory"),
        Strategy::Canary {
            router: Router::Traefik("inventory".into()),
            canary_weight: Some(10.0)
        }
    );
    assert_eq!(
        strategy(1, "reviews"),
        Strategy::Canary {
            router: Router::Istio("reviews".into()),
            canary_weight: Some(20.0)
        }
    );
    // Staging: the traefik.containo.us TraefikService at 3:1; the VirtualService's weights
    // sum to 110, so its share is unknown rather than wrong.
    assert_eq!(
        strategy(0, "inventory"),
        Strategy::Canary {
            router: Router::Traefik("inventory".into()),
            canary_weight: Some(25.0)
        }
    );
    assert_eq!(
        strategy(0, "reviews"),
        Strategy::Canary {
            router: Router::Istio("reviews".into()),
            canary_weight: None
        }
    );
    snap("mesh_routers", &s, &[SMALL, TMUX, LARGE]);
    let wide = text(&draw(&s, &ctx(Theme::default()), 200, 50));
    for want in [
        "canary 10% (Traefik)",
        "canary 20% (Istio)",
        "canary 25% (Traefik)",
        "canary ?% (Istio)",
    ] {
        assert!(wide.contains(want), "{want}:\n{wide}");
    }
    // The unknown share is never shown as a number beside the versions either.
    assert!(!wide.contains("canary 30%"), "{wide}");
}

// ---- styles that carry meaning ----

/// Whether the cell at `pos` shows `style`: its colours and at least its modifiers.
fn styled(buf: &Buffer, pos: (u16, u16), style: Style) -> bool {
    let c = &buf[pos];
    style.fg.is_none_or(|fg| c.fg == fg)
        && style.bg.is_none_or(|bg| c.bg == bg)
        && c.modifier.contains(style.add_modifier)
}

#[test]
fn production_frame_selection_and_failures_are_styled() {
    let t = Theme::default();
    let ctx = ctx(t.clone());
    let s = frontend(Pane::Pods);
    let buf = draw(&s, &ctx, 200, 50);
    // Production's frame is thick and in the production style; staging's is not.
    let (px, py) = find(&buf, "┏");
    assert!(styled(&buf, (px, py), t.production));
    let (x, y) = find(&buf, "PRODUCTION · production");
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    assert_eq!(buf[(0, py)].symbol(), "┌");
    assert!(styled(&buf, (0, py), t.staging));
    // The failing rollout and the crash-looping pods are in the error style.
    let (x, y) = find(&buf, "deadline exceeded");
    assert_eq!(Some(buf[(x, y)].fg), t.error.fg);
    let (x, y) = find(&buf, "CrashLoopBackOff");
    assert_eq!(Some(buf[(x, y)].fg), t.error.fg);
    // The focused pane's rule is highlighted in the active environment only.
    let (x, y) = find(&buf, "Pods frontend (6) ─");
    assert!(styled(&buf, (x, y), t.border_focused) && styled(&buf, (x + 18, y), t.border_focused));
    let (x, y) = find(&buf, "Pods checkout (4) ─");
    assert!(!styled(&buf, (x + 18, y), t.border_focused));
    // The selected app row is highlighted in the active environment only, under the cells'
    // own colours: the version keeps its colour on the selection's background.
    let (x, y) = find(&buf, "▸frontend");
    assert!(x > 100 && styled(&buf, (x + 1, y), t.selected));
    let (vx, vy) = find(&buf, "3.2.0 0/6");
    assert_eq!(vy, y);
    assert!(styled(&buf, (vx, vy), t.selected) && styled(&buf, (vx, vy), t.canary));
    let (x, y) = find(&buf, "▸checkout");
    assert!(x < 100 && !styled(&buf, (x + 1, y), t.selected));
    // Unfocused pane titles read in the normal text colour, not the dim border's.
    let (x, y) = find(&buf, "Apps (3)");
    assert!(buf[(x, y)].fg != t.border.fg.unwrap() && styled(&buf, (x, y), t.title));
}

#[test]
fn every_builtin_theme_keeps_coloured_cells_readable_when_selected() {
    for name in Theme::BUILTIN {
        let t = Theme::builtin(name).unwrap();
        let buf = draw(&frontend(Pane::Apps), &ctx(t.clone()), 200, 50);
        let (x, y) = find(&buf, "3.2.0 0/6");
        let cell = &buf[(x, y)];
        assert!(styled(&buf, (x, y), t.selected), "{name}: {cell:?}");
        // A colour of its own, unless the theme has none.
        assert_eq!(cell.fg, t.canary.fg.unwrap_or_default(), "{name}");
        if t.selected.bg.is_some() {
            assert!(!cell.modifier.contains(Modifier::REVERSED), "{name}");
        }
    }
}

#[test]
fn monochrome_still_marks_production() {
    let mono = Theme::builtin("monochrome").unwrap();
    let ctx = ctx(mono.clone());
    let mut s = dashboard();
    for (w, h) in [SMALL, LARGE] {
        let buf = draw(&s, &ctx, w, h);
        let (x, y) = find(&buf, "┏");
        let m = buf[(x, y)].modifier;
        assert!(
            m.contains(Modifier::REVERSED | Modifier::BOLD),
            "{w}x{h}: {m:?}"
        );
        let (x, y) = find(&buf, "PRODUCTION");
        assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED), "{w}x{h}");
        assert!(
            buf.content
                .iter()
                .all(|c| c.fg == ratatui::style::Color::Reset
                    && c.bg == ratatui::style::Color::Reset)
        );
    }
    // Staging with the keyboard: its frame is not production's.
    s.active_env = 0;
    let buf = draw(&s, &ctx, 80, 24);
    let (x, y) = find(&buf, "┌");
    assert!(!buf[(x, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn chart_limit_line_uses_the_threshold_style() {
    let t = Theme::default();
    let buf = draw(&dashboard(), &ctx(t.clone()), 200, 50);
    assert!(
        buf.content
            .iter()
            .any(|c| c.symbol() == "•" && c.fg == t.threshold.fg.unwrap())
    );
}

// ---- robustness ----

/// Clear screen, home, window title, hyperlink, DCS, C1 CSI, bidi override, DEL, NUL, CR, LF,
/// tab and a lone ESC.
const HOSTILE: &str = concat!(
    "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]8;;http://x\x1b\\a\x1b]8;;\x1b\\",
    "\x1bP+q\x1b\\\u{9b}31m\u{202e}\x7f\0\r\n\t\x1b",
);

fn hostile_state() -> AppState {
    let mut s = frontend(Pane::Logs);
    s.help = false;
    s.notice = Some(Notice {
        text: HOSTILE.into(),
        error: true,
        at: ago(1),
    });
    for env in &mut s.envs {
        env.name.push_str(HOSTILE);
        env.namespace.push_str(HOSTILE);
        env.conn = Conn::Error(HOSTILE.into());
        for p in env.pods.values_mut() {
            p.name.push_str(HOSTILE);
            p.status.push_str(HOSTILE);
            p.node.push_str(HOSTILE);
            p.version.push_str(HOSTILE);
        }
        for (i, app) in env.apps.iter_mut().enumerate() {
            // Metrics follow the new names: failed without data, or stale with hostile tags.
            let mut m = env.metrics.remove(&app.name).unwrap_or_default();
            app.name.push_str(HOSTILE);
            m.error = Some(HOSTILE.into());
            if i == 0 {
                m.versions.clear();
            }
            for s in &mut m.versions {
                s.version.push_str(HOSTILE);
            }
            env.metrics.insert(app.name.clone(), m);
            if let Strategy::BlueGreen { active, .. } = &mut app.strategy {
                active.push_str(HOSTILE);
                app.rollout = Rollout::Progressing(HOSTILE.into());
            }
            for v in &mut app.versions {
                v.tag.push_str(HOSTILE);
                v.track = Some(HOSTILE.into());
            }
        }
        for e in &mut env.events {
            e.reason.push_str(HOSTILE);
            e.object.push_str(HOSTILE);
            e.message.push_str(HOSTILE);
        }
        for l in &mut env.logs.lines {
            l.text.push_str(HOSTILE);
            l.pod = Arc::from(format!("{}{HOSTILE}", l.pod));
        }
        env.logs.filter = Some(HOSTILE.into());
        env.logs.app = Some(HOSTILE.into());
    }
    s.filter_input = Some(typed(HOSTILE));
    s
}

#[test]
fn hostile_strings_never_reach_the_terminal() {
    let mut ctx = ctx(Theme::default());
    ctx.help.push((HOSTILE.into(), HOSTILE.into()));
    let mut s = hostile_state();
    for help in [false, true] {
        s.help = help;
        for (w, h) in [SMALL, TMUX, LARGE, (30, 10)] {
            let buf = draw(&s, &ctx, w, h);
            for c in &buf.content {
                let bad = c.symbol().chars().find(|&ch| {
                    ch.is_control()
                        || matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                });
                assert_eq!(bad, None, "{w}x{h}: {:?}\n{}", c.symbol(), text(&buf));
            }
        }
    }
}

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    let ctx = ctx(Theme::default());
    let mut states = vec![dashboard(), frontend(Pane::Logs), hostile_state()];
    let mut help = dashboard();
    help.help = true;
    states.push(help);
    let mut empty = dashboard();
    empty.envs.clear();
    states.push(empty);
    for s in &states {
        for (w, h) in [
            (0, 0),
            (1, 1),
            (20, 5),
            (2, 40),
            (200, 3),
            (79, 23),
            (119, 12),
        ] {
            draw(s, &ctx, w, h);
        }
        for w in (0..=210).step_by(13) {
            for h in (0..=60).step_by(7) {
                draw(s, &ctx, w, h);
            }
        }
    }
}

#[test]
fn ten_thousand_pods_render_the_selected_window() {
    let mut s = frontend(Pane::Pods);
    let env = &mut s.envs[1];
    let sel = [("app", "frontend")];
    for i in 0..10_000 {
        let rs = if i % 2 == 0 {
            "frontend-55d4c7b8f6"
        } else {
            "frontend-6b8c9d7f5"
        };
        let name = format!("{rs}-{i:05}");
        let pod = PodView {
            name: name.clone(),
            labels: labels(&sel),
            version: "3.1.0".into(),
            status: "Running".into(),
            ready: true,
            owner: Some(rs.into()),
            ..Default::default()
        };
        env.pods.insert(name, pod);
    }
    env.selected_pod = 5_000;
    let ctx = ctx(Theme::default());
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let frames = 50;
    let start = Instant::now();
    for _ in 0..frames {
        ui::render(&mut terminal.get_frame(), &s, &ctx);
    }
    let per_frame = start.elapsed() / frames;
    terminal.draw(|f| ui::render(f, &s, &ctx)).unwrap();
    eprintln!("10,000 pods at 200x50: render {per_frame:?} per frame");
    let screen = text(terminal.backend().buffer());
    assert!(screen.contains("Pods frontend (10006)"), "{screen}");
    // The window around the selection, not the top of the list. (Speed is measured by
    // `cargo bench --bench cockpit`, not asserted here.)
    // Scrolled to pod 5,000: thousands above and below, the first one off screen.
    assert!(screen.contains("+4991 ↑ +5005 ↓"), "{screen}");
    assert!(!screen.contains("55d4c7b8f6-00000"), "{screen}");
}

/// A filter typed so far, the cursor after the last character.
fn typed(text: &str) -> ratatui_textarea::TextArea<'static> {
    let mut t = ratatui_textarea::TextArea::new(vec![text.to_string()]);
    t.move_cursor(ratatui_textarea::CursorMove::End);
    t
}

// ---- release sessions and GitOps ----

use kockpit::app::release::{MenuStage, ReleaseMenu, ReleaseView, StepKind};
use kockpit::app::state::GitSyncView;
use kockpit::audit::Operator;
use kockpit::release::checklist::{Checklist, Item, Status};
use kockpit::release::{Release, State, Transition};

fn transition(seq: u64, ago_s: i64, verb: &str, reason: Option<&str>) -> Transition {
    Transition {
        seq,
        time: ago(ago_s),
        verb: verb.into(),
        operator: Operator {
            os_user: "priya".into(),
            ..Operator::default()
        },
        reason: reason.map(str::to_string),
        detail: serde_json::json!({"release": 3, "version": "1.5.0"}),
    }
}

/// Release #3 of staging's `checkout` (1.5.0), opened 5 minutes ago.
fn checkout_release(state: State, transitions: Vec<Transition>) -> Release {
    Release {
        app: "checkout".into(),
        environment: "staging".into(),
        context: "stg".into(),
        namespace: "shop".into(),
        number: 3,
        version: "1.5.0".into(),
        state,
        transitions,
        overridden: false,
    }
}

fn item(name: &str, status: Status, detail: &str) -> Item {
    Item {
        name: name.into(),
        status,
        detail: detail.into(),
    }
}

/// 4 of 6: the API smoke check fails, the observation window is counting.
fn mixed_checklist() -> Checklist {
    Checklist {
        at: ago(1),
        items: vec![
            item("Pods Ready", Status::Pass, "1/1 pods of 1.5.0 Ready"),
            item(
                "Rollout complete",
                Status::Pass,
                "deployment checkout-canary successfully rolled out",
            ),
            item(
                "Smoke: api",
                Status::Fail,
                "HTTP 503, expected 200 in 4 ms (at 02:14:05)",
            ),
            item(
                "Smoke: db",
                Status::Pass,
                "exit 0: schema at migration 42 in 310 ms (at 02:14:05)",
            ),
            item("Observation", Status::Pending, "clean for 3s of 40s"),
            item(
                "Image traceable",
                Status::Pass,
                "registry.example/shop/checkout:1.5.0 on 1 pods, one image ID sha256:bf1b14e9e3f3",
            ),
        ],
    }
}

/// Staging with the keyboard, its `checkout` release open and evaluated.
fn open_release() -> AppState {
    let mut s = dashboard();
    s.active_env = 0;
    s.envs[0].releases.insert(
        "checkout".into(),
        ReleaseView {
            release: checkout_release(State::Open, vec![transition(41, 300, "open", None)]),
            checklist: Some(mixed_checklist()),
        },
    );
    s
}

const TALL: (u16, u16) = (120, 40);

#[test]
fn an_open_release_shows_its_checklist_failing_items_first_when_short() {
    let s = open_release();
    snap("release_open", &s, &[SMALL, TALL]);
    let ctx = ctx(Theme::default());
    let small = draw(&s, &ctx, 80, 24);
    let screen = text(&small);
    assert!(
        screen.contains("Release checkout@staging #3 · 1.5.0 · open 5m00s · 4/6 ✓"),
        "{screen}"
    );
    // Two item rows at 80x24: the failing and pending ones.
    let (x, y) = find(&small, "✗ Smoke: api");
    assert!(styled(&small, (x, y), Theme::default().error), "{screen}");
    assert!(
        screen
            .lines()
            .nth(usize::from(y) + 1)
            .is_some_and(|l| l.contains("… Observation")),
        "{screen}"
    );
    // Every item in its order when there is room.
    let tall = text(&draw(&s, &ctx, 120, 40));
    let rows: Vec<usize> = [
        "Pods Ready",
        "Rollout complete",
        "Smoke: api",
        "Smoke: db",
        "Observation",
        "Image traceable",
    ]
    .iter()
    .map(|n| {
        tall.lines()
            .position(|l| l.contains(&format!(" {n} ")))
            .unwrap_or_else(|| panic!("{n} on screen:\n{tall}"))
    })
    .collect();
    assert!(
        rows.windows(2).all(|w| w[1] == w[0] + 1),
        "{rows:?}\n{tall}"
    );
}

#[test]
fn a_green_checklist_says_ready_to_conclude() {
    let mut s = open_release();
    let r = s.envs[0].releases.get_mut("checkout").unwrap();
    for i in &mut r.checklist.as_mut().unwrap().items {
        i.status = Status::Pass;
    }
    let screen = text(&draw(&s, &ctx(Theme::default()), 80, 24));
    assert!(screen.contains("6/6 ✓ ready to conclude"), "{screen}");
}

#[test]
fn a_shelved_release_says_why_and_what_to_do() {
    let mut s = open_release();
    s.envs[0].releases.insert(
        "checkout".into(),
        ReleaseView {
            release: checkout_release(
                State::Shelved,
                vec![
                    transition(41, 300, "open", None),
                    transition(
                        44,
                        90,
                        "shelve",
                        Some("waiting for the payments schema migration"),
                    ),
                ],
            ),
            checklist: None,
        },
    );
    snap("release_shelved", &s, &[SMALL]);
    let screen = text(&draw(&s, &ctx(Theme::default()), 80, 24));
    assert!(
        screen.contains("shelved: press o to resume or abandon"),
        "{screen}"
    );
    assert!(screen.contains("blocked: waiting for"), "{screen}");
}

#[test]
fn the_release_menu_lists_the_checklist_and_asks_for_an_override() {
    let mut s = open_release();
    s.release_menu = Some(ReleaseMenu {
        env: 0,
        app: "checkout".into(),
        version: "1.5.0".into(),
        stage: MenuStage::Choose,
        hint: None,
    });
    snap("release_menu", &s, &[SMALL]);
    s.release_menu = Some(ReleaseMenu {
        env: 0,
        app: "checkout".into(),
        version: "1.5.0".into(),
        stage: MenuStage::Reason {
            step: StepKind::Conclude,
            input: Box::new(typed("hotfix for the payment outage, SRE lead ok")),
        },
        hint: None,
    });
    snap("release_override", &s, &[SMALL, TALL]);
    let small = draw(&s, &ctx(Theme::default()), 80, 24);
    let screen = text(&small);
    assert!(
        screen.contains("The exit checklist is not green:"),
        "{screen}"
    );
    assert!(
        screen.contains("✗ Smoke: api: HTTP 503, expected 200"),
        "{screen}"
    );
    assert!(
        screen.contains("… Observation: clean for 3s of 40s"),
        "{screen}"
    );
    assert!(
        !screen.contains("✓ Pods Ready:"),
        "only the failing items: {screen}"
    );
    assert!(
        screen.contains("> hotfix for the payment outage, SRE lead ok"),
        "{screen}"
    );
    let (x, y) = find(&small, "The exit checklist is not green:");
    assert!(styled(&small, (x, y), Theme::default().error), "{screen}");
}

#[test]
fn the_pushed_gitops_change_shows_its_sync_state() {
    let mut s = dashboard();
    s.active_env = 0;
    s.envs[0].git_sync.insert(
        "checkout".into(),
        GitSyncView {
            commit: "3f9c2a1b7d4e8f60a1b2c3d4e5f60718293a4b5c".into(),
            remote_branch: "origin/main".into(),
            controller: "Flux Kustomization flux-system/apps".into(),
            state: "Flux Kustomization flux-system/apps: ready, applied 3f9c2a1b7d4e".into(),
            applied: true,
            converged: false,
            pushed_at: ago(42),
        },
    );
    snap("gitops_sync", &s, &[SMALL, TALL]);
    let small = draw(&s, &ctx(Theme::default()), 80, 24);
    let (x, y) = find(
        &small,
        "… GitOps applied, cluster converging · pushed 3f9c2a1b",
    );
    assert!(styled(&small, (x, y), Theme::default().warn));
    // Staging alone, wide: the whole line.
    s.envs.truncate(1);
    let screen = text(&draw(&s, &ctx(Theme::default()), 160, 40));
    assert!(
        screen.contains("… GitOps applied, cluster converging · pushed 3f9c2a1b to origin/main 42s ago · Flux Kustomization flux-system/apps: ready, applied 3f9c2a1b7d4e"),
        "{screen}"
    );
}
