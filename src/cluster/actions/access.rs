//! Permission checks before an action is offered: one SelfSubjectAccessReview per write.

use std::fmt;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};

use super::{ActionError, Plan, Res, api_err};

/// One thing an action needs to be allowed to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub verb: &'static str,
    pub res: Res,
    pub subresource: Option<&'static str>,
    pub name: Option<String>,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.res.rbac_name())?;
        if let Some(s) = self.subresource {
            write!(f, "/{s}")?;
        }
        if let Some(n) = &self.name {
            write!(f, " {n}")?;
        }
        Ok(())
    }
}

/// Ask the API server whether the caller may do each of `perms` in `ns`. Each answer is `None`
/// when allowed, else the reason. A server without the authorization API (or one that forbids
/// asking) answers "allowed": the request itself will then say.
pub async fn check_permissions(
    client: &Client,
    ns: &str,
    perms: &[Permission],
) -> Result<Vec<Option<String>>, ActionError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut out = Vec::with_capacity(perms.len());
    for p in perms {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(ns.to_string()),
                    verb: Some(p.verb.to_string()),
                    group: Some(p.res.group.to_string()),
                    resource: Some(p.res.plural.to_string()),
                    subresource: p.subresource.map(str::to_string),
                    name: p.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &review).await {
            Ok(r) => {
                let status = r.status.unwrap_or_default();
                out.push((!status.allowed).then(|| {
                    let why = status
                        .reason
                        .filter(|r| !r.is_empty())
                        .or(status.evaluation_error)
                        .unwrap_or_else(|| "RBAC does not allow it".to_string());
                    format!("cannot {p} in namespace {ns}: {why}")
                }));
            }
            Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) => out.push(None),
            Err(e) => return Err(api_err("selfsubjectaccessreviews", e)),
        }
    }
    Ok(out)
}

/// The first permission `plan` lacks, as a sentence; `None` when everything is allowed.
pub async fn denied_reason(client: &Client, plan: &Plan) -> Result<Option<String>, ActionError> {
    let perms = plan.permissions();
    let answers = check_permissions(client, &plan.namespace, &perms).await?;
    Ok(answers.into_iter().flatten().next())
}

/// The permissions `verb` needs on `release`, without reading anything more; `Err` says why
/// the verb does not apply to this kind of release.
pub fn required(release: &super::Release, verb: super::Verb) -> Result<Vec<Permission>, String> {
    use super::{ReleaseKind, Router, Verb};
    let patch = |res: Res, name: &str, sub: Option<&'static str>| Permission {
        verb: "patch",
        res,
        subresource: sub,
        name: Some(name.to_string()),
    };
    let kind = release.describe();
    let app = &release.app;
    let canary_only = || Err(format!("{verb} is for canaries; {app} is {kind}"));
    match (&release.kind, verb) {
        (
            ReleaseKind::Canary { router, .. },
            Verb::Promote | Verb::PromoteFull | Verb::Abort | Verb::Rollback,
        ) => Ok(match router {
            Router::HttpRoute { route, .. } => vec![patch(Res::HTTPROUTE, route, None)],
            Router::Nginx { ingress } => vec![patch(Res::INGRESS, ingress, None)],
            Router::ReplicaRatio { stable, canary, .. } => vec![
                patch(Res::DEPLOYMENT, stable, None),
                patch(Res::DEPLOYMENT, canary, None),
            ],
            Router::Argo { rollout } => vec![patch(Res::ROLLOUT, rollout, Some("status"))],
            Router::Traefik { res, service, .. } | Router::Istio { res, service, .. } => {
                vec![patch(res.clone(), service, None)]
            }
        }),
        (_, Verb::Promote | Verb::PromoteFull | Verb::Abort) => canary_only(),
        (ReleaseKind::BlueGreen { service, .. }, Verb::Flip | Verb::Rollback) => {
            Ok(vec![patch(Res::SERVICE, service, None)])
        }
        (_, Verb::Flip) => Err(format!("flip is for blue/green apps; {app} is {kind}")),
        (ReleaseKind::Rolling { deployment }, Verb::Rollback) => {
            Ok(vec![patch(Res::DEPLOYMENT, deployment, None)])
        }
        (_, Verb::Pause | Verb::Resume | Verb::Restart) => {
            let (res, name) =
                super::workload::target(release, verb, None).map_err(|e| e.to_string())?;
            Ok(vec![patch(res, &name, None)])
        }
    }
}
