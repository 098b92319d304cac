//! `Error`: one variant per `WB_E_*` code, carrying the message `wb_last_error()` gave for the failure.

use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;

use crate::ffi;

/// The result of every fallible call of this crate.
pub type Result<T> = std::result::Result<T, Error>;

macro_rules! errors {
    ($($(#[$doc:meta])* $variant:ident = $code:path,)*) => {
        /// A failed call: the `WB_E_*` code as the variant, and the library's message naming what was wrong.
        ///
        /// ```no_run
        /// use weightbus::{AttachOptions, Client, Error};
        ///
        /// let client = Client::attach(&AttachOptions::default()).expect("attach");
        /// match client.open_topic("policy") {
        ///     Ok(topic) => println!("policy is at version {}", topic.latest().unwrap()),
        ///     Err(Error::NotFound(message)) => eprintln!("not created yet: {message}"),
        ///     Err(other) => eprintln!("{other}"), // e.g. "WB_E_BROKER_GONE: ...: ..."
        /// }
        /// ```
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Error {
            $($(#[$doc])* $variant(String),)*
            /// A code this crate does not know (a newer library): the code and the message.
            Unknown(c_int, String),
        }

        impl Error {
            /// The error for a `WB_E_*` code with its message.
            pub fn from_code(code: c_int, message: String) -> Error {
                match code {
                    $($code => Error::$variant(message),)*
                    _ => Error::Unknown(code, message),
                }
            }

            /// The `WB_E_*` code.
            pub fn code(&self) -> c_int {
                match self {
                    $(Error::$variant(_) => $code,)*
                    Error::Unknown(code, _) => *code,
                }
            }

            /// What was wrong, as the library said it (may be empty).
            pub fn message(&self) -> &str {
                match self {
                    $(Error::$variant(message) => message,)*
                    Error::Unknown(_, message) => message,
                }
            }
        }
    };
}

errors! {
    /// `WB_E_INVAL`: an argument is NULL, out of range or malformed.
    Inval = ffi::WB_E_INVAL,
    /// `WB_E_NOMEM`: this process ran out of memory.
    NoMem = ffi::WB_E_NOMEM,
    /// `WB_E_NOT_FOUND`: no topic/tensor of that name, or the version is not published.
    NotFound = ffi::WB_E_NOT_FOUND,
    /// `WB_E_EXISTS`: a tensor of that name exists with another dtype or shape.
    Exists = ffi::WB_E_EXISTS,
    /// `WB_E_NAME_TOO_LONG`: a name is longer than `WB_NAME_MAX` bytes (or empty).
    NameTooLong = ffi::WB_E_NAME_TOO_LONG,
    /// `WB_E_DTYPE`: unknown dtype, a view's dtype does not fit its parent, or a typed slice of another dtype.
    Dtype = ffi::WB_E_DTYPE,
    /// `WB_E_SHAPE`: bad ndim, negative extent, or element count overflows.
    Shape = ffi::WB_E_SHAPE,
    /// `WB_E_SIZE`: a byte range falls outside its storage, or metadata is too large.
    Size = ffi::WB_E_SIZE,
    /// `WB_E_NOSPC`: a capacity of the broker is exhausted.
    NoSpc = ffi::WB_E_NOSPC,
    /// `WB_E_ROLE`: the call needs the publisher's handle and this is a reader's.
    Role = ffi::WB_E_ROLE,
    /// `WB_E_BUSY`: the topic already has a live publisher.
    Busy = ffi::WB_E_BUSY,
    /// `WB_E_TIMEOUT`: the wait ran out; nothing was changed.
    Timeout = ffi::WB_E_TIMEOUT,
    /// `WB_E_BROKER_GONE`: the broker died or closed the connection.
    BrokerGone = ffi::WB_E_BROKER_GONE,
    /// `WB_E_ABI_MISMATCH`: the segment or broker speaks another layout/protocol version.
    AbiMismatch = ffi::WB_E_ABI_MISMATCH,
    /// `WB_E_DIRTY`: an R = 1 topic was left half-written by a publisher that died; wait for a new version.
    Dirty = ffi::WB_E_DIRTY,
    /// `WB_E_EXPIRED`: the version is older than what the topic still keeps.
    Expired = ffi::WB_E_EXPIRED,
    /// `WB_E_STATE`: the call does not fit the object's state (e.g. layout sealed, update open).
    State = ffi::WB_E_STATE,
    /// `WB_E_PERM`: refused by a credential check: the broker's of this uid, or the library's of the broker
    /// (its socket directory, uid, or the shared memory it sends).
    Perm = ffi::WB_E_PERM,
    /// `WB_E_PROTOCOL`: a malformed message from the peer.
    Protocol = ffi::WB_E_PROTOCOL,
    /// `WB_E_IO`: a system call failed.
    Io = ffi::WB_E_IO,
    /// `WB_E_NO_CUDA`: CUDA is needed and absent.
    NoCuda = ffi::WB_E_NO_CUDA,
    /// `WB_E_STALE`: the tensor or allocation was revoked by its exporter.
    Stale = ffi::WB_E_STALE,
    /// `WB_E_CONNECT`: no broker listens at the socket path.
    Connect = ffi::WB_E_CONNECT,
    /// `WB_E_CUDA`: a CUDA driver call failed; the message names the call and its result.
    Cuda = ffi::WB_E_CUDA,
    /// `WB_E_LAYOUT`: a sharded topic's shards overlap, leave a region uncovered, or disagree on dtype or
    /// logical shape; the message names the tensor, the ranks and the region.
    Layout = ffi::WB_E_LAYOUT,
}

impl fmt::Display for Error {
    /// `wb_strerror`'s name of the code, then the message: `WB_E_TIMEOUT: the wait timed out: topic 'policy': ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: wb_strerror returns a constant string for every code, never NULL.
        let name = unsafe { CStr::from_ptr(ffi::wb_strerror(self.code())) }.to_string_lossy();
        if self.message().is_empty() {
            f.write_str(&name)
        } else {
            write!(f, "{name}: {}", self.message())
        }
    }
}

impl std::error::Error for Error {}

/// Turns a return code into a `Result`, reading `wb_last_error()` on this thread right after the failing call.
pub(crate) fn check(code: c_int) -> Result<()> {
    if code == ffi::WB_OK {
        return Ok(());
    }
    // SAFETY: wb_last_error returns this thread's message (never NULL), valid until the next call.
    let message = unsafe { CStr::from_ptr(ffi::wb_last_error()) }.to_string_lossy().into_owned();
    Err(Error::from_code(code, message))
}
