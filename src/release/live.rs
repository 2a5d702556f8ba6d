//! Evaluating an open release: what the cockpit's poller and the command line share.

use std::collections::BTreeMap;

use jiff::Timestamp;
use kube::Client;

use super::checklist::{self, Checklist, Context};
use super::smoke::{self, SmokeResult, Vars};
use super::{Release, ReleaseError};
use crate::cluster::actions::{self, ReleaseKind, Res, Router, RouterKind};
use crate::config::file::{Config, EnvConfig};
use crate::metrics::MetricsClient;

/// One environment's means to evaluate releases.
#[derive(Clone)]
pub struct Evaluator {
    pub client: Client,
    pub env: EnvConfig,
    pub config: Config,
    /// From the environment's `prometheus` (or `--prometheus`); None without one.
    pub metrics: Option<MetricsClient>,
}

impl Evaluator {
    pub fn new(client: Client, env: EnvConfig, config: Config, prometheus: Option<&str>) -> Self {
        let metrics = prometheus
            .or(env.prometheus.as_deref())
            .and_then(|u| MetricsClient::new(u).ok());
        Evaluator {
            client,
            env,
            config,
            metrics,
        }
    }

    fn router(&self, app: &str) -> Option<RouterKind> {
        self.config
            .apps
            .get(app)
            .and_then(|a| a.router.as_deref())
            .and_then(RouterKind::parse)
    }

    /// Run every smoke check of the release's app in this environment, concurrently.
    pub async fn run_smoke(&self, r: &Release) -> BTreeMap<String, SmokeResult> {
        let vars = Vars {
            app: r.app.clone(),
            env: r.environment.clone(),
            namespace: r.namespace.clone(),
            version: r.version.clone(),
            context: r.context.clone(),
        };
        let checks = self.config.smoke_for(&r.app, &self.env.name);
        let runs = checks.iter().map(|c| smoke::run(c, &vars));
        futures::future::join_all(runs)
            .await
            .into_iter()
            .map(|res| (res.name.clone(), res))
            .collect()
    }

    /// The checklist now (`now` from the caller's clock).
    pub async fn checklist(
        &self,
        r: &Release,
        last_change: Timestamp,
        smoke_results: &BTreeMap<String, SmokeResult>,
        now: Timestamp,
    ) -> Checklist {
        let cx = Context {
            client: &self.client,
            namespace: &self.env.namespace,
            app: &r.app,
            version: &r.version,
            router: self.router(&r.app),
            metrics: self.metrics.as_ref(),
            environment: &self.env.name,
            thresholds: self.config.thresholds_for(&r.app),
            window_seconds: self.config.observation_for(&r.app),
            last_change,
            now,
            smoke_checks: self.config.smoke_for(&r.app, &self.env.name),
            smoke_results: smoke_results.clone(),
        };
        checklist::evaluate(&cx).await
    }

    /// The version being released now: the canary's, the idle colour's (else the active
    /// one's), the Rollout's or the Deployment's image tag.
    pub async fn detect_version(&self, app: &str) -> Result<String, ReleaseError> {
        detect_version(&self.client, &self.env.namespace, app, self.router(app)).await
    }
}

/// See [`Evaluator::detect_version`].
pub async fn detect_version(
    client: &Client,
    ns: &str,
    app: &str,
    router: Option<RouterKind>,
) -> Result<String, ReleaseError> {
    let fail = |e: actions::ActionError| ReleaseError::Failed(e.to_string());
    let release = actions::detect(client, ns, app, router)
        .await
        .map_err(fail)?;
    let (res, name) = match &release.kind {
        ReleaseKind::Canary {
            router: Router::Argo { rollout },
            ..
        } => (Res::ROLLOUT, rollout.clone()),
        ReleaseKind::Canary {
            canary: Some(c), ..
        } => (Res::DEPLOYMENT, c.clone()),
        ReleaseKind::Canary { stable, .. } => (
            Res::DEPLOYMENT,
            stable.clone().ok_or_else(|| {
                ReleaseError::Failed(format!("{app}: no canary or stable Deployment found"))
            })?,
        ),
        ReleaseKind::BlueGreen {
            active, colours, ..
        } => {
            let idle = colours.iter().find(|(c, _)| c != active);
            let live = colours.iter().find(|(c, _)| c == active);
            let pick = |d: &Option<&(String, String)>| d.map(|(_, n)| n.clone());
            // The idle colour is what is being released when it runs something else.
            let mut chosen = pick(&live);
            if let (Some(i), Some(l)) = (pick(&idle), pick(&live)) {
                let ti = actions::template_tag(
                    &actions::get(client, ns, &Res::DEPLOYMENT, &i)
                        .await
                        .map_err(fail)?,
                );
                let tl = actions::template_tag(
                    &actions::get(client, ns, &Res::DEPLOYMENT, &l)
                        .await
                        .map_err(fail)?,
                );
                if ti != tl {
                    chosen = Some(i);
                }
            }
            (
                Res::DEPLOYMENT,
                chosen.ok_or_else(|| {
                    ReleaseError::Failed(format!("{app}: no Deployment for colour {active}"))
                })?,
            )
        }
        ReleaseKind::Rolling { deployment } => (Res::DEPLOYMENT, deployment.clone()),
    };
    let o = actions::get(client, ns, &res, &name).await.map_err(fail)?;
    actions::template_tag(&o)
        .ok_or_else(|| ReleaseError::Failed(format!("{}/{name} has no container image", res.kind)))
}
