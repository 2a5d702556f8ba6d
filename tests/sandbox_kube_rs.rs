//! kube-rs against the real `kockpit sandbox` binary: lists, watchers, log streams and every
//! Patch variant, exactly as the cockpit will use them.

mod common;

use std::time::Duration;

use common::SandboxProc;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};

async fn client(sb: &SandboxProc) -> Client {
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).expect("read kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config from kubeconfig");
    Client::try_from(cfg).expect("client")
}

#[tokio::test]
async fn list_and_get_through_typed_apis() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let c = client(&sb).await;
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "production");
    let list = deploys
        .list(&ListParams::default())
        .await
        .expect("list deployments");
    let names: Vec<String> = list
        .items
        .iter()
        .filter_map(|d| d.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "catalog",
            "catalog-canary",
            "checkout",
            "checkout-canary",
            "frontend",
            "inventory",
            "inventory-canary",
            "payments-blue",
            "payments-green",
            "reviews",
            "reviews-canary",
            "search",
            "search-canary"
        ]
    );
    let pods: Api<Pod> = Api::namespaced(c.clone(), "staging");
    let canary = pods
        .list(&ListParams::default().labels("app=checkout,track=canary"))
        .await
        .expect("list pods");
    assert_eq!(canary.items.len(), 1);
    let paged = pods
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(paged.items.len(), 2);
    let token = paged.metadata.continue_.clone().expect("continue token");
    let rest = pods
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .expect("page 2");
    // checkout 2+1, payments 2+2, frontend 2, search 2+1, catalog 2+1, cart 2+1 (a Rollout),
    // inventory 2+1, reviews 2+1.
    assert_eq!(paged.items.len() + rest.items.len(), 24);
    let err = deploys.get("nope").await.expect_err("missing deployment");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_sees_a_rollout_replicasets_and_pods() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let c = client(&sb).await;
    let rs_api: Api<ReplicaSet> = Api::namespaced(c.clone(), "production");
    let pod_api: Api<Pod> = Api::namespaced(c.clone(), "production");
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "production");

    let mut rs_events = watcher(rs_api, watcher::Config::default().labels("app=frontend"))
        .applied_objects()
        .boxed();
    let mut pod_events = watcher(pod_api, watcher::Config::default().labels("app=frontend"))
        .applied_objects()
        .boxed();
    // The initial state arrives first.
    let first = tokio::time::timeout(Duration::from_secs(5), rs_events.try_next())
        .await
        .expect("initial replicasets")
        .expect("watch ok");
    assert!(first.is_some());
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "frontend", "image": "registry.local/frontend:3.4.0"}]}}}});
    deploys
        .patch(
            "frontend",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("set image");

    let new_rs = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(rs) = rs_events.try_next().await.expect("rs watch") {
            let image = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| s.containers[0].image.clone().unwrap_or_default());
            if image.as_deref() == Some("registry.local/frontend:3.4.0")
                && rs.status.as_ref().and_then(|s| s.ready_replicas) == Some(2)
            {
                return rs;
            }
        }
        panic!("replicaset watch ended");
    })
    .await
    .expect("new ReplicaSet becomes ready");
    assert_eq!(
        new_rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .map(String::as_str),
        Some("4")
    );

    let ready_pod = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(p) = pod_events.try_next().await.expect("pod watch") {
            let image = p
                .spec
                .as_ref()
                .map(|s| s.containers[0].image.clone().unwrap_or_default())
                .unwrap_or_default();
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if image.ends_with(":3.4.0") && ready {
                return p;
            }
        }
        panic!("pod watch ended");
    })
    .await
    .expect("a new pod becomes Ready");
    assert!(
        ready_pod
            .metadata
            .name
            .unwrap_or_default()
            .starts_with("frontend-")
    );
}

#[tokio::test]
async fn log_stream_delivers_lines_as_they_come() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "staging");
    let list = pods
        .list(&ListParams::default().labels("app=frontend"))
        .await
        .expect("pods");
    let name = list.items[0].metadata.name.clone().expect("pod name");
    let params = LogParams {
        follow: true,
        tail_lines: Some(2),
        timestamps: true,
        ..Default::default()
    };
    let mut lines = pods
        .log_stream(&name, &params)
        .await
        .expect("log stream")
        .lines();
    let mut got = Vec::new();
    while got.len() < 6 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
            .await
            .expect("a line within 10 s")
            .expect("stream open")
            .expect("line");
        got.push(line);
    }
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "timestamps increase");
}

#[tokio::test]
async fn every_patch_variant_applies() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let c = client(&sb).await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), "staging");
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "staging");
    let selector = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default()
            .get("version")
            .cloned()
    };

    let s = svcs
        .patch(
            "payments",
            &PatchParams::default(),
            &Patch::Strategic(serde_json::json!({"spec": {"selector": {"version": "green"}}})),
        )
        .await
        .expect("strategic");
    assert_eq!(selector(&s).as_deref(), Some("green"));
    let s = svcs
        .patch(
            "payments",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"selector": {"version": "blue"}}})),
        )
        .await
        .expect("merge");
    assert_eq!(selector(&s).as_deref(), Some("blue"));
    let ops: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/spec/selector/version", "value": "blue"},
        {"op": "replace", "path": "/spec/selector/version", "value": "green"}
    ]))
    .expect("json patch");
    let s = svcs
        .patch("payments", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .expect("json patch");
    assert_eq!(selector(&s).as_deref(), Some("green"));
    let failing: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/spec/selector/version", "value": "blue"}
    ]))
    .expect("json patch");
    let err = svcs
        .patch(
            "payments",
            &PatchParams::default(),
            &Patch::Json::<()>(failing),
        )
        .await
        .expect_err("failed test op");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );

    let apply = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "frontend", "namespace": "staging"},
        "spec": {"replicas": 3}
    });
    let d = deploys
        .patch(
            "frontend",
            &PatchParams::apply("kockpit-test").force(),
            &Patch::Apply(&apply),
        )
        .await
        .expect("server-side apply");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(3));

    let dry = svcs
        .patch(
            "payments",
            &PatchParams::default().dry_run(),
            &Patch::Merge(serde_json::json!({"spec": {"selector": {"version": "blue"}}})),
        )
        .await
        .expect("dry run");
    assert_eq!(selector(&dry).as_deref(), Some("blue"));
    let now = svcs.get("payments").await.expect("get");
    assert_eq!(
        selector(&now).as_deref(),
        Some("green"),
        "dry run stores nothing"
    );
}
