//! S3-protocol containers (feature `s3`), through `object_store`: SigV4
//! signing, multipart upload, ranged GET streamed a chunk at a time,
//! listing with pagination.
//!
//! Every key is `APP/CONTAINER/NAME` inside the operator's bucket, so apps
//! and containers mapped to one bucket never see each other's objects.
//! Uploads come from the spool file (`stream`): small ones as one PUT,
//! larger ones as a multipart upload of [`PART`]-byte parts read from the
//! file one at a time; a failed upload is aborted. The client connects
//! lazily on first use; it retries a failed request at most twice.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig,
};

use super::stream::{AbortOnDrop, Chunks, Spool, blocking, chunk_queue};
use crate::manifest::S3Settings;

/// The size of one multipart upload part (S3's minimum but for the last).
const PART: u64 = 8 << 20;

/// One S3 container: a key prefix in a bucket.
pub(crate) struct S3Container {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// The endpoint and bucket, for messages (never the credentials).
    pub(crate) shown: String,
}

/// A backend error for the guest: what failed, without the server's
/// answer (which may name the bucket or echo credentials' ids).
fn message(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { .. } => "no such object".into(),
        object_store::Error::AlreadyExists { .. } => "already exists".into(),
        other => {
            // The operator's log gets the cause (object_store's errors
            // name the request, never the credentials).
            tracing::warn!(error = %other, "S3 blob request failed");
            "the storage server failed the request".into()
        }
    }
}

impl S3Container {
    /// Builds the client (no I/O) for `app`'s container `name`, with the
    /// credentials resolved.
    pub(crate) fn open(
        settings: &S3Settings,
        access_key_id: String,
        secret_access_key: String,
        app: &str,
        name: &str,
    ) -> anyhow::Result<S3Container> {
        // reqwest's rustls takes the process-wide provider; gust's TLS is
        // ring everywhere. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            )
            // After the client options, which would reset it.
            .with_allow_http(settings.endpoint.starts_with("http://"))
            .build()
            .map_err(|e| anyhow::anyhow!("S3 container `{name}`: {e}"))?;
        Ok(S3Container {
            store: Arc::new(store),
            prefix: format!("{app}/{name}"),
            shown: format!("{} bucket {}", settings.endpoint, settings.bucket),
        })
    }

    fn key(&self, name: &str) -> Result<Path, String> {
        Path::parse(format!("{}/{name}", self.prefix)).map_err(|_| "invalid object name".into())
    }

    fn prefix_path(&self) -> Result<Path, String> {
        Path::parse(&self.prefix).map_err(|_| "invalid container name".into())
    }

    /// The size and creation time (seconds since the epoch) of `name`.
    pub(crate) async fn stat(&self, name: &str) -> Result<Option<(u64, u64)>, String> {
        match self.store.head(&self.key(name)?).await {
            Ok(meta) => Ok(Some((
                meta.size,
                u64::try_from(meta.last_modified.timestamp()).unwrap_or(0),
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(message(&e)),
        }
    }

    /// Bytes `start..start + len` of `name`, streamed.
    pub(crate) async fn read(
        &self,
        name: &str,
        start: u64,
        len: u64,
    ) -> Result<(Chunks, AbortOnDrop), String> {
        let (tx, rx) = chunk_queue();
        if len == 0 {
            let task = tokio::spawn(async {});
            return Ok((rx, AbortOnDrop(task)));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..start + len)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.key(name)?, options)
            .await
            .map_err(|e| message(&e))?;
        let mut body = result.into_stream();
        let task = tokio::spawn(async move {
            while tx.wanted().await {
                let Some(chunk) = body.next().await else {
                    return;
                };
                let chunk = chunk.map_err(|e| message(&e));
                let failed = chunk.is_err();
                if !tx.send(chunk).await || failed {
                    return;
                }
            }
        });
        Ok((rx, AbortOnDrop(task)))
    }

    /// Uploads `spool` as `name`; returns its size.
    pub(crate) async fn commit(&self, spool: Option<Spool>, name: &str) -> Result<u64, String> {
        let key = self.key(name)?;
        let Some(spool) = spool else {
            self.store
                .put(&key, PutPayload::from_static(b""))
                .await
                .map_err(|e| message(&e))?;
            return Ok(0);
        };
        let size = spool.size;
        let mut file = spool.file.try_clone().map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        if size <= PART {
            let (_, data) = read_part(file, size).await?;
            self.store
                .put(&key, PutPayload::from(data))
                .await
                .map_err(|e| message(&e))?;
            return Ok(size);
        }
        let mut upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| message(&e))?;
        let result: Result<(), String> = async {
            let mut left = size;
            let mut file = file;
            while left > 0 {
                let want = left.min(PART);
                let (back, data) = read_part(file, want).await?;
                file = back;
                if data.len() as u64 != want {
                    return Err("the spool file shrank".into());
                }
                left -= want;
                upload
                    .put_part(PutPayload::from(data))
                    .await
                    .map_err(|e| message(&e))?;
            }
            upload.complete().await.map_err(|e| message(&e))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = upload.abort().await;
            return Err(e);
        }
        // The spool is dropped (deleted) here.
        drop(spool);
        Ok(size)
    }

    /// Deletes `name` (absent is fine).
    pub(crate) async fn delete(&self, name: &str) -> Result<(), String> {
        match self.store.delete(&self.key(name)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(message(&e)),
        }
    }

    /// Copies `name` within the bucket, or to another S3 container on the
    /// same store (`to` is then its key).
    pub(crate) async fn copy_within(
        &self,
        from: &str,
        to: &S3Container,
        to_name: &str,
    ) -> Result<(), String> {
        self.store
            .copy(&self.key(from)?, &to.key(to_name)?)
            .await
            .map_err(|e| message(&e))
    }

    /// Whether `other` talks to the same bucket (a copy needs no download).
    pub(crate) fn same_bucket(&self, other: &S3Container) -> bool {
        self.shown == other.shown
    }

    /// The object names, page by page.
    pub(crate) fn names(&self) -> Result<S3Names, String> {
        let prefix = self.prefix_path()?;
        let parts = prefix.parts().count();
        Ok(S3Names {
            listing: self.store.list(Some(&prefix)),
            skip_parts: parts,
        })
    }

    /// Deletes every object.
    pub(crate) async fn clear(&self) -> Result<(), String> {
        let mut names = self.names()?;
        loop {
            let (batch, _, done) = names.next_batch(1000, false).await?;
            for name in batch {
                self.delete(&name).await?;
            }
            if done {
                return Ok(());
            }
        }
    }
}

/// Reads the next `len` bytes of `file` (one part: at most [`PART`]).
async fn read_part(file: std::fs::File, len: u64) -> Result<(std::fs::File, Bytes), String> {
    blocking(move || {
        let mut file = file;
        let mut buf = Vec::with_capacity(len as usize);
        (&mut file).take(len).read_to_end(&mut buf)?;
        Ok((file, Bytes::from(buf)))
    })
    .await
}

/// A listing of an S3 container's names.
pub(crate) struct S3Names {
    listing:
        futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>,
    skip_parts: usize,
}

impl S3Names {
    /// Up to `max` more names (`skip`: counted only); `true` at the end.
    pub(crate) async fn next_batch(
        &mut self,
        max: usize,
        skip: bool,
    ) -> Result<(Vec<String>, usize, bool), String> {
        let mut names = Vec::new();
        let mut count = 0;
        while count < max {
            match self.listing.next().await {
                None => return Ok((names, count, true)),
                Some(Err(e)) => return Err(message(&e)),
                Some(Ok(meta)) => {
                    let parts: Vec<String> = meta
                        .location
                        .parts()
                        .skip(self.skip_parts)
                        .map(|p| p.as_ref().to_owned())
                        .collect();
                    if parts.is_empty() {
                        continue;
                    }
                    count += 1;
                    if !skip {
                        names.push(parts.join("/"));
                    }
                }
            }
        }
        Ok((names, count, false))
    }
}
