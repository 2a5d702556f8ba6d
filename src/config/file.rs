//! The config file (`$XDG_CONFIG_HOME/kockpit/config.toml`) and `--env` flags: which
//! environments to watch, thresholds and canary steps. Everything is validated here, so the
//! rest of the cockpit can trust a [`Config`]; mistakes are reported with file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Source};
use super::paths::{config_file, expand_tilde, read, read_if_exists};
use super::theme::check_theme_name;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The environments, in file order (the cockpit's columns or tabs).
    pub envs: Vec<EnvConfig>,
    /// Kubeconfig to use instead of `$KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Disable every mutating action in every environment.
    pub read_only: bool,
    pub audit_log: Option<PathBuf>,
    /// Width of the metric charts, in minutes.
    pub chart_minutes: u32,
    pub thresholds: Thresholds,
    /// A built-in theme name or a path to a theme file.
    pub theme: Option<String>,
    /// Canary weights (percent) that `promote` steps through; strictly increasing, ends at 100.
    pub canary_steps: Vec<u32>,
    /// Per-app settings (`[apps.NAME]`).
    pub apps: std::collections::BTreeMap<String, AppConfig>,
    /// Rollback drills (`[drill]`).
    pub drill: DrillConfig,
    /// The automated rollback guard (`[guard]`).
    pub guard: GuardConfig,
    /// Release sessions (`[release]`).
    pub release: ReleaseConfig,
}

/// `[release]`: release sessions and their exit checklist.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseConfig {
    /// How long the new version must run without an error-rate or latency breach since the
    /// last change (default 600 s).
    pub observation_seconds: f64,
    /// Seconds between runs of an open release's smoke checks (default 30).
    pub smoke_interval_seconds: f64,
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig {
            observation_seconds: 600.0,
            smoke_interval_seconds: 30.0,
        }
    }
}

/// One smoke check of an app (`[[apps.NAME.smoke]]`), run from the operator's machine while a
/// release is open. `{app}`, `{env}`, `{namespace}` and `{version}` in the URL or the command
/// are replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct SmokeCheck {
    pub name: String,
    pub kind: SmokeKind,
    pub timeout_seconds: f64,
    /// Only in these environments (all when empty).
    pub envs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SmokeKind {
    /// HTTP GET; passes on this status.
    Http { url: String, expect_status: u16 },
    /// A program and its arguments (a string in the file runs with `sh -c`); passes on this
    /// exit code.
    Command { argv: Vec<String>, expect_exit: i32 },
}

/// Where an app's manifests live in Git for one environment (`[apps.NAME.gitops.ENV]`):
/// promote and rollback are then written there as commits instead of patching the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsConfig {
    /// A local checkout of the GitOps repository.
    pub repo: PathBuf,
    /// The manifest file, or a directory of manifests, relative to the checkout's root.
    pub path: PathBuf,
    /// The remote to push to (default `origin`).
    pub remote: String,
    /// The branch (default: the checkout's current branch).
    pub branch: Option<String>,
}

/// `[drill]`: how rollback drills run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DrillConfig {
    /// On a real cluster (no sandbox fault API): the known-bad image a drill rolls out.
    pub bad_image: Option<String>,
    /// Let drills run in production environments (default: refused).
    pub allow_production: bool,
    /// Seconds the metrics must stay under the thresholds to count as recovered.
    pub hold_seconds: Option<f64>,
    /// The fault comes at a random moment within this many seconds.
    pub window_seconds: Option<f64>,
}

/// `[guard]`: the automated rollback guard (Flagger-like analysis).
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// Off by default.
    pub enabled: bool,
    /// Seconds between checks.
    pub interval_seconds: f64,
    /// Consecutive failed checks that count as a breach.
    pub failed_checks: u32,
    /// Seconds of countdown before the rollback, during which it can be cancelled.
    pub countdown_seconds: f64,
    /// How long after a flip (or a rolling update) the guard keeps watching, in seconds.
    pub after_change_seconds: f64,
    /// Per-app thresholds overriding `[thresholds]`.
    pub apps: std::collections::BTreeMap<String, Thresholds>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            enabled: false,
            interval_seconds: 10.0,
            failed_checks: 3,
            countdown_seconds: 15.0,
            after_change_seconds: 300.0,
            apps: Default::default(),
        }
    }
}

/// Settings for one app.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppConfig {
    /// The canary router, instead of detecting it: one of [`ROUTERS`].
    pub router: Option<String>,
    /// Observation window of its releases, overriding `[release]`.
    pub observation_seconds: Option<f64>,
    /// Smoke checks of its releases.
    pub smoke: Vec<SmokeCheck>,
    /// GitOps repository per environment name.
    pub gitops: std::collections::BTreeMap<String, GitopsConfig>,
}

/// Router names `router = "…"` accepts.
pub const ROUTERS: &[&str] = &[
    "replica-ratio",
    "gateway-api",
    "ingress-nginx",
    "argo-rollouts",
];

/// When a canary's metrics count as bad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Errors / requests, in (0, 1].
    pub max_error_ratio: f64,
    /// 99th percentile latency, in seconds.
    pub max_p99_seconds: f64,
}

/// One environment: a namespace in a kubeconfig context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvConfig {
    pub name: String,
    /// The kubeconfig context; `None` means the current context.
    pub context: Option<String>,
    pub namespace: String,
    /// Prometheus base URL (http or https).
    pub prometheus: Option<String>,
    /// Production gets the loud header and typed confirmations.
    pub production: bool,
    pub read_only: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_error_ratio: 0.01,
            max_p99_seconds: 0.5,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            envs: Vec::new(),
            kubeconfig: None,
            read_only: false,
            audit_log: None,
            chart_minutes: 15,
            thresholds: Thresholds::default(),
            theme: None,
            canary_steps: vec![5, 10, 25, 50, 100],
            apps: Default::default(),
            drill: DrillConfig::default(),
            guard: GuardConfig::default(),
            release: ReleaseConfig::default(),
        }
    }
}

impl Config {
    /// An app's limits: `[guard.apps.NAME]`, else `[thresholds]`.
    pub fn thresholds_for(&self, app: &str) -> Thresholds {
        self.guard.apps.get(app).copied().unwrap_or(self.thresholds)
    }

    /// An app's observation window in seconds: `[apps.NAME]`, else `[release]`.
    pub fn observation_for(&self, app: &str) -> f64 {
        self.apps
            .get(app)
            .and_then(|a| a.observation_seconds)
            .unwrap_or(self.release.observation_seconds)
    }

    /// The smoke checks of `app` that run in `env`.
    pub fn smoke_for(&self, app: &str, env: &str) -> Vec<SmokeCheck> {
        self.apps
            .get(app)
            .map(|a| {
                a.smoke
                    .iter()
                    .filter(|c| c.envs.is_empty() || c.envs.iter().any(|e| e == env))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where `app`'s manifests for `env` live in Git, if configured.
    pub fn gitops_for(&self, app: &str, env: &str) -> Option<&GitopsConfig> {
        self.apps.get(app).and_then(|a| a.gitops.get(env))
    }
}

/// `$XDG_CONFIG_HOME/kockpit/config.toml`, else `~/.config/kockpit/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    config_file("config.toml")
}

/// Read the config file. An explicit `path` must exist; without one the default path is used,
/// and if there is no file there the result is `Ok(None)` (the cockpit then uses its sandbox).
pub fn load(path: Option<&Path>) -> Result<Option<Config>, ConfigError> {
    let (path, text) = match path {
        Some(path) => (path.to_path_buf(), read(path)?),
        None => {
            let Some(path) = default_config_path() else {
                return Ok(None);
            };
            match read_if_exists(&path)? {
                Some(text) => (path, text),
                None => return Ok(None),
            }
        }
    };
    parse(&path, &text).map(Some)
}

/// Parse and validate config text; `path` is only used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let src = Source { path, text };
    let raw: RawConfig = src.parse()?;
    let defaults = Config::default();
    let thresholds = raw.thresholds.unwrap_or_default();
    Ok(Config {
        envs: match raw.envs {
            Some(envs) => validate_envs(&src, envs)?,
            None => Vec::new(),
        },
        kubeconfig: raw.kubeconfig.map(|p| path_value(&src, p)).transpose()?,
        read_only: raw.read_only,
        audit_log: raw.audit_log.map(|p| path_value(&src, p)).transpose()?,
        chart_minutes: checked(
            &src,
            raw.chart_minutes,
            defaults.chart_minutes,
            |m| (1..=1440).contains(&m),
            "chart_minutes must be between 1 and 1440 (24 hours)",
        )?,
        thresholds: Thresholds {
            max_error_ratio: checked(
                &src,
                thresholds.max_error_ratio,
                defaults.thresholds.max_error_ratio,
                |r| r > 0.0 && r <= 1.0,
                "max_error_ratio must be greater than 0 and at most 1",
            )?,
            max_p99_seconds: checked(
                &src,
                thresholds.max_p99_seconds,
                defaults.thresholds.max_p99_seconds,
                |s| s > 0.0 && s <= 600.0,
                "max_p99_seconds must be greater than 0 and at most 600",
            )?,
        },
        theme: raw.theme.map(|t| validate_theme(&src, t)).transpose()?,
        canary_steps: match raw.canary_steps {
            Some(steps) => validate_steps(&src, steps)?,
            None => defaults.canary_steps,
        },
        apps: match raw.apps {
            Some(apps) => validate_apps(&src, apps)?,
            None => Default::default(),
        },
        drill: match raw.drill {
            Some(d) => validate_drill(&src, d)?,
            None => DrillConfig::default(),
        },
        guard: match raw.guard {
            Some(g) => validate_guard(&src, g, defaults.thresholds)?,
            None => GuardConfig::default(),
        },
        release: match raw.release {
            Some(r) => validate_release(&src, r)?,
            None => ReleaseConfig::default(),
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrill {
    bad_image: Option<Spanned<String>>,
    #[serde(default)]
    allow_production: bool,
    hold_seconds: Option<Spanned<f64>>,
    window_seconds: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuard {
    #[serde(default)]
    enabled: bool,
    interval_seconds: Option<Spanned<f64>>,
    failed_checks: Option<Spanned<u32>>,
    countdown_seconds: Option<Spanned<f64>>,
    after_change_seconds: Option<Spanned<f64>>,
    apps: Option<std::collections::BTreeMap<String, RawThresholds>>,
}

fn validate_drill(src: &Source, d: RawDrill) -> Result<DrillConfig, ConfigError> {
    if let Some(img) = &d.bad_image {
        let v = img.get_ref();
        check(
            src,
            img,
            !v.is_empty() && !v.chars().any(char::is_whitespace),
            || format!("bad_image {v:?} is not an image reference, e.g. \"registry/app:broken\""),
        )?;
    }
    let positive = |v: Option<Spanned<f64>>, what: &str| -> Result<Option<f64>, ConfigError> {
        match v {
            None => Ok(None),
            Some(s) => {
                let x = *s.get_ref();
                check(src, &s, x > 0.0 && x <= 86_400.0, || {
                    format!("{what} must be greater than 0 and at most 86400, got {x}")
                })?;
                Ok(Some(x))
            }
        }
    };
    Ok(DrillConfig {
        bad_image: d.bad_image.map(Spanned::into_inner),
        allow_production: d.allow_production,
        hold_seconds: positive(d.hold_seconds, "hold_seconds")?,
        window_seconds: positive(d.window_seconds, "window_seconds")?,
    })
}

fn validate_guard(
    src: &Source,
    g: RawGuard,
    defaults: Thresholds,
) -> Result<GuardConfig, ConfigError> {
    let d = GuardConfig::default();
    let secs = |v: Option<Spanned<f64>>, default: f64, what: &str| {
        checked(
            src,
            v,
            default,
            |x| x > 0.0 && x <= 86_400.0,
            &format!("{what} must be greater than 0 and at most 86400"),
        )
    };
    let mut apps = std::collections::BTreeMap::new();
    for (name, t) in g.apps.unwrap_or_default() {
        apps.insert(
            name,
            Thresholds {
                max_error_ratio: checked(
                    src,
                    t.max_error_ratio,
                    defaults.max_error_ratio,
                    |r| r > 0.0 && r <= 1.0,
                    "max_error_ratio must be greater than 0 and at most 1",
                )?,
                max_p99_seconds: checked(
                    src,
                    t.max_p99_seconds,
                    defaults.max_p99_seconds,
                    |s| s > 0.0 && s <= 600.0,
                    "max_p99_seconds must be greater than 0 and at most 600",
                )?,
            },
        );
    }
    Ok(GuardConfig {
        enabled: g.enabled,
        interval_seconds: secs(g.interval_seconds, d.interval_seconds, "interval_seconds")?,
        failed_checks: checked(
            src,
            g.failed_checks,
            d.failed_checks,
            |n| (1..=100).contains(&n),
            "failed_checks must be between 1 and 100",
        )?,
        countdown_seconds: secs(
            g.countdown_seconds,
            d.countdown_seconds,
            "countdown_seconds",
        )?,
        after_change_seconds: secs(
            g.after_change_seconds,
            d.after_change_seconds,
            "after_change_seconds",
        )?,
        apps,
    })
}

/// Parse `--env NAME=CONTEXT/NAMESPACE`. `NAME=/NAMESPACE` and `NAME=NAMESPACE` use the current
/// context. The context is everything before the last `/`, since context names may contain `/`
/// (EKS ARNs) but namespaces cannot.
pub fn parse_env_flag(s: &str) -> Result<EnvConfig, ConfigError> {
    let fail = |message: String| ConfigError::Value {
        what: "--env",
        value: s.to_string(),
        message,
    };
    let Some((name, target)) = s.split_once('=') else {
        return Err(fail(
            "expected NAME=CONTEXT/NAMESPACE (or NAME=NAMESPACE for the current context)".into(),
        ));
    };
    let (context, namespace) = match target.rsplit_once('/') {
        Some(("", namespace)) => (None, namespace),
        Some((context, namespace)) => (Some(context.to_string()), namespace),
        None => (None, target),
    };
    check_name(name).map_err(fail)?;
    check_namespace(namespace).map_err(fail)?;
    Ok(EnvConfig {
        name: name.to_string(),
        context,
        namespace: namespace.to_string(),
        prometheus: None,
        production: looks_like_production(name),
        read_only: false,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "env")]
    envs: Option<Spanned<Vec<RawEnv>>>,
    kubeconfig: Option<Spanned<String>>,
    #[serde(default)]
    read_only: bool,
    audit_log: Option<Spanned<String>>,
    chart_minutes: Option<Spanned<u32>>,
    thresholds: Option<RawThresholds>,
    theme: Option<Spanned<String>>,
    canary_steps: Option<Spanned<Vec<Spanned<u32>>>>,
    apps: Option<std::collections::BTreeMap<String, RawApp>>,
    drill: Option<RawDrill>,
    guard: Option<RawGuard>,
    release: Option<RawRelease>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    observation_seconds: Option<Spanned<f64>>,
    smoke_interval_seconds: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    router: Option<Spanned<String>>,
    observation_seconds: Option<Spanned<f64>>,
    #[serde(default)]
    smoke: Vec<RawSmoke>,
    #[serde(default)]
    gitops: std::collections::BTreeMap<String, RawGitops>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmoke {
    name: Spanned<String>,
    http: Option<Spanned<String>>,
    command: Option<Spanned<RawCommand>>,
    expect_status: Option<Spanned<u16>>,
    expect_exit: Option<i32>,
    timeout_seconds: Option<Spanned<f64>>,
    #[serde(default)]
    envs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCommand {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitops {
    repo: Spanned<String>,
    path: Spanned<String>,
    remote: Option<Spanned<String>>,
    branch: Option<Spanned<String>>,
}

fn validate_release(src: &Source, r: RawRelease) -> Result<ReleaseConfig, ConfigError> {
    let d = ReleaseConfig::default();
    Ok(ReleaseConfig {
        observation_seconds: checked(
            src,
            r.observation_seconds,
            d.observation_seconds,
            |x| (0.0..=86_400.0).contains(&x),
            "observation_seconds must be between 0 and 86400",
        )?,
        smoke_interval_seconds: checked(
            src,
            r.smoke_interval_seconds,
            d.smoke_interval_seconds,
            |x| (1.0..=86_400.0).contains(&x),
            "smoke_interval_seconds must be between 1 and 86400",
        )?,
    })
}

fn validate_smoke(src: &Source, app: &str, s: RawSmoke) -> Result<SmokeCheck, ConfigError> {
    check(src, &s.name, !s.name.get_ref().trim().is_empty(), || {
        format!("a smoke check of app {app} has an empty name")
    })?;
    let name = s.name.get_ref().clone();
    let kind = match (s.http, s.command) {
        (Some(url), None) => {
            check(src, &url, is_http_url(url.get_ref()), || {
                format!(
                    "smoke check {name:?}: http {:?} is not an http(s) URL",
                    url.get_ref()
                )
            })?;
            let expect_status = checked(
                src,
                s.expect_status,
                200,
                |c| (100..=599).contains(&c),
                "expect_status must be an HTTP status between 100 and 599",
            )?;
            SmokeKind::Http {
                url: url.into_inner(),
                expect_status,
            }
        }
        (None, Some(cmd)) => {
            let span = cmd.span();
            let argv = match cmd.into_inner() {
                RawCommand::Shell(s) => vec!["sh".into(), "-c".into(), s],
                RawCommand::Argv(v) => v,
            };
            if argv.first().is_none_or(|p| p.trim().is_empty()) {
                return Err(src.error(span, format!("smoke check {name:?}: command is empty")));
            }
            SmokeKind::Command {
                argv,
                expect_exit: s.expect_exit.unwrap_or(0),
            }
        }
        _ => {
            return Err(src.error(
                s.name.span(),
                format!(
                    "smoke check {name:?} of app {app} needs exactly one of `http = \"URL\"` or `command = [...]`"
                ),
            ));
        }
    };
    Ok(SmokeCheck {
        name,
        kind,
        timeout_seconds: checked(
            src,
            s.timeout_seconds,
            10.0,
            |x| x > 0.0 && x <= 3_600.0,
            "timeout_seconds must be greater than 0 and at most 3600",
        )?,
        envs: s.envs,
    })
}

fn validate_gitops(src: &Source, g: RawGitops) -> Result<GitopsConfig, ConfigError> {
    let path = g.path.get_ref().clone();
    check(
        src,
        &g.path,
        !path.is_empty()
            && !Path::new(&path).is_absolute()
            && !Path::new(&path)
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir)),
        || format!("gitops path {path:?} must be a relative path inside the repository"),
    )?;
    if let Some(r) = &g.remote {
        check(src, r, !r.get_ref().trim().is_empty(), || {
            "gitops remote is empty (omit it for `origin`)".into()
        })?;
    }
    if let Some(b) = &g.branch {
        check(src, b, !b.get_ref().trim().is_empty(), || {
            "gitops branch is empty (omit it for the checkout's current branch)".into()
        })?;
    }
    Ok(GitopsConfig {
        repo: path_value(src, g.repo)?,
        path: PathBuf::from(path.trim_start_matches("./")),
        remote: g
            .remote
            .map(Spanned::into_inner)
            .unwrap_or_else(|| "origin".into()),
        branch: g.branch.map(Spanned::into_inner),
    })
}

fn validate_apps(
    src: &Source,
    apps: std::collections::BTreeMap<String, RawApp>,
) -> Result<std::collections::BTreeMap<String, AppConfig>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    for (name, app) in apps {
        if let Some(r) = &app.router {
            check(src, r, ROUTERS.contains(&r.get_ref().as_str()), || {
                format!(
                    "router {:?} for app {name} is not one of {}",
                    r.get_ref(),
                    ROUTERS.join(", ")
                )
            })?;
        }
        let mut smoke = Vec::new();
        for s in app.smoke {
            smoke.push(validate_smoke(src, &name, s)?);
        }
        let mut gitops = std::collections::BTreeMap::new();
        for (env, g) in app.gitops {
            gitops.insert(env, validate_gitops(src, g)?);
        }
        let observation_seconds = match app.observation_seconds {
            Some(v) => Some(checked(
                src,
                Some(v),
                0.0,
                |x| (0.0..=86_400.0).contains(&x),
                "observation_seconds must be between 0 and 86400",
            )?),
            None => None,
        };
        out.insert(
            name,
            AppConfig {
                router: app.router.map(Spanned::into_inner),
                observation_seconds,
                smoke,
                gitops,
            },
        );
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    max_error_ratio: Option<Spanned<f64>>,
    max_p99_seconds: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    name: Spanned<String>,
    context: Option<Spanned<String>>,
    namespace: Spanned<String>,
    prometheus: Option<Spanned<String>>,
    production: Option<bool>,
    #[serde(default)]
    read_only: bool,
}

/// `Ok(())` if `ok`, else an error at `value`'s position.
fn check<T>(
    src: &Source,
    value: &Spanned<T>,
    ok: bool,
    message: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(src.error(value.span(), message()))
    }
}

/// The value if `ok` accepts it (NaN never is), `default` if absent, else an error at it.
fn checked<T: Copy + std::fmt::Display>(
    src: &Source,
    value: Option<Spanned<T>>,
    default: T,
    ok: impl Fn(T) -> bool,
    rule: &str,
) -> Result<T, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let v = *value.get_ref();
    check(src, &value, ok(v), || format!("{rule}, got {v}"))?;
    Ok(v)
}

fn path_value(src: &Source, value: Spanned<String>) -> Result<PathBuf, ConfigError> {
    check(src, &value, !value.get_ref().is_empty(), || {
        "path is empty".into()
    })?;
    expand_tilde(value.get_ref()).ok_or_else(|| {
        src.error(
            value.span(),
            "cannot expand `~`: the home directory is unknown",
        )
    })
}

fn validate_envs(src: &Source, envs: Spanned<Vec<RawEnv>>) -> Result<Vec<EnvConfig>, ConfigError> {
    check(src, &envs, !envs.get_ref().is_empty(), || {
        "no environments: add an [[env]] table, or remove `env` to use --env flags".into()
    })?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for env in envs.into_inner() {
        let name = env.name.get_ref();
        check_name(name).map_err(|m| src.error(env.name.span(), m))?;
        if let Some(first) = seen.insert(name.clone(), env.name.span().start) {
            let (line, _) = src.line_col(first);
            return Err(src.error(
                env.name.span(),
                format!("environment {name:?} is defined twice (first on line {line})"),
            ));
        }
        if let Some(context) = &env.context {
            check(src, context, !context.get_ref().is_empty(), || {
                "context is empty: omit `context` to use the kubeconfig's current context".into()
            })?;
        }
        check_namespace(env.namespace.get_ref()).map_err(|m| src.error(env.namespace.span(), m))?;
        if let Some(url) = &env.prometheus {
            check(src, url, is_http_url(url.get_ref()), || {
                format!(
                    "prometheus {:?} is not an http(s) URL, e.g. \"http://prometheus.monitoring:9090\"",
                    url.get_ref()
                )
            })?;
        }
        out.push(EnvConfig {
            production: env
                .production
                .unwrap_or_else(|| looks_like_production(name)),
            name: env.name.into_inner(),
            context: env.context.map(Spanned::into_inner),
            namespace: env.namespace.into_inner(),
            prometheus: env.prometheus.map(Spanned::into_inner),
            read_only: env.read_only,
        });
    }
    Ok(out)
}

fn validate_steps(
    src: &Source,
    steps: Spanned<Vec<Spanned<u32>>>,
) -> Result<Vec<u32>, ConfigError> {
    let mut previous = 0;
    for step in steps.get_ref() {
        let v = *step.get_ref();
        check(src, step, (1..=100).contains(&v), || {
            format!("canary step {v} is not a percentage between 1 and 100")
        })?;
        check(src, step, v > previous, || {
            format!("canary steps must increase: {v} comes after {previous}")
        })?;
        previous = v;
    }
    check(src, &steps, previous == 100, || {
        "canary steps must end at 100 (full promotion)".into()
    })?;
    Ok(steps
        .into_inner()
        .into_iter()
        .map(Spanned::into_inner)
        .collect())
}

/// A built-in theme name, or something that looks like a path (read when the theme loads).
fn validate_theme(src: &Source, theme: Spanned<String>) -> Result<String, ConfigError> {
    check_theme_name(theme.get_ref()).map_err(|why| {
        src.error(
            theme.span(),
            format!("theme {:?} is {why}", theme.get_ref()),
        )
    })?;
    Ok(theme.into_inner())
}

fn looks_like_production(name: &str) -> bool {
    name.to_lowercase().contains("prod")
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("environment name is empty".into())
    } else if name.chars().any(char::is_whitespace) {
        Err(format!("environment name {name:?} contains whitespace"))
    } else {
        Ok(())
    }
}

/// A DNS-1123 label, as Kubernetes requires of namespace names.
fn check_namespace(ns: &str) -> Result<(), String> {
    let valid_chars = ns
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ns.is_empty() && ns.len() <= 63 && valid_chars && !ns.starts_with('-') && !ns.ends_with('-')
    {
        Ok(())
    } else {
        Err(format!(
            "namespace {ns:?} is not a DNS-1123 label: 1 to 63 lowercase letters, digits or '-', \
             starting and ending with a letter or digit"
        ))
    }
}

fn is_http_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("config.toml"), text)
    }

    fn error(text: &str) -> String {
        match parse_str(text) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse_str("").unwrap(), Config::default());
    }

    #[test]
    fn documented_example_parses() {
        let c = parse_str(
            r#"
kubeconfig = "/etc/kube/config"
read_only = false
chart_minutes = 30
theme = "light"
canary_steps = [1, 50, 100]
[thresholds]
max_error_ratio = 0.02
max_p99_seconds = 1
[[env]]
name = "staging"
context = "stg"
namespace = "shop"
prometheus = "http://prometheus.stg:9090"
[[env]]
name = "production"
namespace = "shop"
prometheus = "https://prometheus.prd"
read_only = true
[[env]]
name = "Prod-EU"
namespace = "shop"
production = false
"#,
        )
        .unwrap();
        assert_eq!(c.kubeconfig, Some(PathBuf::from("/etc/kube/config")));
        assert_eq!(c.chart_minutes, 30);
        assert_eq!(c.thresholds.max_p99_seconds, 1.0);
        assert_eq!(c.canary_steps, [1, 50, 100]);
        assert_eq!(c.theme.as_deref(), Some("light"));
        let names: Vec<_> = c
            .envs
            .iter()
            .map(|e| (e.name.as_str(), e.production))
            .collect();
        assert_eq!(
            names,
            [("staging", false), ("production", true), ("Prod-EU", false)]
        );
        assert_eq!(c.envs[0].context.as_deref(), Some("stg"));
        assert_eq!(c.envs[1].context, None);
        assert!(c.envs[1].read_only && !c.envs[0].read_only);
    }

    #[test]
    fn tilde_in_paths_expands_to_home() {
        let Ok(home) = etcetera::home_dir() else {
            return;
        };
        let c = parse_str("kubeconfig = \"~/.kube/config\"\naudit_log = \"~\"").unwrap();
        assert_eq!(c.kubeconfig, Some(home.join(".kube/config")));
        assert_eq!(c.audit_log, Some(home));
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let e = error("read_only = true\nchart_minute = 15\n");
        assert!(
            e.starts_with("config.toml:2:1: unknown field `chart_minute`"),
            "{e}"
        );
        let e = error("[[env]]\nname = \"a\"\nnamespace = \"b\"\nnamespce = \"c\"\n");
        assert!(
            e.starts_with("config.toml:4:1: unknown field `namespce`"),
            "{e}"
        );
    }

    #[test]
    fn validation_errors_point_at_the_value() {
        let env = |body: &str| format!("[[env]]\nname = \"a\"\nnamespace = \"shop\"\n{body}\n");
        let cases = [
            ("env = []", "config.toml:1:7: no environments"),
            (
                &env("prometheus = \"prom:9090\""),
                "config.toml:4:14: prometheus \"prom:9090\" is not",
            ),
            (&env("context = \"\""), "config.toml:4:11: context is empty"),
            (
                "[[env]]\nname = \"a b\"\nnamespace = \"x\"",
                "config.toml:2:8: environment name \"a b\"",
            ),
            (
                "[[env]]\nname = \"a\"\nnamespace = \"Shop\"",
                "config.toml:3:13: namespace \"Shop\"",
            ),
            (
                "[[env]]\nname = \"a\"\nnamespace = \"x\"\n[[env]]\nname = \"a\"\nnamespace = \"y\"",
                "config.toml:5:8: environment \"a\" is defined twice (first on line 2)",
            ),
            (
                "canary_steps = [5, 5, 100]",
                "config.toml:1:20: canary steps must increase",
            ),
            (
                "canary_steps = [0, 100]",
                "config.toml:1:17: canary step 0 is not",
            ),
            (
                "canary_steps = [10, 50]",
                "config.toml:1:16: canary steps must end at 100",
            ),
            (
                "canary_steps = []",
                "config.toml:1:16: canary steps must end at 100",
            ),
            (
                "chart_minutes = 0",
                "config.toml:1:17: chart_minutes must be",
            ),
            ("chart_minutes = -5", "config.toml:1:17: "),
            (
                "[thresholds]\nmax_error_ratio = 1.5",
                "config.toml:2:19: max_error_ratio must be",
            ),
            (
                "[thresholds]\nmax_p99_seconds = nan",
                "config.toml:2:19: max_p99_seconds must be",
            ),
            (
                "theme = \"drak\"",
                "config.toml:1:9: theme \"drak\" is not a built-in theme (did you mean \"dark\"?)",
            ),
            ("kubeconfig = \"\"", "config.toml:1:14: path is empty"),
            (
                "read_only = \"yes\"",
                "config.toml:1:13: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "[[env]]\nname = \"a\"",
                "config.toml:1:1: missing field `namespace`",
            ),
            ("chart_minutes = ", "config.toml:1:17: "),
        ];
        for (text, expected) in cases {
            let e = error(text);
            assert!(
                e.starts_with(expected),
                "{text:?}\n  got:      {e}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn theme_may_be_a_path() {
        let c = parse_str("theme = \"~/themes/mine.toml\"").unwrap();
        assert_eq!(c.theme.as_deref(), Some("~/themes/mine.toml"));
    }

    #[test]
    fn env_flags() {
        let e = parse_env_flag("stg=stg-ctx/shop").unwrap();
        assert_eq!(
            (e.name.as_str(), e.context.as_deref(), e.namespace.as_str()),
            ("stg", Some("stg-ctx"), "shop")
        );
        assert!(!e.production && !e.read_only && e.prometheus.is_none());
        let e = parse_env_flag("prod=/shop").unwrap();
        assert_eq!((e.context, e.production), (None, true));
        assert_eq!(parse_env_flag("prod=shop").unwrap().context, None);
        let arn = parse_env_flag("p=arn:aws:eks:eu-west-1:1:cluster/prd/shop").unwrap();
        assert_eq!(
            arn.context.as_deref(),
            Some("arn:aws:eks:eu-west-1:1:cluster/prd")
        );
    }

    #[test]
    fn bad_env_flags_say_what_is_wrong() {
        let cases = [
            ("staging", "expected NAME=CONTEXT/NAMESPACE"),
            ("=ctx/shop", "environment name is empty"),
            (
                "my env=ctx/shop",
                "environment name \"my env\" contains whitespace",
            ),
            ("stg=ctx/", "namespace \"\" is not a DNS-1123 label"),
            ("stg=", "namespace \"\" is not"),
            ("stg=ctx/Shop", "namespace \"Shop\" is not"),
            ("stg=ctx/-shop", "namespace \"-shop\" is not"),
            ("stg=ctx/shop_1", "namespace \"shop_1\" is not"),
            (
                &format!("stg={}", "a".repeat(64)),
                "is not a DNS-1123 label",
            ),
        ];
        for (flag, expected) in cases {
            let e = parse_env_flag(flag).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--env {flag:?}: ")), "{e}");
            assert!(e.contains(expected), "{flag}: {e}");
        }
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/kockpit.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
    }
}
