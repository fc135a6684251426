//! Criterion benchmark of blob storage throughput: an 8 MiB object put and
//! got through the `blob-http` test guest (`Server::handle`, so routing,
//! limits, fuel and records as `gust serve` runs them; the body streamed
//! through the guest both ways) on a filesystem container, against plain
//! file operations on the same disk (write + fsync + rename, read, copy),
//! and on an S3 container when `s3s-fs` is installed (`.ci/s3-server`).
//! Also one operation's cost: 1,000 `has-object` calls in one request
//! against one (the difference over 999 is what `BLOB_OP_FUEL` charges).
//!
//! Run with `cargo bench -p gust-benches --bench blob`; throughput is
//! reported in MiB/s.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gust_runtime::manifest::{
    ComponentSource, ContainerBackend, FunctionId, FunctionSpec, RuntimeSpec, S3Settings,
    ServerSettings,
};
use gust_runtime::{App, AppSpec, EngineConfig, GustEngine, Server};
use http_body_util::{BodyExt as _, Full};

const SIZE: usize = 8 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

/// The guest at `/blob`, granted container `files` (on `backend`, the
/// embedded directory under `data` if `None`).
fn server(
    engine: &GustEngine,
    data: &std::path::Path,
    backend: Option<ContainerBackend>,
) -> Server {
    let id = |s: &str| FunctionId::try_from(s.to_owned()).expect("a valid id");
    let mut blob = FunctionSpec::new(
        id("blob"),
        ComponentSource::Embedded(gust_tests::guests::BLOB_HTTP),
    );
    blob.grants.blob_containers = vec!["files".to_owned()];
    blob.limits.fuel = u64::MAX / 4;
    blob.limits.timeout = Duration::from_secs(60);
    let routes = vec![("/blob".parse().expect("a route"), None, 0)];
    let spec = AppSpec::new(vec![blob], routes).expect("a valid app");
    let mut runtime = RuntimeSpec::default();
    runtime.capabilities.data_dir = Some(data.to_path_buf());
    if let Some(backend) = backend {
        runtime
            .capabilities
            .containers
            .insert("files".to_owned(), backend);
    }
    let app = App::load_with(engine, spec, &runtime).expect("loading");
    Server::new(app, ServerSettings::default())
}

async fn call(server: &Server, method: &str, query: &str, body: Bytes) -> Bytes {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://localhost/blob?{query}"))
        .body(Full::new(body))
        .expect("a valid request");
    let response = server.handle(request).await;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
    body
}

/// `s3s-fs` on a free loopback port, if installed; killed on drop.
struct S3 {
    child: Child,
    endpoint: String,
    _root: tempfile::TempDir,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3() -> Option<S3> {
    let root = tempfile::tempdir().ok()?;
    std::fs::create_dir(root.path().join("bench")).ok()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let child = Command::new("s3s-fs")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "bench", "--secret-key", "bench-secret"])
        .arg(root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let s3 = S3 {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        _root: root,
    };
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(s3);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let engine = GustEngine::new(&EngineConfig::default()).expect("gust's engine");
    let dir = tempfile::tempdir().expect("a temp dir");
    let object = Bytes::from((0..SIZE).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());

    let fs = server(&engine, dir.path(), None);
    let s3 = s3();
    if s3.is_none() {
        eprintln!("s3s-fs is not installed (bash .ci/s3-server): no S3 cases");
    }
    let s3_server = s3.as_ref().map(|s3| {
        server(
            &engine,
            dir.path(),
            Some(ContainerBackend::S3(S3Settings {
                endpoint: s3.endpoint.clone(),
                bucket: "bench".to_owned(),
                region: "us-east-1".to_owned(),
                access_key_id: "bench".to_owned(),
                secret_access_key: "bench-secret".to_owned(),
            })),
        )
    });

    let mut group = c.benchmark_group("blob");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(SIZE as u64));
    let mut backends = vec![("fs", &fs)];
    if let Some(s3) = &s3_server {
        backends.push(("s3", s3));
    }
    for (name, server) in &backends {
        group.bench_function(format!("{name}_put"), |b| {
            b.to_async(&rt)
                .iter(|| call(server, "PUT", "op=put&c=files&name=bench", object.clone()));
        });
        rt.block_on(call(
            server,
            "PUT",
            "op=put&c=files&name=bench",
            object.clone(),
        ));
        group.bench_function(format!("{name}_get"), |b| {
            b.to_async(&rt).iter(|| async {
                let body = call(server, "GET", "op=get&c=files&name=bench", Bytes::new()).await;
                assert_eq!(body.len(), SIZE);
            });
        });
    }
    // The same bytes with plain file operations on the same disk.
    let plain = dir.path().join("plain");
    group.bench_function("plain_write_fsync_rename", |b| {
        b.iter(|| {
            let temp = dir.path().join("plain.tmp");
            let mut file = std::fs::File::create(&temp).expect("creating");
            file.write_all(&object).expect("writing");
            file.sync_data().expect("syncing");
            std::fs::rename(&temp, &plain).expect("renaming");
        });
    });
    group.bench_function("plain_read", |b| {
        b.iter(|| assert_eq!(std::fs::read(&plain).expect("reading").len(), SIZE));
    });
    group.bench_function("plain_copy", |b| {
        b.iter(|| std::fs::copy(&plain, dir.path().join("copy")).expect("copying"));
    });
    group.finish();

    let mut group = c.benchmark_group("blob_op");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for times in [1, 1000] {
        group.bench_function(format!("fs_has_x{times}"), |b| {
            let query = format!("op=has&c=files&name=bench&times={times}");
            b.to_async(&rt)
                .iter(|| call(&fs, "GET", &query, Bytes::new()));
        });
    }
    group.finish();
    drop(s3_server);
    drop(s3);
}

criterion_group!(blob, benches);
criterion_main!(blob);
