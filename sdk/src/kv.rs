//! Key-value stores (`wasi:keyvalue@0.2.0-draft2`).
//!
//! A function opens the stores its manifest grants it
//! (`key_value_stores = ["default"]`) by name. Keys are strings, values
//! are bytes. [`Store::increment`] is atomic across every instance and
//! every process that shares the store, and [`Store::update`] applies a
//! read-modify-write with compare-and-swap, retrying when another writer
//! got there first.
//!
//! ```no_run
//! use gust_sdk::{kv, Request, RequestExt, http};
//!
//! fn visit(req: Request) -> Result<String, kv::Error> {
//!     let store = kv::Store::open("default")?;
//!     let page = req.param("page").unwrap_or("home");
//!     let visits = store.increment(&format!("visits:{page}"), 1)?;
//!     store.set("last-page", page)?;
//!     // Keep the five most recent pages, newest first.
//!     store.update("recent", |current| {
//!         let mut recent: Vec<&str> = current
//!             .and_then(|bytes| std::str::from_utf8(bytes).ok())
//!             .map(|text| text.split(',').take(4).collect())
//!             .unwrap_or_default();
//!         recent.insert(0, page);
//!         recent.join(",").into_bytes()
//!     })?;
//!     Ok(format!("{page}: {visits} visits\n"))
//! }
//!
//! gust_sdk::export!(visit);
//! ```

use std::fmt;

use crate::bindings::wasi::keyvalue0_2_0_draft2::{atomics, batch, store};

/// How often [`Store::update`] retries a compare-and-swap that lost a race.
const UPDATE_ATTEMPTS: usize = 64;

/// What a key-value operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The manifest grants no store of that name.
    NoSuchStore,
    /// The store refused the operation (e.g. a key or value over the
    /// operator's limits, or too many keys).
    AccessDenied,
    /// [`Store::update`] lost the race to other writers every time.
    Conflict,
    /// Anything else: the backend is unreachable, ... (the host's words).
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchStore => f.write_str("no such key-value store"),
            Error::AccessDenied => f.write_str("key-value access denied"),
            Error::Conflict => f.write_str("key-value update kept conflicting with other writers"),
            Error::Other(message) => write!(f, "key-value store error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NoSuchStore => Error::NoSuchStore,
            store::Error::AccessDenied => Error::AccessDenied,
            store::Error::Other(message) => Error::Other(message),
        }
    }
}

/// The result of a key-value operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An open key-value store.
pub struct Store {
    bucket: store::Bucket,
}

impl Store {
    /// Opens the store the manifest grants as `name`.
    pub fn open(name: &str) -> Result<Store> {
        Ok(Store {
            bucket: store::open(name)?,
        })
    }

    /// The value of `key`, if it is set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.bucket.get(key)?)
    }

    /// The value of `key` as UTF-8 text (invalid bytes replaced), if set.
    pub fn get_string(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .get(key)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<()> {
        Ok(self.bucket.set(key, value.as_ref())?)
    }

    /// Removes `key` (nothing happens if it is not set).
    pub fn delete(&self, key: &str) -> Result<()> {
        Ok(self.bucket.delete(key)?)
    }

    /// Whether `key` is set.
    pub fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.bucket.exists(key)?)
    }

    /// Every key in the store, in the backend's order, read a page at a
    /// time.
    pub fn keys(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor.as_deref())?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) if cursor.as_ref() != Some(&next) => cursor = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    /// One page of keys: the keys and the cursor of the next page (`None`
    /// after the last). Start with `None`.
    pub fn keys_page(&self, cursor: Option<&str>) -> Result<(Vec<String>, Option<String>)> {
        let page = self.bucket.list_keys(cursor)?;
        Ok((page.keys, page.cursor))
    }

    /// Adds `delta` to the number stored at `key` (a missing key counts
    /// as 0) atomically and returns the new value.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        Ok(atomics::increment(&self.bucket, key, delta)?)
    }

    /// Sets `key` to `new` only if its value is still `expected` (`None`:
    /// not set). `Ok(false)` when the value was different or changed
    /// concurrently.
    pub fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool> {
        let cas = atomics::Cas::new(&self.bucket, key)?;
        if cas.current()?.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, new) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(e.into()),
        }
    }

    /// Replaces the value of `key` with `f(current value)` atomically:
    /// reads it, computes the new value and swaps it in only if nobody
    /// changed it meanwhile, retrying with the newer value otherwise.
    /// Returns the value written. `f` may run several times.
    pub fn update(
        &self,
        key: &str,
        mut f: impl FnMut(Option<&[u8]>) -> Vec<u8>,
    ) -> Result<Vec<u8>> {
        for _ in 0..UPDATE_ATTEMPTS {
            let cas = atomics::Cas::new(&self.bucket, key)?;
            let current = cas.current()?;
            let new = f(current.as_deref());
            match atomics::swap(cas, &new) {
                Ok(()) => return Ok(new),
                Err(atomics::CasError::CasFailed(_)) => continue,
                Err(atomics::CasError::StoreError(e)) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    /// The values of `keys` (`None` for those not set), in one call.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        Ok(batch::get_many(&self.bucket, keys)?)
    }

    /// Sets several keys in one call.
    pub fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        Ok(batch::set_many(&self.bucket, entries)?)
    }

    /// Removes several keys in one call.
    pub fn delete_many(&self, keys: &[String]) -> Result<()> {
        Ok(batch::delete_many(&self.bucket, keys)?)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}
