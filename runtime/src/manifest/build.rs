//! `[functions.ID.build]`: how a function's component is built, resolved
//! into [`BuildStep`]s for `gust build` and `gust serve --watch`
//! (`crate::dev` runs them). Only these tables are needed to build, so a
//! manifest whose components do not exist yet still yields its steps.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::{FunctionId, Manifest, ManifestError, Problems, resolve};
use crate::manifest::model::BuildDecl;

/// One function's build: its command, where it runs, what it produces and
/// which sources rebuild it.
#[derive(Debug, Clone)]
pub struct BuildStep {
    /// The function it builds.
    pub function: FunctionId,
    /// Run with `sh -c`.
    pub command: String,
    /// Absolute or manifest-relative directory it runs in.
    pub workdir: PathBuf,
    /// The component it is expected to produce (`component =`).
    pub component: PathBuf,
    /// The watch globs as written, relative to `workdir`.
    pub watch: Vec<String>,
    globs: GlobSet,
}

impl BuildStep {
    /// Whether `path` (relative to `workdir`) is one of the sources that
    /// rebuild this function.
    pub fn watches(&self, relative: &Path) -> bool {
        self.globs.is_match(relative)
    }
}

/// The build steps of the manifest at `path`, in function order. Checks
/// only what building needs: the document parses and every `build` table
/// is valid (non-empty command, existing workdir, valid globs).
pub fn build_steps(path: &Path) -> Result<Vec<BuildStep>, ManifestError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ManifestError::single(&origin, "", format!("cannot read file: {e}")))?;
    // Absolute, so that a step runs and watches the same directory
    // whatever the working directory is later.
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = base.canonicalize().map_err(|e| {
        ManifestError::single(
            &origin,
            "",
            format!("cannot resolve {}: {e}", base.display()),
        )
    })?;
    let manifest = Manifest::parse(&text, &origin)?;
    let mut problems = Problems(Vec::new());
    let steps = steps(&manifest, &base, &mut problems);
    if problems.0.is_empty() {
        Ok(steps)
    } else {
        Err(ManifestError {
            origin,
            problems: problems.0,
        })
    }
}

/// Every function's step; problems pushed for invalid `build` tables.
pub(super) fn steps(m: &Manifest, base: &Path, problems: &mut Problems) -> Vec<BuildStep> {
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    m.functions
        .iter()
        .filter_map(|(id, decl)| {
            let build = decl.build.as_ref()?;
            let field = format!("functions.{id}.build");
            check(
                id,
                build,
                &resolve(base, &decl.component),
                base,
                &field,
                problems,
            )
        })
        .collect()
}

fn check(
    id: &FunctionId,
    decl: &BuildDecl,
    component: &Path,
    base: &Path,
    field: &str,
    problems: &mut Problems,
) -> Option<BuildStep> {
    let mut ok = true;
    if decl.command.trim().is_empty() {
        problems.push(format!("{field}.command"), "must not be empty");
        ok = false;
    }
    let workdir = decl
        .workdir
        .as_deref()
        .map_or_else(|| base.to_path_buf(), |dir| resolve(base, dir));
    if !workdir.is_dir() {
        problems.push(
            format!("{field}.workdir"),
            format!("directory not found: {}", workdir.display()),
        );
        ok = false;
    }
    let mut globs = GlobSetBuilder::new();
    for (i, pattern) in decl.watch.iter().enumerate() {
        if Path::new(pattern).is_absolute() || pattern.split('/').any(|part| part == "..") {
            problems.push(
                format!("{field}.watch[{i}]"),
                format!("`{pattern}` must be relative to the workdir, without `..`"),
            );
            ok = false;
            continue;
        }
        match Glob::new(pattern) {
            Ok(glob) => {
                globs.add(glob);
            }
            Err(e) => {
                problems.push(format!("{field}.watch[{i}]"), format!("invalid glob: {e}"));
                ok = false;
            }
        }
    }
    let globs = match globs.build() {
        Ok(globs) => globs,
        Err(e) => {
            problems.push(format!("{field}.watch"), e.to_string());
            return None;
        }
    };
    ok.then(|| BuildStep {
        function: id.clone(),
        command: decl.command.clone(),
        workdir,
        component: component.to_path_buf(),
        watch: decl.watch.clone(),
        globs,
    })
}
