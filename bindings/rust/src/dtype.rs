//! Element types of tensors, and the Rust types a host tensor can be viewed as.

use std::ffi::CStr;
use std::fmt;

use crate::ffi;

/// A tensor's element type (`WB_DTYPE_*`). A newtype rather than an enum, so that a dtype added by a newer
/// library reads as an unnamed value instead of undefined behaviour; match on the constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DType(i32);

impl DType {
    pub const BOOL: DType = DType(ffi::WB_DTYPE_BOOL);
    pub const U8: DType = DType(ffi::WB_DTYPE_U8);
    pub const I8: DType = DType(ffi::WB_DTYPE_I8);
    pub const I16: DType = DType(ffi::WB_DTYPE_I16);
    pub const I32: DType = DType(ffi::WB_DTYPE_I32);
    pub const I64: DType = DType(ffi::WB_DTYPE_I64);
    pub const F16: DType = DType(ffi::WB_DTYPE_F16);
    pub const BF16: DType = DType(ffi::WB_DTYPE_BF16);
    pub const F32: DType = DType(ffi::WB_DTYPE_F32);
    pub const F64: DType = DType(ffi::WB_DTYPE_F64);
    pub const F8E4M3: DType = DType(ffi::WB_DTYPE_F8E4M3);
    pub const F8E5M2: DType = DType(ffi::WB_DTYPE_F8E5M2);
    pub const U16: DType = DType(ffi::WB_DTYPE_U16);
    pub const U32: DType = DType(ffi::WB_DTYPE_U32);
    pub const U64: DType = DType(ffi::WB_DTYPE_U64);

    /// The dtype of a `WB_DTYPE_*` value.
    pub const fn from_raw(raw: i32) -> DType {
        DType(raw)
    }

    /// The `WB_DTYPE_*` value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Bytes per element, 0 for an unknown dtype.
    pub fn size(self) -> usize {
        // SAFETY: a pure function of its argument.
        unsafe { ffi::wb_dtype_size(self.0) as usize }
    }

    /// The library's lower-case name ("bf16", "f8e4m3", ...), `None` for an unknown dtype.
    pub fn name(self) -> Option<&'static str> {
        // SAFETY: wb_dtype_name returns a constant string or NULL.
        let name = unsafe { ffi::wb_dtype_name(self.0) };
        if name.is_null() {
            return None;
        }
        unsafe { CStr::from_ptr(name) }.to_str().ok()
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "dtype {}", self.0),
        }
    }
}

/// A Rust type whose values are exactly one dtype's elements, so that host tensor bytes can be viewed as `&[T]`.
///
/// # Safety
/// `DTYPE` must have the size and alignment of `Self`, and every bit pattern of that size must be a valid
/// `Self` (which rules out `bool`: read `DType::BOOL` tensors as bytes).
pub unsafe trait Element: Copy + 'static {
    const DTYPE: DType;
}

macro_rules! elements {
    ($($t:ty => $dtype:ident,)*) => {
        $(unsafe impl Element for $t {
            const DTYPE: DType = DType::$dtype;
        })*
    };
}

elements! {
    u8 => U8,
    i8 => I8,
    i16 => I16,
    u16 => U16,
    i32 => I32,
    u32 => U32,
    i64 => I64,
    u64 => U64,
    f32 => F32,
    f64 => F64,
}
