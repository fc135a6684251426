//! `gust deploy`, `gust apps`, `gust rollback`, `gust undeploy` and
//! `gust token create`: the deploy API from the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::Method;

use crate::client::AdminClient;
use gust_runtime::deploy::tokens::{self, Scope};
use gust_runtime::manifest::{FunctionId, Manifest, OPERATOR_SECTIONS, RuntimeSpec};

/// Runs `work` on a small runtime of its own.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// `gust deploy`: packs `source` (a directory with a `gust.toml`) or takes
/// it as a bundle (a `.tar` or `.tar.gz` file) and uploads it as `app`.
pub fn deploy(
    source: &Path,
    app: Option<&str>,
    admin: &str,
    token: Option<String>,
) -> anyhow::Result<()> {
    let (bundle, named) = if source.is_dir() {
        let (bundle, name) = pack_dir(source)?;
        (bundle, name)
    } else {
        let bytes = std::fs::read(source)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", source.display()))?;
        (bytes, None)
    };
    let app = match (app, named) {
        (Some(app), _) => app.to_owned(),
        (None, Some(name)) => name,
        (None, None) => anyhow::bail!("name the app: --app NAME"),
    };
    let app = FunctionId::try_from(app).map_err(|e| anyhow::anyhow!(e))?;
    let client = AdminClient::new(admin, token)?;
    let size = bundle.len();
    let body = block_on(async {
        client
            .send(Method::PUT, &format!("/v1/apps/{app}"), Bytes::from(bundle))
            .await?
            .ok()
    })?;
    let load = &body["load"];
    println!(
        "deployed {app} version {} ({} bytes): {} functions, {} routes, hosts {}",
        body["version"],
        size,
        body["functions"].as_array().map_or(0, Vec::len),
        body["routes"].as_array().map_or(0, Vec::len),
        join(&body["hosts"]),
    );
    println!(
        "  loaded in {} ms: {} compiled, {} from the cache{}",
        load["ms"],
        load["compiled"],
        load["cache_hits"],
        body["previous"]
            .as_u64()
            .map_or_else(String::new, |p| format!(
                "; `gust rollback {app}` returns to version {p}"
            ))
    );
    Ok(())
}

/// `gust apps`: the apps the token may see, as a table.
pub fn apps(admin: &str, token: Option<String>, json: bool) -> anyhow::Result<()> {
    let client = AdminClient::new(admin, token)?;
    let body = block_on(async {
        client
            .send(Method::GET, "/v1/apps", Bytes::new())
            .await?
            .ok()
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let apps = body["apps"].as_array().cloned().unwrap_or_default();
    if apps.is_empty() {
        println!("no apps");
        return Ok(());
    }
    println!(
        "{:<20} {:>7} {:<8} {:<20} {:>9} {:<20} HOSTS",
        "APP", "VERSION", "SERVING", "DEPLOYED AT", "FUNCTIONS", "BY"
    );
    for app in apps {
        println!(
            "{:<20} {:>7} {:<8} {:<20} {:>9} {:<20} {}",
            app["app"].as_str().unwrap_or(""),
            app["version"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            if app["serving"] == true { "yes" } else { "no" },
            app["deployed_at"].as_str().unwrap_or("-"),
            app["functions"].as_array().map_or(0, Vec::len),
            app["deployed_by"].as_str().unwrap_or("-"),
            join(&app["hosts"]),
        );
    }
    Ok(())
}

/// `gust rollback`: the previous kept version of `app` serves again.
pub fn rollback(app: &str, admin: &str, token: Option<String>) -> anyhow::Result<()> {
    let client = AdminClient::new(admin, token)?;
    let body = block_on(async {
        client
            .send(
                Method::POST,
                &format!("/v1/apps/{app}/rollback"),
                Bytes::new(),
            )
            .await?
            .ok()
    })?;
    println!(
        "{app} rolled back to version {} (from {}; rolling back again returns to it)",
        body["version"], body["previous"]
    );
    Ok(())
}

/// `gust undeploy`: `app` stops serving and its versions are forgotten.
pub fn undeploy(app: &str, admin: &str, token: Option<String>) -> anyhow::Result<()> {
    let client = AdminClient::new(admin, token)?;
    block_on(async {
        client
            .send(Method::DELETE, &format!("/v1/apps/{app}"), Bytes::new())
            .await?
            .ok()
    })?;
    println!("{app} removed");
    Ok(())
}

/// `gust token create`: a new token, printed once; its hash appended to
/// the token file (`tokens`, else the node configuration's, else the
/// default one in the state directory).
pub fn create_token(
    app: Option<String>,
    tokens_file: Option<PathBuf>,
    config: Option<&Path>,
) -> anyhow::Result<()> {
    let scope = match app {
        Some(app) => Scope::App(FunctionId::try_from(app).map_err(|e| anyhow::anyhow!(e))?),
        None => Scope::Operator,
    };
    let path = match (tokens_file, config) {
        (Some(path), _) => path,
        (None, Some(config)) => Manifest::load_node(config)?.admin.tokens,
        (None, None) => RuntimeSpec::default().admin.tokens,
    };
    let (token, entry) = tokens::create(&path, scope)?;
    eprintln!(
        "created token {} ({}) in {}; it is shown only now:",
        entry.id,
        entry.scope,
        path.display()
    );
    println!("{token}");
    Ok(())
}

fn join(list: &serde_json::Value) -> String {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A tar.gz of `dir`'s `gust.toml` and the components it names, and the
/// manifest's `name`. Components are stored as `components/FUNCTION.wasm`
/// (one copy of a file several functions use) and the manifest rewritten
/// to point there; `build` tables (serving never builds) and operator
/// sections (the node's apply) are left out.
pub fn pack_dir(dir: &Path) -> anyhow::Result<(Vec<u8>, Option<String>)> {
    let manifest = dir.join("gust.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", manifest.display()))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest.display()))?;
    let left_out: Vec<&str> = OPERATOR_SECTIONS
        .iter()
        .copied()
        .filter(|s| table.remove(*s).is_some())
        .collect();
    if !left_out.is_empty() {
        eprintln!(
            "not deployed (the node's settings apply): [{}]",
            left_out.join("], [")
        );
    }
    let name = table
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_owned);
    // Source file -> name in the bundle.
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    if let Some(functions) = table.get_mut("functions").and_then(|f| f.as_table_mut()) {
        for (id, function) in functions.iter_mut() {
            let Some(function) = function.as_table_mut() else {
                continue;
            };
            function.remove("build");
            let Some(component) = function.get("component").and_then(|c| c.as_str()) else {
                continue;
            };
            let source = dir.join(component);
            let source = source.canonicalize().map_err(|e| {
                anyhow::anyhow!(
                    "functions.{id}.component: cannot read {}: {e} (build it first: gust build)",
                    source.display()
                )
            })?;
            // Function ids are unique, so these names are.
            let packed = files
                .entry(source)
                .or_insert_with(|| format!("components/{id}.wasm"))
                .clone();
            function.insert("component".into(), toml::Value::String(packed));
        }
    }
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let rewritten = toml::to_string(&table)?;
    append(&mut builder, "gust.toml", rewritten.as_bytes())?;
    for (source, packed) in &files {
        let bytes = std::fs::read(source)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", source.display()))?;
        append(&mut builder, packed, &bytes)?;
    }
    let bundle = builder.into_inner()?.finish()?;
    Ok((bundle, name))
}

fn append<W: std::io::Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes)?;
    Ok(())
}
