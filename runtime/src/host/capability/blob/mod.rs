//! `wasi:blobstore@0.2.0-draft`: containers a function is granted, on a
//! directory (the embedded default, opened with cap-std) or an S3-protocol
//! server.

use super::Capability;
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The blob storage capability.
pub(crate) struct Blob;

/// An opened container.
pub struct Container;
/// A listing of object names being read.
pub struct ObjectNames;
/// An object being written.
pub struct OutgoingValue;
/// An object being read.
pub struct IncomingValue;

impl Capability for Blob {
    type App = ();
    type Instance = ();

    fn open(_app: &AppSpec, _settings: &CapabilitySettings) -> anyhow::Result<()> {
        Ok(())
    }

    fn instance(_app: &(), _function: &FunctionId) {}
}
