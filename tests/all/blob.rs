//! Blob storage (`wasi:blobstore`): the `blob-http` test guest exposes the
//! operations over HTTP, streaming request bodies into objects and objects
//! into responses, on filesystem containers (the embedded default, a
//! mapped directory, a tiny tmpfs for a full disk) and on a real S3 server
//! (`s3s-fs` on a loopback port). Long because it covers both backends,
//! the grant checks, hostile names and the size and disk limits.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Request, StatusCode};
use sha2::{Digest, Sha256};

use crate::support::s3::S3Server;
use crate::support::{Reply, TestServer, manifest};

/// Percent-encodes every byte but the unreserved ones.
fn enc(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `n` bytes that are not all alike (a cheap generator, reproducible).
fn data(n: usize, seed: u64) -> Bytes {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    Bytes::from(out)
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The test's own directories: the data directory gust uses and room
/// outside it.
struct Dirs {
    _root: tempfile::TempDir,
    data: PathBuf,
    outside: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        Dirs {
            data,
            outside,
            _root: root,
        }
    }

    /// The embedded container `name` of the app `blobtest`.
    fn container(&self, name: &str) -> PathBuf {
        self.data.join("apps/blobtest/blob").join(name)
    }
}

/// Every file under `dir` (relative paths), symlinks included.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// A server with `blob` (granted `files` and `other`) at `/blob`, `noblob`
/// (granted nothing) at `/noblob` and `hello`; `head` adds operator
/// tables.
async fn start(dirs: &Dirs, head: &str) -> TestServer {
    start_app(dirs, "blobtest", head).await
}

/// Like [`start`], for the app named `app`.
async fn start_app(dirs: &Dirs, app: &str, head: &str) -> TestServer {
    TestServer::start(
        manifest()
            .head(&format!(
                "name = \"{app}\"\n{head}\n[data]\ndir = \"{}\"",
                dirs.data.display()
            ))
            .hello()
            .function("blob", "{BLOB_HTTP}")
            .set("blob_containers = [\"files\", \"other\"]")
            .route("/blob")
            .function("noblob", "{BLOB_HTTP}")
            .route("/noblob"),
    )
    .await
}

async fn op(server: &TestServer, query: &str) -> Reply {
    server.get(&format!("/blob?{query}")).await
}

async fn put(server: &TestServer, c: &str, name: &[u8], body: Bytes) -> Reply {
    put_with(server, c, name, body, "").await
}

async fn put_with(server: &TestServer, c: &str, name: &[u8], body: Bytes, extra: &str) -> Reply {
    server
        .send(
            Request::put(format!("/blob?op=put&c={c}&name={}{extra}", enc(name)))
                .body(body)
                .unwrap(),
        )
        .await
}

async fn get(server: &TestServer, c: &str, name: &[u8], extra: &str) -> Reply {
    op(server, &format!("op=get&c={c}&name={}{extra}", enc(name))).await
}

fn lines(reply: &Reply) -> Vec<String> {
    let mut names: Vec<String> = reply.text().lines().map(str::to_owned).collect();
    names.sort();
    names
}

/// The operations on container `files` (and `other`), whatever backs them.
async fn exercise(server: &TestServer) {
    let c = "files";
    let r = op(server, "op=clear&c=files").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        put(server, c, b"a.txt", Bytes::from("hello blob"))
            .await
            .text(),
        "10"
    );
    assert_eq!(
        put(server, c, b"dir/sub/b.bin", data(100_000, 1))
            .await
            .text(),
        "100000"
    );
    // Bytes written before write-data take the staging path.
    let r = put_with(server, c, b"early", data(70_000, 2), "&early=1").await;
    assert_eq!(r.text(), "70000");
    assert_eq!(put(server, c, b"empty", Bytes::new()).await.text(), "0");

    let r = get(server, c, b"a.txt", "").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "hello blob")
    );
    assert_eq!(
        get(server, c, b"a.txt", "&sync=1").await.text(),
        "hello blob"
    );
    assert_eq!(
        get(server, c, b"a.txt", "&start=6&end=9").await.text(),
        "blob"
    );
    assert_eq!(
        get(server, c, b"a.txt", "&start=6&end=999").await.text(),
        "blob"
    );
    assert_eq!(get(server, c, b"early", "").await.body, data(70_000, 2));
    assert_eq!(
        get(server, c, b"dir/sub/b.bin", "").await.body,
        data(100_000, 1)
    );
    assert_eq!(get(server, c, b"empty", "").await.body.len(), 0);
    assert_eq!(
        get(server, c, b"missing", "").await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(op(server, "op=has&c=files&name=a.txt").await.text(), "true");
    assert_eq!(op(server, "op=has&c=files&name=nope").await.text(), "false");
    assert_eq!(
        op(server, "op=info&c=files&name=dir%2Fsub%2Fb.bin")
            .await
            .text(),
        "100000 files dir/sub/b.bin"
    );
    assert_eq!(
        op(server, "op=info&c=files&name=nope").await.status,
        StatusCode::BAD_REQUEST
    );
    // Exactly the names written.
    assert_eq!(
        lines(&op(server, "op=list&c=files").await),
        ["a.txt", "dir/sub/b.bin", "early", "empty"]
    );
    let skipped = op(server, "op=skip&c=files&n=3").await.text();
    assert!(skipped.starts_with("skipped 3\n"), "{skipped}");
    assert_eq!(skipped.lines().count(), 2, "{skipped}");
    assert_eq!(op(server, "op=name&c=files").await.text(), "files");
    assert!(
        op(server, "op=container-info&c=files")
            .await
            .text()
            .starts_with("files ")
    );
    assert_eq!(op(server, "op=exists&c=files").await.text(), "true");

    // Replacing an object replaces it whole.
    assert_eq!(
        put(server, c, b"a.txt", Bytes::from("new")).await.text(),
        "3"
    );
    assert_eq!(get(server, c, b"a.txt", "").await.text(), "new");

    // Copy and move between granted containers.
    let r = op(server, "op=copy&c=files&name=a.txt&to=other&to_name=copied").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(get(server, "other", b"copied", "").await.text(), "new");
    let r = op(
        server,
        "op=move&c=files&name=early&to=other&to_name=x%2Fmoved",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        get(server, "other", b"x/moved", "").await.body,
        data(70_000, 2)
    );
    assert_eq!(
        op(server, "op=has&c=files&name=early").await.text(),
        "false"
    );
    let r = op(server, "op=copy&c=files&name=a.txt&to=secret&to_name=x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    assert_eq!(
        op(server, "op=delete&c=files&name=dir%2Fsub%2Fb.bin")
            .await
            .text(),
        "deleted"
    );
    assert_eq!(
        op(server, "op=delete&c=files&name=never-was").await.text(),
        "deleted"
    );
    assert_eq!(
        lines(&op(server, "op=list&c=files").await),
        ["a.txt", "empty"]
    );
    assert_eq!(op(server, "op=clear&c=other").await.text(), "cleared");
    assert_eq!(op(server, "op=list&c=other").await.text(), "");
    assert_eq!(
        op(server, "op=delete-container&c=files").await.text(),
        "deleted"
    );
    assert_eq!(op(server, "op=list&c=files").await.text(), "");
}

#[tokio::test]
async fn filesystem_operations() {
    let dirs = Dirs::new();
    let server = start(&dirs, "").await;
    exercise(&server).await;
    // A name with `/` is nested directories; deleting the last object
    // removed them; nothing temporary is left.
    assert_eq!(files_under(&dirs.container("files")), Vec::<String>::new());
    assert_eq!(
        files_under(&dirs.data.join("apps/blobtest/blob-staging")),
        Vec::<String>::new()
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn mapped_directory() {
    let dirs = Dirs::new();
    let mapped = dirs.outside.join("mapped");
    let server = start(
        &dirs,
        &format!(
            "[blob_container.files]\ntype = \"fs\"\ndir = \"{}\"",
            mapped.display()
        ),
    )
    .await;
    assert_eq!(
        put(&server, "files", b"m/x", Bytes::from("mapped"))
            .await
            .text(),
        "6"
    );
    assert_eq!(std::fs::read(mapped.join("m/x")).unwrap(), b"mapped");
    assert!(!dirs.container("files").exists());
}

#[tokio::test]
async fn s3_operations() {
    let Some(s3) = S3Server::start() else { return };
    let dirs = Dirs::new();
    let server = start(
        &dirs,
        &format!("{}\n{}", s3.container("files"), s3.container("other")),
    )
    .await;
    assert_eq!(
        put(&server, "files", b"k/v", Bytes::from("on s3"))
            .await
            .text(),
        "5"
    );
    // Keys are prefixed by app and container in the shared bucket.
    let stored = files_under(&s3.root.path().join(&s3.bucket));
    assert!(
        stored.iter().any(|p| p == "blobtest/files/k/v"),
        "{stored:?}"
    );
    exercise(&server).await;
    // Nothing was spooled and left behind.
    assert_eq!(
        files_under(&dirs.data.join("apps/blobtest/blob-staging")),
        Vec::<String>::new()
    );
}

/// Two apps with the same container names, embedded and on one shared
/// bucket, each see only their own objects.
#[tokio::test]
async fn apps_do_not_share_data() {
    let dirs = Dirs::new();
    let s3 = S3Server::start();
    let head = s3
        .as_ref()
        .map(|s3| s3.container("other"))
        .unwrap_or_default();
    let one = start_app(&dirs, "one", &head).await;
    let two = start_app(&dirs, "two", &head).await;
    for c in ["files", "other"] {
        if c == "other" && s3.is_none() {
            continue;
        }
        assert_eq!(
            put(&one, c, b"mine", Bytes::from("one's")).await.text(),
            "5"
        );
        assert_eq!(
            get(&two, c, b"mine", "").await.status,
            StatusCode::NOT_FOUND,
            "{c}"
        );
        assert_eq!(op(&two, &format!("op=list&c={c}")).await.text(), "", "{c}");
        assert_eq!(op(&two, &format!("op=clear&c={c}")).await.text(), "cleared");
        assert_eq!(get(&one, c, b"mine", "").await.text(), "one's", "{c}");
    }
}

#[tokio::test]
async fn not_granted() {
    let dirs = Dirs::new();
    let server = start(&dirs, "").await;
    for path in [
        "/noblob?op=list&c=files",
        "/blob?op=list&c=secret",
        "/blob?op=list&c=..%2Fother",
    ] {
        let r = server.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(r.text().contains("not granted"), "{path}: {}", r.text());
    }
    assert_eq!(
        server.get("/noblob?op=exists&c=files").await.text(),
        "false"
    );
    let r = server
        .send(
            Request::put("/noblob?op=put&c=files&name=x")
                .body(Bytes::from("x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!dirs.data.join("apps/blobtest/blob/secret").exists());
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_names() {
    let dirs = Dirs::new();
    let server = start(&dirs, "").await;
    let files = dirs.container("files");
    // Planted by someone with access to the directory: symlinks out.
    std::fs::write(dirs.outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(&dirs.outside, files.join("out")).unwrap();
    std::os::unix::fs::symlink(dirs.outside.join("secret.txt"), files.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../outside", files.join("rel")).unwrap();

    let long = vec![b'n'; 5000];
    let long_part = vec![b'p'; 300];
    let bad: Vec<&[u8]> = vec![
        b"../x",
        b"../../../../outside/x",
        b"/etc/passwd",
        b"/tmp/x",
        b"a\0b",
        b"a\nb",
        b"",
        b".",
        b"..",
        b"a//b",
        b"a/",
        b".gust-tmp-1",
        &long,
        &long_part,
    ];
    for name in &bad {
        let r = put(&server, "files", name, Bytes::from("x")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}: {}", r.text());
        let r = get(&server, "files", name, "").await;
        assert_ne!(r.status, StatusCode::OK, "{name:?}");
    }
    // Through the symlinks: refused, nothing read or written outside.
    for name in [&b"out/x"[..], b"rel/x", b"out/secret.txt"] {
        let r = put(&server, "files", name, Bytes::from("pwned")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}: {}", r.text());
    }
    for name in [&b"evil"[..], b"out/secret.txt", b"rel/secret.txt"] {
        let r = get(&server, "files", name, "").await;
        assert_ne!(r.status, StatusCode::OK, "{name:?}");
        assert_ne!(r.text(), "secret");
    }
    // Writing a name that is a symlink replaces the link itself (the
    // rename never follows it): the file outside is untouched.
    let r = put(&server, "files", b"evil", Bytes::from("pwned")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        std::fs::symlink_metadata(files.join("evil"))
            .unwrap()
            .is_file()
    );
    assert_eq!(get(&server, "files", b"evil", "").await.text(), "pwned");
    assert_eq!(
        op(&server, "op=delete&c=files&name=evil").await.text(),
        "deleted"
    );
    assert_eq!(files_under(&dirs.outside), ["secret.txt"]);
    assert_eq!(
        std::fs::read_to_string(dirs.outside.join("secret.txt")).unwrap(),
        "secret"
    );
    // Symlinks are not objects.
    assert_eq!(op(&server, "op=list&c=files").await.text(), "");
    // A name is an object or a directory level, not both.
    assert_eq!(
        put(&server, "files", b"d/e", Bytes::from("1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        put(&server, "files", b"d", Bytes::from("2")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(&server, "files", b"d/e/f", Bytes::from("3"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // Odd but valid names round-trip exactly.
    for name in [
        "ünïcode name",
        "with space",
        "..dots",
        "a%b",
        "tab\u{a0}nbsp",
        "q?x=1&y",
    ] {
        let r = put(&server, "files", name.as_bytes(), Bytes::from(name)).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        assert_eq!(
            get(&server, "files", name.as_bytes(), "").await.text(),
            name
        );
    }
    let listed = lines(&op(&server, "op=list&c=files").await);
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert!(listed.contains(&"ünïcode name".to_owned()));
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn ten_thousand_containers() {
    let dirs = Dirs::new();
    let server = start(&dirs, "").await;
    // The granted one, 10,000 times: handles up to the resource limit,
    // then error values.
    let r = op(&server, "op=open&c=files&count=10000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().starts_with("opened "), "{}", r.text());
    // 10,000 refusals (logged a few times, not 10,000).
    let r = op(&server, "op=open&c=nope&count=10000").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text()
            .starts_with("opened 0 error Some(\"container `nope` is not granted"),
        "{}",
        r.text()
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

/// 50 MiB up and down, byte-identical, without the guest or the host
/// holding it.
async fn large_round_trip(server: &TestServer) {
    let size = 50 << 20;
    let body = data(size, 7);
    let want = sha(&body);
    let r = put(server, "files", b"big/object", body).await;
    assert_eq!((r.status, r.text()), (StatusCode::OK, size.to_string()));
    let upload = server.record(&r.request_id()).await;
    let r = get(server, "files", b"big/object", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), size);
    assert_eq!(sha(&r.body), want);
    let download = server.record(&r.request_id()).await;
    for record in [upload, download] {
        assert!(
            record.peak_memory_bytes < 16 << 20,
            "peak memory {} bytes",
            record.peak_memory_bytes
        );
        assert!(record.host_fuel >= gust_runtime::metering::body_fuel(size as u64));
    }
    // Too large to read whole.
    let r = get(server, "files", b"big/object", "&sync=1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // A range of it, read whole.
    let r = get(
        server,
        "files",
        b"big/object",
        "&sync=1&start=1000&end=1999",
    )
    .await;
    assert_eq!(r.body, data(size, 7).slice(1000..2000));
}

#[tokio::test]
async fn large_object_filesystem() {
    let dirs = Dirs::new();
    let server = start(&dirs, "").await;
    large_round_trip(&server).await;
}

#[tokio::test]
async fn large_object_s3() {
    let Some(s3) = S3Server::start() else { return };
    let dirs = Dirs::new();
    let server = start(&dirs, &s3.container("files")).await;
    large_round_trip(&server).await;
}

#[tokio::test]
async fn object_size_limit() {
    let dirs = Dirs::new();
    let server = start(&dirs, "[blob]\nmax_object_size = 1048576").await;
    let r = put(&server, "files", b"too-big", data(2 << 20, 3)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.text().contains("max_object_size"), "{}", r.text());
    assert_eq!(
        op(&server, "op=has&c=files&name=too-big").await.text(),
        "false"
    );
    let r = put(&server, "files", b"fits", data(1 << 20, 3)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Nothing of the refused write is left.
    assert_eq!(files_under(&dirs.container("files")), ["fits"]);
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn unfinished_value_leaves_nothing() {
    let dirs = Dirs::new();
    let server = start(&dirs, "").await;
    let r = server
        .send(
            Request::put("/blob?op=drop-unfinished&c=files&name=gone")
                .body(data(300_000, 4))
                .unwrap(),
        )
        .await;
    assert_eq!(r.text(), "dropped after 300000");
    assert_eq!(
        op(&server, "op=has&c=files&name=gone").await.text(),
        "false"
    );
    // The spool is deleted by a task once the value is gone: bounded wait.
    for _ in 0..200 {
        if files_under(&dirs.container("files")).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(files_under(&dirs.container("files")), Vec::<String>::new());
}

/// Mounts a tmpfs of `size` at `dir`; `false` when this is not possible.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn full_disk() {
    let dirs = Dirs::new();
    let small = dirs.outside.join("tmpfs");
    if !mount_tmpfs(&small, "2m") {
        assert!(
            !crate::support::servers::in_ci(),
            "CI runs as root and can mount a tmpfs"
        );
        eprintln!("\n*** SKIPPED: cannot mount a tmpfs (not root?): full_disk needs one ***\n");
        return;
    }
    let _unmount = Unmount(small.clone());
    let server = start(
        &dirs,
        &format!(
            "[blob_container.files]\ntype = \"fs\"\ndir = \"{}\"",
            small.display()
        ),
    )
    .await;
    let r = put(&server, "files", b"fills", data(6 << 20, 5)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("no space"), "{}", r.text());
    // Nothing partial is left, and the container still works.
    assert_eq!(files_under(&small), Vec::<String>::new());
    assert_eq!(
        put(&server, "files", b"small", data(10_000, 6))
            .await
            .text(),
        "10000"
    );
    assert_eq!(
        get(&server, "files", b"small", "").await.body,
        data(10_000, 6)
    );
    assert_eq!(server.get("/hello").await.status, StatusCode::OK);
}
