//! `wasi:keyvalue@0.2.0-draft2` (Spin 3 and later) over [`Store`]: string
//! list cursors (the backend's cursor in decimal), signed counters and
//! compare-and-swap.

use wasmtime::component::{HasSelf, Linker, Resource};

use super::{Bucket, Cas, KvError};
use crate::host::HostState;
use crate::host::bindings::keyvalue_draft2::Imports;
use crate::host::bindings::keyvalue_draft2::wasi::keyvalue0_2_0_draft2::{atomics, batch, store};

/// Links the draft's interfaces.
pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    Imports::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

impl From<KvError> for store::Error {
    fn from(e: KvError) -> store::Error {
        match e {
            KvError::AccessDenied => store::Error::AccessDenied,
            KvError::Other(message) => store::Error::Other(message),
        }
    }
}

type Reply<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Reply<Resource<Bucket>> {
        Ok(self.kv_open(&identifier).map_err(Into::into))
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Reply<Option<Vec<u8>>> {
        Ok(self.kv_get(&bucket, &key).await?.map_err(Into::into))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Reply<()> {
        Ok(self
            .kv_set(&bucket, &key, &value)
            .await?
            .map_err(Into::into))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Reply<()> {
        Ok(self.kv_delete(&bucket, &key).await?.map_err(Into::into))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Reply<bool> {
        Ok(self.kv_exists(&bucket, &key).await?.map_err(Into::into))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Reply<store::KeyResponse> {
        let store = self.kv_store(&bucket)?;
        let cursor = match cursor.map(|c| c.parse::<u64>()).transpose() {
            Ok(cursor) => cursor,
            Err(_) => return Ok(Err(store::Error::Other("invalid cursor".into()))),
        };
        let page = store.list(cursor).await;
        let bytes = page
            .as_ref()
            .map_or(0, |(keys, _)| keys.iter().map(String::len).sum());
        self.kv_charge(1, bytes);
        Ok(page
            .map(|(keys, cursor)| store::KeyResponse {
                keys,
                cursor: cursor.map(|c| c.to_string()),
            })
            .map_err(Into::into))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::HostCas for HostState {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Reply<Resource<Cas>> {
        let store = self.kv_store(&bucket)?;
        Ok(self.kv_cas_new(store, key).await.map_err(Into::into))
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Reply<Option<Vec<u8>>> {
        let cas = self.table.get(&cas)?;
        Ok(Ok(cas.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Reply<i64> {
        let store = self.kv_store(&bucket)?;
        self.kv_charge(1, key.len());
        Ok(store.increment(&key, delta).await.map_err(Into::into))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas {
            store,
            key,
            current,
        } = self.table.delete(cas)?;
        self.kv_charge(1, key.len() + value.len());
        match store.swap(&key, current, value).await {
            Ok(true) => Ok(Ok(())),
            Ok(false) => Ok(Err(match self.kv_cas_new(store, key).await {
                Ok(fresh) => atomics::CasError::CasFailed(fresh),
                Err(e) => atomics::CasError::StoreError(e.into()),
            })),
            Err(e) => Ok(Err(atomics::CasError::StoreError(e.into()))),
        }
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Reply<Vec<(String, Option<Vec<u8>>)>> {
        let store = self.kv_store(&bucket)?;
        let values = store.get_many(keys.clone()).await;
        let bytes = keys.iter().map(String::len).sum::<usize>()
            + values
                .as_ref()
                .map_or(0, |v| v.iter().flatten().map(Vec::len).sum());
        self.kv_charge(keys.len(), bytes);
        Ok(values
            .map(|values| keys.into_iter().zip(values).collect())
            .map_err(Into::into))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Reply<()> {
        let store = self.kv_store(&bucket)?;
        let bytes = key_values.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.kv_charge(key_values.len(), bytes);
        Ok(store.set_many(key_values).await.map_err(Into::into))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Reply<()> {
        let store = self.kv_store(&bucket)?;
        self.kv_charge(keys.len(), keys.iter().map(String::len).sum());
        Ok(store.delete_many(keys).await.map_err(Into::into))
    }
}
