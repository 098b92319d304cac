//! What a tensor is (`TensorInfo`) and its bytes: read-only in a snapshot (`Tensor`), writable in an update
//! (`TensorMut`). Host bytes are slices borrowed from the snapshot or update; CUDA bytes are raw device
//! pointers.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::os::raw::c_void;
use std::slice;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::ffi;

/// Where a tensor's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory of this process: read it through slices.
    Host,
    /// A CUDA device, identified by its GPU UUID: the data pointer is a device pointer.
    Cuda { uuid: [u8; 16] },
    /// A device type this crate does not know (a newer library).
    Other(i32),
}

/// A tensor's or view's description (`wb_tensor_info`). `'a` is how long its name stays valid: the topic
/// handle, snapshot or update it came from.
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo<'a> {
    raw: ffi::wb_tensor_info,
    _name: PhantomData<&'a str>,
}

impl<'a> TensorInfo<'a> {
    pub(crate) fn new(raw: ffi::wb_tensor_info) -> TensorInfo<'a> {
        TensorInfo { raw, _name: PhantomData }
    }

    /// Position in the topic, `0..tensor_count`.
    pub fn index(&self) -> u32 {
        self.raw.index
    }

    pub fn name(&self) -> &'a str {
        // SAFETY: the name points into the registry and lives as long as the topic handle, which 'a outlives;
        // the broker accepts only UTF-8 names.
        unsafe { CStr::from_ptr(self.raw.name) }.to_str().unwrap_or("")
    }

    pub fn dtype(&self) -> DType {
        DType::from_raw(self.raw.dtype)
    }

    /// Extents, one per dimension (empty for a scalar).
    pub fn shape(&self) -> &[i64] {
        &self.raw.shape[..self.raw.ndim as usize]
    }

    /// Strides in elements, as in DLPack.
    pub fn strides(&self) -> &[i64] {
        &self.raw.strides[..self.raw.ndim as usize]
    }

    /// Bytes spanned, from the first element to one past the last.
    pub fn nbytes(&self) -> usize {
        self.raw.nbytes as usize
    }

    /// The version that last wrote these bytes (0: never written).
    pub fn version(&self) -> u64 {
        self.raw.version
    }

    pub fn is_view(&self) -> bool {
        self.raw.is_view != 0
    }

    pub fn device(&self) -> Device {
        match self.raw.device_type {
            ffi::WB_DEVICE_HOST => Device::Host,
            ffi::WB_DEVICE_CUDA => Device::Cuda { uuid: self.raw.device_uuid },
            other => Device::Other(other),
        }
    }

    /// The bytes' length for a slice: refused for memory this process cannot dereference.
    fn host_len(&self) -> Result<usize> {
        match self.device() {
            Device::Host => Ok(self.nbytes()),
            device => Err(Error::Inval(format!(
                "tensor '{}' is in {device:?} memory, not host memory: use its data pointer",
                self.name()
            ))),
        }
    }

    /// The element count of a `&[T]` over the bytes, after checking that `T` is this tensor's dtype.
    fn elements<T: Element>(&self, data: *const c_void) -> Result<usize> {
        let bytes = self.host_len()?;
        if T::DTYPE != self.dtype() {
            return Err(Error::Dtype(format!("tensor '{}' holds {}, not {}", self.name(), self.dtype(), T::DTYPE)));
        }
        // The broker aligns tensors to WB_ALIGNMENT and views to their dtype, so this only guards the ABI.
        if data as usize % align_of::<T>() != 0 {
            return Err(Error::Inval(format!("tensor '{}' is not aligned for {}", self.name(), T::DTYPE)));
        }
        Ok(bytes / size_of::<T>())
    }
}

/// A tensor of a snapshot: its bytes as of the snapshot's version, unchanging while the snapshot lives.
///
/// A view's bytes are the span of its window on the parent: index them with [`TensorInfo::strides`].
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'s> {
    info: TensorInfo<'s>,
}

impl<'s> Tensor<'s> {
    pub(crate) fn new(raw: ffi::wb_tensor_info) -> Tensor<'s> {
        Tensor { info: TensorInfo::new(raw) }
    }

    pub fn info(&self) -> &TensorInfo<'s> {
        &self.info
    }

    /// The host bytes. `Error::Inval` for a CUDA tensor (use [`Tensor::data_ptr`]).
    pub fn bytes(&self) -> Result<&'s [u8]> {
        let len = self.info.host_len()?;
        // SAFETY: host memory mapped for the snapshot's lifetime 's, and the lease keeps it unchanged.
        Ok(unsafe { host_slice(self.info.raw.data, len) })
    }

    /// The host elements as `T`, which must be the tensor's dtype (else `Error::Dtype`).
    ///
    /// ```no_run
    /// # fn read(snapshot: &weightbus::Snapshot) -> weightbus::Result<()> {
    /// let weights: &[f32] = snapshot.tensor("layers.0.weight")?.as_slice()?;
    /// # Ok(()) }
    /// ```
    pub fn as_slice<T: Element>(&self) -> Result<&'s [T]> {
        let len = self.info.elements::<T>(self.info.raw.data)?;
        // SAFETY: as in bytes(); elements() checked the dtype, size and alignment.
        Ok(unsafe { host_slice(self.info.raw.data, len) })
    }

    /// Where the bytes start in this process: a host pointer, or a CUDA device pointer for
    /// `Device::Cuda` (for `cudaMemcpyAsync` and the like). Valid while the snapshot lives.
    pub fn data_ptr(&self) -> *const c_void {
        self.info.raw.data
    }
}

/// A tensor of an update: where to write this version's bytes.
///
/// With two or more replicas the memory holds an older version's bytes: write all of it.
#[derive(Debug)]
pub struct TensorMut<'u> {
    info: TensorInfo<'u>,
}

impl<'u> TensorMut<'u> {
    pub(crate) fn new(raw: ffi::wb_tensor_info) -> TensorMut<'u> {
        TensorMut { info: TensorInfo::new(raw) }
    }

    pub fn info(&self) -> &TensorInfo<'u> {
        &self.info
    }

    /// The host bytes to write. `Error::Inval` for a CUDA tensor (use [`TensorMut::data_ptr`]).
    pub fn bytes_mut(&mut self) -> Result<&mut [u8]> {
        let len = self.info.host_len()?;
        // SAFETY: the publisher's read-write mapping of a replica no lease references, borrowed mutably from the
        // update (so no other TensorMut of it exists at the same time).
        Ok(unsafe { host_slice_mut(self.info.raw.data, len) })
    }

    /// The host elements as `T`, which must be the tensor's dtype (else `Error::Dtype`).
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T]> {
        let len = self.info.elements::<T>(self.info.raw.data)?;
        // SAFETY: as in bytes_mut(); elements() checked the dtype, size and alignment.
        Ok(unsafe { host_slice_mut(self.info.raw.data, len) })
    }

    /// Copies `bytes` in; they must be exactly the tensor's size (else `Error::Size`).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let name = self.info.name();
        let dest = self.bytes_mut()?;
        if dest.len() != bytes.len() {
            return Err(Error::Size(format!("tensor '{name}' has {} bytes, not {}", dest.len(), bytes.len())));
        }
        dest.copy_from_slice(bytes);
        Ok(())
    }

    /// Where to write: a host pointer, or a CUDA device pointer for `Device::Cuda`. Valid until the update
    /// is published or aborted.
    pub fn data_ptr(&mut self) -> *mut c_void {
        self.info.raw.data
    }
}

/// # Safety
/// `data` must point at `len` valid `T` that stay valid and unchanged for `'x`.
unsafe fn host_slice<'x, T>(data: *const c_void, len: usize) -> &'x [T] {
    if len == 0 {
        return &[]; // an empty tensor's pointer may be NULL, which a slice must not hold
    }
    slice::from_raw_parts(data as *const T, len)
}

/// # Safety
/// As `host_slice`, and nothing else may access the memory during `'x`.
unsafe fn host_slice_mut<'x, T>(data: *mut c_void, len: usize) -> &'x mut [T] {
    if len == 0 {
        return &mut [];
    }
    slice::from_raw_parts_mut(data as *mut T, len)
}
