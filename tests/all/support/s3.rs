//! A real S3-protocol server for the blob tests: `s3s-fs` (crates.io,
//! installed by `.ci/s3-server`), serving a temporary directory on a free
//! loopback port with SigV4 authentication, one per test.

use std::net::SocketAddr;
use std::process::Command;

use super::servers::{Spawned, free_port, require};

/// A running S3 server with one bucket.
pub struct S3Server {
    /// Killed when dropped.
    pub _server: Spawned,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// The server's storage (a bucket is a directory in it).
    pub root: tempfile::TempDir,
}

impl S3Server {
    /// Starts one; `None` (after a loud message) when `s3s-fs` is not
    /// installed outside CI.
    pub fn start() -> Option<S3Server> {
        let binary = require("s3s-fs", "bash .ci/s3-server")?;
        let root = tempfile::tempdir().unwrap();
        let bucket = "gust-test".to_owned();
        std::fs::create_dir(root.path().join(&bucket)).unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let access_key = "gust-test-key".to_owned();
        let secret_key = "gust-test-secret-0123456789".to_owned();
        let mut command = Command::new(binary);
        command
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--access-key")
            .arg(&access_key)
            .arg("--secret-key")
            .arg(&secret_key)
            .arg(root.path());
        let server = Spawned::start(command, addr);
        Some(S3Server {
            endpoint: format!("http://{addr}"),
            _server: server,
            bucket,
            access_key,
            secret_key,
            root,
        })
    }

    /// A `[blob_container.NAME]` table mapping `name` to this server's
    /// bucket (the credentials as literal templates).
    pub fn container(&self, name: &str) -> String {
        format!(
            "[blob_container.{name}]\ntype = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            self.endpoint, self.bucket, self.access_key, self.secret_key
        )
    }
}
