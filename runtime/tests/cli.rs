//! The `gust` binary, run as a user runs it.

use std::process::Command;
use std::time::Duration;

mod support;

use support::{GUST, Serving, get};

#[test]
fn serve_with_no_arguments_serves_the_examples_and_shuts_down_gracefully() {
    let server = Serving::start(&[]);
    let (status, body) = get(server.addr, "/hello");
    assert_eq!(status, 200);
    assert_eq!(body, "Hello from gust!\n");
    let (status, _) = get(server.addr, "/trap");
    assert_eq!(status, 500);
    let (status, _) = get(server.addr, "/hello");
    assert_eq!(status, 200);
    let (exited_cleanly, log) = server.terminate();
    let log = log.join("\n");
    assert!(exited_cleanly, "{log}");
    assert!(log.contains("shutting down"), "{log}");
    // The default ledger got the three invocations on shutdown.
    assert!(
        log.contains("ledger closed") && log.contains("written=3"),
        "{log}"
    );
}

#[test]
fn serve_a_single_component_on_every_path() {
    let server = Serving::start(&[gust_runtime::examples::RAW_PATH]);
    let (status, body) = get(server.addr, "/any/path?x=1");
    assert_eq!(status, 200);
    assert_eq!(body, "raw wasi:http component saw GET /any/path?x=1\n");
}

#[test]
fn serve_a_single_wasip3_component() {
    // Built with the Spin Rust SDK 7, as for Spin 4, and not changed.
    let server = Serving::start(&[gust_runtime::examples::SPIN_HELLO_PATH]);
    let (status, body) = get(server.addr, "/from/spin");
    assert_eq!(status, 200);
    assert_eq!(body, "Hello from a Spin SDK 7 component at /from/spin!\n");
    let (exited_cleanly, log) = server.terminate();
    let log = log.join("\n");
    assert!(exited_cleanly, "{log}");
    assert!(log.contains("outcome=ok"), "no usage record logged: {log}");
}

#[test]
fn an_unusable_cache_dir_costs_compile_time_not_service() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    // A directory below a regular file cannot be created.
    let cache = file.join("compiled");
    let server = Serving::start(&[
        gust_runtime::examples::HELLO_PATH,
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(
        server
            .startup
            .contains("cannot create the compile cache; compiling without it"),
        "{}",
        server.startup
    );
    let (status, body) = get(server.addr, "/hello");
    assert_eq!((status, body.as_str()), (200, "Hello from gust!\n"));
    let (exited_cleanly, log) = server.terminate();
    let log = log.join("\n");
    assert!(exited_cleanly, "{log}");
}

#[test]
fn check_accepts_a_valid_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gust.toml");
    std::fs::write(
        &path,
        format!(
            "[functions.hello]\ncomponent = {:?}\n[[routes]]\npath = \"/hello\"\nfunction = \"hello\"\nmethods = [\"GET\"]\n",
            gust_runtime::examples::HELLO_PATH
        ),
    )
    .unwrap();
    let out = Command::new(GUST).arg("check").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ok, 1 functions, 1 routes"), "{stdout}");
    assert!(stdout.contains("/hello"), "{stdout}");
}

#[test]
fn check_rejects_an_invalid_manifest_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gust.toml");
    std::fs::write(&path, "[functions.hello]\ncomponent = \"missing.wasm\"\n[[routes]]\npath = \"/hello\"\nfunction = \"hello\"\n").unwrap();
    let out = Command::new(GUST).arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("functions.hello.component: component file not found"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.wasm"), "{stderr}");
}

#[test]
fn check_fails_on_a_secret_that_does_not_resolve_and_on_a_bad_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gust.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[secrets.token]
file = "no-such-secret-file"

[functions.hello]
component = "{}"
config = {{ token = "{{{{ secrets.token }}}}" }}

[[routes]]
path = "/hello"
function = "hello"
"#,
            gust_runtime::examples::HELLO_PATH
        ),
    )
    .unwrap();
    let out = Command::new(GUST).arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("secret `token`"), "{stderr}");
    assert!(stderr.contains("no-such-secret-file"), "{stderr}");

    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "config = {",
            "allowed_outbound_hosts = [\"ftp://x\"]\nconfig = {",
        )
        .replace("file = \"no-such-secret-file\"", "env = \"PATH\"");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(GUST).arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("functions.hello.allowed_outbound_hosts[0]"),
        "{stderr}"
    );
}

/// A ledger file with known records, written through the library.
fn known_ledger(path: &std::path::Path) {
    use gust_runtime::InvocationRecord;
    use gust_runtime::ledger::Ledger;
    use gust_runtime::manifest::{FunctionId, LedgerLocation, LedgerSettings};

    let ledger = Ledger::open(&LedgerSettings {
        location: LedgerLocation::File(path.to_path_buf()),
        ..LedgerSettings::default()
    })
    .unwrap()
    .unwrap();
    let sink = ledger.sink();
    let record = |function: &str, fuel: u64, outcome, cost_nanos| InvocationRecord {
        app: FunctionId::try_from("shop").unwrap(),
        request_id: format!("{function}-{fuel}"),
        function: FunctionId::try_from(function).unwrap(),
        route: format!("/{function}"),
        start: std::time::SystemTime::now(),
        duration: Duration::from_millis(250),
        fuel_consumed: fuel,
        host_fuel: 10,
        fuel_budget: 1_000_000_000,
        // 128 MiB for 250 ms: 1/32 GiB-s.
        peak_memory_bytes: 128 << 20,
        request_bytes: 100,
        response_bytes: 1000,
        cost_nanos,
        currency: "USD".into(),
        status: 200,
        outcome,
        parent_request_id: None,
        outbound_requests: 0,
        outbound_bytes: 0,
    };
    use gust_runtime::Outcome::{Ok as Fine, Trap};
    sink(&record("cart", 1_000_000, Fine, 1_500_000_000));
    sink(&record("cart", 2_000_000, Trap, 2_500_000_001));
    sink(&record("search", 5, Fine, 7));
    ledger.close();
}

#[test]
fn usage_reports_a_known_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    known_ledger(&path);
    let usage = |args: &[&str]| support::usage(&path, args);
    assert_eq!(
        usage(&["--format", "csv"]),
        "app,function,requests,errors,fuel,host_fuel,memory_gb_seconds,duration_ms,request_bytes,response_bytes,cost_nanos,cost,currency\n\
         shop,cart,2,1,3000000,20,0.062500,500,200,2000,4000000001,4.000000001,USD\n\
         shop,search,1,0,5,10,0.031250,250,100,1000,7,0.000000007,USD\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&usage(&["--format", "json", "--function", "search"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["function"], "search");
    assert_eq!(json[0]["cost_nanos"], 7);
    let table = usage(&[]);
    assert!(table.lines().next().unwrap().starts_with("app "), "{table}");
    assert!(table.contains("4.000000001"), "{table}");
    // Nothing since a minute from now.
    let later = humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(120))
        .to_string();
    assert!(usage(&["--since", &later]).contains("(no usage recorded)"));
    assert!(usage(&["--since", "1h", "--format", "csv"]).contains("shop,cart,2"));
}

#[test]
fn a_corrupt_ledger_stops_serve_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    std::fs::write(&path, vec![0x5A; 4096]).unwrap();
    let out = Command::new(GUST)
        .args(["serve", "--listen", "127.0.0.1:0", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot use ledger") || stderr.contains("cannot open ledger"),
        "{stderr}"
    );
    assert!(stderr.contains("not a database"), "{stderr}");
    // `gust usage` says so too.
    let out = Command::new(GUST)
        .args(["usage", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a gust ledger"));
}

/// Sends `GET path` over HTTP/1.1 and reads until `until` shows up in what
/// came back (or the connection ends); the connection stays open.
fn start_request(addr: std::net::SocketAddr, path: &str, until: &str) -> std::net::TcpStream {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0; 1024];
    while !String::from_utf8_lossy(&seen).contains(until) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading {path}: {e}; got {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    stream
}

#[test]
fn shutdown_cancels_what_outlives_the_grace_records_it_and_exits_promptly() {
    use gust_tests::guests::{P3_POST_RETURN_PATH, P3_SPIN_PATH};

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("gust.toml");
    // Guests that run far past the grace: 30 s deadline, fuel for minutes.
    std::fs::write(
        &manifest,
        format!(
            r#"
[functions.spin]
component = "{P3_SPIN_PATH}"
timeout = "30s"
fuel = 1_000_000_000_000
[functions.post-return]
component = "{P3_POST_RETURN_PATH}"
[[routes]]
path = "/spin"
function = "spin"
[[routes]]
path = "/post-return"
function = "post-return"
"#
        ),
    )
    .unwrap();
    let ledger = dir.path().join("ledger.sqlite");
    let grace = Duration::from_secs(1);
    let server = Serving::start(&[
        manifest.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
        "--shutdown-grace",
        "1s",
    ]);
    // Answered, then spinning with the response body still open.
    let mut open: Vec<_> = (0..3)
        .map(|_| start_request(server.addr, "/spin?after-head", "spinning"))
        .collect();
    // Spinning before any answer.
    open.push(start_request(server.addr, "/spin", ""));
    // Answered in full, then working on.
    let (status, body) = get(server.addr, "/post-return");
    assert_eq!((status, body.as_str()), (200, "done\n"));
    // Every request has reached its guest.
    std::thread::sleep(Duration::from_millis(500));

    let signalled = std::time::Instant::now();
    let (exited_cleanly, log) = server.terminate();
    let took = signalled.elapsed();
    let log = log.join("\n");
    assert!(exited_cleanly, "{log}");
    assert!(
        took < grace + Duration::from_secs(4),
        "gust took {took:?} to exit after SIGTERM with a {grace:?} grace:\n{log}"
    );
    assert!(log.contains("dropped=0"), "records were dropped:\n{log}");

    let usage = support::usage_rows(&ledger);
    let requests = |function: &str| support::requests_of(&usage, function);
    assert_eq!(
        (requests("spin"), requests("post-return")),
        (4, 1),
        "every admitted request has a record: {usage:?}\n{log}"
    );
    drop(open);
}

#[test]
fn build_runs_every_function_and_names_the_ones_that_fail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gust.toml"),
        r#"
[functions.good]
component = "good.wasm"
build = { command = "echo compiling good && printf wasm > good.wasm" }

[functions.bad]
component = "bad.wasm"
build = { command = "echo 'bad.c:1: error: expected ;' >&2; exit 3" }

[functions.lazy]
component = "lazy.wasm"
build = { command = "true" }

[[routes]]
path = "/"
function = "good"
"#,
    )
    .unwrap();
    let out = Command::new(GUST)
        .current_dir(dir.path())
        .arg("build")
        .env("XDG_CACHE_HOME", dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // Every build ran: the good one's output (prefixed) and component.
    assert!(stderr.contains("good | compiling good"), "{stderr}");
    assert_eq!(
        std::fs::read(dir.path().join("good.wasm")).unwrap(),
        b"wasm"
    );
    assert!(stderr.contains("2 of 3 builds failed"), "{stderr}");
    assert!(
        stderr.contains("bad: `") && stderr.contains("exit status: 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad | bad.c:1: error: expected ;"),
        "{stderr}"
    );
    assert!(
        stderr.contains("lazy: the build succeeded but its component"),
        "{stderr}"
    );

    // Only the ones named.
    let out = Command::new(GUST)
        .current_dir(dir.path())
        .args(["build", "-f", "good"])
        .env("XDG_CACHE_HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(GUST)
        .current_dir(dir.path())
        .args(["build", "-f", "ghost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no function `ghost`"));
}
