//! The cluster actions against the sandbox through the real client: rollback as
//! `kubectl rollout undo`, blue/green flip with its readiness check, HTTPRoute weight steps,
//! and optimistic concurrency (a 409 re-planned once on fresh state, never applied twice).

mod common;

use std::time::Duration;

use common::{SandboxProc, http_post_json};
use k8s_openapi::api::apps::v1::Deployment;
use kockpit::cluster::actions::{self, ActionError, Applied, PlanOptions, Verb};
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

async fn act(
    c: &Client,
    ns: &str,
    app: &str,
    verb: Verb,
    to_revision: Option<i64>,
    dry_run: bool,
) -> Result<Applied, ActionError> {
    let opts = PlanOptions {
        to_revision,
        steps: vec![5, 10, 25, 50, 100],
        ..PlanOptions::default()
    };
    let plan = actions::plan(c, ns, app, verb, &opts).await?;
    if plan.noop {
        return Err(ActionError::Refused(plan.changes.join("; ")));
    }
    actions::apply(c, &plan, dry_run).await
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
    assert_eq!(
        hist.iter().map(|h| h.revision).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert!(hist[0].current && !hist[1].current);

    let applied = act(&c, "production", "frontend", Verb::Rollback, None, false)
        .await
        .expect("rollback");
    assert_eq!(
        applied.plan.before["images"][0],
        "registry.local/frontend:3.2.0"
    );
    assert_eq!(
        applied.plan.after["images"][0],
        "registry.local/frontend:3.1.0"
    );
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
    act(&c, "production", "frontend", Verb::Rollback, Some(1), false)
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
    let err = act(&c, "production", "frontend", Verb::Rollback, Some(5), false)
        .await
        .expect_err("same template");
    assert!(
        matches!(err, ActionError::Refused(ref m) if m.contains("nothing to roll back")),
        "{err}"
    );
    let err = act(
        &c,
        "production",
        "frontend",
        Verb::Rollback,
        Some(42),
        false,
    )
    .await
    .expect_err("no such revision");
    assert!(
        err.to_string().contains("no revision 42; revisions:"),
        "{err}"
    );

    // Dry run changes nothing.
    act(&c, "production", "frontend", Verb::Rollback, Some(4), true)
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
    let err = act(&c, "production", "frontend", Verb::Rollback, None, false)
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
    let refused = match act(&c, "staging", "payments", Verb::Flip, None, false).await {
        Err(ActionError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        refused.contains("2 of 2 pods are not Ready: payments-green-"),
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
        if let Ok(a) = act(&c, "staging", "payments", Verb::Flip, None, false).await {
            applied = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let applied = applied.expect("the flip goes through once green is Ready");
    assert_eq!(applied.plan.before["selector"]["version"], "blue");
    assert_eq!(applied.plan.after["selector"]["version"], "green");
    // Rollback of blue/green is the flip back.
    act(&c, "staging", "payments", Verb::Rollback, None, false)
        .await
        .expect("flip back");
    let sel = sb.jsonpath("svc", "payments", "staging", "{.spec.selector.version}");
    assert_eq!(sel, "blue");
}

fn weights(sb: &SandboxProc, ns: &str) -> String {
    sb.jsonpath(
        "httproute",
        "checkout",
        ns,
        "{.spec.rules[0].backendRefs[*].weight}",
    )
}

#[tokio::test]
async fn canary_steps_full_promote_and_abort_on_an_httproute() {
    let sb = SandboxProc::start(&[]);
    let c = client(&sb).await;
    let a = act(&c, "production", "checkout", Verb::Promote, None, false)
        .await
        .expect("step");
    assert_eq!(a.plan.before["canary_weight"], 10);
    assert_eq!(a.plan.after["canary_weight"], 25);
    assert_eq!(weights(&sb, "production"), "75 25");
    act(&c, "production", "checkout", Verb::Promote, None, false)
        .await
        .expect("step");
    assert_eq!(weights(&sb, "production"), "50 50");
    act(&c, "production", "checkout", Verb::PromoteFull, None, true)
        .await
        .expect("dry run");
    assert_eq!(
        weights(&sb, "production"),
        "50 50",
        "dry run changed nothing"
    );
    act(&c, "production", "checkout", Verb::PromoteFull, None, false)
        .await
        .expect("full");
    assert_eq!(weights(&sb, "production"), "0 100");
    let err = act(&c, "production", "checkout", Verb::Promote, None, false)
        .await
        .expect_err("nothing left to promote");
    assert!(err.to_string().contains("already takes 100 %"), "{err}");
    act(&c, "production", "checkout", Verb::Abort, None, false)
        .await
        .expect("abort");
    assert_eq!(weights(&sb, "production"), "100 0");
    // Wrong verb for the release kind: a clear refusal.
    let err = act(&c, "production", "frontend", Verb::Promote, None, false)
        .await
        .expect_err("frontend is no canary");
    assert!(
        err.to_string()
            .contains("promote is for canaries; frontend is a rolling update"),
        "{err}"
    );
    let err = act(&c, "production", "nope", Verb::Promote, None, false)
        .await
        .expect_err("no such app");
    assert!(
        err.to_string()
            .contains("no app nope in namespace production"),
        "{err}"
    );
}

#[tokio::test]
async fn a_conflict_is_replanned_once_and_never_applied_twice() {
    let sb = SandboxProc::start(&[]);
    let c = client(&sb).await;
    let opts = PlanOptions {
        steps: vec![5, 10, 25, 50, 100],
        ..PlanOptions::default()
    };
    let plan = |verb| {
        let c = c.clone();
        let opts = opts.clone();
        async move {
            actions::plan(&c, "staging", "checkout", verb, &opts)
                .await
                .expect("plan")
        }
    };

    // 1. Someone touches the route (a label) after we read it: 409, re-planned, sent once.
    let p = plan(Verb::Promote).await;
    sb.kubectl_ok(&[
        "label",
        "httproute",
        "checkout",
        "-n",
        "staging",
        "team=shop",
    ]);
    let a = actions::apply(&c, &p, false).await.expect("retried");
    assert!(a.retried && !a.unchanged, "{a:?}");
    assert_eq!(weights(&sb, "staging"), "75 25");

    // 2. Someone made exactly our change already: nothing is sent.
    let p = plan(Verb::Promote).await;
    assert_eq!(p.after["canary_weight"], 50);
    sb.kubectl_ok(&[
        "patch", "httproute", "checkout", "-n", "staging", "--type=json", "-p",
        r#"[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":50},{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":50}]"#,
    ]);
    let a = actions::apply(&c, &p, false).await.expect("already done");
    assert!(a.retried && a.unchanged, "{a:?}");
    assert_eq!(weights(&sb, "staging"), "50 50");

    // 3. Someone set a different weight: reported, not overwritten.
    let p = plan(Verb::Promote).await;
    sb.kubectl_ok(&[
        "patch", "httproute", "checkout", "-n", "staging", "--type=json", "-p",
        r#"[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":95},{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":5}]"#,
    ]);
    let err = actions::apply(&c, &p, false).await.expect_err("conflict");
    assert!(matches!(err, ActionError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("\"canary_weight\":5"), "{err}");
    assert_eq!(weights(&sb, "staging"), "95 5");
}
