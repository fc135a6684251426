//! The registry of the apps a server serves, and which app a request's
//! host leads to.
//!
//! Each app claims host patterns (`hosts` in its manifest, see
//! [`HostPattern`]). A request goes to the app that claims its host
//! exactly, else to the app claiming the longest `*.` suffix of it, else
//! to the app claiming `*` (the default app), else nowhere (404). No two
//! apps may claim the same pattern: inserting one that would is refused
//! and changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

use super::App;
use crate::manifest::{FunctionId, HostMatch, HostPattern};

/// The apps a server serves, by id; cheap to clone (every clone is the same
/// registry). Inserting an app with the id of one already there replaces
/// it atomically: a request takes the app as it is when the request
/// arrives and finishes on that version, while later requests get the new
/// one; the old version is dropped (its instances and memory released)
/// when its last request is done.
#[derive(Clone, Default)]
pub struct Apps(Arc<RwLock<Registry>>);

#[derive(Default)]
struct Registry {
    apps: BTreeMap<FunctionId, App>,
    /// Exact host -> app id.
    exact: HashMap<String, FunctionId>,
    /// `*.NAME` patterns: NAME -> app id.
    subdomains: HashMap<String, FunctionId>,
    /// The app claiming `*`.
    any: Option<FunctionId>,
}

/// Two apps claiming one host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConflict {
    /// The pattern both claim.
    pub host: HostPattern,
    /// The app that already claims it.
    pub claimed_by: FunctionId,
}

impl fmt::Display for HostConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host `{}` is already served by app `{}`",
            self.host, self.claimed_by
        )
    }
}

impl std::error::Error for HostConflict {}

impl Registry {
    /// The app other than `id` that claims `host`, if any.
    fn claimant(&self, host: &HostPattern, id: &FunctionId) -> Option<&FunctionId> {
        let owner = match host.kind() {
            HostMatch::Exact(name) => self.exact.get(name),
            HostMatch::Subdomains(name) => self.subdomains.get(name),
            HostMatch::Any => self.any.as_ref(),
        };
        owner.filter(|owner| *owner != id)
    }

    fn claim(&mut self, app: &App) {
        for host in app.hosts() {
            let id = app.id().clone();
            match host.kind() {
                HostMatch::Exact(name) => {
                    self.exact.insert(name.to_owned(), id);
                }
                HostMatch::Subdomains(name) => {
                    self.subdomains.insert(name.to_owned(), id);
                }
                HostMatch::Any => self.any = Some(id),
            }
        }
    }

    fn release(&mut self, app: &App) {
        for host in app.hosts() {
            let owned = |owner: &FunctionId| owner == app.id();
            match host.kind() {
                HostMatch::Exact(name) => {
                    if self.exact.get(name).is_some_and(owned) {
                        self.exact.remove(name);
                    }
                }
                HostMatch::Subdomains(name) => {
                    if self.subdomains.get(name).is_some_and(owned) {
                        self.subdomains.remove(name);
                    }
                }
                HostMatch::Any => {
                    if self.any.as_ref().is_some_and(owned) {
                        self.any = None;
                    }
                }
            }
        }
    }

    fn route(&self, host: Option<&str>) -> Option<&App> {
        let id = host
            .and_then(|host| {
                self.exact.get(host).or_else(|| {
                    // The longest suffix first: `a.b.shop.example.com`
                    // tries `b.shop.example.com`, then `shop.example.com`...
                    let mut rest = host;
                    while let Some((_, parent)) = rest.split_once('.') {
                        if let Some(id) = self.subdomains.get(parent) {
                            return Some(id);
                        }
                        rest = parent;
                    }
                    None
                })
            })
            .or(self.any.as_ref())?;
        self.apps.get(id)
    }
}

/// The functions of `new` continue the quotas of the same functions in
/// `old`, the version it replaces (see [`crate::quota`]).
fn continue_quotas(old: &App, new: &App) {
    for function in new.functions() {
        let Some(quota) = &function.quota else {
            continue;
        };
        if let Some(previous) = old
            .functions()
            .iter()
            .find(|f| f.id() == function.id())
            .and_then(|f| f.quota.as_ref())
        {
            previous.hand_over(quota);
        }
    }
}

impl Apps {
    /// An empty registry.
    pub fn new() -> Apps {
        Apps::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `app`, or replaces the app of the same id; returns the one
    /// replaced. Refused, changing nothing, when another app claims one of
    /// its hosts.
    pub fn insert(&self, app: App) -> Result<Option<App>, HostConflict> {
        let mut registry = self.write();
        Self::check(&registry, &app)?;
        if let Some(old) = registry.apps.get(app.id()) {
            continue_quotas(old, &app);
        }
        let replaced = registry.apps.insert(app.id().clone(), app.clone());
        if let Some(old) = &replaced {
            registry.release(old);
            tracing::info!(app = %old.id(), "app replaced");
        }
        registry.claim(&app);
        Ok(replaced)
    }

    /// Checks that `app` could be inserted now: no other app claims one of
    /// its hosts.
    pub fn check_hosts(&self, app: &App) -> Result<(), HostConflict> {
        Self::check(&self.read(), app)
    }

    fn check(registry: &Registry, app: &App) -> Result<(), HostConflict> {
        for host in app.hosts() {
            if let Some(owner) = registry.claimant(host, app.id()) {
                return Err(HostConflict {
                    host: host.clone(),
                    claimed_by: owner.clone(),
                });
            }
        }
        Ok(())
    }

    /// Removes the app `id`; requests already on it finish.
    pub fn remove(&self, id: &FunctionId) -> Option<App> {
        let mut registry = self.write();
        let removed = registry.apps.remove(id)?;
        registry.release(&removed);
        Some(removed)
    }

    /// The app `id`, as it is now.
    pub fn get(&self, id: &FunctionId) -> Option<App> {
        self.read().apps.get(id).cloned()
    }

    /// The ids of every app.
    pub fn ids(&self) -> Vec<FunctionId> {
        self.read().apps.keys().cloned().collect()
    }

    /// How many apps there are.
    pub fn len(&self) -> usize {
        self.read().apps.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.read().apps.is_empty()
    }

    /// The app that answers `host` (lowercase, without port; see
    /// [`crate::manifest::request_host`]), as it is now; `None` for a
    /// request without a host: only the default app answers it.
    pub fn for_host(&self, host: Option<&str>) -> Option<App> {
        self.read().route(host).cloned()
    }

    /// The app a request goes to, by its URI's authority or else its
    /// `Host` header.
    pub fn for_request<B>(&self, request: &http::Request<B>) -> Option<App> {
        let authority = request.uri().authority().map(|a| a.as_str()).or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        });
        let host = authority.and_then(crate::manifest::request_host);
        self.for_host(host.as_deref())
    }
}
