//! `gust serve --config node.toml` as a node, and `gust token create`,
//! `gust deploy`, `gust apps`, `gust rollback`, `gust undeploy` against it,
//! run as an operator runs them; then the node started again from its
//! state directory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

mod support;

use support::{GUST, Serving, get};

/// Runs `gust ARGS` to completion (bounded by the CLI's own timeouts).
fn gust(args: &[&str], token: Option<&str>, dir: &Path) -> Output {
    let mut command = Command::new(GUST);
    command.args(args).current_dir(dir).env_remove("GUST_TOKEN");
    if let Some(token) = token {
        command.env("GUST_TOKEN", token);
    }
    command.output().expect("running gust")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn admin_of(node: &Serving) -> SocketAddr {
    let at = node
        .startup
        .find("admin on http://")
        .expect("the admin address is logged");
    let rest = &node.startup[at + "admin on http://".len()..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// An app directory as a developer has it: a `gust.toml` with a build
/// table and a `[server]` section, the component where the build left it.
fn app_dir(root: &Path, component: &str) -> std::path::PathBuf {
    let dir = root.join("app");
    std::fs::create_dir_all(dir.join("target")).unwrap();
    std::fs::copy(component, dir.join("target/app.wasm")).unwrap();
    std::fs::write(
        dir.join("gust.toml"),
        "name = \"shop\"\n\
         [server]\nlisten = \"127.0.0.1:9\"\n\
         [functions.main]\ncomponent = \"target/app.wasm\"\n\
         [functions.main.build]\ncommand = \"true\"\n\
         [[routes]]\npath = \"/hello\"\nfunction = \"main\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_node_is_deployed_to_listed_rolled_back_and_restored_from_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("node.toml");
    std::fs::write(
        &config,
        "[admin]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n\
         [cache]\ndir = \"cache\"\n[ledger]\nenabled = false\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let token = stdout(&gust(
        &["token", "create", "--operator", "--config", config],
        None,
        root.path(),
    ));
    let token = token.trim();
    assert!(token.starts_with("gust_"), "{token}");
    let stored = std::fs::read_to_string(root.path().join("state/tokens")).unwrap();
    assert!(
        !stored.contains(&token[5..]),
        "the token itself is not stored"
    );

    let node = Serving::start(&["--config", config]);
    let admin = format!("http://{}", admin_of(&node));
    assert_eq!(get(node.addr, "/hello").0, 404, "nothing deployed yet");

    let dir = app_dir(root.path(), gust_runtime::examples::HELLO_PATH);
    let dir = dir.to_str().unwrap();
    let deployed = stdout(&gust(
        &["deploy", dir, "--admin", &admin],
        Some(token),
        root.path(),
    ));
    assert!(deployed.contains("deployed shop version 1"), "{deployed}");
    assert!(deployed.contains("1 compiled"), "{deployed}");
    assert_eq!(get(node.addr, "/hello"), (200, "Hello from gust!\n".into()));

    // A new version from the same directory, another component.
    let dir = app_dir(root.path(), gust_runtime::examples::ECHO_PATH);
    let dir = dir.to_str().unwrap();
    let deployed = stdout(&gust(
        &["deploy", dir, "--admin", &admin],
        Some(token),
        root.path(),
    ));
    assert!(deployed.contains("version 2"), "{deployed}");
    assert!(deployed.contains("gust rollback shop"), "{deployed}");
    assert!(get(node.addr, "/hello").1.contains("\"path\""));

    let listed = stdout(&gust(
        &["apps", "--admin", &admin],
        Some(token),
        root.path(),
    ));
    let line = listed
        .lines()
        .find(|l| l.starts_with("shop"))
        .expect(&listed);
    assert!(line.split_whitespace().nth(1) == Some("2"), "{listed}");

    let back = stdout(&gust(
        &["rollback", "shop", "--admin", &admin],
        Some(token),
        root.path(),
    ));
    assert!(back.contains("rolled back to version 1"), "{back}");
    assert_eq!(get(node.addr, "/hello").1, "Hello from gust!\n");

    // Without a token: refused, and said so.
    let refused = gust(&["apps", "--admin", &admin], None, root.path());
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    // A bundle file needs the app's name.
    let refused = gust(
        &["deploy", config, "--admin", &admin],
        Some(token),
        root.path(),
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--app"));

    let (exited_cleanly, log) = node.terminate();
    assert!(exited_cleanly, "{}", log.join("\n"));

    // Started again: the app is back before the first request, from the
    // cache.
    let node = Serving::start(&["--config", config]);
    assert!(
        node.startup
            .contains("app restored app=shop version=1 cache_hits=1 compiled=0"),
        "{}",
        node.startup
    );
    assert_eq!(get(node.addr, "/hello").1, "Hello from gust!\n");
    let admin = format!("http://{}", admin_of(&node));
    let removed = stdout(&gust(
        &["undeploy", "shop", "--admin", &admin],
        Some(token),
        root.path(),
    ));
    assert!(removed.contains("shop removed"), "{removed}");
    assert_eq!(get(node.addr, "/hello").0, 404);
    let audit = std::fs::read_to_string(root.path().join("state/audit.log")).unwrap();
    let actions: Vec<&str> = audit
        .lines()
        .map(|l| {
            l.split("\"action\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(actions, ["deploy", "deploy", "rollback", "delete"]);
}

#[test]
fn a_node_config_with_an_app_in_it_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("node.toml");
    std::fs::write(
        &config,
        "name = \"x\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[[routes]]\npath = \"/\"\nfunction = \"f\"\n",
    )
    .unwrap();
    let out = gust(
        &["serve", "--config", config.to_str().unwrap()],
        None,
        root.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("name: app configuration"), "{stderr}");
    assert!(stderr.contains("routes: app configuration"), "{stderr}");
}
