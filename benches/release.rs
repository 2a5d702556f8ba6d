//! Release sessions and GitOps, measured: one evaluation of an open release's exit checklist
//! against the (in-process) sandbox over loopback HTTP (pods, Deployments, release detection
//! and a Prometheus range query over the observation window; what the cockpit does every two
//! seconds per open release); one format-preserving YAML edit of a Deployment manifest (with
//! its verification by re-parsing); and a whole GitOps commit: fetch and check the checkout,
//! edit, commit, push to a local bare repository. Run with `cargo bench --bench release`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

use kockpit::audit::Operator;
use kockpit::cluster::client;
use kockpit::config::file::{Config, EnvConfig, GitopsConfig};
use kockpit::gitops::change::{ObjectChange, commit_and_push};
use kockpit::gitops::yaml::{self, FieldPath};
use kockpit::release::live::Evaluator;
use kockpit::release::{Release, State, Transition};

const MANIFEST: &str = "# checkout, production
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout   # the stable one
  namespace: shop
  labels:
    app: checkout
    team: payments
  annotations:
    kubernetes.io/change-cause: \"release 1.4.2\"
spec:
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      app: checkout
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels:
        app: checkout
      annotations:
        prometheus.io/scrape: \"true\"
    spec:
      containers:
        # the app
        - name: app
          image: registry.example.com/shop/checkout:1.4.2  # pinned
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: APP_ENV
              value: production
          readinessProbe:
            httpGet: {path: /healthz/ready, port: http}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: 500m, memory: 256Mi}
        - name: proxy
          image: envoyproxy/envoy:v1.30
";

fn yaml_edit(c: &mut Criterion) {
    let path = FieldPath::parse("spec.template.spec.containers[name=app].image").expect("path");
    let value = json!("registry.example.com/shop/checkout:1.4.1");
    c.bench_function(
        "yaml: set an image in a 50-line manifest (with verification)",
        |b| b.iter(|| yaml::set(MANIFEST, 0, &path, &value).expect("edit")),
    );
}

fn checklist(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let running = rt
        .block_on(kockpit::sandbox::start(kockpit::sandbox::Config {
            backfill_seconds: 900,
            ..Default::default()
        }))
        .expect("sandbox");
    let _guard = rt.enter();
    let kube = client::for_url(&running.url(), "bench").expect("client");
    let env = EnvConfig {
        name: "staging".into(),
        context: None,
        namespace: "staging".into(),
        prometheus: Some(running.prometheus_url()),
        production: false,
        read_only: false,
    };
    let ev = Evaluator::new(kube, env, Config::default(), None);
    let now = jiff::Timestamp::now();
    let opened = now - jiff::SignedDuration::from_secs(600);
    let release = Release {
        app: "checkout".into(),
        environment: "staging".into(),
        context: "sandbox".into(),
        namespace: "staging".into(),
        number: 1,
        version: "1.5.0".into(),
        state: State::Open,
        transitions: vec![Transition {
            seq: 1,
            time: opened,
            verb: "open".into(),
            operator: Operator::default(),
            reason: None,
            detail: json!({}),
        }],
        overridden: false,
    };
    let smoke = BTreeMap::new();
    let mut group = c.benchmark_group("release");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(
        "checklist: one evaluation (10 min window, sandbox over HTTP)",
        |b| b.iter(|| rt.block_on(ev.checklist(&release, opened, &smoke, jiff::Timestamp::now()))),
    );
    group.finish();
    running.shutdown();
}

fn commit(dir: &Path, name: &str, files: &[(&str, &str)], repo: &git2::Repository) {
    let mut index = repo.index().expect("index");
    for (p, text) in files {
        std::fs::create_dir_all(dir.join(p).parent().expect("parent")).expect("mkdir");
        std::fs::write(dir.join(p), text).expect("write");
        index.add_path(Path::new(p)).expect("add");
    }
    index.write().expect("index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let sig = git2::Signature::now(name, "bench@example.com").expect("sig");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, name, &tree, &parents)
        .expect("commit");
}

fn gitops_commit(c: &mut Criterion) {
    let tmp = tempfile::tempdir_in(".").expect("dir on the project's disk");
    let bare = tmp.path().join("deploy.git");
    git2::Repository::init_bare(&bare)
        .and_then(|b| b.set_head("refs/heads/main"))
        .expect("bare");
    let seed = tmp.path().join("seed");
    let r = git2::Repository::init(&seed).expect("seed");
    r.set_head("refs/heads/main").expect("HEAD");
    commit(&seed, "seed", &[("apps/checkout.yaml", MANIFEST)], &r);
    r.remote("origin", bare.to_str().expect("utf-8"))
        .and_then(|mut o| o.push(&["refs/heads/main:refs/heads/main"], None))
        .expect("push");
    let checkout = tmp.path().join("checkout");
    git2::Repository::clone(bare.to_str().expect("utf-8"), &checkout).expect("clone");
    let cfg = GitopsConfig {
        repo: checkout,
        path: "apps".into(),
        remote: "origin".into(),
        branch: None,
    };
    let image = |t: &str| {
        json!({"kind": "Deployment", "metadata": {"name": "checkout"},
               "spec": {"template": {"spec": {"containers": [{"name": "app", "image": format!("registry.example.com/shop/checkout:{t}")}]}}}})
    };
    let mut flip = false;
    c.bench_function(
        "gitops: fetch + check, edit, commit and push to a local bare repository",
        |b| {
            b.iter(|| {
                flip = !flip;
                let (from, to) = if flip {
                    ("1.4.2", "1.4.1")
                } else {
                    ("1.4.1", "1.4.2")
                };
                let change = ObjectChange {
                    res: kockpit::cluster::actions::Res::DEPLOYMENT,
                    name: "checkout".into(),
                    before: image(from),
                    after: image(to),
                };
                commit_and_push(
                    &cfg,
                    &[change],
                    &|_| "kockpit: bench".to_string(),
                    ("bench", "bench@example.com"),
                )
                .expect("commit and push")
            })
        },
    );
}

criterion_group!(benches, yaml_edit, gitops_commit, checklist);
criterion_main!(benches);
