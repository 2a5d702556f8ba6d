//! GitOps forward actions, end to end: apps that the sandbox's Flux applies from a bare Git
//! repository, changed with `kockpit rollback|promote|flip` while `[apps.APP.gitops.staging]`
//! names the operator's checkout. A rollback lands as a commit (one line changed, comments
//! kept, a message naming the operator, reason and previous value) pushed to the bare
//! repository, Flux applies it and the cluster converges; a dirty checkout and one with a
//! local commit are refused before anything is audited; the audit chain verifies. A canary
//! promote changes both HTTPRoute weights; a blue/green flip changes the Service selector.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{SandboxProc, eventually};
use git2::{Repository, Signature};

const BIN: &str = env!("CARGO_BIN_EXE_kockpit");
const STAGING: &str = "staging=sandbox/staging";
const ROLLBACK: &[&str] = &[
    "rollback",
    "shop",
    "--env",
    STAGING,
    "--yes",
    "--reason",
    "1.1.0 breaks checkout",
];

const MANIFEST: &str = "# shop: the storefront (team web)
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: staging   # Flux applies it here
  labels:
    app: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
        # the storefront itself
        - name: app
          image: registry.local/shop:VERSION   # pinned by CI
          ports:
            - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: shop
  namespace: staging
spec:
  selector:
    app: shop
  ports:
    - port: 80
      targetPort: 8080
";

fn manifest(version: &str) -> String {
    MANIFEST.replace("VERSION", version)
}

/// Commit `files` on `main` of `repo` and push to origin.
fn commit_push(repo: &Repository, files: &[(&str, &str)], message: &str) -> String {
    let root = repo.workdir().expect("work tree").to_path_buf();
    let mut index = repo.index().expect("index");
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        index.add_path(Path::new(path)).expect("add");
    }
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("find tree");
    let sig = Signature::now("CI", "ci@example.com").expect("sig");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("commit");
    repo.find_remote("origin")
        .expect("origin")
        .push(&["refs/heads/main:refs/heads/main"], None)
        .expect("push");
    oid.to_string()
}

fn clone(bare: &Path, into: &Path) -> Repository {
    Repository::clone(bare.to_str().expect("utf-8"), into).expect("clone")
}

struct World {
    sb: SandboxProc,
    dir: tempfile::TempDir,
    bare: PathBuf,
    ci: Repository,
    checkout: PathBuf,
}

impl World {
    fn kockpit(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--audit-log")
            .arg(self.audit())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .env("KUBECONFIG", self.sb.kubeconfig_path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("XDG_STATE_HOME", self.dir.path().join("xdg-state"))
            .env("USER", "oncall")
            .env("SSH_CONNECTION", "10.1.2.3 50000 10.0.0.1 22")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run kockpit")
    }

    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.kockpit(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "kockpit {args:?}:\n{text}");
        text
    }

    fn audit(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    fn image(&self) -> String {
        self.sb.jsonpath(
            "deployment",
            "shop",
            "staging",
            "{.spec.template.spec.containers[0].image}",
        )
    }

    /// One field of a staging object (`jsonpath`), None while it does not exist.
    fn field(&self, kind: &str, name: &str, path: &str) -> Option<String> {
        let out = self.sb.kubectl(&[
            "get",
            kind,
            name,
            "-n",
            "staging",
            "-o",
            &format!("jsonpath={path}"),
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The head commit of the bare repository: its message and the text of `path` in it.
    fn pushed(&self, path: &str) -> (String, String) {
        let bare = Repository::open_bare(&self.bare).expect("bare");
        let head = self.bare_head();
        let commit = bare
            .find_commit(git2::Oid::from_str(&head).expect("oid"))
            .expect("commit");
        let blob = commit
            .tree()
            .expect("tree")
            .get_path(Path::new(path))
            .expect("file")
            .to_object(&bare)
            .expect("blob")
            .peel_to_blob()
            .expect("blob");
        (
            commit.message().expect("utf-8").to_string(),
            String::from_utf8_lossy(blob.content()).into_owned(),
        )
    }

    fn bare_head(&self) -> String {
        let bare = Repository::open_bare(&self.bare).expect("bare");
        bare.refname_to_id("refs/heads/main")
            .expect("main")
            .to_string()
    }
}

/// The sandbox, a bare repository with `app`'s manifests at `apps/APP/staging/FILE`, the
/// operator's checkout, and Flux applying that path; waits until `ready` holds.
fn world(app: &str, file: &str, text: &str, ready: &dyn Fn(&World) -> bool) -> World {
    let sb = SandboxProc::start(&["--speed", "5"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = dir.path().join("deploy.git");
    let b = Repository::init_bare(&bare).expect("bare");
    b.set_head("refs/heads/main").expect("HEAD");
    let ci = Repository::init(dir.path().join("ci")).expect("ci clone");
    ci.set_head("refs/heads/main").expect("HEAD");
    ci.remote("origin", bare.to_str().expect("utf-8"))
        .expect("remote");
    let rel = format!("apps/{app}/staging/{file}");
    commit_push(&ci, &[(rel.as_str(), text)], &format!("{app}: first"));
    let checkout = dir.path().join("deploy");
    clone(&bare, &checkout);
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[apps.{app}.gitops.staging]\nrepo = \"{}\"\npath = \"apps/{app}/staging\"\n",
            checkout.display()
        ),
    )
    .expect("config");
    let url = url::Url::from_file_path(&bare)
        .expect("file URL")
        .to_string();
    let flux = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: deploy\n  namespace: staging\nspec:\n  url: {url}\n  interval: 2s\n  ref:\n    branch: main\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {app}\n  namespace: staging\nspec:\n  sourceRef:\n    kind: GitRepository\n    name: deploy\n  path: ./apps/{app}/staging\n  interval: 2s\n  prune: false\n"
    );
    let f = dir.path().join("flux.yaml");
    std::fs::write(&f, flux).expect("flux manifest");
    sb.kubectl_ok(&["apply", "-f", f.to_str().expect("utf-8")]);
    let w = World {
        sb,
        dir,
        bare,
        ci,
        checkout,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready(&w) {
        if std::time::Instant::now() > deadline {
            let flux = w.sb.kubectl(&[
                "get",
                "gitrepositories,kustomizations",
                "-n",
                "staging",
                "-o",
                "yaml",
            ]);
            panic!(
                "Flux did not apply {app} in 30 s:\n{}{}",
                String::from_utf8_lossy(&flux.stdout),
                String::from_utf8_lossy(&flux.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    w
}

#[test]
fn a_gitops_rollback_is_a_commit_that_flux_applies() {
    let w = world("shop", "shop.yaml", &manifest("1.0.0"), &|w| {
        w.sb.kubectl(&["get", "deployment", "shop", "-n", "staging"])
            .status
            .success()
            && w.image() == "registry.local/shop:1.0.0"
    });
    // Flux's labels make it GitOps-managed.
    assert_eq!(
        w.sb.jsonpath(
            "deployment",
            "shop",
            "staging",
            "{.metadata.labels.kustomize\\.toolkit\\.fluxcd\\.io/name}"
        ),
        "shop"
    );
    // CI ships 1.1.0 (the operator's checkout is now one commit behind).
    commit_push(
        &w.ci,
        &[("apps/shop/staging/shop.yaml", &manifest("1.1.0"))],
        "shop 1.1.0",
    );
    eventually(Duration::from_secs(30), "Flux to apply 1.1.0", || {
        (w.image() == "registry.local/shop:1.1.0"
            && w.sb.jsonpath(
                "deployment",
                "shop",
                "staging",
                "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
            ) == "2")
            .then_some(())
    });

    // A dirty checkout is refused before anything is confirmed or audited.
    let file = w.checkout.join("apps/shop/staging/shop.yaml");
    let original = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, format!("{original}# local edit\n")).expect("dirty");
    let out = w.expect(3, ROLLBACK);
    assert!(out.contains("uncommitted changes"), "{out}");
    assert!(out.contains("shop.yaml"), "{out}");
    assert!(
        !w.audit().exists()
            || std::fs::read_to_string(w.audit())
                .unwrap_or_default()
                .is_empty()
    );
    std::fs::write(&file, &original).expect("restore");

    // The rollback: a commit on origin/main, not a patch.
    let before_head = w.bare_head();
    let out = w.expect(0, ROLLBACK);
    assert!(out.contains("pushed to origin/main"), "{out}");
    assert!(out.contains("Flux Kustomization staging/shop"), "{out}");
    let head = w.bare_head();
    assert_ne!(head, before_head);
    let bare = Repository::open_bare(&w.bare).expect("bare");
    let commit = bare
        .find_commit(git2::Oid::from_str(&head).expect("oid"))
        .expect("commit");
    let msg = commit.message().expect("utf-8 message");
    assert!(
        msg.starts_with("kockpit: rollback shop in staging"),
        "{msg}"
    );
    assert!(msg.contains("Operator: oncall@10.1.2.3"), "{msg}");
    assert!(msg.contains("Reason: 1.1.0 breaks checkout"), "{msg}");
    assert!(
        msg.contains("Previous-Value: Deployment/shop spec.template.spec.containers[name=app].image = registry.local/shop:1.1.0"),
        "{msg}"
    );
    // Exactly the image line changed; comments and the other document are intact.
    let parent = commit.parent(0).expect("parent");
    let diff = bare
        .diff_tree_to_tree(
            Some(&parent.tree().expect("tree")),
            Some(&commit.tree().expect("tree")),
            None,
        )
        .expect("diff");
    let mut changed = Vec::new();
    diff.print(git2::DiffFormat::Patch, |_, _, l| {
        if matches!(l.origin(), '+' | '-') {
            changed.push(format!(
                "{}{}",
                l.origin(),
                String::from_utf8_lossy(l.content()).trim_end()
            ));
        }
        true
    })
    .expect("print");
    assert_eq!(
        changed,
        vec![
            "-          image: registry.local/shop:1.1.0   # pinned by CI".to_string(),
            "+          image: registry.local/shop:1.0.0   # pinned by CI".to_string(),
        ]
    );
    let blob = commit
        .tree()
        .expect("tree")
        .get_path(Path::new("apps/shop/staging/shop.yaml"))
        .expect("file")
        .to_object(&bare)
        .expect("blob")
        .peel_to_blob()
        .expect("blob");
    assert_eq!(
        String::from_utf8_lossy(blob.content()),
        manifest("1.0.0"),
        "only the image changed"
    );

    // Flux applies the commit; the cluster converges.
    eventually(Duration::from_secs(30), "the cluster to converge", || {
        let applied = w.sb.jsonpath(
            "kustomization",
            "shop",
            "staging",
            "{.status.lastAppliedRevision}",
        );
        (applied.ends_with(&head) && w.image() == "registry.local/shop:1.0.0").then_some(())
    });

    // Audited as an intent and an outcome naming the commit; the chain verifies.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(w.audit())
        .expect("audit")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["phase"], "intent");
    assert_eq!(lines[0]["app"], "shop");
    let outcome = lines[1]["result"]["message"].as_str().unwrap_or_default();
    assert!(
        outcome.starts_with(&format!("pushed {}", &head[..12])),
        "{outcome}"
    );
    assert_eq!(lines[1]["after"]["git"]["commits"][0], head.as_str());
    w.expect(0, &["audit", "verify", "--strict"]);
    // `--file` wins over the global flag; the global flag is not ignored.
    assert!(w.expect(0, &["audit", "show"]).contains("rollback"));

    // A local commit that is not on the remote: refused, nothing pushed.
    let op = Repository::open(&w.checkout).expect("checkout");
    let sig = Signature::now("me", "me@example.com").expect("sig");
    std::fs::write(w.checkout.join("NOTES.md"), "wip\n").expect("write");
    let mut index = op.index().expect("index");
    index.add_path(Path::new("NOTES.md")).expect("add");
    index.write().expect("index");
    let tree = op
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let parent = op.head().expect("head").peel_to_commit().expect("commit");
    op.commit(Some("HEAD"), &sig, &sig, "wip", &tree, &[&parent])
        .expect("local commit");
    // Roll forward again (1.0.0 → 1.1.0 is revision 2 → rollback to 3's predecessor).
    let out = w.expect(
        3,
        &[
            "rollback", "shop", "--env", STAGING, "--yes", "--reason", "again",
        ],
    );
    assert!(
        out.contains("not on origin/main") || out.contains("ahead"),
        "{out}"
    );
    assert_eq!(w.bare_head(), head, "nothing was pushed");
}

/// A canary split by an HTTPRoute, all in one file.
const CANARY: &str = "# web: stable and canary behind one HTTPRoute
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: staging
  labels: {app: web, track: stable}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web, track: stable}
  template:
    metadata:
      labels: {app: web, track: stable}
    spec:
      containers:
        - name: web
          image: registry.local/web:2.0.0
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-canary
  namespace: staging
  labels: {app: web, track: canary}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web, track: canary}
  template:
    metadata:
      labels: {app: web, track: canary}
    spec:
      containers:
        - name: web
          image: registry.local/web:2.1.0
---
apiVersion: v1
kind: Service
metadata: {name: web-stable, namespace: staging, labels: {app: web}}
spec:
  selector: {app: web, track: stable}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-canary, namespace: staging, labels: {app: web}}
spec:
  selector: {app: web, track: canary}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: staging
  labels:
    app: web
spec:
  parentRefs:
    - name: public
      namespace: gateway-system
  rules:
    - backendRefs:
        # stable first
        - name: web-stable
          port: 80
          weight: 90
        - name: web-canary
          port: 80
          weight: 10   # canary share
";

#[test]
fn a_gitops_promote_commits_the_new_weights() {
    const WEIGHTS: &str = "{.spec.rules[0].backendRefs[*].weight}";
    let w = world("web", "web.yaml", CANARY, &|w| {
        w.field("httproute", "web", WEIGHTS).as_deref() == Some("90 10")
    });
    let out = w.expect(
        0,
        &[
            "promote",
            "web",
            "--env",
            STAGING,
            "--yes",
            "--reason",
            "canary clean for 30 min",
        ],
    );
    assert!(out.contains("pushed to origin/main"), "{out}");
    let (msg, text) = w.pushed("apps/web/staging/web.yaml");
    assert!(msg.starts_with("kockpit: promote web in staging"), "{msg}");
    assert!(msg.contains("Reason: canary clean for 30 min"), "{msg}");
    assert!(
        msg.contains("HTTPRoute/web spec.rules[0].backendRefs[name=web-canary].weight = 10"),
        "{msg}"
    );
    // The next step (10 → 25): both weights, nothing else, comments kept.
    assert_eq!(
        text,
        CANARY
            .replace("weight: 90", "weight: 75")
            .replace("weight: 10   # canary share", "weight: 25   # canary share")
    );
    eventually(Duration::from_secs(30), "Flux to apply the weights", || {
        (w.field("httproute", "web", WEIGHTS).as_deref() == Some("75 25")).then_some(())
    });
    w.expect(0, &["audit", "verify"]);
}

/// Blue/green behind one Service's selector.
const BLUE_GREEN: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: pay-blue, namespace: staging, labels: {app: pay, color: blue}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: pay, color: blue}
  template:
    metadata:
      labels: {app: pay, color: blue}
    spec:
      containers:
        - {name: pay, image: registry.local/pay:3.0.0}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: pay-green, namespace: staging, labels: {app: pay, color: green}}
spec:
  replicas: 1
  selector:
    matchLabels: {app: pay, color: green}
  template:
    metadata:
      labels: {app: pay, color: green}
    spec:
      containers:
        - {name: pay, image: registry.local/pay:3.1.0}
---
apiVersion: v1
kind: Service
metadata:
  name: pay
  namespace: staging
spec:
  selector:
    app: pay
    color: blue   # the live colour
  ports:
    - port: 80
      targetPort: 8080
";

#[test]
fn a_gitops_flip_commits_the_new_selector() {
    const COLOUR: &str = "{.spec.selector.color}";
    let w = world("pay", "pay.yaml", BLUE_GREEN, &|w| {
        w.field("service", "pay", COLOUR).as_deref() == Some("blue")
            && w.field("deployment", "pay-green", "{.status.readyReplicas}")
                .as_deref()
                == Some("1")
    });
    let out = w.expect(0, &["flip", "pay", "--env", STAGING, "--yes"]);
    assert!(out.contains("pushed to origin/main"), "{out}");
    let (msg, text) = w.pushed("apps/pay/staging/pay.yaml");
    assert_eq!(
        text,
        BLUE_GREEN.replace(
            "color: blue   # the live colour",
            "color: green   # the live colour"
        )
    );
    assert!(
        msg.contains("Previous-Value: Service/pay spec.selector.color = blue"),
        "{msg}"
    );
    assert!(msg.contains("Reason: (none given)"), "{msg}");
    eventually(Duration::from_secs(30), "Flux to flip the Service", || {
        (w.field("service", "pay", COLOUR).as_deref() == Some("green")).then_some(())
    });
}
