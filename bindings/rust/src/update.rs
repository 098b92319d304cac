//! `Update`: a version being written by the publisher. Begin, write tensors, publish; dropped unpublished, it
//! aborts.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::c_string;
use crate::error::{check, Result};
use crate::ffi;
use crate::tensor::TensorMut;
use crate::topic::TopicHandle;

/// Version latest + 1 of a topic, being written ([`Topic::begin`](crate::Topic::begin)).
///
/// Readers see all of its tensors or none. Dropping it without [`Update::publish`] aborts it: nothing is
/// published, and with R = 1 the tensors handed out may have been written in place, so the topic is dirty
/// until they are published again.
pub struct Update {
    raw: NonNull<ffi::wb_update>,
    version: u64,
    /// Published or aborted: the library freed the update.
    finished: bool,
    _topic: Arc<TopicHandle>,
}

// SAFETY: an update may move between threads; it is not Sync, as the C API wants one thread at a time.
unsafe impl Send for Update {}

impl Update {
    pub(crate) fn new(raw: *mut ffi::wb_update, topic: Arc<TopicHandle>) -> Result<Update> {
        let raw = NonNull::new(raw).expect("wb_update_begin succeeded without an update");
        let mut update = Update { raw, version: 0, finished: false, _topic: topic };
        check(unsafe { ffi::wb_update_version(raw.as_ptr(), &mut update.version) })?;
        Ok(update)
    }

    /// The version this update will publish.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Marks the tensor as changed by this update and returns where to write it. Views are written through
    /// their parent (`Error::State`); an unknown name is `Error::NotFound`.
    pub fn tensor(&mut self, name: &str) -> Result<TensorMut<'_>> {
        let name = c_string(name.as_bytes())?;
        let mut raw = ffi::wb_tensor_info::default();
        check(unsafe { ffi::wb_update_tensor(self.raw.as_ptr(), name.as_ptr(), &mut raw) })?;
        Ok(TensorMut::new(raw))
    }

    /// Sharded topic: this rank's shard `index` (registration order) of logical tensor `name`, marked changed.
    pub fn shard(&mut self, name: &str, index: u32) -> Result<TensorMut<'_>> {
        let name = c_string(name.as_bytes())?;
        let mut raw = ffi::wb_tensor_info::default();
        check(unsafe { ffi::wb_update_shard(self.raw.as_ptr(), name.as_ptr(), index, &mut raw) })?;
        Ok(TensorMut::new(raw))
    }

    /// The same by index (`0..tensor_count`).
    pub fn tensor_at(&mut self, index: u32) -> Result<TensorMut<'_>> {
        let mut raw = ffi::wb_tensor_info::default();
        check(unsafe { ffi::wb_update_tensor_at(self.raw.as_ptr(), index, &mut raw) })?;
        Ok(TensorMut::new(raw))
    }

    /// Publishes the update as one version with `metadata` (at most `WB_METADATA_MAX` bytes, e.g. the training
    /// step) and returns the version. Wakes every waiter. If it fails (`Error::Size`), the update is aborted.
    pub fn publish(mut self, metadata: &[u8]) -> Result<u64> {
        // Beyond u32 is beyond WB_METADATA_MAX too: let the library refuse it with its message.
        let size = u32::try_from(metadata.len()).unwrap_or(u32::MAX);
        let mut version = 0;
        check(unsafe {
            ffi::wb_update_publish(self.raw.as_ptr(), metadata.as_ptr() as *const c_void, size, &mut version)
        })?;
        self.finished = true;
        Ok(version)
    }

    /// Drops the update explicitly; the same as dropping it, with the result.
    pub fn abort(mut self) -> Result<()> {
        self.finished = true; // wb_update_abort frees it whatever it returns
        check(unsafe { ffi::wb_update_abort(self.raw.as_ptr()) })
    }
}

impl Drop for Update {
    fn drop(&mut self) {
        if !self.finished {
            // Fails only for NULL.
            unsafe { ffi::wb_update_abort(self.raw.as_ptr()) };
        }
    }
}
