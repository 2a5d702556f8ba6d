//! Namespace-scoped watches (kube-runtime watchers) of one environment, reporting changes
//! as typed messages. Watchers re-list and resume by themselves with back-off; failures are
//! reported as the environment's connection state, never as a crash.

use std::collections::HashMap;
use std::fmt::Debug;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WEvent};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::convert;
use crate::app::msg::{Change, ClusterEvent, Msg};
use crate::app::state::Conn;

/// Start every watcher of one environment.
pub fn spawn(
    env: usize,
    client: &Client,
    namespace: &str,
    tx: &UnboundedSender<Msg>,
    cancel: &CancellationToken,
) {
    let w = Watch {
        env,
        tx: tx.clone(),
        cancel: cancel.clone(),
    };
    w.typed(
        Api::<Deployment>::namespaced(client.clone(), namespace),
        convert::deployment,
        ClusterEvent::Deployment,
    );
    w.typed(
        Api::<ReplicaSet>::namespaced(client.clone(), namespace),
        convert::replicaset,
        ClusterEvent::ReplicaSet,
    );
    w.typed(
        Api::<Pod>::namespaced(client.clone(), namespace),
        convert::pod,
        ClusterEvent::Pod,
    );
    w.typed(
        Api::<Service>::namespaced(client.clone(), namespace),
        convert::service,
        ClusterEvent::Service,
    );
    w.events(Api::<Event>::namespaced(client.clone(), namespace));
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "httproutes");
    let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let w2 = w.clone();
    tokio::spawn(async move {
        // A cluster without the Gateway API has no HTTPRoutes: probe once before watching.
        if let Err(kube::Error::Api(e)) = routes.list(&ListParams::default().limit(1)).await
            && e.code == 404
        {
            return;
        }
        let stream = watcher::watcher(routes, watcher::Config::default()).default_backoff();
        let (env, tx) = (w2.env, w2.tx.clone());
        w2.pump(stream, convert::route, move |c| {
            let event = ClusterEvent::Route(c);
            tx.send(Msg::Cluster { env, event }).is_ok()
        })
        .await;
    });
}

fn watch<K>(api: Api<K>) -> impl Stream<Item = Result<WEvent<K>, watcher::Error>> + Send
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    watcher::watcher(api, watcher::Config::default()).default_backoff()
}

#[derive(Clone)]
struct Watch {
    env: usize,
    tx: UnboundedSender<Msg>,
    cancel: CancellationToken,
}

impl Watch {
    fn typed<K, V>(&self, api: Api<K>, conv: fn(&K) -> V, wrap: fn(Change<V>) -> ClusterEvent)
    where
        K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default,
        V: Send + 'static,
    {
        let w = self.clone();
        tokio::spawn(async move {
            let (env, tx) = (w.env, w.tx.clone());
            w.pump(watch(api), conv, move |c| {
                tx.send(Msg::Cluster {
                    env,
                    event: wrap(c),
                })
                .is_ok()
            })
            .await;
        });
    }

    /// Events: the newest at start, then only new ones (or ones whose count grew).
    fn events(&self, api: Api<Event>) {
        let w = self.clone();
        tokio::spawn(async move {
            let (env, tx) = (w.env, w.tx.clone());
            let mut seen: HashMap<String, i32> = HashMap::new();
            let conv = |e: &Event| (e.name_any(), e.count.unwrap_or(1), convert::event(e));
            w.pump(watch(api), conv, move |c| {
                let evs = match c {
                    Change::Upsert(e) => vec![e],
                    Change::Reset(mut all) => {
                        all.sort_by_key(|(_, _, e)| e.time);
                        let skip = all.len().saturating_sub(crate::app::update::MAX_EVENTS);
                        all.drain(..skip);
                        all
                    }
                    Change::Delete(_) => Vec::new(),
                };
                for (name, count, view) in evs {
                    if seen.insert(name, count).is_some_and(|c| c >= count) {
                        continue;
                    }
                    let event = ClusterEvent::Event(view);
                    if tx.send(Msg::Cluster { env, event }).is_err() {
                        return false;
                    }
                }
                if seen.len() > 10_000 {
                    seen.clear();
                }
                true
            })
            .await;
        });
    }

    /// Turn a watcher's events into changes of view models for `sink` until cancelled (or
    /// `sink` says stop). Objects become views as they arrive, so a large initial list is
    /// never held as full objects.
    async fn pump<K, V, S>(
        &self,
        stream: S,
        conv: impl Fn(&K) -> V,
        mut sink: impl FnMut(Change<V>) -> bool,
    ) where
        K: Resource + Clone,
        S: Stream<Item = Result<WEvent<K>, watcher::Error>>,
    {
        let mut stream = std::pin::pin!(stream);
        let mut init: Vec<V> = Vec::new();
        let mut live = false;
        loop {
            let item = tokio::select! {
                _ = self.cancel.cancelled() => return,
                i = stream.next() => i,
            };
            let Some(item) = item else { return };
            let change = match item {
                Ok(WEvent::Init) => {
                    init.clear();
                    None
                }
                Ok(WEvent::InitApply(o)) => {
                    init.push(conv(&o));
                    None
                }
                Ok(WEvent::InitDone) => Some(Change::Reset(std::mem::take(&mut init))),
                Ok(WEvent::Apply(o)) => Some(Change::Upsert(conv(&o))),
                Ok(WEvent::Delete(o)) => Some(Change::Delete(o.name_any())),
                Err(e) => {
                    live = false;
                    let conn = Conn::Error(describe(&e));
                    if self
                        .tx
                        .send(Msg::Conn {
                            env: self.env,
                            conn,
                        })
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            };
            if !live {
                live = true;
                if self
                    .tx
                    .send(Msg::Conn {
                        env: self.env,
                        conn: Conn::Live,
                    })
                    .is_err()
                {
                    return;
                }
            }
            if let Some(c) = change
                && !sink(c)
            {
                return;
            }
        }
    }
}

/// A watcher error in words an operator acts on.
pub fn describe(e: &watcher::Error) -> String {
    let err = match e {
        watcher::Error::InitialListFailed(err)
        | watcher::Error::WatchStartFailed(err)
        | watcher::Error::WatchFailed(err) => err,
        other => return other.to_string(),
    };
    if let kube::Error::Api(s) = err {
        return match s.code {
            403 => format!("forbidden: {}", s.message),
            _ => format!("{} ({})", s.message, s.code),
        };
    }
    // The innermost cause says what happened (connection refused, no such host, timed out);
    // the layers above it only say where.
    let mut innermost = err.to_string();
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        innermost = s.to_string();
        src = s.source();
    }
    format!("cannot reach the API server: {}", innermost.to_lowercase())
}
