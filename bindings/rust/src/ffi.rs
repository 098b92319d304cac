//! The raw C ABI of `<weightbus/weightbus.h>`, declared by hand.
//!
//! Every constant and struct of the header, and every function except those of its "CUDA tensors" section
//! (not bound yet: CUDA tensors reach Rust as device pointers in `wb_tensor_info.data`). The header is the
//! manual. Use the safe types of the crate root instead, unless you need a call they do not wrap.
//! `tests/layout.rs` compares every constant, struct size, field offset and `_INIT` value below with what the
//! C compiler sees, so they cannot drift.
#![allow(non_camel_case_types)]

use std::mem::size_of;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

pub const WB_VERSION_MAJOR: u32 = 0;
pub const WB_VERSION_MINOR: u32 = 1;
pub const WB_VERSION_PATCH: u32 = 0;
pub const WB_VERSION: u32 = WB_VERSION_MAJOR * 10000 + WB_VERSION_MINOR * 100 + WB_VERSION_PATCH;
pub const WB_VERSION_STRING: &str = "0.1.0";

pub const WB_NAME_MAX: usize = 255;
pub const WB_MAX_DIMS: usize = 8;
pub const WB_MAX_REPLICAS: u32 = 4;
pub const WB_METADATA_MAX: usize = 4096;
pub const WB_ALIGNMENT: usize = 64;
pub const WB_VERSION_MAX: u64 = (1 << 48) - 1;
pub const WB_CUDA_ALIGNMENT: usize = 256;
pub const WB_MAX_RANKS: usize = 64;
pub const WB_SHARD_REPLICATED: u32 = 1;
pub const WB_SPLIT_EVEN: u32 = 0;
pub const WB_SPLIT_CHUNK: u32 = 1;
pub const WB_SCALE_NONE: u32 = 0;
pub const WB_SCALE_TENSOR: u32 = 1;
pub const WB_SCALE_CHANNEL: u32 = 2;
pub const WB_SCALE_BLOCK: u32 = 3;

pub const WB_OK: c_int = 0;
pub const WB_E_INVAL: c_int = -1;
pub const WB_E_NOMEM: c_int = -2;
pub const WB_E_NOT_FOUND: c_int = -3;
pub const WB_E_EXISTS: c_int = -4;
pub const WB_E_NAME_TOO_LONG: c_int = -5;
pub const WB_E_DTYPE: c_int = -6;
pub const WB_E_SHAPE: c_int = -7;
pub const WB_E_SIZE: c_int = -8;
pub const WB_E_NOSPC: c_int = -9;
pub const WB_E_ROLE: c_int = -10;
pub const WB_E_BUSY: c_int = -11;
pub const WB_E_TIMEOUT: c_int = -12;
pub const WB_E_BROKER_GONE: c_int = -13;
pub const WB_E_ABI_MISMATCH: c_int = -14;
pub const WB_E_DIRTY: c_int = -15;
pub const WB_E_EXPIRED: c_int = -16;
pub const WB_E_STATE: c_int = -17;
pub const WB_E_PERM: c_int = -18;
pub const WB_E_PROTOCOL: c_int = -19;
pub const WB_E_IO: c_int = -20;
pub const WB_E_NO_CUDA: c_int = -21;
pub const WB_E_STALE: c_int = -22;
pub const WB_E_CONNECT: c_int = -23;
pub const WB_E_CUDA: c_int = -24;
pub const WB_E_LAYOUT: c_int = -25;

pub const WB_DTYPE_BOOL: i32 = 1;
pub const WB_DTYPE_U8: i32 = 2;
pub const WB_DTYPE_I8: i32 = 3;
pub const WB_DTYPE_I16: i32 = 4;
pub const WB_DTYPE_I32: i32 = 5;
pub const WB_DTYPE_I64: i32 = 6;
pub const WB_DTYPE_F16: i32 = 7;
pub const WB_DTYPE_BF16: i32 = 8;
pub const WB_DTYPE_F32: i32 = 9;
pub const WB_DTYPE_F64: i32 = 10;
pub const WB_DTYPE_F8E4M3: i32 = 11;
pub const WB_DTYPE_F8E5M2: i32 = 12;
pub const WB_DTYPE_U16: i32 = 13;
pub const WB_DTYPE_U32: i32 = 14;
pub const WB_DTYPE_U64: i32 = 15;

pub const WB_DEVICE_HOST: i32 = 1;
pub const WB_DEVICE_CUDA: i32 = 2;

/// Opaque handles.
#[repr(C)]
pub struct wb_client {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct wb_topic {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct wb_plan {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct wb_armed {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct wb_update {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct wb_snapshot {
    _opaque: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_attach_options {
    pub struct_size: u32,
    pub socket_path: *const c_char,
    pub broker_name: *const c_char,
    pub client_name: *const c_char,
    pub timeout_ms: i64,
}

/// `WB_ATTACH_OPTIONS_INIT`
impl Default for wb_attach_options {
    fn default() -> Self {
        wb_attach_options {
            struct_size: size_of::<Self>() as u32,
            socket_path: ptr::null(),
            broker_name: ptr::null(),
            client_name: ptr::null(),
            timeout_ms: 5000,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_topic_options {
    pub struct_size: u32,
    pub replicas: u32,
}

/// `WB_TOPIC_OPTIONS_INIT`
impl Default for wb_topic_options {
    fn default() -> Self {
        wb_topic_options { struct_size: size_of::<Self>() as u32, replicas: 2 }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct wb_topic_info {
    pub struct_size: u32,
    pub replicas: u32,
    pub name: [c_char; WB_NAME_MAX + 1],
    pub latest: u64,
    pub tensor_count: u32,
    pub publisher_pid: u32,
    pub dirty: u32,
    pub reserved: u32,
    pub bytes: u64,
    pub ranks: u32,
    pub layout_complete: u32,
    pub published_ns: u64,
}

/// `WB_TOPIC_INFO_INIT`
impl Default for wb_topic_info {
    fn default() -> Self {
        wb_topic_info {
            struct_size: size_of::<Self>() as u32,
            replicas: 0,
            name: [0; WB_NAME_MAX + 1],
            latest: 0,
            tensor_count: 0,
            publisher_pid: 0,
            dirty: 0,
            reserved: 0,
            bytes: 0,
            ranks: 0,
            layout_complete: 0,
            published_ns: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_tensor_spec {
    pub struct_size: u32,
    pub dtype: i32,
    pub name: *const c_char,
    pub ndim: u32,
    pub reserved: u32,
    pub shape: [i64; WB_MAX_DIMS],
}

/// `WB_TENSOR_SPEC_INIT`
impl Default for wb_tensor_spec {
    fn default() -> Self {
        wb_tensor_spec {
            struct_size: size_of::<Self>() as u32,
            dtype: 0,
            name: ptr::null(),
            ndim: 0,
            reserved: 0,
            shape: [0; WB_MAX_DIMS],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_view_spec {
    pub struct_size: u32,
    pub dtype: i32,
    pub name: *const c_char,
    pub parent: *const c_char,
    pub byte_offset: u64,
    pub ndim: u32,
    pub reserved: u32,
    pub shape: [i64; WB_MAX_DIMS],
    pub strides: [i64; WB_MAX_DIMS],
}

/// `WB_VIEW_SPEC_INIT`
impl Default for wb_view_spec {
    fn default() -> Self {
        wb_view_spec {
            struct_size: size_of::<Self>() as u32,
            dtype: 0,
            name: ptr::null(),
            parent: ptr::null(),
            byte_offset: 0,
            ndim: 0,
            reserved: 0,
            shape: [0; WB_MAX_DIMS],
            strides: [0; WB_MAX_DIMS],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_tensor_info {
    pub struct_size: u32,
    pub index: u32,
    pub name: *const c_char,
    pub dtype: i32,
    pub ndim: u32,
    pub shape: [i64; WB_MAX_DIMS],
    pub strides: [i64; WB_MAX_DIMS],
    pub nbytes: u64,
    pub data: *mut c_void,
    pub version: u64,
    pub device_type: i32,
    pub is_view: u32,
    pub device_uuid: [u8; 16],
}

/// `WB_TENSOR_INFO_INIT`
impl Default for wb_tensor_info {
    fn default() -> Self {
        wb_tensor_info {
            struct_size: size_of::<Self>() as u32,
            index: 0,
            name: ptr::null(),
            dtype: 0,
            ndim: 0,
            shape: [0; WB_MAX_DIMS],
            strides: [0; WB_MAX_DIMS],
            nbytes: 0,
            data: ptr::null_mut(),
            version: 0,
            device_type: 0,
            is_view: 0,
            device_uuid: [0; 16],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_copy_target {
    pub struct_size: u32,
    pub index: u32,
    pub name: *const c_char,
    pub dst: *mut c_void,
    pub dst_bytes: u64,
    pub device: i32,
    pub dtype: i32,
    pub scale_layout: u32,
    pub block_rows: u32,
    pub block_cols: u32,
    pub reserved: u32,
    pub scale: *mut c_void,
    pub scale_bytes: u64,
}

/// `WB_COPY_TARGET_INIT`
impl Default for wb_copy_target {
    fn default() -> Self {
        wb_copy_target {
            struct_size: size_of::<Self>() as u32,
            index: 0,
            name: ptr::null(),
            dst: ptr::null_mut(),
            dst_bytes: 0,
            device: -1,
            dtype: 0,
            scale_layout: WB_SCALE_NONE,
            block_rows: 0,
            block_cols: 0,
            reserved: 0,
            scale: ptr::null_mut(),
            scale_bytes: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_client_info {
    pub struct_size: u32,
    pub id: u32,
    pub pid: u32,
    pub topics_published: u32,
    pub leases: u32,
    pub reserved: u32,
    pub name: [c_char; 32],
}

/// `WB_CLIENT_INFO_INIT`
impl Default for wb_client_info {
    fn default() -> Self {
        wb_client_info {
            struct_size: size_of::<Self>() as u32,
            id: 0,
            pid: 0,
            topics_published: 0,
            leases: 0,
            reserved: 0,
            name: [0; 32],
        }
    }
}

/// `wb_lease_info`: a lease held by an attached client.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_lease_info {
    pub struct_size: u32,
    pub client_id: u32,
    pub pid: u32,
    pub reserved: u32,
    pub topic: [c_char; WB_NAME_MAX + 1],
    pub version: u64,
    pub latest: u64,
    pub held_ns: u64,
}

/// `WB_LEASE_INFO_INIT`
impl Default for wb_lease_info {
    fn default() -> Self {
        wb_lease_info {
            struct_size: size_of::<Self>() as u32,
            client_id: 0,
            pid: 0,
            reserved: 0,
            topic: [0; WB_NAME_MAX + 1],
            version: 0,
            latest: 0,
            held_ns: 0,
        }
    }
}

/// `wb_broker_info`: the broker a client is attached to, its limits with their use, and its counters.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_broker_info {
    pub struct_size: u32,
    pub pid: u32,
    pub version: u32,
    pub reserved: u32,
    pub name: [c_char; WB_NAME_MAX + 1],
    pub segment: [c_char; WB_NAME_MAX + 1],
    pub started_ns: u64,
    pub created_ns: u64,
    pub topics: u32,
    pub max_topics: u32,
    pub tensors: u32,
    pub max_tensors: u32,
    pub allocations: u32,
    pub max_allocations: u32,
    pub clients: u32,
    pub max_clients: u32,
    pub ranks: u32,
    pub max_ranks: u32,
    pub leases_per_client: u32,
    pub ring_slots: u32,
    pub publishes: u64,
    pub reclaims: u64,
    pub reclaimed_leases: u64,
    pub adoptions: u64,
}

/// `WB_BROKER_INFO_INIT`
impl Default for wb_broker_info {
    fn default() -> Self {
        wb_broker_info {
            struct_size: size_of::<Self>() as u32,
            pid: 0,
            version: 0,
            reserved: 0,
            name: [0; WB_NAME_MAX + 1],
            segment: [0; WB_NAME_MAX + 1],
            started_ns: 0,
            created_ns: 0,
            topics: 0,
            max_topics: 0,
            tensors: 0,
            max_tensors: 0,
            allocations: 0,
            max_allocations: 0,
            clients: 0,
            max_clients: 0,
            ranks: 0,
            max_ranks: 0,
            leases_per_client: 0,
            ring_slots: 0,
            publishes: 0,
            reclaims: 0,
            reclaimed_leases: 0,
            adoptions: 0,
        }
    }
}

/// `wb_rank_options` (see the header's "Sharded models").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_rank_options {
    pub struct_size: u32,
    pub replicas: u32,
    pub rank: u32,
    pub ranks: u32,
}

/// `WB_RANK_OPTIONS_INIT`
impl Default for wb_rank_options {
    fn default() -> Self {
        wb_rank_options { struct_size: size_of::<Self>() as u32, replicas: 2, rank: 0, ranks: 1 }
    }
}

/// `wb_shard_spec` (see the header's "Sharded models").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_shard_spec {
    pub struct_size: u32,
    pub dtype: i32,
    pub name: *const c_char,
    pub ndim: u32,
    pub flags: u32,
    pub logical_shape: [i64; WB_MAX_DIMS],
    pub offset: [i64; WB_MAX_DIMS],
    pub extent: [i64; WB_MAX_DIMS],
}

/// `WB_SHARD_SPEC_INIT`
impl Default for wb_shard_spec {
    fn default() -> Self {
        wb_shard_spec {
            struct_size: size_of::<Self>() as u32,
            dtype: 0,
            name: ptr::null(),
            ndim: 0,
            flags: 0,
            logical_shape: [0; WB_MAX_DIMS],
            offset: [0; WB_MAX_DIMS],
            extent: [0; WB_MAX_DIMS],
        }
    }
}

/// `wb_rank_info` (see the header's "Sharded models").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_rank_info {
    pub struct_size: u32,
    pub rank: u32,
    pub pid: u32,
    pub sealed: u32,
    pub shards: u32,
    pub dirty: u32,
    pub published: u64,
    pub writing: u64,
    pub published_ns: u64,
    pub begin_ns: u64,
    pub bytes: u64,
}

/// `WB_RANK_INFO_INIT`
impl Default for wb_rank_info {
    fn default() -> Self {
        wb_rank_info {
            struct_size: size_of::<Self>() as u32,
            rank: 0,
            pid: 0,
            sealed: 0,
            shards: 0,
            dirty: 0,
            published: 0,
            writing: 0,
            published_ns: 0,
            begin_ns: 0,
            bytes: 0,
        }
    }
}

/// `wb_slice_part` (see the header's "Sharded models").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_slice_part {
    pub struct_size: u32,
    pub ndim: u32,
    pub name: *const c_char,
    pub offset: [i64; WB_MAX_DIMS],
    pub extent: [i64; WB_MAX_DIMS],
    pub pad: i64,
}

/// `WB_SLICE_PART_INIT`
impl Default for wb_slice_part {
    fn default() -> Self {
        wb_slice_part {
            struct_size: size_of::<Self>() as u32,
            ndim: 0,
            name: ptr::null(),
            offset: [0; WB_MAX_DIMS],
            extent: [0; WB_MAX_DIMS],
            pad: 0,
        }
    }
}

/// `wb_slice_dest` (see the header's "Sharded models").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_slice_dest {
    pub struct_size: u32,
    pub device: i32,
    pub first_part: u32,
    pub part_count: u32,
    pub concat_dim: u32,
    pub ndim: u32,
    pub shape: [i64; WB_MAX_DIMS],
    pub strides: [i64; WB_MAX_DIMS],
    pub dtype: i32,
    pub scale_layout: u32,
    pub dst: *mut c_void,
    pub dst_bytes: u64,
    pub block_rows: u32,
    pub block_cols: u32,
    pub scale: *mut c_void,
    pub scale_bytes: u64,
}

/// `WB_SLICE_DEST_INIT`
impl Default for wb_slice_dest {
    fn default() -> Self {
        wb_slice_dest {
            struct_size: size_of::<Self>() as u32,
            device: -1,
            first_part: 0,
            part_count: 1,
            concat_dim: 0,
            ndim: 0,
            shape: [0; WB_MAX_DIMS],
            strides: [0; WB_MAX_DIMS],
            dtype: 0,
            scale_layout: WB_SCALE_NONE,
            dst: ptr::null_mut(),
            dst_bytes: 0,
            block_rows: 0,
            block_cols: 0,
            scale: ptr::null_mut(),
            scale_bytes: 0,
        }
    }
}

/// `wb_plan_info` (see the header's "Sharded models").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wb_plan_info {
    pub struct_size: u32,
    pub dests: u32,
    pub copies: u32,
    pub copies_2d: u32,
    pub bytes: u64,
    pub pad_bytes: u64,
    pub arms: u64,
    pub gpu_arms: u64,
    pub gpu_arms_claimed: u64,
}

/// `WB_PLAN_INFO_INIT`
impl Default for wb_plan_info {
    fn default() -> Self {
        wb_plan_info {
            struct_size: size_of::<Self>() as u32,
            dests: 0,
            copies: 0,
            copies_2d: 0,
            bytes: 0,
            pad_bytes: 0,
            arms: 0,
            gpu_arms: 0,
            gpu_arms_claimed: 0,
        }
    }
}
extern "C" {
    pub fn wb_version() -> u32;
    pub fn wb_version_string() -> *const c_char;

    pub fn wb_strerror(code: c_int) -> *const c_char;
    pub fn wb_last_error() -> *const c_char;

    pub fn wb_dtype_size(dtype: i32) -> u32;
    pub fn wb_dtype_name(dtype: i32) -> *const c_char;

    pub fn wb_default_socket_path(broker_name: *const c_char, buf: *mut c_char, buf_size: usize) -> c_int;
    pub fn wb_attach(opts: *const wb_attach_options, out: *mut *mut wb_client) -> c_int;
    pub fn wb_detach(client: *mut wb_client) -> c_int;
    pub fn wb_client_id(client: *const wb_client, id: *mut u32) -> c_int;

    pub fn wb_topic_create(
        client: *mut wb_client,
        name: *const c_char,
        opts: *const wb_topic_options,
        out: *mut *mut wb_topic,
    ) -> c_int;
    pub fn wb_topic_open(client: *mut wb_client, name: *const c_char, out: *mut *mut wb_topic) -> c_int;
    pub fn wb_topic_close(topic: *mut wb_topic) -> c_int;
    pub fn wb_topic_remove(client: *mut wb_client, name: *const c_char) -> c_int;
    pub fn wb_topic_get_info(topic: *mut wb_topic, out: *mut wb_topic_info) -> c_int;
    pub fn wb_list_topics(client: *mut wb_client, out: *mut wb_topic_info, capacity: u32, count: *mut u32) -> c_int;

    pub fn wb_tensor_alloc(topic: *mut wb_topic, specs: *const wb_tensor_spec, count: u32) -> c_int;
    pub fn wb_tensor_view(topic: *mut wb_topic, spec: *const wb_view_spec) -> c_int;
    pub fn wb_topic_tensor_count(topic: *mut wb_topic, count: *mut u32) -> c_int;
    pub fn wb_topic_tensor(topic: *mut wb_topic, index: u32, out: *mut wb_tensor_info) -> c_int;

    pub fn wb_update_begin(topic: *mut wb_topic, timeout_ms: i64, out: *mut *mut wb_update) -> c_int;
    pub fn wb_update_version(update: *const wb_update, version: *mut u64) -> c_int;
    pub fn wb_update_tensor(update: *mut wb_update, name: *const c_char, out: *mut wb_tensor_info) -> c_int;
    pub fn wb_update_tensor_at(update: *mut wb_update, index: u32, out: *mut wb_tensor_info) -> c_int;
    pub fn wb_update_publish(
        update: *mut wb_update,
        metadata: *const c_void,
        metadata_size: u32,
        version: *mut u64,
    ) -> c_int;
    pub fn wb_update_abort(update: *mut wb_update) -> c_int;

    pub fn wb_topic_latest(topic: *mut wb_topic, version: *mut u64) -> c_int;
    pub fn wb_topic_wait(topic: *mut wb_topic, after: u64, timeout_ms: i64, version: *mut u64) -> c_int;
    pub fn wb_topic_notify_fd(topic: *mut wb_topic, fd: *mut c_int) -> c_int;
    pub fn wb_topic_notify_ack(topic: *mut wb_topic, latest: *mut u64) -> c_int;

    pub fn wb_snapshot_acquire(
        topic: *mut wb_topic,
        version: u64,
        timeout_ms: i64,
        out: *mut *mut wb_snapshot,
    ) -> c_int;
    pub fn wb_snapshot_release(snapshot: *mut wb_snapshot) -> c_int;
    pub fn wb_snapshot_version(snapshot: *const wb_snapshot, version: *mut u64) -> c_int;
    pub fn wb_snapshot_metadata(
        snapshot: *const wb_snapshot,
        data: *mut *const c_void,
        size: *mut u32,
        timestamp_ns: *mut u64,
    ) -> c_int;
    pub fn wb_snapshot_tensor(snapshot: *mut wb_snapshot, name: *const c_char, out: *mut wb_tensor_info) -> c_int;
    pub fn wb_snapshot_tensor_at(snapshot: *mut wb_snapshot, index: u32, out: *mut wb_tensor_info) -> c_int;
    pub fn wb_snapshot_tensors(
        snapshot: *mut wb_snapshot,
        out: *mut wb_tensor_info,
        capacity: u32,
        count: *mut u32,
    ) -> c_int;
    pub fn wb_snapshot_place(snapshot: *const wb_snapshot, place: *mut u64) -> c_int;

    pub fn wb_list_clients(client: *mut wb_client, out: *mut wb_client_info, capacity: u32, count: *mut u32) -> c_int;

    pub fn wb_list_leases(client: *mut wb_client, out: *mut wb_lease_info, capacity: u32, count: *mut u32) -> c_int;
    pub fn wb_broker_get_info(client: *mut wb_client, out: *mut wb_broker_info) -> c_int;

    pub fn wb_topic_create_rank(
        client: *mut wb_client,
        name: *const c_char,
        opts: *const wb_rank_options,
        out: *mut *mut wb_topic,
    ) -> c_int;
    pub fn wb_shard_alloc(topic: *mut wb_topic, specs: *const wb_shard_spec, count: u32) -> c_int;
    pub fn wb_shard_alloc_cuda(topic: *mut wb_topic, specs: *const wb_shard_spec, count: u32, device: i32) -> c_int;
    pub fn wb_shard_register_cuda(
        topic: *mut wb_topic,
        specs: *const wb_shard_spec,
        pointers: *const *mut c_void,
        count: u32,
    ) -> c_int;
    pub fn wb_topic_seal_rank(topic: *mut wb_topic, timeout_ms: i64) -> c_int;
    pub fn wb_topic_rank_info(topic: *mut wb_topic, rank: u32, out: *mut wb_rank_info) -> c_int;
    pub fn wb_topic_shard(
        topic: *mut wb_topic,
        name: *const c_char,
        rank: u32,
        index: u32,
        out: *mut wb_shard_spec,
    ) -> c_int;
    pub fn wb_update_shard(update: *mut wb_update, name: *const c_char, index: u32, out: *mut wb_tensor_info) -> c_int;
    pub fn wb_snapshot_shard(
        snapshot: *mut wb_snapshot,
        name: *const c_char,
        rank: u32,
        index: u32,
        out: *mut wb_tensor_info,
    ) -> c_int;
    pub fn wb_plan_create(
        topic: *mut wb_topic,
        dests: *const wb_slice_dest,
        count: u32,
        parts: *const wb_slice_part,
        part_count: u32,
        out: *mut *mut wb_plan,
    ) -> c_int;
    pub fn wb_plan_run(plan: *mut wb_plan, snapshot: *mut wb_snapshot, stream: *mut c_void) -> c_int;
    pub fn wb_plan_get_info(plan: *const wb_plan, out: *mut wb_plan_info) -> c_int;
    pub fn wb_plan_destroy(plan: *mut wb_plan);
    pub fn wb_plan_arm(plan: *mut wb_plan, after: u64, stream: *mut c_void, out: *mut *mut wb_armed) -> c_int;
    pub fn wb_armed_wait(armed: *mut wb_armed, timeout_ms: i64, snapshot: *mut *mut wb_snapshot) -> c_int;
    pub fn wb_armed_version(armed: *const wb_armed, version: *mut u64) -> c_int;
    pub fn wb_armed_on_stream(armed: *const wb_armed, on_stream: *mut c_int) -> c_int;
    pub fn wb_armed_release(armed: *mut wb_armed) -> c_int;
    pub fn wb_split(size: i64, rank: u32, ranks: u32, mode: u32, offset: *mut i64, extent: *mut i64) -> c_int;
    pub fn wb_split_vocab(
        vocab: i64,
        pad_to: i64,
        rank: u32,
        ranks: u32,
        offset: *mut i64,
        extent: *mut i64,
        padded_extent: *mut i64,
    ) -> c_int;
    pub fn wb_parts_qkv(
        q: *const c_char,
        k: *const c_char,
        v: *const c_char,
        heads: i64,
        kv_heads: i64,
        head_dim: i64,
        hidden: i64,
        rank: u32,
        ranks: u32,
        out: *mut wb_slice_part,
    ) -> c_int;
    pub fn wb_parts_merged(
        names: *const *const c_char,
        rows: *const i64,
        n: u32,
        cols: i64,
        rank: u32,
        ranks: u32,
        out: *mut wb_slice_part,
    ) -> c_int;
}
