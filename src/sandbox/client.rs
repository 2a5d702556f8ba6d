//! `kockpit sandbox fault add|list|clear`: a client of a running sandbox's fault API.

use color_eyre::eyre::{Context, Result, bail, eyre};
use serde_json::{Value, json};

use crate::cli::{FaultAdd, FaultArgs, FaultCommand};

/// The sandbox's base URL: `--server`, else the current context's server in the kubeconfig.
fn server(explicit: Option<String>) -> Result<String> {
    if let Some(s) = explicit {
        return Ok(s.trim_end_matches('/').to_string());
    }
    let kc = kube::config::Kubeconfig::read()
        .wrap_err("no --server given and no kubeconfig to find the sandbox in")?;
    let ctx_name = kc
        .current_context
        .clone()
        .ok_or_else(|| eyre!("the kubeconfig has no current context; pass --server"))?;
    let cluster = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| eyre!("context {ctx_name} not found in the kubeconfig"))?;
    kc.clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .map(|s| s.trim_end_matches('/').to_string())
        .ok_or_else(|| eyre!("cluster {cluster} has no server in the kubeconfig"))
}

fn body(a: &FaultAdd) -> Value {
    let (kind, value) = if let Some(r) = a.error_ratio {
        ("errorRatio", json!(r))
    } else if let Some(ms) = a.latency_ms {
        ("latency", json!(ms))
    } else if a.crash_loop {
        ("crashLoop", Value::Null)
    } else if a.readiness_failure {
        ("readinessFailure", Value::Null)
    } else if let Some(s) = a.api_delay {
        ("apiDelay", json!(s))
    } else {
        ("slowRollout", json!(a.slow_rollout.unwrap_or(60.0)))
    };
    let mut b = json!({"namespace": a.namespace, "app": a.app, "kind": kind});
    if !value.is_null() {
        b["value"] = value;
    }
    if let Some(v) = &a.version {
        b["version"] = json!(v);
    }
    if let Some(d) = a.delay {
        b["delaySeconds"] = json!(d);
    }
    if let Some(d) = a.duration {
        b["durationSeconds"] = json!(d);
    }
    b
}

/// One line per fault, for `fault list` and after `fault add`.
fn row(f: &Value) -> String {
    // An `apiDelay` fault may name no namespace (every one) and no app.
    let s = |k: &str| match f.get(k).and_then(Value::as_str) {
        Some("") => "*".to_string(),
        Some(v) => v.to_string(),
        None => "-".to_string(),
    };
    let value = f
        .get("value")
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".into());
    let duration = f
        .get("durationSeconds")
        .map(|v| format!("{v}s"))
        .unwrap_or_else(|| "until cleared".into());
    format!(
        "{:<5} {:<12} {:<10} {:<9} {:<17} {:<6} {:<21} {}",
        s("id"),
        s("namespace"),
        s("app"),
        f.get("version").and_then(Value::as_str).unwrap_or("*"),
        s("kind"),
        value,
        s("start"),
        duration
    )
}

const HEADER: &str = "ID    ENV          APP        VERSION   KIND              VALUE  START                 DURATION";

async fn call(req: reqwest::RequestBuilder) -> Result<Value> {
    let resp = req.send().await.wrap_err("cannot reach the sandbox")?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .wrap_err("the sandbox answered with no JSON")?;
    if !status.is_success() {
        let msg = v.get("message").and_then(Value::as_str).unwrap_or("error");
        bail!("the sandbox refused: {msg} (HTTP {status})");
    }
    Ok(v)
}

pub fn run(args: FaultArgs) -> Result<()> {
    let base = format!("{}/sandbox/v1/faults", server(args.server)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let http = reqwest::Client::new();
        match args.command {
            FaultCommand::Add(a) => {
                let f = call(http.post(&base).json(&body(&a))).await?;
                println!("{HEADER}\n{}", row(&f));
            }
            FaultCommand::List => {
                let v = call(http.get(&base)).await?;
                println!("{HEADER}");
                for f in v
                    .get("faults")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    println!("{}", row(f));
                }
            }
            FaultCommand::Clear { id: Some(id) } => {
                call(http.delete(format!("{base}/{id}"))).await?;
                println!("cleared fault {id}");
            }
            FaultCommand::Clear { id: None } => {
                let v = call(http.delete(&base)).await?;
                println!(
                    "cleared {} fault(s)",
                    v.get("cleared").and_then(Value::as_u64).unwrap_or(0)
                );
            }
        }
        Ok(())
    })
}
