//! `Snapshot`: a reader's lease on one version. Its tensors are borrowed from it; dropping it releases the lease.

use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::slice;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::c_string;
use crate::error::{check, Result};
use crate::ffi;
use crate::tensor::Tensor;
use crate::topic::TopicHandle;

/// One version of a topic, leased ([`Topic::acquire`](crate::Topic::acquire)): no byte of it changes until the
/// snapshot drops, which releases the lease. Tensors borrow from the snapshot, so they cannot outlive it.
///
/// ```no_run
/// # fn read(topic: &weightbus::Topic) -> weightbus::Result<()> {
/// let snapshot = topic.acquire(0, None)?;
/// println!("version {} ({})", snapshot.version(), String::from_utf8_lossy(snapshot.metadata()));
/// let bias = snapshot.tensor("layers.0.bias")?;
/// assert_eq!(bias.info().shape(), &[4096]);
/// let values: &[f32] = bias.as_slice()?;
/// drop(snapshot); // `values` cannot be used after this line: the compiler refuses
/// # Ok(()) }
/// ```
pub struct Snapshot {
    raw: NonNull<ffi::wb_snapshot>,
    version: u64,
    metadata: *const c_void,
    metadata_size: u32,
    timestamp_ns: u64,
    _topic: Arc<TopicHandle>,
}

// SAFETY: the C API allows a snapshot to be used from several threads at once; its memory does not change.
unsafe impl Send for Snapshot {}
unsafe impl Sync for Snapshot {}

impl Snapshot {
    pub(crate) fn new(raw: *mut ffi::wb_snapshot, topic: Arc<TopicHandle>) -> Snapshot {
        let raw = NonNull::new(raw).expect("wb_snapshot_acquire succeeded without a snapshot");
        let mut snapshot =
            Snapshot { raw, version: 0, metadata: ptr::null(), metadata_size: 0, timestamp_ns: 0, _topic: topic };
        // Both fail only for NULL arguments; read once so that the accessors need no Result.
        unsafe {
            ffi::wb_snapshot_version(raw.as_ptr(), &mut snapshot.version);
            ffi::wb_snapshot_metadata(
                raw.as_ptr(),
                &mut snapshot.metadata,
                &mut snapshot.metadata_size,
                &mut snapshot.timestamp_ns,
            );
        }
        snapshot
    }

    /// The leased version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The metadata the publisher gave this version.
    pub fn metadata(&self) -> &[u8] {
        if self.metadata_size == 0 {
            return &[];
        }
        // SAFETY: the library keeps the metadata until release, which happens when self drops.
        unsafe { slice::from_raw_parts(self.metadata as *const u8, self.metadata_size as usize) }
    }

    /// When the version was published (the publisher's realtime clock).
    pub fn published_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.timestamp_ns)
    }

    /// A tensor or view by name, with its bytes as of this version. `Error::NotFound` for an unknown name.
    pub fn tensor(&self, name: &str) -> Result<Tensor<'_>> {
        let name = c_string(name.as_bytes())?;
        let mut raw = ffi::wb_tensor_info::default();
        check(unsafe { ffi::wb_snapshot_tensor(self.raw.as_ptr(), name.as_ptr(), &mut raw) })?;
        Ok(Tensor::new(raw))
    }

    /// Sharded topic: shard `index` of rank `rank` of logical tensor `name` (its shape is the shard's extent).
    /// [`Snapshot::tensor`] of a sharded tensor is `Error::State`.
    pub fn shard(&self, name: &str, rank: u32, index: u32) -> Result<Tensor<'_>> {
        let name = c_string(name.as_bytes())?;
        let mut raw = ffi::wb_tensor_info::default();
        check(unsafe { ffi::wb_snapshot_shard(self.raw.as_ptr(), name.as_ptr(), rank, index, &mut raw) })?;
        Ok(Tensor::new(raw))
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::wb_snapshot {
        self.raw.as_ptr()
    }

    /// The same by index (`0..tensor_count` of the topic).
    pub fn tensor_at(&self, index: u32) -> Result<Tensor<'_>> {
        let mut raw = ffi::wb_tensor_info::default();
        check(unsafe { ffi::wb_snapshot_tensor_at(self.raw.as_ptr(), index, &mut raw) })?;
        Ok(Tensor::new(raw))
    }

    /// Every tensor and view of the topic, by index, described in one call (`wb_snapshot_tensors`): what a
    /// reader that takes a whole version calls instead of [`Snapshot::tensor_at`] for each index. Sharded
    /// topics' logical tensors are `Error::State`, as with [`Snapshot::tensor`].
    pub fn tensors(&self) -> Result<Vec<Tensor<'_>>> {
        let mut count = 0;
        check(unsafe { ffi::wb_snapshot_tensors(self.raw.as_ptr(), ptr::null_mut(), 0, &mut count) })?;
        loop {
            // One more than asked for: the library reads the first element's struct_size even for none.
            let mut raw = vec![ffi::wb_tensor_info::default(); count as usize + 1];
            let capacity = count;
            let rc = unsafe { ffi::wb_snapshot_tensors(self.raw.as_ptr(), raw.as_mut_ptr(), capacity, &mut count) };
            match check(rc) {
                Ok(()) => return Ok(raw.into_iter().take(count as usize).map(Tensor::new).collect()),
                // Views added since the count was read: ask again for the new count.
                Err(e) if e.code() == ffi::WB_E_SIZE && count > capacity => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Where the snapshot's tensors lie, as a number (`wb_snapshot_place`): two snapshots of one topic with equal
    /// nonzero places (and equal tensor counts) have their tensors at the same addresses, so what a reader built
    /// from one version's tensors holds for the other; 0 says nothing (R >= 2: each version has its replica).
    pub fn place(&self) -> u64 {
        let mut place = 0;
        // Fails only for NULL.
        unsafe { ffi::wb_snapshot_place(self.raw.as_ptr(), &mut place) };
        place
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // Fails only for NULL.
        unsafe { ffi::wb_snapshot_release(self.raw.as_ptr()) };
    }
}
