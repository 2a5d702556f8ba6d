//! Kubernetes clients from kubeconfig contexts, as kubectl picks them, identifying kockpit and
//! its operator in the `User-Agent` (so the cluster's own audit log joins ours).

use std::path::Path;

use http::{HeaderName, HeaderValue};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// `kockpit/<version> (<operator>)`.
pub fn user_agent(operator: &str) -> String {
    let clean: String = operator
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '(' && *c != ')')
        .collect();
    format!("kockpit/{} ({clean})", env!("CARGO_PKG_VERSION"))
}

/// The operator as the User-Agent shows it: `user` or `user@ssh-client`.
pub fn operator_tag(op: &crate::audit::Operator) -> String {
    match &op.ssh_client {
        Some(ip) => format!("{}@{ip}", op.os_user),
        None => op.os_user.clone(),
    }
}

fn with_agent(mut cfg: kube::Config, operator: &str) -> kube::Config {
    if let Ok(v) = HeaderValue::from_str(&user_agent(operator)) {
        cfg.headers.retain(|(k, _)| k != http::header::USER_AGENT);
        cfg.headers.push((HeaderName::from_static("user-agent"), v));
    }
    cfg
}

/// The kube user a context authenticates as (its `user` entry's name), for the audit log.
pub fn kube_user(kubeconfig: Option<&Path>, context: Option<&str>) -> Option<String> {
    let kc = match kubeconfig {
        Some(p) => Kubeconfig::read_from(p).ok()?,
        None => Kubeconfig::read().ok()?,
    };
    let ctx = context
        .map(str::to_string)
        .or_else(|| kc.current_context.clone())?;
    kc.contexts
        .iter()
        .find(|c| c.name == ctx)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone())
}

/// A client for a kubeconfig context (none: the current one), or why there is none.
pub async fn for_context(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    operator: &str,
) -> Result<Client, String> {
    let kc = match kubeconfig {
        Some(p) => {
            Kubeconfig::read_from(p).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?
        }
        None => Kubeconfig::read().map_err(|e| format!("kubeconfig: {e}"))?,
    };
    if let Some(ctx) = context
        && !kc.contexts.iter().any(|c| c.name == ctx)
    {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "context `{ctx}` not in the kubeconfig; known contexts: {}",
            known.join(", ")
        ));
    }
    let opts = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| format!("context {}: {e}", context.unwrap_or("(current)")))?;
    Client::try_from(with_agent(cfg, operator)).map_err(|e| format!("client: {e}"))
}

/// A client for a URL without credentials (the embedded sandbox).
pub fn for_url(url: &str, operator: &str) -> Result<Client, String> {
    let uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    Client::try_from(with_agent(kube::Config::new(uri), operator)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_version_and_operator() {
        let ua = user_agent("alice@10.0.0.5");
        assert!(ua.starts_with("kockpit/"));
        assert!(ua.ends_with(" (alice@10.0.0.5)"));
        assert_eq!(user_agent("bob\n(x)"), user_agent("bobx"));
    }
}
