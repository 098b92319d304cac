//! Share tensors between processes on one node and move through versions of them: Rust bindings to
//! `libweightbus` (see `include/weightbus/weightbus.h`, the manual of the C API this crate wraps).
//!
//! A [`Client`] attaches to the broker (`weightbusd`). A publisher creates a [`Topic`], allocates its tensors
//! once, and publishes versions through [`Update`]s. A reader opens the topic, waits for a version and leases it
//! as a [`Snapshot`]: every tensor as of that version, read in place, unchanging until the snapshot drops.
//! Every failure is an [`Error`] naming its `WB_E_*` code and carrying the library's message.
//!
//! ```no_run
//! use weightbus::{AttachOptions, Client, DType, TensorSpec};
//!
//! # fn main() -> weightbus::Result<()> {
//! let client = Client::attach(&AttachOptions::default())?; // $WEIGHTBUS_SOCKET, else the default broker
//!
//! // trainer
//! let publisher = client.create_topic("policy", 2)?;
//! publisher.alloc(&[TensorSpec { name: "w", dtype: DType::F32, shape: &[4, 4] }])?;
//! let mut update = publisher.begin(None)?;
//! update.tensor("w")?.as_mut_slice::<f32>()?.copy_from_slice(&[0.5; 16]);
//! let version = update.publish(b"{\"step\": 1}")?;
//!
//! // server (usually another process)
//! let reader = client.open_topic("policy")?;
//! reader.wait(0, Some(std::time::Duration::from_secs(5)))?;
//! let snapshot = reader.acquire(version, None)?;
//! assert_eq!(snapshot.tensor("w")?.as_slice::<f32>()?, &[0.5; 16]);
//! # Ok(()) }
//! ```
//!
//! Handles are `Send` and `Sync` (except `Update` and `Armed`, which are `Send`), as the C API allows. The
//! library is found at build time through `WEIGHTBUS_LIB_DIR` or pkg-config (see the crate's README).

pub mod ffi;

mod client;
mod dtype;
mod error;
mod plan;
mod snapshot;
mod tensor;
mod topic;
mod update;

use std::ffi::{CStr, CString, OsStr};
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

pub use client::{AttachOptions, Client, ClientInfo};
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use plan::{
    parts_merged, parts_qkv, split, split_vocab, Armed, Plan, PlanInfo, ScaleLayout, SliceDest, SlicePart, SplitMode,
};
pub use snapshot::Snapshot;
pub use tensor::{Device, Tensor, TensorInfo, TensorMut};
pub use topic::{RankInfo, ShardBox, ShardSpec, TensorSpec, Topic, TopicInfo, ViewSpec};
pub use update::Update;

/// The library's version at run time, as `WB_VERSION` computes it; differs from [`ffi::WB_VERSION`] when the
/// loaded library is not the one this crate was written for.
pub fn version() -> u32 {
    unsafe { ffi::wb_version() }
}

/// The same as a string, e.g. `"0.1.0"`.
pub fn version_string() -> &'static str {
    // SAFETY: a constant string.
    unsafe { CStr::from_ptr(ffi::wb_version_string()) }.to_str().unwrap_or("")
}

/// The socket path [`Client::attach`] uses when given none: `$WEIGHTBUS_SOCKET`, else the default path of
/// `broker_name` (`None`: `$WEIGHTBUS_NAME`, else `"default"`).
pub fn default_socket_path(broker_name: Option<&str>) -> Result<PathBuf> {
    let name = broker_name.map(|n| c_string(n.as_bytes())).transpose()?;
    let mut buf = vec![0 as c_char; 4096];
    error::check(unsafe { ffi::wb_default_socket_path(as_ptr_or_null(&name), buf.as_mut_ptr(), buf.len()) })?;
    Ok(PathBuf::from(OsStr::from_bytes(fixed_bytes(&buf))))
}

/// A name or path for the C API; an interior NUL would silently cut it, so it is refused.
pub(crate) fn c_string(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| {
        Error::Inval(format!("'{}' contains a NUL byte", String::from_utf8_lossy(bytes).replace('\0', "\\0")))
    })
}

/// NULL for `None`: the C API's "use the default".
pub(crate) fn as_ptr_or_null(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// The text of a NUL-terminated C array field.
pub(crate) fn fixed_string(chars: &[c_char]) -> String {
    String::from_utf8_lossy(fixed_bytes(chars)).into_owned()
}

/// The bytes of a C array up to its first NUL.
fn fixed_bytes(chars: &[c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes = unsafe { std::slice::from_raw_parts(chars.as_ptr() as *const u8, chars.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// A timeout in the C API's milliseconds: `None` waits without a limit; a non-zero duration is rounded up, so
/// that it never becomes a poll.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> i64 {
    match timeout {
        None => -1,
        Some(d) => i64::try_from((d.as_nanos() + 999_999) / 1_000_000).unwrap_or(i64::MAX),
    }
}
