//! Namespace-scoped watches (kube-runtime watchers) of one environment, reporting changes
//! as typed messages. Watchers re-list and resume by themselves with back-off; failures are
//! reported as the environment's connection state, never as a crash.

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
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
    w.typed(
        Api::<Ingress>::namespaced(client.clone(), namespace),
        convert::ingress,
        ClusterEvent::Ingress,
    );
    w.events(Api::<Event>::namespaced(client.clone(), namespace));
    let api = |group: &str, version: &str, kind: &str, plural: &str| {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
        Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar)
    };
    w.optional(
        vec![api(
            "gateway.networking.k8s.io",
            "v1",
            "HTTPRoute",
            "httproutes",
        )],
        convert::route,
        ClusterEvent::Route,
    );
    w.optional(
        vec![api("argoproj.io", "v1alpha1", "Rollout", "rollouts")],
        convert::argo_rollout,
        ClusterEvent::ArgoRollout,
    );
    // Traefik's two API groups are two kinds, each with objects of its own.
    w.optional(
        vec![api(
            "traefik.io",
            "v1alpha1",
            "TraefikService",
            "traefikservices",
        )],
        convert::traefik_service,
        |change| ClusterEvent::TraefikService {
            legacy: false,
            change,
        },
    );
    w.optional(
        vec![api(
            "traefik.containo.us",
            "v1alpha1",
            "TraefikService",
            "traefikservices",
        )],
        convert::traefik_service,
        |change| ClusterEvent::TraefikService {
            legacy: true,
            change,
        },
    );
    // Istio's versions serve the same objects: v1 where served (Istio 1.22 on), else v1beta1.
    let istio = |kind: &str, plural: &str| {
        ["v1", "v1beta1"]
            .map(|v| api("networking.istio.io", v, kind, plural))
            .to_vec()
    };
    w.optional(
        istio("VirtualService", "virtualservices"),
        convert::virtual_service,
        ClusterEvent::VirtualService,
    );
    w.optional(
        istio("DestinationRule", "destinationrules"),
        convert::destination_rule,
        ClusterEvent::DestinationRule,
    );
}

/// How often an optional kind that is not installed (or not visible) is looked for again.
const ABSENT_RECHECK: Duration = Duration::from_secs(300);

/// An API status saying an optional kind cannot be watched, for good: 404, its CRD is not
/// installed (or was just removed); 403, the credentials may not list it.
fn unavailable_code(code: u16) -> bool {
    matches!(code, 403 | 404)
}

fn unavailable(e: &watcher::Error) -> bool {
    matches!(
        e,
        watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
            | watcher::Error::WatchFailed(kube::Error::Api(s))
            if unavailable_code(s.code)
    )
}

/// Why a pump stopped.
#[derive(Debug, PartialEq)]
enum Stop {
    /// Cancelled, the stream ended, or the sink is gone: stop for good.
    Done,
    /// An optional kind is not served or not allowed (see [`unavailable_code`]).
    Unavailable,
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

    /// A kind from a CRD that may not be installed (Gateway API HTTPRoutes, Argo Rollouts,
    /// Traefik, Istio): where the API answers 404 (or 403) it is looked for again every few
    /// minutes, quietly, instead of watched — a missing CRD is no connection problem, and the
    /// environment's other objects are still worth showing. Should it go away while watched,
    /// its objects go with it. `apis` are versions of one kind, most wanted first: the first
    /// one served is watched.
    fn optional<V>(
        &self,
        apis: Vec<Api<DynamicObject>>,
        conv: fn(&DynamicObject) -> V,
        wrap: fn(Change<V>) -> ClusterEvent,
    ) where
        V: Send + 'static,
    {
        let w = self.clone();
        tokio::spawn(async move {
            let (env, tx) = (w.env, w.tx.clone());
            loop {
                let mut served = None;
                for api in &apis {
                    let probe_params = ListParams::default().limit(1);
                    let probe = tokio::select! {
                        _ = w.cancel.cancelled() => return,
                        p = api.list(&probe_params) => p,
                    };
                    match probe {
                        Err(kube::Error::Api(e)) if unavailable_code(e.code) => {
                            tracing::info!(
                                "not watching {}: {} ({})",
                                api.resource_url(),
                                e.message,
                                e.code
                            );
                        }
                        _ => {
                            served = Some(api.clone());
                            break;
                        }
                    }
                }
                if let Some(api) = served {
                    let sink_tx = tx.clone();
                    let stream =
                        watcher::watcher(api, watcher::Config::default()).default_backoff();
                    let stop = w
                        .pump_until_absent(stream, conv, move |c| {
                            sink_tx
                                .send(Msg::Cluster {
                                    env,
                                    event: wrap(c),
                                })
                                .is_ok()
                        })
                        .await;
                    if stop == Stop::Done {
                        return;
                    }
                    let event = wrap(Change::Reset(Vec::new()));
                    if tx.send(Msg::Cluster { env, event }).is_err() {
                        return;
                    }
                }
                tokio::select! {
                    _ = w.cancel.cancelled() => return,
                    _ = tokio::time::sleep(ABSENT_RECHECK) => {}
                }
            }
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
        sink: impl FnMut(Change<V>) -> bool,
    ) where
        K: Resource + Clone,
        S: Stream<Item = Result<WEvent<K>, watcher::Error>>,
    {
        self.pump_inner(stream, conv, sink, false).await;
    }

    /// [`Self::pump`], but a 404 or 403 (the kind is not served, or not allowed) ends it
    /// rather than counting as a connection error.
    async fn pump_until_absent<K, V, S>(
        &self,
        stream: S,
        conv: impl Fn(&K) -> V,
        sink: impl FnMut(Change<V>) -> bool,
    ) -> Stop
    where
        K: Resource + Clone,
        S: Stream<Item = Result<WEvent<K>, watcher::Error>>,
    {
        self.pump_inner(stream, conv, sink, true).await
    }

    async fn pump_inner<K, V, S>(
        &self,
        stream: S,
        conv: impl Fn(&K) -> V,
        mut sink: impl FnMut(Change<V>) -> bool,
        optional: bool,
    ) -> Stop
    where
        K: Resource + Clone,
        S: Stream<Item = Result<WEvent<K>, watcher::Error>>,
    {
        let mut stream = std::pin::pin!(stream);
        let mut init: Vec<V> = Vec::new();
        let mut live = false;
        loop {
            let item = tokio::select! {
                _ = self.cancel.cancelled() => return Stop::Done,
                i = stream.next() => i,
            };
            let Some(item) = item else {
                return Stop::Done;
            };
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
                Err(e) if optional && unavailable(&e) => return Stop::Unavailable,
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
                        return Stop::Done;
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
                    return Stop::Done;
                }
            }
            if let Some(c) = change
                && !sink(c)
            {
                return Stop::Done;
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
