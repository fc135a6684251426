//! Blob containers (`wasi:blobstore@0.2.0-draft`): named objects of any
//! size, written and read as streams.
//!
//! A function opens the containers its manifest grants it
//! (`blob_containers = ["uploads"]`) by name. [`Container::write`] copies
//! any [`std::io::Read`] into an object a chunk at a time, and
//! [`Container::read`] returns an object as a reader, so an object never
//! has to fit in guest memory. Combined with a streaming handler, an
//! upload goes from the client to the container and back without being
//! held whole anywhere:
//!
//! ```no_run
//! use gust_sdk::{blob, Body, RequestExt, StreamingRequest, http};
//!
//! fn files(req: StreamingRequest) -> Result<http::Response<Body>, blob::Error> {
//!     let container = blob::Container::open("uploads")?;
//!     let name = req.param("name").unwrap_or("unnamed").to_owned();
//!     if req.method() == http::Method::PUT {
//!         let size = container.write(&name, req.into_body())?;
//!         return Ok(http::Response::new(Body::from(format!("stored {size} bytes\n"))));
//!     }
//!     let object = container.read(&name)?;
//!     Ok(http::Response::builder()
//!         .header("content-length", object.size())
//!         .body(Body::from_reader(object))
//!         .unwrap_or_default())
//! }
//!
//! gust_sdk::export!(files);
//! ```

use std::fmt;
use std::io::{self, Read};

use crate::bindings::wasi::blobstore::{blobstore, container, types};
use crate::body::{CopyError, StreamReader, StreamWriter};

/// Object names listed per host call.
const LIST_BATCH: u64 = 1000;

/// What a blob operation can fail with.
#[derive(Debug)]
pub enum Error {
    /// No object of that name.
    NotFound(String),
    /// Reading the data to store failed (e.g. the client's upload broke
    /// off); nothing was stored.
    Source(io::Error),
    /// The container refused or failed the operation: the host's words
    /// (an object over the operator's size limit, a bad name, the
    /// backend unreachable, ...).
    Container(String),
}

impl Error {
    /// Whether the container refused an object for its size (the
    /// operator's `[blob] max_object_size`).
    pub fn is_too_large(&self) -> bool {
        match self {
            Error::Container(message) => {
                let message = message.to_ascii_lowercase();
                message.contains("too large") || message.contains("max_object_size")
            }
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(name) => write!(f, "no object named {name:?}"),
            Error::Source(e) => write!(f, "reading the data to store: {e}"),
            Error::Container(message) => write!(f, "blob container error: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Source(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Source(e)
    }
}

/// The result of a blob operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a container knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, in seconds since the Unix epoch.
    pub created_at: u64,
}

/// An open blob container.
pub struct Container {
    inner: container::Container,
}

impl Container {
    /// Opens the container the manifest grants as `name`.
    pub fn open(name: &str) -> Result<Container> {
        let inner = blobstore::get_container(name).map_err(Error::Container)?;
        Ok(Container { inner })
    }

    /// Stores everything `data` yields as the object `name` (replacing
    /// any object of that name), streaming it in chunks: the object is
    /// never held whole in memory. Returns the number of bytes stored.
    ///
    /// If `data` fails, or the container refuses the object (e.g. it is
    /// larger than the operator allows: [`Error::is_too_large`]), the
    /// write is abandoned and no object is created or replaced.
    pub fn write(&self, name: &str, mut data: impl Read) -> Result<u64> {
        let value = types::OutgoingValue::new_outgoing_value();
        let stream = value
            .outgoing_value_write_body()
            .map_err(|()| Error::Container("object body unavailable".to_owned()))?;
        self.inner
            .write_data(name, &value)
            .map_err(Error::Container)?;
        let mut writer = StreamWriter::new(stream);
        let copied = writer.copy_from(&mut data);
        // The stream is the value's child: drop it before finishing.
        drop(writer);
        let size = match copied {
            Ok(size) => size,
            // Unfinished, the value is dropped and nothing is stored.
            Err(CopyError::Read(e)) => return Err(Error::Source(e)),
            Err(CopyError::Write(e)) => {
                // The host refuses the write with its reason; `finish`
                // repeats it (e.g. the size limit).
                return Err(match types::OutgoingValue::finish(value) {
                    Err(message) => Error::Container(message),
                    Ok(()) => Error::Container(e.to_string()),
                });
            }
        };
        types::OutgoingValue::finish(value).map_err(Error::Container)?;
        Ok(size)
    }

    /// Stores `bytes` as the object `name`.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<u64> {
        self.write(name, bytes)
    }

    /// The object `name` as a reader, streamed from the container as it
    /// is read.
    pub fn read(&self, name: &str) -> Result<ObjectReader> {
        let info = self.info(name)?;
        if info.size == 0 {
            // A range of an empty object cannot be expressed (`end` is
            // inclusive).
            return Ok(ObjectReader {
                reader: None,
                size: 0,
            });
        }
        self.read_range(name, 0, info.size - 1)
    }

    /// Bytes `start` to `end` (both inclusive) of the object `name`.
    pub fn read_range(&self, name: &str, start: u64, end: u64) -> Result<ObjectReader> {
        let value = self
            .inner
            .get_data(name, start, end)
            .map_err(|e| self.not_found_or(name, e))?;
        let size = value.size();
        let stream =
            types::IncomingValue::incoming_value_consume_async(value).map_err(Error::Container)?;
        Ok(ObjectReader {
            reader: Some(StreamReader::new(stream)),
            size,
        })
    }

    /// The whole object `name` in memory.
    pub fn read_to_vec(&self, name: &str) -> Result<Vec<u8>> {
        let mut reader = self.read(name)?;
        let mut out = Vec::with_capacity(usize::try_from(reader.size()).unwrap_or(0));
        reader
            .read_to_end(&mut out)
            .map_err(|e| Error::Container(e.to_string()))?;
        Ok(out)
    }

    /// The names of every object in the container.
    pub fn list(&self) -> Result<Vec<String>> {
        let names = self.inner.list_objects().map_err(Error::Container)?;
        let mut out = Vec::new();
        loop {
            let (batch, end) = names
                .read_stream_object_names(LIST_BATCH)
                .map_err(Error::Container)?;
            let done = end || batch.is_empty();
            out.extend(batch);
            if done {
                return Ok(out);
            }
        }
    }

    /// Removes the object `name` (nothing happens if there is none).
    pub fn delete(&self, name: &str) -> Result<()> {
        self.inner.delete_object(name).map_err(Error::Container)
    }

    /// Whether an object named `name` exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        self.inner.has_object(name).map_err(Error::Container)
    }

    /// What the container knows about the object `name`.
    pub fn info(&self, name: &str) -> Result<ObjectInfo> {
        let meta = self
            .inner
            .object_info(name)
            .map_err(|e| self.not_found_or(name, e))?;
        Ok(ObjectInfo {
            name: meta.name,
            size: meta.size,
            created_at: meta.created_at,
        })
    }

    /// `NotFound` if there is no object `name`, else the host's error:
    /// the interface reports errors as text, so ask.
    fn not_found_or(&self, name: &str, message: String) -> Error {
        match self.inner.has_object(name) {
            Ok(false) => Error::NotFound(name.to_owned()),
            _ => Error::Container(message),
        }
    }
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container").finish_non_exhaustive()
    }
}

/// An object being read: an [`io::Read`] streamed from the container.
pub struct ObjectReader {
    reader: Option<StreamReader>,
    size: u64,
}

impl ObjectReader {
    /// The number of bytes the reader yields in all.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.reader {
            Some(reader) => reader.read(buf),
            None => Ok(0),
        }
    }
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}
