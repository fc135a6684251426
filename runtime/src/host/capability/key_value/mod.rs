//! `wasi:keyvalue` (both drafts): stores a function is granted, on SQLite
//! (the embedded default) or Redis.
//!
//! A function opens only the stores its manifest grants
//! (`key_value_stores = [..]`); any other name is `access-denied` to the
//! guest and a warning in the log, never a trap. A granted name the
//! operator did not map is a SQLite file of its own under the app's data
//! directory (`kv/NAME.sqlite`), so apps never share data by accident.
//!
//! Every backend is namespaced by app and store: rows carry both names in
//! SQLite, and a Redis store is one hash, `gust:kv:APP:STORE` (app and
//! store names cannot hold `:`). Two apps mapped to one backend never see
//! each other's keys; two gust processes serving the same app on one
//! backend share them.
//!
//! Counters (`increment`) are stored as the decimal ASCII of a signed
//! 64-bit integer on both backends (what Redis' `HINCRBY` keeps), so a
//! counter read with `get` is its number as text, and `set` of `b"41"`
//! followed by `increment(1)` gives 42. Incrementing a value that is not
//! such a number is an error value, as is an overflow.
//!
//! The operations shared by both drafts live here ([`Store`]); `draft` and
//! `draft2` map them onto each draft's types. Each operation charges
//! [`metering::KV_OP_FUEL`](crate::metering::KV_OP_FUEL) per key plus the
//! body fuel of the key and value bytes.

mod draft;
mod draft2;
mod redis;
mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::Linker;

use super::Capability;
use crate::host::HostState;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId, KeyValueLimits, StoreBackend};
use crate::telemetry::traces;

/// Keys a `list-keys` call returns at most; the rest come with the cursor.
pub(crate) const LIST_PAGE: usize = 1000;

/// The key-value capability.
pub(crate) struct KeyValue;

/// An opened store (the `bucket` resource of both drafts).
pub struct Bucket {
    store: Arc<Store>,
}

/// A compare-and-swap handle (`wasi:keyvalue/atomics.cas`, draft2): the
/// value the key had when the handle was made.
pub struct Cas {
    store: Arc<Store>,
    key: String,
    current: Option<Vec<u8>>,
}

/// What went wrong, as both drafts report it to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KvError {
    /// The store was not granted to the function.
    AccessDenied,
    /// Anything else, with a message for the guest (limits, backend
    /// failures); never the backend's address or credentials.
    Other(String),
}

impl KvError {
    fn other(message: impl Into<String>) -> KvError {
        KvError::Other(message.into())
    }
}

/// One granted store of one app, on its backend.
pub(crate) struct Store {
    app: String,
    name: String,
    limits: KeyValueLimits,
    backend: Backend,
}

/// Where a store's data lives.
enum Backend {
    Sqlite(Arc<sqlite::Db>),
    Redis(redis::Hash),
}

/// The app's opened stores and which function may open which.
pub(crate) struct AppStores {
    /// Per function: the stores it was granted.
    functions: HashMap<FunctionId, Arc<FunctionStores>>,
}

/// What one function's instances may open.
pub(crate) struct FunctionStores {
    app: String,
    function: String,
    stores: BTreeMap<String, Arc<Store>>,
}

/// A function's key-value state in its store: its granted stores (`None`:
/// nothing granted), and whether this request's denial was logged.
pub(crate) struct Access {
    granted: Option<Arc<FunctionStores>>,
    /// One warning per request: a guest looping on a denied `open` must
    /// not flood the log.
    warned: bool,
}

impl Capability for KeyValue {
    type App = AppStores;
    type Instance = Access;

    fn link(linker: &mut Linker<HostState>, _wasip3: bool) -> anyhow::Result<()> {
        draft::link(linker)?;
        draft2::link(linker)
    }

    fn open(app: &AppSpec, settings: &CapabilitySettings) -> anyhow::Result<AppStores> {
        let app_name = app.name.as_str();
        let mut opened: BTreeMap<String, Arc<Store>> = BTreeMap::new();
        // One Redis connection per server URL for the whole app.
        let mut servers: HashMap<String, Arc<redis::Server>> = HashMap::new();
        let mut functions = HashMap::new();
        for function in &app.functions {
            let mut stores = BTreeMap::new();
            for name in &function.grants.key_value_stores {
                if !opened.contains_key(name) {
                    // The embedded default: a file of the app's own.
                    let embedded = || {
                        settings
                            .app_dir(app_name)
                            .join("kv")
                            .join(format!("{name}.sqlite"))
                    };
                    let backend = match settings.stores.get(name) {
                        None | Some(StoreBackend::Sqlite(None)) => {
                            Backend::Sqlite(sqlite::Db::open(&embedded())?)
                        }
                        Some(StoreBackend::Sqlite(Some(path))) => {
                            Backend::Sqlite(sqlite::Db::open(path)?)
                        }
                        Some(StoreBackend::Redis(url)) => {
                            let url = settings
                                .expand(url)
                                .map_err(anyhow::Error::msg)
                                .with_context(|| format!("key_value_store.{name}.url"))?;
                            let server = match servers.get(&url) {
                                Some(server) => server.clone(),
                                None => {
                                    let server = Arc::new(
                                        redis::Server::new(&url)
                                            .with_context(|| format!("key_value_store.{name}"))?,
                                    );
                                    servers.insert(url, server.clone());
                                    server
                                }
                            };
                            Backend::Redis(redis::Hash::new(server, app_name, name))
                        }
                    };
                    opened.insert(
                        name.clone(),
                        Arc::new(Store {
                            app: app_name.to_owned(),
                            name: name.clone(),
                            limits: settings.key_value,
                            backend,
                        }),
                    );
                }
                if let Some(store) = opened.get(name) {
                    stores.insert(name.clone(), store.clone());
                }
            }
            functions.insert(
                function.id.clone(),
                Arc::new(FunctionStores {
                    app: app_name.to_owned(),
                    function: function.id.as_str().to_owned(),
                    stores,
                }),
            );
        }
        Ok(AppStores { functions })
    }

    fn instance(app: &AppStores, function: &FunctionId) -> Access {
        Access {
            granted: app.functions.get(function).cloned(),
            warned: false,
        }
    }

    fn reset(instance: &mut Access) {
        instance.warned = false;
    }
}

/// The store `open("")` opens.
const DEFAULT_STORE: &str = "default";

impl HostState {
    /// `open`: the granted store `name` as a bucket in the resource table.
    /// Not charged beyond the host call: it touches no backend.
    /// The empty identifier names the store `default`: wasmtime's own
    /// programs open `""` (its in-memory store ignores the name), and
    /// `default` is the store every runtime grants first.
    fn kv_open(&mut self, name: &str) -> Result<wasmtime::component::Resource<Bucket>, KvError> {
        let name = if name.is_empty() { DEFAULT_STORE } else { name };
        let access = &mut self.caps.key_value;
        let granted = access.granted.as_ref();
        let Some(store) = granted.and_then(|a| a.stores.get(name)).cloned() else {
            let (app, function) = granted
                .map(|a| (a.app.as_str(), a.function.as_str()))
                .unwrap_or(("?", "?"));
            if !access.warned {
                tracing::warn!(
                    app,
                    function,
                    request_id = %self.request_id,
                    store = name,
                    "key-value store not granted: access denied"
                );
            }
            access.warned = true;
            return Err(KvError::AccessDenied);
        };
        self.table
            .push(Bucket { store })
            .map_err(|e| KvError::other(format!("cannot open another bucket: {e}")))
    }

    /// The store behind a bucket handle the guest passed.
    fn kv_store(
        &self,
        bucket: &wasmtime::component::Resource<Bucket>,
    ) -> wasmtime::Result<Arc<Store>> {
        Ok(self.table.get(bucket)?.store.clone())
    }

    /// `get`, charged for the key and the value found (both drafts).
    async fn kv_get(
        &mut self,
        bucket: &wasmtime::component::Resource<Bucket>,
        key: &str,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, KvError>> {
        let store = self.kv_store(bucket)?;
        let value = store.get(key).await;
        let size = value
            .as_ref()
            .ok()
            .and_then(|v| v.as_ref())
            .map_or(0, Vec::len);
        self.kv_charge(1, key.len() + size);
        Ok(value)
    }

    /// `set`, charged for the key and the value (both drafts).
    async fn kv_set(
        &mut self,
        bucket: &wasmtime::component::Resource<Bucket>,
        key: &str,
        value: &[u8],
    ) -> wasmtime::Result<Result<(), KvError>> {
        let store = self.kv_store(bucket)?;
        self.kv_charge(1, key.len() + value.len());
        Ok(store.set(key, value).await)
    }

    /// `delete`, charged for the key (both drafts).
    async fn kv_delete(
        &mut self,
        bucket: &wasmtime::component::Resource<Bucket>,
        key: &str,
    ) -> wasmtime::Result<Result<(), KvError>> {
        let store = self.kv_store(bucket)?;
        self.kv_charge(1, key.len());
        Ok(store.delete(key).await)
    }

    /// `exists`, charged for the key (both drafts).
    async fn kv_exists(
        &mut self,
        bucket: &wasmtime::component::Resource<Bucket>,
        key: &str,
    ) -> wasmtime::Result<Result<bool, KvError>> {
        let store = self.kv_store(bucket)?;
        self.kv_charge(1, key.len());
        Ok(store.exists(key).await)
    }

    /// Charges one operation on `keys` keys moving `bytes` of keys and
    /// values.
    fn kv_charge(&mut self, keys: usize, bytes: usize) {
        let ops = crate::metering::KV_OP_FUEL.saturating_mul(keys.max(1) as u64);
        self.work
            .charge(ops.saturating_add(crate::metering::body_fuel(bytes as u64)));
    }

    /// Makes a compare-and-swap handle on `key` holding its current value.
    async fn kv_cas_new(
        &mut self,
        store: Arc<Store>,
        key: String,
    ) -> Result<wasmtime::component::Resource<Cas>, KvError> {
        let current = store.get(&key).await?;
        self.kv_charge(1, key.len() + current.as_ref().map_or(0, Vec::len));
        self.table
            .push(Cas {
                store,
                key,
                current,
            })
            .map_err(|e| KvError::other(format!("cannot make another cas handle: {e}")))
    }
}

impl Store {
    fn check_key(&self, key: &str) -> Result<(), KvError> {
        if key.len() > self.limits.max_key_size {
            return Err(KvError::other(format!(
                "key of {} bytes is longer than max_key_size ({} bytes)",
                key.len(),
                self.limits.max_key_size
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        if value.len() > self.limits.max_value_size {
            return Err(KvError::other(format!(
                "value of {} bytes is larger than max_value_size ({} bytes)",
                value.len(),
                self.limits.max_value_size
            )));
        }
        Ok(())
    }

    /// The value of `key`.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let _span = traces::capability("kv.get", "gust.kv.store", &self.name);
        self.check_key(key)?;
        match &self.backend {
            Backend::Sqlite(db) => db.get(&self.app, &self.name, key).await,
            Backend::Redis(hash) => hash.get(key).await,
        }
    }

    /// Sets `key` to `value`.
    pub(crate) async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let _span = traces::capability("kv.set", "gust.kv.store", &self.name);
        self.check_key(key)?;
        self.check_value(value)?;
        self.write(vec![(key.to_owned(), value.to_vec())]).await
    }

    /// Removes `key` (absent is fine).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), KvError> {
        let _span = traces::capability("kv.delete", "gust.kv.store", &self.name);
        self.check_key(key)?;
        self.remove(vec![key.to_owned()]).await
    }

    /// Whether `key` has a value.
    pub(crate) async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let _span = traces::capability("kv.exists", "gust.kv.store", &self.name);
        self.check_key(key)?;
        match &self.backend {
            Backend::Sqlite(db) => db.exists(&self.app, &self.name, key).await,
            Backend::Redis(hash) => hash.exists(key).await,
        }
    }

    /// One page of keys from `cursor` (`None`: the start), and the cursor
    /// of the next page (`None`: this was the last).
    pub(crate) async fn list(
        &self,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let _span = traces::capability("kv.list", "gust.kv.store", &self.name);
        match &self.backend {
            Backend::Sqlite(db) => db.list(&self.app, &self.name, cursor).await,
            Backend::Redis(hash) => hash.list(cursor).await,
        }
    }

    /// The values of `keys`, in order.
    pub(crate) async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        let _span = traces::capability("kv.get_many", "gust.kv.store", &self.name);
        for key in &keys {
            self.check_key(key)?;
        }
        match &self.backend {
            Backend::Sqlite(db) => db.get_many(&self.app, &self.name, keys).await,
            Backend::Redis(hash) => hash.get_many(&keys).await,
        }
    }

    /// Sets every pair, all or none (a later pair of the same key wins).
    pub(crate) async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        let _span = traces::capability("kv.set_many", "gust.kv.store", &self.name);
        for (key, value) in &pairs {
            self.check_key(key)?;
            self.check_value(value)?;
        }
        self.write(pairs).await
    }

    /// Sets checked pairs on the backend.
    async fn write(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let max_keys = self.limits.max_keys;
        match &self.backend {
            Backend::Sqlite(db) => db.set_many(&self.app, &self.name, pairs, max_keys).await,
            Backend::Redis(hash) => hash.set_many(&pairs, max_keys).await,
        }
    }

    /// Removes every key.
    pub(crate) async fn delete_many(&self, keys: Vec<String>) -> Result<(), KvError> {
        let _span = traces::capability("kv.delete_many", "gust.kv.store", &self.name);
        for key in &keys {
            self.check_key(key)?;
        }
        self.remove(keys).await
    }

    /// Removes checked keys on the backend.
    async fn remove(&self, keys: Vec<String>) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Sqlite(db) => db.delete_many(&self.app, &self.name, keys).await,
            Backend::Redis(hash) => hash.delete_many(&keys).await,
        }
    }

    /// Adds `delta` to the counter at `key` (absent: 0), atomically, and
    /// returns the new value.
    pub(crate) async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let _span = traces::capability("kv.increment", "gust.kv.store", &self.name);
        self.check_key(key)?;
        let max_keys = self.limits.max_keys;
        match &self.backend {
            Backend::Sqlite(db) => {
                db.increment(&self.app, &self.name, key, delta, max_keys)
                    .await
            }
            Backend::Redis(hash) => hash.increment(key, delta, max_keys).await,
        }
    }

    /// Sets `key` to `value` if it still holds `expected` (`None`:
    /// absent), atomically; whether it did.
    pub(crate) async fn swap(
        &self,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, KvError> {
        let _span = traces::capability("kv.swap", "gust.kv.store", &self.name);
        self.check_key(key)?;
        self.check_value(&value)?;
        let max_keys = self.limits.max_keys;
        match &self.backend {
            Backend::Sqlite(db) => {
                db.swap(&self.app, &self.name, key, expected, value, max_keys)
                    .await
            }
            Backend::Redis(hash) => hash.swap(key, expected.as_deref(), &value, max_keys).await,
        }
    }
}

/// The message of a store that reached `max_keys`.
fn full(max_keys: u64) -> KvError {
    KvError::other(format!("the store is full: max_keys ({max_keys}) reached"))
}

/// Parses a stored counter: the decimal ASCII of an `i64`, as Redis
/// `HINCRBY` accepts it.
fn parse_counter(value: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(value)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| KvError::other("the value is not an integer"))
}

/// The error of an increment past the `i64` range.
fn overflow() -> KvError {
    KvError::other("increment would overflow")
}
