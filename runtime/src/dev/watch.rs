//! `gust serve --watch`: rebuilds a function when one of its `watch`
//! sources changes, and swaps the app's new version in when a build
//! succeeds or the manifest or a component changes. The swap is
//! [`Apps::insert`]: requests in flight finish on the old version, later
//! ones get the new; nothing is dropped and the process keeps running. A
//! failed build or an invalid manifest is logged and the running version
//! stays.
//!
//! Changes are found by polling modification times and sizes (every
//! [`POLL`]), which works the same on every platform and file system; a
//! change is acted on once the files have been quiet for one more poll,
//! so an editor's or a compiler's burst of writes is one rebuild.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::app::{App, Apps};
use crate::manifest::{BuildStep, FunctionId, Manifest, build_steps};

use super::build::{self, Output};

/// How often sources are checked.
pub const POLL: Duration = Duration::from_millis(250);

/// Directories never searched for sources: build output, dependencies and
/// version control.
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", "__pycache__"];

/// Loads the app from the manifest: called after every change, on a
/// blocking thread (it compiles).
pub type Loader = Box<dyn Fn() -> anyhow::Result<App> + Send + Sync>;

/// Watches `manifest`'s functions until the returned future is dropped,
/// swapping new versions into `apps` (whose current app has the id
/// `current`). The files are first looked at when this is called, not when
/// the future first runs: a change made in between is not missed.
pub fn watch(
    manifest: PathBuf,
    apps: Apps,
    current: FunctionId,
    load: Loader,
) -> impl Future<Output = ()> + Send {
    let steps = steps_or_none(&manifest);
    let sources: Vec<u64> = steps.iter().map(fingerprint_sources).collect();
    let outputs = fingerprint_outputs(&manifest);
    tracing::info!(
        manifest = %manifest.display(),
        builds = steps.len(),
        "watching for changes"
    );
    poll(manifest, apps, current, load, steps, sources, outputs)
}

async fn poll(
    manifest: PathBuf,
    apps: Apps,
    mut current: FunctionId,
    load: Loader,
    mut steps: Vec<BuildStep>,
    mut sources: Vec<u64>,
    mut outputs: u64,
) {
    let load = std::sync::Arc::new(load);
    loop {
        tokio::time::sleep(POLL).await;
        let now: Vec<u64> = steps.iter().map(fingerprint_sources).collect();
        let changed: Vec<BuildStep> = steps
            .iter()
            .zip(now.iter().zip(&sources))
            .filter(|(_, (now, before))| now != before)
            .map(|(step, _)| step.clone())
            .collect();
        if !changed.is_empty() {
            quiet(|| changed.iter().map(fingerprint_sources).collect::<Vec<_>>()).await;
            let names: Vec<&str> = changed.iter().map(|s| s.function.as_str()).collect();
            tracing::info!(functions = ?names, "sources changed: rebuilding");
            let result = tokio::task::spawn_blocking({
                let changed = changed.clone();
                move || build::run(&changed, Output::Stream)
            })
            .await;
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("{e:#}\nstill serving the previous version"),
                Err(e) => tracing::error!(error = %e, "the build task failed"),
            }
            // What the build itself wrote is not a change to rebuild for.
            sources = steps.iter().map(fingerprint_sources).collect();
        }
        let now_outputs = fingerprint_outputs(&manifest);
        if now_outputs == outputs {
            continue;
        }
        outputs = quiet(|| fingerprint_outputs(&manifest)).await;
        // The manifest may name new builds or sources.
        steps = steps_or_none(&manifest);
        sources = steps.iter().map(fingerprint_sources).collect();
        let started = Instant::now();
        let loaded = tokio::task::spawn_blocking({
            let load = load.clone();
            move || load()
        })
        .await;
        match loaded {
            Ok(Ok(app)) => {
                let id = app.id().clone();
                // A renamed app takes over its old name's hosts.
                let previous = (id != current).then(|| apps.remove(&current)).flatten();
                if let Err(conflict) = apps.insert(app) {
                    tracing::error!("{conflict}\nstill serving the previous version");
                    if let Some(previous) = previous {
                        let _ = apps.insert(previous);
                    }
                    continue;
                }
                current = id;
                tracing::info!(
                    app = %current,
                    ms = started.elapsed().as_millis() as u64,
                    "new version swapped in"
                );
            }
            Ok(Err(e)) => tracing::error!("{e:#}\nstill serving the previous version"),
            Err(e) => tracing::error!(error = %e, "the reload task failed"),
        }
    }
}

/// The build steps, or none (logged) while the manifest is invalid.
fn steps_or_none(manifest: &Path) -> Vec<BuildStep> {
    build_steps(manifest).unwrap_or_else(|e| {
        tracing::error!("{e}");
        Vec::new()
    })
}

/// Waits until `read` (a fingerprint) gives the same value twice in a
/// row, at most a few seconds; returns the last value.
async fn quiet<T: PartialEq>(mut read: impl FnMut() -> T) -> T {
    let mut last = read();
    for _ in 0..20 {
        tokio::time::sleep(POLL).await;
        let now = read();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// The modification times and sizes of `step`'s sources.
fn fingerprint_sources(step: &BuildStep) -> u64 {
    let mut hasher = DefaultHasher::new();
    let walk = walkdir::WalkDir::new(&step.workdir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0
                || !(e.file_type().is_dir()
                    && (name.starts_with('.') || SKIPPED_DIRS.contains(&name.as_ref())))
        });
    for entry in walk.flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(&step.workdir) else {
            continue;
        };
        if step.watches(relative) {
            relative.hash(&mut hasher);
            stamp(entry.path()).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The modification times and sizes of the manifest and of every
/// component it names.
fn fingerprint_outputs(manifest: &Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    stamp(manifest).hash(&mut hasher);
    let base = manifest.parent().unwrap_or(Path::new("."));
    if let Some(m) = std::fs::read_to_string(manifest)
        .ok()
        .and_then(|text| Manifest::parse(&text, "").ok())
    {
        for decl in m.functions.values() {
            stamp(&base.join(&decl.component)).hash(&mut hasher);
        }
    }
    hasher.finish()
}

fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
