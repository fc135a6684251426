//! Runs the build commands of a manifest's functions (`gust build`), all
//! at once, each with its output prefixed by the function's id, and says
//! which failed with the end of their output.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::manifest::{BuildStep, FunctionId};

/// Lines of a failed build's output kept for its error.
const TAIL_LINES: usize = 40;

/// Where a build's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Every line to stderr as it comes, as `ID | line`.
    Stream,
    /// Kept only for the error of a failed build.
    Quiet,
}

/// One finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The function built.
    pub function: FunctionId,
    /// How long its command ran.
    pub duration: Duration,
    /// The size of the component it produced, in bytes.
    pub component_size: u64,
}

/// Runs `steps` in parallel; every one runs to its end even when another
/// fails. The error names every failed function with its exit status and
/// the last lines of its output.
pub fn run(steps: &[BuildStep], output: Output) -> anyhow::Result<Vec<Built>> {
    let env = super::toolkit::build_env()?;
    let results: Vec<Result<Built, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = steps
            .iter()
            .map(|step| scope.spawn(|| run_one(step, &env, output)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the build thread panicked".into()))
            })
            .collect()
    });
    let mut built = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(b) => built.push(b),
            Err(e) => failures.push(e),
        }
    }
    if failures.is_empty() {
        Ok(built)
    } else {
        anyhow::bail!(
            "{} of {} builds failed:\n{}",
            failures.len(),
            steps.len(),
            failures.join("\n")
        )
    }
}

/// Runs one step; `Err` is the failure's description.
fn run_one(
    step: &BuildStep,
    env: &[(&'static str, std::path::PathBuf)],
    output: Output,
) -> Result<Built, String> {
    let id = step.function.as_str();
    tracing::info!(function = id, command = %step.command, workdir = %step.workdir.display(), "building");
    let started = Instant::now();
    let start_time = SystemTime::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&step.command)
        .current_dir(&step.workdir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{id}: cannot run `sh -c {}`: {e}", step.command))?;
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tail = tail.clone();
        let id = id.to_owned();
        std::thread::spawn(move || forward(stream, &id, &tail, output))
    })
    .collect();
    let status = child.wait();
    for reader in readers {
        let _ = reader.join();
    }
    let duration = started.elapsed();
    let tail = || {
        let lines = tail.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .map(|l| format!("  {id} | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let status: ExitStatus = status.map_err(|e| format!("{id}: waiting for the build: {e}"))?;
    if !status.success() {
        tracing::error!(function = id, %status, secs = duration.as_secs_f64(), "build failed");
        return Err(format!(
            "{id}: `{}` failed ({status}) after {:.1}s\n{}",
            step.command,
            duration.as_secs_f64(),
            tail()
        ));
    }
    let component = std::fs::metadata(&step.component).map_err(|e| {
        format!(
            "{id}: the build succeeded but its component {} is missing ({e}); does `component =` name what `{}` writes?\n{}",
            step.component.display(),
            step.command,
            tail()
        )
    })?;
    if component.modified().is_ok_and(|m| m < start_time) {
        tracing::warn!(
            function = id,
            component = %step.component.display(),
            "the build did not rewrite the component (up to date, or `component =` names another file)"
        );
    }
    tracing::info!(
        function = id,
        secs = format!("{:.1}", duration.as_secs_f64()),
        bytes = component.len(),
        component = %short(&step.component),
        "built"
    );
    Ok(Built {
        function: step.function.clone(),
        duration,
        component_size: component.len(),
    })
}

/// Copies lines from `stream` to stderr (when streaming) and the tail.
fn forward(stream: Box<dyn Read + Send>, id: &str, tail: &Mutex<VecDeque<String>>, output: Output) {
    let mut reader = BufReader::new(stream);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        if output == Output::Stream {
            eprintln!("{id} | {line}");
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
    }
}

/// The path relative to the working directory when it is beneath it.
fn short(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
