//! The cluster actions against the sandbox through the real client: rollback as
//! `kubectl rollout undo`, blue/green flip with its readiness check, HTTPRoute weight steps.

mod common;

use std::time::Duration;

use common::{SandboxProc, http_post_json};
use k8s_openapi::api::apps::v1::Deployment;
use kockpit::cluster::actions::{self, ActionError};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

async fn client(sb: &SandboxProc) -> Client {
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig");
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(cfg).expect("client")
}

async fn image(c: &Client, ns: &str, name: &str) -> String {
    let d = Api::<Deployment>::namespaced(c.clone(), ns)
        .get(name)
        .await
        .expect("get");
    d.spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].image.clone().unwrap_or_default())
        .unwrap_or_default()
}

#[tokio::test]
async fn rollback_restores_the_previous_revision_like_kubectl() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let c = client(&sb).await;
    let hist = actions::history(&c, "production", "frontend")
        .await
        .expect("history");
    assert_eq!(hist.iter().map(|h| h.0).collect::<Vec<_>>(), [3, 2, 1]);

    let applied = actions::rollback(&c, "production", "frontend", 0, false)
        .await
        .expect("rollback");
    assert_eq!(applied.before["images"][0], "registry.local/frontend:3.2.0");
    assert_eq!(applied.after["images"][0], "registry.local/frontend:3.1.0");
    assert_eq!(
        image(&c, "production", "frontend").await,
        "registry.local/frontend:3.1.0"
    );
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    let d = Api::<Deployment>::namespaced(c.clone(), "production")
        .get("frontend")
        .await
        .expect("get");
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("4")
    );
    assert!(
        d.annotations()
            .get("kubernetes.io/change-cause")
            .is_some_and(|c| c.contains("3.1.0"))
    );

    // A chosen revision; then nothing to do when already there.
    actions::rollback(&c, "production", "frontend", 1, false)
        .await
        .expect("to revision 1");
    assert_eq!(
        image(&c, "production", "frontend").await,
        "registry.local/frontend:3.0.0"
    );
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/frontend",
        "-n",
        "production",
        "--timeout=60s",
    ]);
    common::eventually(Duration::from_secs(10), "revision 1 renumbered 5", || {
        let rev = sb.jsonpath(
            "deploy",
            "frontend",
            "production",
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        );
        (rev == "5").then_some(())
    });
    let err = actions::rollback(&c, "production", "frontend", 5, false)
        .await
        .expect_err("same template");
    assert!(
        matches!(err, ActionError::Refused(ref m) if m.contains("nothing to roll back")),
        "{err}"
    );
    let err = actions::rollback(&c, "production", "frontend", 42, false)
        .await
        .expect_err("no such revision");
    assert!(
        err.to_string().contains("no revision 42; revisions:"),
        "{err}"
    );

    // Dry run changes nothing.
    actions::rollback(&c, "production", "frontend", 4, true)
        .await
        .expect("dry run");
    assert_eq!(
        image(&c, "production", "frontend").await,
        "registry.local/frontend:3.0.0"
    );

    // Paused: refused, with what to do.
    sb.kubectl_ok(&[
        "rollout",
        "pause",
        "deployment/frontend",
        "-n",
        "production",
    ]);
    let err = actions::rollback(&c, "production", "frontend", 0, false)
        .await
        .expect_err("paused");
    assert!(err.to_string().contains("paused: resume it"), "{err}");
}

#[tokio::test]
async fn a_flip_to_an_unready_colour_is_refused_and_flipping_back_works() {
    let sb = SandboxProc::start(&["--speed", "20"]);
    let c = client(&sb).await;
    http_post_json(
        &format!("{}/sandbox/v1/faults", sb.url),
        r#"{"namespace":"staging","app":"payments","version":"green","kind":"readinessFailure"}"#,
    );
    common::eventually(Duration::from_secs(10), "green pods not Ready", || {
        let ready = sb.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "staging",
            "-l",
            "app=payments,version=green",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (ready.split_whitespace().all(|s| s == "False") && !ready.is_empty()).then_some(())
    });
    let refused = match actions::flip(&c, "staging", "payments", "green", false).await {
        Err(ActionError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        refused.contains("2 of 2 green pods are not Ready: payments-green-"),
        "{refused}"
    );
    let sel = sb.jsonpath("svc", "payments", "staging", "{.spec.selector.version}");
    assert_eq!(sel, "blue", "nothing was changed");

    let (status, _) = common::http_request(
        "DELETE",
        &format!("{}/sandbox/v1/faults", sb.url),
        "application/json",
        "",
    );
    assert_eq!(status, 200);
    sb.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/payments-green",
        "-n",
        "staging",
        "--timeout=30s",
    ]);
    let mut applied = None;
    for _ in 0..100 {
        if let Ok(a) = actions::flip(&c, "staging", "payments", "green", false).await {
            applied = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let applied = applied.expect("the flip goes through once green is Ready");
    assert_eq!(applied.before["selector"]["version"], "blue");
    assert_eq!(applied.after["selector"]["version"], "green");
    actions::flip(&c, "staging", "payments", "blue", false)
        .await
        .expect("flip back");
    let sel = sb.jsonpath("svc", "payments", "staging", "{.spec.selector.version}");
    assert_eq!(sel, "blue");
}

#[tokio::test]
async fn canary_weight_steps_on_an_httproute() {
    let sb = SandboxProc::start(&[]);
    let c = client(&sb).await;
    let a = actions::set_route_weight(&c, "production", "checkout", "checkout-canary", 25, false)
        .await
        .expect("step");
    assert_eq!(a.before[1]["weight"], 10);
    assert_eq!(a.after[0]["weight"], 75);
    assert_eq!(a.after[1]["weight"], 25);
    let w = sb.jsonpath(
        "httproute",
        "checkout",
        "production",
        "{.spec.rules[0].backendRefs[*].weight}",
    );
    assert_eq!(w, "75 25");
    actions::set_route_weight(&c, "production", "checkout", "checkout-canary", 100, true)
        .await
        .expect("dry run");
    let w = sb.jsonpath(
        "httproute",
        "checkout",
        "production",
        "{.spec.rules[0].backendRefs[*].weight}",
    );
    assert_eq!(w, "75 25", "dry run changed nothing");
    actions::set_route_weight(&c, "production", "checkout", "checkout-canary", 0, false)
        .await
        .expect("abort");
    let w = sb.jsonpath(
        "httproute",
        "checkout",
        "production",
        "{.spec.rules[0].backendRefs[*].weight}",
    );
    assert_eq!(w, "100 0");
    let err = actions::set_route_weight(&c, "production", "checkout", "nope", 10, false)
        .await
        .expect_err("unknown backend");
    assert!(err.to_string().contains("has no backend nope"), "{err}");
}
