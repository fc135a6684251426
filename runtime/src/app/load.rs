//! Loading an app's components, eagerly or lazily (see `lazy`): reading
//! them, compiling them through the compile cache on every core, linking
//! and type-checking them, and recording the files checked in the load
//! index (`index`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::Context as _;

use super::index::{Index, Stamp};
use super::lazy::Lazy;
use crate::cache::{CacheLocation, CompileCache};
use crate::call::Kind;
use crate::engine::GustEngine;
use crate::function::Ready;
use crate::manifest::{AppSpec, ComponentSource, FunctionId};

/// The compile cache of each engine flavour, the p3 one made on first use,
/// and the load index.
pub(super) struct Caches<'a> {
    engine: &'a GustEngine,
    location: &'a CacheLocation,
    p2: Arc<CompileCache>,
    p3: OnceLock<Arc<CompileCache>>,
    pub(super) index: Index,
}

impl<'a> Caches<'a> {
    pub(super) fn new(engine: &'a GustEngine, location: &'a CacheLocation) -> Self {
        let p2 = Arc::new(CompileCache::new(engine.engine(), location));
        let index = Index::open(location.dir().as_deref(), &p2.engine_hash());
        Caches {
            engine,
            location,
            p2,
            p3: OnceLock::new(),
            index,
        }
    }

    /// The cache of `kind`'s engine (building the p3 engine if needed).
    fn get(&self, kind: Kind) -> anyhow::Result<&Arc<CompileCache>> {
        if kind == Kind::P2 {
            return Ok(&self.p2);
        }
        if let Some(cache) = self.p3.get() {
            return Ok(cache);
        }
        let engine = self.engine.engine_for(Kind::P3)?;
        Ok(self
            .p3
            .get_or_init(|| Arc::new(CompileCache::new(engine, self.location))))
    }

    /// Hits, compiles and rebuilds of both caches.
    pub(super) fn totals(&self) -> (u64, u64, u64) {
        [Some(&self.p2), self.p3.get()]
            .into_iter()
            .flatten()
            .map(|c| {
                let s = c.stats();
                (
                    s.hits.load(Ordering::Relaxed),
                    s.compiled.load(Ordering::Relaxed),
                    s.rebuilt.load(Ordering::Relaxed),
                )
            })
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    }
}

/// Each function's kind and component, in the spec's order.
pub(super) struct Components {
    pub(super) per_function: Vec<(Kind, Arc<Lazy>)>,
    /// Distinct components.
    pub(super) distinct: usize,
    /// Components known compiled and checked from the load index, without
    /// being read.
    pub(super) indexed: u64,
}

/// Runs `work(0..n)` on every core; results in order, the first error (in
/// order) if any.
fn parallel<T: Send>(
    n: usize,
    work: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n.max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<anyhow::Result<T>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let result = work(i);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(anyhow::anyhow!("a load worker panicked")))
        })
        .collect()
}

/// The component `bytes` (of `kind`, used by `id`), compiled or taken from
/// the cache, then linked and type-checked.
fn compile_and_link(
    engine: &GustEngine,
    cache: &CompileCache,
    kind: Kind,
    bytes: &[u8],
    id: &FunctionId,
) -> anyhow::Result<Ready> {
    let started = Instant::now();
    let (component, outcome) = engine
        .engine_for(kind)
        .and_then(|wasmtime| cache.load(wasmtime, bytes))
        .with_context(|| format!("compiling the component of `{id}`"))?;
    tracing::info!(
        function = %id,
        wasi_http = kind.as_str(),
        bytes = bytes.len(),
        ?outcome,
        ms = started.elapsed().as_millis() as u64,
        "component ready"
    );
    Ready::link(engine.linker(kind)?, &component, id)
}

/// The stamp of a file source (`None` for embedded bytes).
fn stamp(source: &ComponentSource, id: &FunctionId) -> anyhow::Result<Option<Stamp>> {
    match source {
        ComponentSource::File(path) => Stamp::of(path)
            .map(Some)
            .with_context(|| format!("reading the component of `{id}`")),
        ComponentSource::Embedded(_) => Ok(None),
    }
}

/// Records a checked file source in the load index.
fn index_checked(
    caches: &Caches<'_>,
    source: &ComponentSource,
    stamp: Option<Stamp>,
    kind: Kind,
    key: &str,
) {
    if let (ComponentSource::File(path), Some(stamp)) = (source, stamp) {
        caches.index.add(path, stamp, kind, key);
    }
}

/// One distinct component of an eager load: its bytes, its kind and the
/// functions that use it.
struct Job {
    bytes: Cow<'static, [u8]>,
    kind: Kind,
    key: String,
    users: Vec<usize>,
}

/// Every component resident: read, compiled (or taken from the cache)
/// and linked, identical ones once, distinct ones on every core.
pub(super) fn eager(
    engine: &GustEngine,
    caches: &Caches<'_>,
    spec: &AppSpec,
) -> anyhow::Result<Components> {
    let mut unique: HashMap<String, Job> = HashMap::new();
    let mut stamps = Vec::with_capacity(spec.functions.len());
    for (i, f) in spec.functions.iter().enumerate() {
        // Before reading: a file changed in between gets a stale stamp,
        // which the next load finds changed.
        stamps.push(stamp(&f.source, &f.id)?);
        let bytes = f
            .source
            .read()
            .with_context(|| format!("reading the component of `{}`", f.id))?;
        let kind = Kind::detect(&bytes);
        let key = caches
            .get(kind)
            .with_context(|| format!("loading `{}`", f.id))?
            .key(&bytes);
        unique
            .entry(key.clone())
            .or_insert_with(|| Job {
                bytes,
                kind,
                key,
                users: Vec::new(),
            })
            .users
            .push(i);
    }
    let jobs: Vec<Job> = unique.into_values().collect();
    let ready = parallel(jobs.len(), |i| {
        let job = &jobs[i];
        let id = &spec.functions[job.users[0]].id;
        compile_and_link(engine, caches.get(job.kind)?, job.kind, &job.bytes, id)
    })?;
    let mut per_function: Vec<Option<(Kind, Arc<Lazy>)>> = vec![None; spec.functions.len()];
    for (job, ready) in jobs.iter().zip(ready) {
        let component = Arc::new(Lazy::resident(ready));
        for &i in &job.users {
            per_function[i] = Some((job.kind, component.clone()));
            index_checked(
                caches,
                &spec.functions[i].source,
                stamps[i],
                job.kind,
                &job.key,
            );
        }
    }
    Ok(Components {
        per_function: per_function
            .into_iter()
            .map(|c| c.context("every function has a component"))
            .collect::<anyhow::Result<_>>()?,
        distinct: jobs.len(),
        indexed: 0,
    })
}

/// Every component compiled into the cache (or found there) and checked,
/// none kept: each is loaded by its function's first request. Files the
/// load index knows, unchanged and with their artifact still cached, are
/// not even read.
pub(super) fn lazy(
    engine: &GustEngine,
    caches: &Caches<'_>,
    spec: &AppSpec,
) -> anyhow::Result<Components> {
    let n = spec.functions.len();
    let mut known: Vec<Option<(Kind, String)>> = vec![None; n];
    let mut stamps = Vec::with_capacity(n);
    for (i, f) in spec.functions.iter().enumerate() {
        let stamp = stamp(&f.source, &f.id)?;
        if let (ComponentSource::File(path), Some(stamp)) = (&f.source, &stamp)
            && let Some(entry) = caches.index.get(path, stamp)
            && caches.get(entry.kind)?.contains(&entry.key)
        {
            known[i] = Some((entry.kind, entry.key.clone()));
        }
        stamps.push(stamp);
    }
    let indexed = known
        .iter()
        .flatten()
        .map(|(_, key)| key)
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;

    // The others are read, keyed, compiled or found in the cache, linked
    // and dropped: on every core, identical components once.
    let unknown: Vec<usize> = (0..n).filter(|&i| known[i].is_none()).collect();
    type Checked = Arc<OnceLock<Result<(), String>>>;
    let checked: Mutex<HashMap<String, Checked>> = Mutex::new(HashMap::new());
    let found = parallel(unknown.len(), |j| {
        let f = &spec.functions[unknown[j]];
        let bytes = f
            .source
            .read()
            .with_context(|| format!("reading the component of `{}`", f.id))?;
        let kind = Kind::detect(&bytes);
        let cache = caches
            .get(kind)
            .with_context(|| format!("loading `{}`", f.id))?;
        let key = cache.key(&bytes);
        let once = checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        once.get_or_init(|| {
            compile_and_link(engine, cache, kind, &bytes, &f.id)
                .map(drop)
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)?;
        anyhow::Ok((kind, key))
    })?;
    for (&i, (kind, key)) in unknown.iter().zip(found) {
        index_checked(caches, &spec.functions[i].source, stamps[i], kind, &key);
        known[i] = Some((kind, key));
    }

    let mut shared: HashMap<String, Arc<Lazy>> = HashMap::new();
    let mut per_function = Vec::with_capacity(n);
    for (f, known) in spec.functions.iter().zip(known) {
        let (kind, key) = known.context("every function has a component")?;
        let component = match shared.get(&key) {
            Some(component) => component.clone(),
            None => {
                let component = Arc::new(Lazy::on_first_use(
                    engine,
                    caches.get(kind)?.clone(),
                    key.clone(),
                    kind,
                    f.source.clone(),
                    f.id.clone(),
                ));
                shared.insert(key, component.clone());
                component
            }
        };
        per_function.push((kind, component));
    }
    Ok(Components {
        per_function,
        distinct: shared.len(),
        indexed,
    })
}
