//! The registry of the apps a server serves: many apps and hot swap need
//! no reshaping of the server.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::App;
use crate::manifest::FunctionId;

/// The apps a server serves, by id; cheap to clone (every clone is the same
/// registry). Inserting an app with the id of one already there replaces
/// it atomically: a request takes the app as it is when the request
/// arrives and finishes on that version, while later requests get the new
/// one; the old version is dropped (its instances and memory released)
/// when its last request is done.
#[derive(Clone, Default)]
pub struct Apps(Arc<RwLock<BTreeMap<FunctionId, App>>>);

impl Apps {
    /// An empty registry.
    pub fn new() -> Apps {
        Apps::default()
    }

    /// Adds `app`, or replaces the app of the same id; returns the one
    /// replaced.
    pub fn insert(&self, app: App) -> Option<App> {
        let mut apps = self.0.write().unwrap_or_else(|e| e.into_inner());
        let replaced = apps.insert(app.id().clone(), app);
        if let Some(old) = &replaced {
            tracing::info!(app = %old.id(), "app replaced");
        }
        replaced
    }

    /// Removes the app `id`; requests already on it finish.
    pub fn remove(&self, id: &FunctionId) -> Option<App> {
        self.0.write().unwrap_or_else(|e| e.into_inner()).remove(id)
    }

    /// The app `id`, as it is now.
    pub fn get(&self, id: &FunctionId) -> Option<App> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The ids of every app.
    pub fn ids(&self) -> Vec<FunctionId> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The app a request goes to. A server serves one app today (routing
    /// by `Host` comes with multi-tenancy): the only one, or none.
    pub(crate) fn for_request(&self) -> Option<App> {
        let apps = self.0.read().unwrap_or_else(|e| e.into_inner());
        match apps.len() {
            1 => apps.values().next().cloned(),
            _ => None,
        }
    }
}
