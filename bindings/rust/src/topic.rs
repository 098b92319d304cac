//! `Topic`: a named set of tensors with one version sequence, opened as its publisher or as a reader.

use std::os::unix::io::BorrowedFd;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

use crate::client::ClientHandle;
use crate::dtype::DType;
use crate::error::{check, Error, Result};
use crate::ffi;
use crate::snapshot::Snapshot;
use crate::tensor::TensorInfo;
use crate::update::Update;
use crate::{c_string, fixed_string, timeout_ms};

/// The open topic; updates and snapshots hold it too, so that it is closed after the last of them ends.
pub(crate) struct TopicHandle {
    raw: NonNull<ffi::wb_topic>,
    _client: Arc<ClientHandle>,
}

// SAFETY: the C API allows a topic to be used from several threads at once.
unsafe impl Send for TopicHandle {}
unsafe impl Sync for TopicHandle {}

impl TopicHandle {
    pub(crate) fn as_ptr(&self) -> *mut ffi::wb_topic {
        self.raw.as_ptr()
    }
}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        // Fails only with snapshots still held, and every snapshot holds this handle.
        unsafe { ffi::wb_topic_close(self.as_ptr()) };
    }
}

/// A topic opened by [`Client::create_topic`](crate::Client::create_topic) (publisher) or
/// [`Client::open_topic`](crate::Client::open_topic) (reader). Dropping it closes it; a publisher's topic stays
/// in the broker with its tensors and versions.
///
/// A publisher sets the layout up once, then publishes versions:
///
/// ```no_run
/// use weightbus::{AttachOptions, Client, DType, TensorSpec};
///
/// # fn main() -> weightbus::Result<()> {
/// let client = Client::attach(&AttachOptions::default())?;
/// let topic = client.create_topic("policy", 2)?;
/// topic.alloc(&[TensorSpec { name: "layers.0.weight", dtype: DType::F32, shape: &[1024, 1024] }])?;
/// for step in 1..=3 {
///     let mut update = topic.begin(None)?;
///     update.tensor("layers.0.weight")?.as_mut_slice::<f32>()?.fill(step as f32);
///     update.publish(format!("{{\"step\": {step}}}").as_bytes())?;
/// }
/// # Ok(()) }
/// ```
///
/// A reader waits for versions and leases them:
///
/// ```no_run
/// # use weightbus::{AttachOptions, Client};
/// # fn main() -> weightbus::Result<()> {
/// # let client = Client::attach(&AttachOptions::default())?;
/// let topic = client.open_topic("policy")?;
/// let mut seen = 0;
/// loop {
///     seen = topic.wait(seen, None)?;
///     let snapshot = topic.acquire(0, None)?; // the latest, which may be newer than `seen`
///     let weight: &[f32] = snapshot.tensor("layers.0.weight")?.as_slice()?;
///     println!("version {}: {}", snapshot.version(), weight[0]);
/// } // each snapshot's lease is released when it drops
/// # }
/// ```
pub struct Topic {
    handle: Arc<TopicHandle>,
}

impl Topic {
    pub(crate) fn new(raw: *mut ffi::wb_topic, client: Arc<ClientHandle>) -> Topic {
        let raw = NonNull::new(raw).expect("the library returned a NULL topic");
        Topic { handle: Arc::new(TopicHandle { raw, _client: client }) }
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::wb_topic {
        self.handle.as_ptr()
    }

    pub(crate) fn handle(&self) -> Arc<TopicHandle> {
        self.handle.clone()
    }

    pub fn info(&self) -> Result<TopicInfo> {
        let mut raw = ffi::wb_topic_info::default();
        check(unsafe { ffi::wb_topic_get_info(self.as_ptr(), &mut raw) })?;
        Ok(TopicInfo::from_raw(&raw))
    }

    /// Publisher only: allocates host tensors (zero-filled, 64-byte aligned) in one shared allocation, all or
    /// nothing. A name that exists with the same dtype and shape keeps its storage, so a publisher taking over
    /// can run its set-up again. Errors: `Role`, `NameTooLong`, `Dtype`, `Shape`, `Exists`, `State` (after the
    /// first publish), `NoSpc`.
    pub fn alloc(&self, specs: &[TensorSpec<'_>]) -> Result<()> {
        let names = specs.iter().map(|s| c_string(s.name.as_bytes())).collect::<Result<Vec<_>>>()?;
        let mut raw = Vec::with_capacity(specs.len());
        for (spec, name) in specs.iter().zip(&names) {
            let mut r = ffi::wb_tensor_spec { dtype: spec.dtype.raw(), name: name.as_ptr(), ..Default::default() };
            r.ndim = copy_dims(&mut r.shape, spec.shape, spec.name)?;
            raw.push(r);
        }
        check(unsafe { ffi::wb_tensor_alloc(self.as_ptr(), raw.as_ptr(), raw.len() as u32) })
    }

    /// A rank's publisher ([`Client::create_rank`](crate::Client::create_rank)): allocates this rank's host
    /// shards, each a box of a logical tensor. Errors: those of [`Topic::alloc`], `Shape` (a box outside its
    /// logical shape), `Layout` (an overlap with, or another dtype or logical shape than, another rank's shard),
    /// `State` (the layout is complete).
    pub fn alloc_shards(&self, specs: &[ShardSpec<'_>]) -> Result<()> {
        let names = specs.iter().map(|s| c_string(s.name.as_bytes())).collect::<Result<Vec<_>>>()?;
        let mut raw = Vec::with_capacity(specs.len());
        for (spec, name) in specs.iter().zip(&names) {
            let mut r = ffi::wb_shard_spec { dtype: spec.dtype.raw(), name: name.as_ptr(), ..Default::default() };
            r.flags = if spec.replicated { ffi::WB_SHARD_REPLICATED } else { 0 };
            r.ndim = copy_dims(&mut r.logical_shape, spec.logical_shape, spec.name)?;
            let offset = copy_dims(&mut r.offset, spec.offset, spec.name)?;
            let extent = copy_dims(&mut r.extent, spec.extent, spec.name)?;
            if offset != r.ndim || extent != r.ndim {
                return Err(Error::Shape(format!(
                    "shard of '{}': logical shape, offset and extent need the same number of dimensions",
                    spec.name
                )));
            }
            raw.push(r);
        }
        check(unsafe { ffi::wb_shard_alloc(self.as_ptr(), raw.as_ptr(), raw.len() as u32) })
    }

    /// A rank's publisher: this rank registers no more shards (its first [`Topic::begin`] does it too). The
    /// last rank's seal checks that the shards cover every logical tensor (`Error::Layout`; this rank stays
    /// unsealed).
    pub fn seal_rank(&self, timeout: Option<Duration>) -> Result<()> {
        check(unsafe { ffi::wb_topic_seal_rank(self.as_ptr(), timeout_ms(timeout)) })
    }

    /// Rank `rank` of a sharded topic (any handle). `Error::Inval` for a plain topic or a rank out of range.
    pub fn rank_info(&self, rank: u32) -> Result<RankInfo> {
        let mut raw = ffi::wb_rank_info::default();
        check(unsafe { ffi::wb_topic_rank_info(self.as_ptr(), rank, &mut raw) })?;
        Ok(RankInfo {
            rank: raw.rank,
            pid: raw.pid,
            sealed: raw.sealed != 0,
            shards: raw.shards,
            dirty: raw.dirty != 0,
            published: raw.published,
            writing: raw.writing,
            published_ns: raw.published_ns,
            begin_ns: raw.begin_ns,
            bytes: raw.bytes,
        })
    }

    /// Shard number `index` of rank `rank` of logical tensor `name`, as its rank registered it (any handle; no
    /// version needed). `Error::NotFound` when the rank holds no such shard, `Error::Inval` for a plain topic.
    pub fn shard_box(&self, name: &str, rank: u32, index: u32) -> Result<ShardBox> {
        let c_name = c_string(name.as_bytes())?;
        let mut raw = ffi::wb_shard_spec::default();
        check(unsafe { ffi::wb_topic_shard(self.as_ptr(), c_name.as_ptr(), rank, index, &mut raw) })?;
        let n = raw.ndim as usize;
        Ok(ShardBox {
            dtype: DType::from_raw(raw.dtype),
            logical_shape: raw.logical_shape[..n].to_vec(),
            offset: raw.offset[..n].to_vec(),
            extent: raw.extent[..n].to_vec(),
            replicated: raw.flags & ffi::WB_SHARD_REPLICATED != 0,
        })
    }

    /// Registers a zero-copy view on another tensor's bytes; any client that opened the topic may, at any time.
    /// Registering the same definition again is accepted.
    pub fn add_view(&self, view: &ViewSpec<'_>) -> Result<()> {
        if view.strides.len() != view.shape.len() {
            return Err(Error::Shape(format!(
                "view '{}': {} strides for {} dimensions",
                view.name,
                view.strides.len(),
                view.shape.len()
            )));
        }
        let name = c_string(view.name.as_bytes())?;
        let parent = c_string(view.parent.as_bytes())?;
        let mut raw = ffi::wb_view_spec {
            dtype: view.dtype.raw(),
            name: name.as_ptr(),
            parent: parent.as_ptr(),
            byte_offset: view.byte_offset,
            ..Default::default()
        };
        raw.ndim = copy_dims(&mut raw.shape, view.shape, view.name)?;
        copy_dims(&mut raw.strides, view.strides, view.name)?;
        check(unsafe { ffi::wb_tensor_view(self.as_ptr(), &raw) })
    }

    /// Tensors and views of the topic.
    pub fn tensor_count(&self) -> Result<u32> {
        let mut count = 0;
        check(unsafe { ffi::wb_topic_tensor_count(self.as_ptr(), &mut count) })?;
        Ok(count)
    }

    /// The layout of tensor `index` (`0..tensor_count`); its version is the latest that wrote it.
    pub fn tensor_info(&self, index: u32) -> Result<TensorInfo<'_>> {
        let mut raw = ffi::wb_tensor_info::default();
        check(unsafe { ffi::wb_topic_tensor(self.as_ptr(), index, &mut raw) })?;
        Ok(TensorInfo::new(raw))
    }

    /// Publisher only: starts writing version latest + 1. Waits at most `timeout` (`None`: no limit) while
    /// leases block it; `Error::Timeout` changes nothing.
    pub fn begin(&self, timeout: Option<Duration>) -> Result<Update> {
        let mut update = ptr::null_mut();
        check(unsafe { ffi::wb_update_begin(self.as_ptr(), timeout_ms(timeout), &mut update) })?;
        Update::new(update, self.handle.clone())
    }

    /// The latest published version (0 before the first).
    pub fn latest(&self) -> Result<u64> {
        let mut version = 0;
        check(unsafe { ffi::wb_topic_latest(self.as_ptr(), &mut version) })?;
        Ok(version)
    }

    /// Blocks until a version newer than `after` is published and returns the latest; at once if one already
    /// is. `Error::Timeout` after `timeout` (`None`: no limit), `Error::BrokerGone` if the broker dies.
    pub fn wait(&self, after: u64, timeout: Option<Duration>) -> Result<u64> {
        let mut version = 0;
        check(unsafe { ffi::wb_topic_wait(self.as_ptr(), after, timeout_ms(timeout), &mut version) })?;
        Ok(version)
    }

    /// A descriptor for poll/epoll loops (mio, tokio's `AsyncFd`) that becomes readable when there is something
    /// to do for the topic: a publish, or a broker restart to follow. It is one descriptor for the topic's
    /// lifetime, broker restarts included, and an epoll instance: do not read it, call [`Topic::notify_ack`]
    /// each time it is readable. Versions published before the first call are not signalled: call
    /// [`Topic::latest`] once after getting it.
    pub fn notify_fd(&self) -> Result<BorrowedFd<'_>> {
        let mut fd = -1;
        check(unsafe { ffi::wb_topic_notify_fd(self.as_ptr(), &mut fd) })?;
        // SAFETY: the topic handle owns the descriptor and closes it after the borrow of self ends.
        Ok(unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// Call it each time the notify fd is readable: consumes the wake-up, follows the broker across restarts
    /// and returns the latest version, which need not be newer than the last one seen. `Error::BrokerGone`
    /// once no successor may take this client back; `Error::State` before [`Topic::notify_fd`].
    pub fn notify_ack(&self) -> Result<u64> {
        let mut latest = 0;
        check(unsafe { ffi::wb_topic_notify_ack(self.as_ptr(), &mut latest) })?;
        Ok(latest)
    }

    /// Leases `version` (0: the latest) until the snapshot drops. Waits at most `timeout` (`None`: no limit)
    /// while an R = 1 update is being written. Errors: `NotFound` (nothing or not yet published), `Expired`,
    /// `Dirty`, `Timeout`, `NoSpc` (this client's lease slots are full), `BrokerGone`.
    pub fn acquire(&self, version: u64, timeout: Option<Duration>) -> Result<Snapshot> {
        let mut snapshot = ptr::null_mut();
        check(unsafe { ffi::wb_snapshot_acquire(self.as_ptr(), version, timeout_ms(timeout), &mut snapshot) })?;
        Ok(Snapshot::new(snapshot, self.handle.clone()))
    }
}

/// A topic's state (`wb_topic_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub replicas: u32,
    /// 0 before the first publish.
    pub latest: u64,
    /// Tensors and views.
    pub tensor_count: u32,
    /// 0 when no publisher is attached.
    pub publisher_pid: u32,
    /// True while acquires fail with `Error::Dirty`.
    pub dirty: bool,
    /// Storage of all replicas.
    pub bytes: u64,
    /// 0: a plain topic; N: sharded over N ranks.
    pub ranks: u32,
    /// Sharded: every rank sealed and the shards cover every logical tensor.
    pub layout_complete: bool,
}

/// A registered shard's box in its logical tensor (`wb_topic_shard`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardBox {
    pub dtype: DType,
    pub logical_shape: Vec<i64>,
    pub offset: Vec<i64>,
    pub extent: Vec<i64>,
    /// Every rank holding this box holds the same bytes.
    pub replicated: bool,
}

/// A rank of a sharded topic (`wb_rank_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankInfo {
    pub rank: u32,
    /// Its publisher's process, 0 when none is attached.
    pub pid: u32,
    pub sealed: bool,
    pub shards: u32,
    /// R = 1: its shards left half-written.
    pub dirty: bool,
    /// The last version it published (0: none); above the topic's latest while other ranks lag.
    pub published: u64,
    /// The version it is writing, 0 when none.
    pub writing: u64,
    pub published_ns: u64,
    pub begin_ns: u64,
    pub bytes: u64,
}

/// A rank's shard: the box `offset`..`offset + extent` of logical tensor `name` (`logical_shape`), or, with
/// `replicated`, a box every rank holding it holds alike.
#[derive(Clone, Copy, Debug)]
pub struct ShardSpec<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub logical_shape: &'a [i64],
    pub offset: &'a [i64],
    pub extent: &'a [i64],
    pub replicated: bool,
}

impl TopicInfo {
    pub(crate) fn from_raw(raw: &ffi::wb_topic_info) -> TopicInfo {
        TopicInfo {
            name: fixed_string(&raw.name),
            replicas: raw.replicas,
            latest: raw.latest,
            tensor_count: raw.tensor_count,
            publisher_pid: raw.publisher_pid,
            dirty: raw.dirty != 0,
            bytes: raw.bytes,
            ranks: raw.ranks,
            layout_complete: raw.layout_complete != 0,
        }
    }
}

/// A host tensor to allocate.
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec<'a> {
    pub name: &'a str,
    pub dtype: DType,
    /// Extents (at most `WB_MAX_DIMS`; empty for a scalar).
    pub shape: &'a [i64],
}

/// A view: a strided window on another tensor's bytes.
#[derive(Clone, Copy, Debug)]
pub struct ViewSpec<'a> {
    pub name: &'a str,
    /// A tensor or view of the same topic.
    pub parent: &'a str,
    pub dtype: DType,
    /// From the start of the parent's bytes; a multiple of the dtype's size.
    pub byte_offset: u64,
    pub shape: &'a [i64],
    /// In elements of `dtype`, one per dimension.
    pub strides: &'a [i64],
}

/// Copies dims into a fixed C array and returns their count; more than `WB_MAX_DIMS` is `Error::Shape`.
pub(crate) fn copy_dims(dest: &mut [i64; ffi::WB_MAX_DIMS], dims: &[i64], name: &str) -> Result<u32> {
    if dims.len() > ffi::WB_MAX_DIMS {
        return Err(Error::Shape(format!(
            "tensor '{name}': {} dimensions, at most {} are allowed",
            dims.len(),
            ffi::WB_MAX_DIMS
        )));
    }
    dest[..dims.len()].copy_from_slice(dims);
    Ok(dims.len() as u32)
}
