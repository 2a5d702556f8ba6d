//! The sandbox's Flux (GitRepository + Kustomization) against a real Git repository on disk,
//! driven by real kubectl: manifests committed and pushed to a bare repository appear in the
//! cluster with Flux's labels and statuses, follow new commits, undo drift, answer
//! `reconcile.fluxcd.io/requestedAt`, and report broken commits without touching live objects.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{eventually, kubectl_bin, line_reader};
use git2::{IndexAddOption, Repository, Signature};
use serde_json::Value;

/// A bare repository (what the cluster reads) and a working clone (what pushes to it).
struct GitOps {
    bare: PathBuf,
    work: Repository,
}

impl GitOps {
    fn new(dir: &Path) -> GitOps {
        let bare = dir.join("gitops.git");
        Repository::init_bare(&bare).expect("init bare");
        let work = Repository::init(dir.join("work")).expect("init work");
        work.set_head("refs/heads/main").expect("HEAD → main");
        work.remote("origin", bare.to_str().expect("utf-8 path"))
            .expect("remote");
        GitOps { bare, work }
    }

    fn url(&self) -> String {
        url::Url::from_file_path(&self.bare)
            .expect("file URL")
            .to_string()
    }

    /// Write (`Some`) or delete (`None`) files, commit everything on `main` and push it.
    fn push(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        let root = self.work.workdir().expect("work tree").to_path_buf();
        for (path, content) in files {
            let p = root.join(path);
            match content {
                Some(c) => {
                    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&p, c).expect("write");
                }
                None => std::fs::remove_file(&p).expect("remove"),
            }
        }
        let mut index = self.work.index().expect("index");
        index
            .add_all(["*"], IndexAddOption::DEFAULT, None)
            .expect("add");
        index.update_all(["*"], None).expect("update");
        index.write().expect("write index");
        let tree = self
            .work
            .find_tree(index.write_tree().expect("write tree"))
            .expect("tree");
        let sig = Signature::now("Release Bot", "bot@example.com").expect("signature");
        let parent = self.work.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = self
            .work
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("commit");
        self.work
            .find_remote("origin")
            .expect("origin")
            .push(&["refs/heads/main:refs/heads/main"], None)
            .expect("push");
        oid.to_string()
    }
}

/// An in-process sandbox (no seeded world) at 10× speed, and kubectl pointed at it.
struct Cluster {
    _running: kockpit::sandbox::Running,
    _rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let running = rt
            .block_on(kockpit::sandbox::start(kockpit::sandbox::Config {
                backfill_seconds: 0,
                speed: 10.0,
                world: false,
                ..Default::default()
            }))
            .expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        running.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Cluster {
            _running: running,
            _rt: rt,
            dir,
            kubeconfig,
        }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        std::process::Command::new(kubectl_bin())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .args(args)
            .output()
            .expect("run kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn get(&self, what: &str, name: &str, ns: &str) -> Value {
        serde_json::from_str(&self.ok(&["get", what, name, "-n", ns, "-o", "json"])).expect("JSON")
    }

    fn apply(&self, yaml: &str) {
        let path = self.dir.path().join("apply.yaml");
        std::fs::write(&path, yaml).expect("write manifest");
        self.ok(&["apply", "-f", path.to_str().expect("utf-8")]);
    }
}

fn ready(obj: &Value) -> (String, String, String) {
    let c = obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or(Value::Null);
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (s("status"), s("reason"), s("message"))
}

fn image(deploy: &Value) -> &str {
    deploy["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

const NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: web
";

fn deployment(image: &str) -> String {
    format!(
        "# The web app, released by the cockpit.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels:
    app: web # selected by the Service
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: {image} # bumped by releases
          ports:
            - containerPort: 8080
"
    )
}

fn service(port: u32) -> String {
    format!(
        "---
# In front of the web pods.
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: web
spec:
  selector:
    app: web
  ports:
    - name: http
      port: {port}
      targetPort: 8080
---
# (an empty document)
"
    )
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn flux_applies_follows_reverts_and_reports() {
    let cluster = Cluster::start();
    let git = GitOps::new(cluster.dir.path());
    let deploy_v1 = deployment("registry.local/web:1.0.0");
    let svc = service(80);
    let c1 = git.push(
        &[
            ("apps/web/namespace.yaml", Some(NAMESPACE)),
            ("apps/web/deployment.yaml", Some(&deploy_v1)),
            ("apps/web/service.yml", Some(&svc)),
            (
                "apps/web/kustomization.yaml",
                Some("resources: [deployment.yaml]\n"),
            ),
            ("apps/api/deployment.yaml", Some("not: [read\n")),
            ("README.md", Some("GitOps repository\n")),
        ],
        "web 1.0.0",
    );

    // (`kubectl create namespace` sends protobuf, which the sandbox only reads for access
    // reviews: apply the Namespace instead.)
    cluster.apply(&format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: gitops
  namespace: flux-system
spec:
  interval: 1s
  url: {}
  ref:
    branch: main
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: web
  namespace: flux-system
spec:
  interval: 1s
  path: ./apps/web
  prune: true
  sourceRef:
    kind: GitRepository
    name: gitops
",
        git.url()
    ));

    // The first commit is fetched, then applied, with Flux's labels and statuses.
    let rev1 = format!("main@sha1:{c1}");
    let repo = eventually(LONG, "GitRepository Ready", || {
        let r = cluster.get("gitrepository", "gitops", "flux-system");
        (ready(&r).0 == "True").then_some(r)
    });
    assert_eq!(repo["status"]["artifact"]["revision"], rev1.as_str());
    assert_eq!(
        ready(&repo),
        (
            "True".into(),
            "Succeeded".into(),
            format!("stored artifact for revision '{rev1}'")
        )
    );
    assert_eq!(repo["status"]["observedGeneration"], 1);
    let ks = eventually(LONG, "Kustomization Ready", || {
        let k = cluster.get("kustomization", "web", "flux-system");
        (ready(&k).0 == "True").then_some(k)
    });
    assert_eq!(
        ready(&ks),
        (
            "True".into(),
            "ReconciliationSucceeded".into(),
            format!("Applied revision: {rev1}")
        )
    );
    assert_eq!(ks["status"]["lastAppliedRevision"], rev1.as_str());
    assert_eq!(ks["status"]["lastAttemptedRevision"], rev1.as_str());
    assert_eq!(ks["status"]["observedGeneration"], 1);
    let inventory: Vec<&str> = ks["status"]["inventory"]["entries"]
        .as_array()
        .expect("inventory")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(
        inventory,
        [
            "_web__Namespace",
            "web_web__Service",
            "web_web_apps_Deployment"
        ]
    );
    let deploy = cluster.get("deployment", "web", "web");
    assert_eq!(image(&deploy), "registry.local/web:1.0.0");
    let labels = &deploy["metadata"]["labels"];
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/name"], "web");
    assert_eq!(
        labels["kustomize.toolkit.fluxcd.io/namespace"],
        "flux-system"
    );
    assert_eq!(labels["app"], "web");
    assert!(
        serde_json::from_str::<Value>(&cluster.ok(&[
            "get",
            "deployment",
            "web",
            "-n",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ]))
        .expect("JSON")["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields")
            .iter()
            .any(|m| m["manager"] == "kustomize-controller"),
        "{deploy}"
    );
    let svc_live = cluster.get("service", "web", "web");
    assert_eq!(svc_live["spec"]["ports"][0]["port"], 80);
    assert_eq!(
        svc_live["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
        "web"
    );

    // Nothing churns: intervals pass without new resourceVersions on what was applied (the
    // Deployment's own status moves with its pods, so the Service is the witness).
    let svc_rv = svc_live["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        cluster.get("service", "web", "web")["metadata"]["resourceVersion"],
        svc_rv
    );
    let ks_rv =
        cluster.get("kustomization", "web", "flux-system")["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        cluster.get("kustomization", "web", "flux-system")["metadata"]["resourceVersion"],
        ks_rv,
        "the status is not rewritten every interval"
    );

    // kubectl's tables: Flux's printer columns, short names and categories.
    let table = cluster.ok(&["get", "kustomizations", "-n", "flux-system"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "AGE", "READY", "STATUS"], "{table}");
    assert!(
        table.contains("True") && table.contains(&format!("Applied revision: {rev1}")),
        "{table}"
    );
    let table = cluster.ok(&["get", "gitrepositories", "-n", "flux-system"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "URL", "AGE", "READY", "STATUS"], "{table}");
    assert!(
        table.contains(&git.url()) && table.contains("stored artifact"),
        "{table}"
    );
    assert!(
        cluster
            .ok(&["get", "ks", "-n", "flux-system", "-o", "name"])
            .contains("kustomization.kustomize.toolkit.fluxcd.io/web")
    );
    assert!(cluster.ok(&["get", "gitrepo", "-A"]).contains("gitops"));
    assert!(
        cluster
            .ok(&["get", "all", "-n", "flux-system"])
            .contains("gitrepository")
    );
    let resources = cluster.ok(&["api-resources", "--api-group", "source.toolkit.fluxcd.io"]);
    assert!(
        resources.contains("gitrepositories") && resources.contains("gitrepo"),
        "{resources}"
    );

    // A new commit changing the image: the Deployment follows, watchers see it (`--watch`
    // prints the current revision first, then every change).
    let mut watch = std::process::Command::new(kubectl_bin())
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("HOME", cluster.dir.path())
        .args([
            "get",
            "kustomizations",
            "-n",
            "flux-system",
            "--watch",
            "-o",
            "jsonpath={.status.lastAppliedRevision}{\"\\n\"}",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl watch");
    let lines = line_reader(&mut watch);
    std::thread::sleep(Duration::from_millis(300));
    let c2 = git.push(
        &[(
            "apps/web/deployment.yaml",
            Some(&deployment("registry.local/web:1.1.0")),
        )],
        "web 1.1.0",
    );
    let rev2 = format!("main@sha1:{c2}");
    eventually(LONG, "the new image", || {
        (image(&cluster.get("deployment", "web", "web")) == "registry.local/web:1.1.0")
            .then_some(())
    });
    eventually(LONG, "lastAppliedRevision names the new commit", || {
        let k = cluster.get("kustomization", "web", "flux-system");
        (k["status"]["lastAppliedRevision"] == rev2.as_str()).then_some(())
    });
    eventually(LONG, "the watch reports the new revision", || {
        lines
            .recv_timeout(Duration::from_millis(200))
            .ok()
            .filter(|l| l.trim() == rev2)
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let repo = cluster.get("gitrepository", "gitops", "flux-system");
    assert_eq!(repo["status"]["artifact"]["revision"], rev2.as_str());

    // Drift: a hand-patched image is put back at the next interval.
    let patched = cluster.ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.local/web:hotfix"}]"#,
        "-o",
        "json",
    ]);
    assert!(patched.contains("registry.local/web:hotfix"), "{patched}");
    eventually(LONG, "the drift reverted", || {
        (image(&cluster.get("deployment", "web", "web")) == "registry.local/web:1.1.0")
            .then_some(())
    });

    // `flux reconcile`: with a long interval, a new commit waits until requestedAt is set.
    cluster.ok(&[
        "patch",
        "gitrepository",
        "gitops",
        "-n",
        "flux-system",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"interval":"1h"}}"#,
    ]);
    eventually(LONG, "the new interval observed", || {
        let r = cluster.get("gitrepository", "gitops", "flux-system");
        (r["status"]["observedGeneration"] == 2).then_some(())
    });
    let c3 = git.push(
        &[(
            "apps/web/deployment.yaml",
            Some(&deployment("registry.local/web:1.2.0")),
        )],
        "web 1.2.0",
    );
    let rev3 = format!("main@sha1:{c3}");
    std::thread::sleep(Duration::from_millis(800));
    let repo = cluster.get("gitrepository", "gitops", "flux-system");
    assert_eq!(
        repo["status"]["artifact"]["revision"],
        rev2.as_str(),
        "not fetched before the interval"
    );
    cluster.ok(&[
        "annotate",
        "--overwrite",
        "gitrepository",
        "gitops",
        "-n",
        "flux-system",
        "reconcile.fluxcd.io/requestedAt=2026-01-01T00:00:00.000000000Z",
    ]);
    let repo = eventually(Duration::from_secs(5), "the requested reconcile", || {
        let r = cluster.get("gitrepository", "gitops", "flux-system");
        (r["status"]["artifact"]["revision"] == rev3.as_str()).then_some(r)
    });
    assert_eq!(
        repo["status"]["lastHandledReconcileAt"],
        "2026-01-01T00:00:00.000000000Z"
    );
    eventually(Duration::from_secs(5), "the new artifact applied", || {
        (image(&cluster.get("deployment", "web", "web")) == "registry.local/web:1.2.0")
            .then_some(())
    });

    // A broken commit: Ready False naming the file, nothing applied.
    let c4 = git.push(
        &[
            (
                "apps/web/deployment.yaml",
                Some(&deployment("registry.local/web:9.9.9")),
            ),
            (
                "apps/web/broken.yaml",
                Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n"),
            ),
        ],
        "broken",
    );
    let rev4 = format!("main@sha1:{c4}");
    cluster.ok(&[
        "annotate",
        "--overwrite",
        "gitrepository",
        "gitops",
        "-n",
        "flux-system",
        "reconcile.fluxcd.io/requestedAt=2026-01-01T00:01:00Z",
    ]);
    let ks = eventually(LONG, "Ready False on the broken commit", || {
        let k = cluster.get("kustomization", "web", "flux-system");
        (ready(&k).0 == "False").then_some(k)
    });
    let (_, reason, message) = ready(&ks);
    assert_eq!(reason, "BuildFailed");
    assert!(message.contains("apps/web/broken.yaml"), "{message}");
    assert_eq!(ks["status"]["lastAttemptedRevision"], rev4.as_str());
    assert_eq!(ks["status"]["lastAppliedRevision"], rev3.as_str());
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        image(&cluster.get("deployment", "web", "web")),
        "registry.local/web:1.2.0",
        "nothing of a broken build is applied"
    );
    let table = cluster.ok(&["get", "ks", "-n", "flux-system"]);
    assert!(
        table.contains("False") && table.contains("broken.yaml"),
        "{table}"
    );

    // A commit the API server rejects in part: the rest is applied, the rejection reported.
    // Dropping the Service file prunes it once the Kustomization succeeds again.
    let c5 = git.push(
        &[
            ("apps/web/broken.yaml", None),
            ("apps/web/service.yml", Some(&service(0))),
        ],
        "bad port",
    );
    cluster.ok(&[
        "annotate",
        "--overwrite",
        "gitrepository",
        "gitops",
        "-n",
        "flux-system",
        "reconcile.fluxcd.io/requestedAt=2026-01-01T00:02:00Z",
    ]);
    let ks = eventually(LONG, "ReconciliationFailed", || {
        let k = cluster.get("kustomization", "web", "flux-system");
        (ready(&k).1 == "ReconciliationFailed").then_some(k)
    });
    let (status, _, message) = ready(&ks);
    assert_eq!(status, "False");
    assert!(
        message.contains("Service/web/web") && message.contains("65535"),
        "{message}"
    );
    assert_eq!(
        ks["status"]["lastAttemptedRevision"],
        format!("main@sha1:{c5}")
    );
    assert_eq!(
        image(&cluster.get("deployment", "web", "web")),
        "registry.local/web:9.9.9",
        "the valid objects are applied"
    );
    let c6 = git.push(&[("apps/web/service.yml", None)], "no service");
    cluster.ok(&[
        "annotate",
        "--overwrite",
        "gitrepository",
        "gitops",
        "-n",
        "flux-system",
        "reconcile.fluxcd.io/requestedAt=2026-01-01T00:03:00Z",
    ]);
    eventually(LONG, "Ready again and the Service pruned", || {
        let k = cluster.get("kustomization", "web", "flux-system");
        let svc_gone = !cluster
            .kubectl(&["get", "service", "web", "-n", "web"])
            .status
            .success();
        (ready(&k).0 == "True" && svc_gone).then_some(())
    });
    let ks = cluster.get("kustomization", "web", "flux-system");
    assert_eq!(
        ks["status"]["lastAppliedRevision"],
        format!("main@sha1:{c6}")
    );

    // Events like Flux's.
    let events = cluster.ok(&["get", "events", "-n", "flux-system", "-o", "json"]);
    let events: Value = serde_json::from_str(&events).expect("events JSON");
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for want in [
        "NewArtifact",
        "Progressing",
        "BuildFailed",
        "ReconciliationFailed",
    ] {
        assert!(reasons.contains(&want), "{want} in {reasons:?}");
    }
}

#[test]
fn missing_repository_and_branch_are_reported() {
    let cluster = Cluster::start();
    let git = GitOps::new(cluster.dir.path());
    git.push(&[("apps/web/namespace.yaml", Some(NAMESPACE))], "ns");
    let nowhere = cluster.dir.path().join("nowhere.git");
    cluster.apply(&format!(
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: gone
  namespace: default
spec:
  interval: 1m
  url: {}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: no-branch
  namespace: default
spec:
  interval: 1m
  url: {}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: orphan
  namespace: default
spec:
  interval: 1m
  path: ./
  sourceRef:
    kind: GitRepository
    name: missing
",
        nowhere.display(),
        git.url()
    ));
    let gone = eventually(LONG, "repository failure", || {
        let r = cluster.get("gitrepository", "gone", "default");
        (ready(&r).0 == "False").then_some(r)
    });
    let (_, reason, message) = ready(&gone);
    assert_eq!(reason, "GitOperationFailed");
    assert!(message.contains("nowhere.git"), "{message}");
    let no_branch = eventually(LONG, "branch failure", || {
        let r = cluster.get("gitrepository", "no-branch", "default");
        (ready(&r).0 == "False").then_some(r)
    });
    let (_, _, message) = ready(&no_branch);
    assert!(message.contains("branch 'master' not found"), "{message}");
    let orphan = eventually(LONG, "source failure", || {
        let k = cluster.get("kustomization", "orphan", "default");
        (ready(&k).0 == "False").then_some(k)
    });
    assert_eq!(
        ready(&orphan),
        (
            "False".into(),
            "ArtifactFailed".into(),
            "Source 'GitRepository/default/missing' not found".into()
        )
    );
}
