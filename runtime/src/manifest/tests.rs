//! Snapshot tests of valid and invalid manifests.

use std::path::Path;

use super::*;

/// A directory with empty `.wasm` files for the names the tests use:
/// validation checks that component files exist, not what is in them.
fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["hello.wasm", "users.wasm"] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    dir
}

fn check(text: &str) -> Result<Config, ManifestError> {
    let dir = fixture_dir();
    let result =
        Manifest::parse(text, "gust.toml").and_then(|m| m.validate(dir.path(), "gust.toml"));
    // Paths in errors would differ per run; name the fixture dir `<dir>`.
    result.map_err(|mut e| {
        for p in &mut e.problems {
            p.message = p
                .message
                .replace(&dir.path().display().to_string(), "<dir>");
        }
        e
    })
}

fn error(text: &str) -> String {
    check(text).unwrap_err().to_string()
}

/// Renders a valid spec so snapshots show what validation produced.
fn describe(config: &Config, base: &Path) -> String {
    let (spec, runtime) = (&config.app, &config.runtime);
    let mut out = format!(
        "server: {:#?}\nengine: {:#?}\n",
        runtime.server, runtime.engine
    );
    for f in &spec.functions {
        let source = match &f.source {
            ComponentSource::File(p) => p.strip_prefix(base).unwrap_or(p).display().to_string(),
            ComponentSource::Embedded(_) => "<embedded>".to_owned(),
        };
        out += &format!("function {}: {} {:#?}\n", f.id, source, f.limits);
    }
    for r in spec.router.routes() {
        out += &format!(
            "route {} {:?} -> {}\n",
            r.pattern(),
            r.methods(),
            spec.functions[*r.target()].id
        );
    }
    out
}

#[test]
fn full_manifest() {
    let dir = fixture_dir();
    let text = r#"
[server]
listen = "0.0.0.0:9000"
max_body_size = 1048576
header_read_timeout = "5s"
max_headers = 50
max_url_length = 4096
max_connections = 500
idle_timeout = "20s"
body_read_timeout = "15s"
http2_max_concurrent_streams = 64

[engine]
max_wasm_stack = 1048576
max_instances = 200
max_memory_size = 536870912
max_table_elements = 50000
time_slice = "50ms"

[defaults]
fuel = 1_000_000
timeout = "3s"
memory = 67108864
concurrency = 10

[functions.hello]
component = "hello.wasm"

[functions.users]
component = "users.wasm"
fuel = 42
timeout = "250ms"
memory = 268435456
table_elements = 40000
instances = 20
resources = 500
concurrency = 4
queue = 8
queue_timeout = "100ms"
max_response_size = 1024
reuse = 50

[[routes]]
path = "/hello"
function = "hello"
methods = ["GET"]

[[routes]]
path = "/users/{id}"
function = "users"
methods = ["GET", "DELETE"]

[[routes]]
path = "/static/{*rest}"
function = "hello"
"#;
    let spec = Manifest::parse(text, "gust.toml")
        .and_then(|m| m.validate(dir.path(), "gust.toml"))
        .unwrap();
    insta::assert_snapshot!(describe(&spec, dir.path()));
}

#[test]
fn minimal_manifest_gets_defaults() {
    let dir = fixture_dir();
    let text = r#"
functions.hello.component = "hello.wasm"
routes = [{ path = "/", function = "hello" }]
"#;
    let spec = Manifest::parse(text, "gust.toml")
        .and_then(|m| m.validate(dir.path(), "gust.toml"))
        .unwrap();
    insta::assert_snapshot!(describe(&spec, dir.path()));
}

#[test]
fn unknown_field() {
    insta::assert_snapshot!(error(
        r#"
[functions.hello]
component = "hello.wasm"
fule = 10
"#
    ));
}

#[test]
fn unknown_table() {
    insta::assert_snapshot!(error("[sever]\nlisten = \"127.0.0.1:1\"\n"));
}

#[test]
fn invalid_limits() {
    insta::assert_snapshot!(error(
        r#"
[server]
idle_timeout = "0s"
max_connections = 0
[engine]
max_wasm_stack = 1024
max_running = 0
time_slice = "0s"
[defaults]
concurrency = 0
queue_timeout = "2h"
[functions.hello]
component = "hello.wasm"
memory = 1073741824
table_elements = 1000000
resources = 0
host_memory = 0
max_random_size = 0
reuse = 0
[[routes]]
path = "/"
function = "hello"
"#
    ));
}

#[test]
fn wrong_type() {
    insta::assert_snapshot!(error(
        r#"
[defaults]
fuel = "lots"
"#
    ));
}

#[test]
fn bad_duration() {
    insta::assert_snapshot!(error(
        r#"
[defaults]
timeout = "ten seconds"
"#
    ));
}

#[test]
fn bad_route_pattern() {
    insta::assert_snapshot!(error(
        r#"
functions.hello.component = "hello.wasm"
[[routes]]
path = "/files/{*rest}/meta"
function = "hello"
"#
    ));
}

#[test]
fn bad_function_id() {
    insta::assert_snapshot!(error(
        r#"
[functions."Hello World"]
component = "hello.wasm"
"#
    ));
}

#[test]
fn bad_method() {
    insta::assert_snapshot!(error(
        r#"
functions.hello.component = "hello.wasm"
[[routes]]
path = "/"
function = "hello"
methods = ["get"]
"#
    ));
}

#[test]
fn semantic_problems_are_all_reported() {
    insta::assert_snapshot!(error(
        r#"
[defaults]
fuel = 0

[functions.hello]
component = "hello.wasm"
timeout = "0s"

[functions.ghost]
component = "missing/ghost.wasm"

[[routes]]
path = "/users/{id}"
function = "hello"

[[routes]]
path = "/users/{name}"
function = "hello"
methods = ["GET"]

[[routes]]
path = "/nope"
function = "nobody"

[[routes]]
path = "/empty"
function = "hello"
methods = []
"#
    ));
}

#[test]
fn no_routes() {
    insta::assert_snapshot!(error("functions.hello.component = \"hello.wasm\"\n"));
}

#[test]
fn same_path_different_methods_is_fine() {
    let spec = check(
        r#"
functions.hello.component = "hello.wasm"
functions.users.component = "users.wasm"
routes = [
  { path = "/items", function = "hello", methods = ["GET"] },
  { path = "/items", function = "users", methods = ["POST"] },
]
"#,
    )
    .unwrap()
    .app;
    assert_eq!(spec.router.routes().len(), 2);
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let err = Manifest::load(Path::new("/nonexistent/gust.toml")).unwrap_err();
    assert_eq!(err.origin, "/nonexistent/gust.toml");
    assert!(err.to_string().contains("cannot read file"), "{err}");
}

#[test]
fn single_component_serves_every_path() {
    let dir = fixture_dir();
    let spec = AppSpec::single_component(&dir.path().join("hello.wasm")).unwrap();
    assert_eq!(spec.functions[0].id.as_str(), "hello");
    let m = spec
        .router
        .lookup(&http::Method::POST, "/any/path")
        .unwrap();
    assert_eq!(*m.route.target(), 0);
    let err = AppSpec::single_component(&dir.path().join("nope.wasm")).unwrap_err();
    assert!(
        err.to_string().contains("component file not found"),
        "{err}"
    );
}

#[test]
fn quota_must_be_positive() {
    let err = error(
        r#"
[functions.hello]
component = "hello.wasm"
quota = { fuel = 0, window = "0s" }
[[routes]]
path = "/"
function = "hello"
"#,
    );
    assert!(
        err.contains("functions.hello.quota.fuel: must be greater than 0"),
        "{err}"
    );
    assert!(
        err.contains("functions.hello.quota.window: must be greater than 0"),
        "{err}"
    );
}

#[test]
fn grants_and_backends() {
    let dir = fixture_dir();
    let config = Manifest::parse(
        r#"
[data]
dir = "data"

[key_value_store.default]
type = "redis"
url = "redis://:hunter2@127.0.0.1:6379/0"

[key_value_store.local]
type = "sqlite"

[blob_container.uploads]
type = "s3"
endpoint = "http://127.0.0.1:9000/"
bucket = "uploads"
access_key_id = "{{ secrets.s3_key }}"
secret_access_key = "{{ secrets.s3_secret }}"

[blob_container.scratch]
type = "fs"
dir = "/srv/scratch"

[key_value]
max_value_size = 4096

[secrets.s3_key]
env = "GUST_S3_KEY"

[secrets.s3_secret]
file = "s3.secret"

[secrets.token_key]
env = "GUST_TOKEN_KEY"

[functions.hello]
component = "hello.wasm"
key_value_stores = ["default", "local"]
blob_containers = ["uploads"]
allowed_outbound_hosts = ["https://api.example.com", "http://users.gust.internal"]
config = { greeting = "hello", token = "{{ secrets.token_key }}" }
environment = { MODE = "prod" }

[[routes]]
path = "/hello"
function = "hello"
"#,
        "gust.toml",
    )
    .and_then(|m| m.validate(dir.path(), "gust.toml"))
    .unwrap();
    let base = dir.path().display().to_string();
    let text = format!(
        "{:#?}\n{:#?}",
        config.runtime.capabilities, config.app.functions[0].grants
    )
    .replace(&base, "<dir>");
    // The Redis password is not shown; secret references stay references.
    assert!(!text.contains("hunter2"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn invalid_grants_and_backends() {
    insta::assert_snapshot!(error(
        r#"
[key_value_store."bad name"]
type = "redis"
url = "http://127.0.0.1:6379"

[blob_container.uploads]
type = "s3"
endpoint = "127.0.0.1:9000"
bucket = ""
access_key_id = "{{ secrets.missing }}"
secret_access_key = "{{ secrets.s3 "

[key_value]
max_keys = 0

[secrets.both]
env = "A"
file = "b"

[secrets.neither]

[functions.hello]
component = "hello.wasm"
key_value_stores = ["default", "default", "../x"]
blob_containers = [""]
config = { "bad key" = "x", ok = "{{ secrets.nope }}", tpl = "{{ env.HOME }}" }
environment = { "A=B" = "x" }

[[routes]]
path = "/hello"
function = "hello"
"#
    ));
}

#[test]
fn unknown_backend_type() {
    insta::assert_snapshot!(error(
        r#"
[key_value_store.default]
type = "postgres"
"#
    ));
}

#[test]
fn build_tables() {
    let dir = fixture_dir();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let text = r#"
[functions.hello]
component = "target/hello.wasm"
build = { command = "cargo build", watch = ["src/**/*.rs", "Cargo.toml"] }

[functions.users]
component = "users.wasm"

[functions.users.build]
command = "make"
workdir = "src"
"#;
    let path = dir.path().join("gust.toml");
    std::fs::write(&path, text).unwrap();
    let steps = build_steps(&path).unwrap();
    let base = dir.path().canonicalize().unwrap();
    let shown: Vec<String> = steps
        .iter()
        .map(|s| {
            format!(
                "{}: `{}` in {} -> {} watching {:?}",
                s.function,
                s.command,
                s.workdir.strip_prefix(&base).unwrap().display(),
                s.component.strip_prefix(&base).unwrap().display(),
                s.watch
            )
        })
        .collect();
    insta::assert_snapshot!(shown.join("\n"));
    let hello = &steps[0];
    assert!(hello.watches(Path::new("src/lib.rs")));
    assert!(hello.watches(Path::new("src/a/b.rs")));
    assert!(hello.watches(Path::new("Cargo.toml")));
    assert!(!hello.watches(Path::new("target/hello.wasm")));
    assert!(!hello.watches(Path::new("README.md")));
}

#[test]
fn invalid_build_tables() {
    insta::assert_snapshot!(error(
        r#"
[functions.hello]
component = "hello.wasm"
build = { command = " ", workdir = "nowhere", watch = ["/etc/*", "../up/*.rs", "src/[*.rs"] }

[[routes]]
path = "/"
function = "hello"
"#
    ));
    insta::assert_snapshot!(error(
        r#"
[functions.hello]
component = "hello.wasm"
build = { command = "make", wach = ["*.c"] }
"#
    ));
}

#[test]
fn hosts_and_operator_settings() {
    let config = check(
        "name = \"shop\"\nhosts = [\"Shop.Example.com\", \"*.shop.example.com\"]\n\
         [admin]\nlisten = \"127.0.0.1:9\"\nstate_dir = \"state\"\nlog_lines = 50\n\
         [telemetry]\notlp_endpoint = \"http://127.0.0.1:4318/\"\n\
         [engine]\nload = \"lazy\"\nmax_resident_functions = 200\n\
         [functions.hello]\ncomponent = \"hello.wasm\"\n[[routes]]\npath = \"/\"\nfunction = \"hello\"\n",
    )
    .unwrap();
    let hosts: Vec<&str> = config.app.hosts.iter().map(HostPattern::as_str).collect();
    assert_eq!(hosts, ["shop.example.com", "*.shop.example.com"]);
    let admin = &config.runtime.admin;
    assert_eq!(admin.log_lines, 50);
    assert!(admin.state_dir.ends_with("state") && admin.tokens.ends_with("state/tokens"));
    assert_eq!(
        config.runtime.telemetry.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4318")
    );
    let engine = &config.runtime.engine;
    assert_eq!(
        (engine.load, engine.max_resident_functions),
        (Some(LoadDecl::Lazy), Some(200))
    );
    // No hosts: the default app, `*`.
    let config = check("[functions.hello]\ncomponent = \"hello.wasm\"\n[[routes]]\npath = \"/\"\nfunction = \"hello\"\n").unwrap();
    assert_eq!(config.app.hosts, [HostPattern::any()]);
}

#[test]
fn invalid_hosts_and_operator_settings() {
    insta::assert_snapshot!(error(
        "hosts = [\"shop.example.com\", \"SHOP.example.com\"]\n\
         [admin]\nlog_lines = 0\n[engine]\nload = \"eager\"\neager_up_to = 5\nmax_resident_functions = 0\n[telemetry]\notlp_endpoint = \"ftp://x\"\nservice_name = \" \"\n\
         [functions.hello]\ncomponent = \"hello.wasm\"\n[[routes]]\npath = \"/\"\nfunction = \"hello\"\n"
    ));
    insta::assert_snapshot!(error("hosts = [\"a.*.com\"]\n"));
}

#[test]
fn a_bundle_may_set_only_the_tenants_sections() {
    let dir = fixture_dir();
    let text = "name = \"shop\"\n[server]\nlisten = \"0.0.0.0:80\"\n[data]\ndir = \"/\"\n\
                [billing]\nper_request = 1\n\
                [functions.hello]\ncomponent = \"hello.wasm\"\nbilling = { per_request = 2 }\n\
                [functions.users]\ncomponent = \"nope.wasm\"\n\
                [[routes]]\npath = \"/\"\nfunction = \"hello\"\n";
    let error = Manifest::validate_bundle(text, dir.path(), "bundle", &RuntimeSpec::default())
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "<dir>");
    insta::assert_snapshot!(error);
}

#[test]
fn unknown_load_mode() {
    insta::assert_snapshot!(error("[engine]\nload = \"sometimes\"\n"));
}

#[test]
fn a_node_prices_its_deployed_apps() {
    let dir = fixture_dir();
    let node =
        Manifest::parse_node("[billing]\nper_request = 5\n", dir.path(), "node.toml").unwrap();
    let text = "[functions.hello]\ncomponent = \"hello.wasm\"\n[[routes]]\npath = \"/\"\nfunction = \"hello\"\n";
    let app = Manifest::validate_bundle(text, dir.path(), "bundle", &node).unwrap();
    assert_eq!(app.functions[0].prices.per_request, 5);
}
