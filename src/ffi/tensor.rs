//! Turning a caller's `CtcTensor` into checked metadata and then into ndarray views.
//!
//! [`RawTensor::read`] validates every field a C caller can set (enumerations, `ndim`, signs of
//! shapes and strides, the byte span with checked arithmetic, NULL and alignment of `data`)
//! without touching the memory `data` points to. Only a `RawTensor` that passed those checks is
//! ever turned into a view.

use super::CtcTensor;
use crate::error::{invalid, Error};
use crate::types::{enum_from_c, DType, Device};
use ndarray::{
    ArrayView1, ArrayView2, ArrayView3, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, ShapeBuilder,
};
use std::ffi::c_void;
use std::ops::Range;

/// A validated description of a caller's tensor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawTensor {
    /// The argument name used in messages.
    pub name: &'static str,
    pub data: *mut c_void,
    pub dtype: DType,
    pub device: Device,
    pub device_index: i32,
    pub ndim: usize,
    /// Extents; 1 past `ndim`.
    pub shape: [usize; 3],
    /// Element strides; 0 past `ndim`.
    pub strides: [usize; 3],
    /// Number of elements.
    pub numel: usize,
    /// Bytes from `data` to one past the last element (0 when empty).
    pub span: usize,
}

impl RawTensor {
    /// Reads and checks `*ptr`.
    ///
    /// # Safety
    /// `ptr` is NULL or points to a readable `CtcTensor` (any alignment).
    pub unsafe fn read(name: &'static str, ptr: *const CtcTensor) -> Result<RawTensor, Error> {
        if ptr.is_null() {
            return Err(invalid!("{name} is NULL"));
        }
        // SAFETY: non-null and readable per this function's contract; read_unaligned accepts any
        // alignment, and every field is an integer or a pointer, valid for any bit pattern.
        let t = unsafe { ptr.read_unaligned() };
        let dtype: DType = enum_from_c(&format!("{name}.dtype"), t.dtype)?;
        let device: Device = enum_from_c(&format!("{name}.device"), t.device)?;
        if !(0..=3).contains(&t.ndim) {
            return Err(invalid!("{name}.ndim = {} is out of range [0, 3]", t.ndim));
        }
        let ndim = t.ndim as usize;
        let mut shape = [1usize; 3];
        let mut strides = [0usize; 3];
        for i in 0..ndim {
            if t.shape[i] < 0 {
                return Err(invalid!("{name}.shape[{i}] = {} is negative", t.shape[i]));
            }
            if t.strides[i] < 0 {
                return Err(invalid!(
                    "{name}.strides[{i}] = {} is negative",
                    t.strides[i]
                ));
            }
            shape[i] = usize::try_from(t.shape[i]).map_err(|_| {
                invalid!("{name}.shape[{i}] = {} does not fit in size_t", t.shape[i])
            })?;
            strides[i] = usize::try_from(t.strides[i]).map_err(|_| {
                invalid!(
                    "{name}.strides[{i}] = {} does not fit in size_t",
                    t.strides[i]
                )
            })?;
        }
        let too_big = || {
            invalid!(
                "{name} with shape {:?} and strides {:?} spans more bytes than the address space holds",
                &t.shape[..ndim],
                &t.strides[..ndim]
            )
        };
        let mut numel = 1usize;
        // Even an empty tensor's other extents must multiply to a size a view can have.
        let mut nonzero = 1usize;
        for &n in &shape[..ndim] {
            numel = numel.checked_mul(n).ok_or_else(too_big)?;
            if n > 0 {
                nonzero = nonzero.checked_mul(n).ok_or_else(too_big)?;
            }
        }
        // ndarray wants that product's bytes to fit in isize too.
        if nonzero
            .checked_mul(dtype.size())
            .is_none_or(|bytes| bytes > isize::MAX as usize)
        {
            return Err(too_big());
        }
        let span = if numel == 0 {
            0
        } else {
            let mut last = 0usize; // offset of the last element, in elements
            for i in 0..ndim {
                let step = (shape[i] - 1).checked_mul(strides[i]).ok_or_else(too_big)?;
                last = last.checked_add(step).ok_or_else(too_big)?;
            }
            let elements = last.checked_add(1).ok_or_else(too_big)?;
            let bytes = elements.checked_mul(dtype.size()).ok_or_else(too_big)?;
            // ndarray and pointer offsets need every byte offset to fit in isize, and the span must
            // not wrap around the address space.
            if bytes > isize::MAX as usize || (t.data as usize).checked_add(bytes).is_none() {
                return Err(too_big());
            }
            bytes
        };
        if numel > 0 {
            if t.data.is_null() {
                return Err(invalid!(
                    "{name}.data is NULL but {name} has {numel} elements"
                ));
            }
            if !(t.data as usize).is_multiple_of(dtype.size()) {
                return Err(invalid!(
                    "{name}.data = {:p} is not aligned to the {} bytes of {}",
                    t.data,
                    dtype.size(),
                    dtype.name()
                ));
            }
        }
        Ok(RawTensor {
            name,
            data: t.data,
            dtype,
            device,
            device_index: t.device_index,
            ndim,
            shape,
            strides,
            numel,
            span,
        })
    }

    /// Where the tensor lives, in words ("the host", "CUDA device 1").
    pub fn place(&self) -> String {
        match self.device {
            Device::Cpu => "the host".to_owned(),
            Device::Cuda => format!("CUDA device {}", self.device_index),
        }
    }

    /// The bytes the tensor's elements lie in (empty for an empty tensor).
    pub fn byte_range(&self) -> Range<usize> {
        let start = self.data as usize;
        start..start + self.span
    }

    /// Checks that `ndim` is one of `allowed`, describing the shapes in `what`.
    pub fn expect_ndim(&self, allowed: &[usize], what: &str) -> Result<(), Error> {
        if allowed.contains(&self.ndim) {
            Ok(())
        } else {
            Err(invalid!("{}.ndim = {} but {what}", self.name, self.ndim))
        }
    }

    /// Checks that no two distinct index tuples address the same element, so that a mutable view
    /// is sound: sorted by stride, every dimension must step over everything below it.
    pub fn expect_non_overlapping(&self) -> Result<(), Error> {
        if self.numel == 0 {
            // Nothing is written, whatever the strides (which the span check did not bound).
            return Ok(());
        }
        let mut dims: Vec<(usize, usize)> = (0..self.ndim)
            .filter(|&i| self.shape[i] > 1)
            .map(|i| (self.strides[i], self.shape[i]))
            .collect();
        dims.sort_unstable();
        let mut reach = 1usize; // elements covered by the dimensions seen so far
        for (stride, extent) in dims {
            if stride < reach {
                return Err(invalid!(
                    "{} has strides {:?} for shape {:?}: its elements overlap, so it cannot be written",
                    self.name,
                    &self.strides[..self.ndim],
                    &self.shape[..self.ndim]
                ));
            }
            // Cannot overflow for a non-empty tensor: its span was checked to fit in isize.
            reach = stride
                .checked_mul(extent - 1)
                .and_then(|step| reach.checked_add(step))
                .ok_or_else(|| {
                    invalid!(
                        "{} spans more bytes than the address space holds",
                        self.name
                    )
                })?;
        }
        Ok(())
    }

    /// `strides`, or for an empty tensor row-major strides of `shape` (zero extents counted as
    /// one): an empty tensor's own strides were never bounded (no element is addressed), but
    /// ndarray wants every offset of a view to fit in isize and no two indices to alias.
    fn view_strides<const D: usize>(&self, shape: [usize; D], strides: [usize; D]) -> [usize; D] {
        if self.numel > 0 {
            return strides;
        }
        let mut out = [0usize; D];
        let mut step = 1usize;
        for i in (0..D).rev() {
            out[i] = step;
            // Fits: the product of the non-zero extents was checked against isize::MAX.
            step = step.saturating_mul(shape[i].max(1));
        }
        out
    }

    fn ptr<T>(&self) -> *mut T {
        if self.numel == 0 {
            // ndarray wants a non-null, aligned pointer even for an empty view.
            std::ptr::NonNull::<T>::dangling().as_ptr()
        } else {
            self.data.cast()
        }
    }

    /// A 3-D view with the given extents and strides (which describe this tensor's elements,
    /// possibly with an inserted unit dimension).
    ///
    /// # Safety
    /// The tensor passed [`RawTensor::read`], its dtype is `T`, its memory is readable for the
    /// life `'a` and not written during it, and `shape`/`strides` address only its elements.
    pub unsafe fn view3<'a, T>(&self, shape: [usize; 3], strides: [usize; 3]) -> ArrayView3<'a, T> {
        // SAFETY: per this function's contract every addressed element lies inside the checked,
        // aligned, non-wrapping span of a live allocation, and offsets fit in isize.
        unsafe {
            ArrayView3::from_shape_ptr(
                shape.strides(self.view_strides(shape, strides)),
                self.ptr::<T>(),
            )
        }
    }

    /// A mutable 3-D view, as [`RawTensor::view3`].
    ///
    /// # Safety
    /// As [`RawTensor::view3`], and the memory is writable, accessed by nothing else for `'a`, and
    /// [`RawTensor::expect_non_overlapping`] passed.
    pub unsafe fn view3_mut<'a, T>(
        &self,
        shape: [usize; 3],
        strides: [usize; 3],
    ) -> ArrayViewMut3<'a, T> {
        // SAFETY: as view3, and no two elements alias (checked) and nothing else accesses them.
        unsafe {
            ArrayViewMut3::from_shape_ptr(
                shape.strides(self.view_strides(shape, strides)),
                self.ptr::<T>(),
            )
        }
    }

    /// A 2-D view over the first two dimensions.
    ///
    /// # Safety
    /// As [`RawTensor::view3`].
    pub unsafe fn view2<'a, T>(&self, shape: [usize; 2], strides: [usize; 2]) -> ArrayView2<'a, T> {
        // SAFETY: as view3.
        unsafe {
            ArrayView2::from_shape_ptr(
                shape.strides(self.view_strides(shape, strides)),
                self.ptr::<T>(),
            )
        }
    }

    /// A mutable 2-D view, as [`RawTensor::view2`].
    ///
    /// # Safety
    /// As [`RawTensor::view3_mut`].
    pub unsafe fn view2_mut<'a, T>(
        &self,
        shape: [usize; 2],
        strides: [usize; 2],
    ) -> ArrayViewMut2<'a, T> {
        // SAFETY: as view3_mut.
        unsafe {
            ArrayViewMut2::from_shape_ptr(
                shape.strides(self.view_strides(shape, strides)),
                self.ptr::<T>(),
            )
        }
    }

    /// A 1-D view: the tensor's single dimension, or its one element when `ndim` is 0.
    ///
    /// # Safety
    /// As [`RawTensor::view3`], with `ndim` 0 or 1.
    pub unsafe fn view1<'a, T>(&self) -> ArrayView1<'a, T> {
        let (n, s) = self.dim1();
        // SAFETY: as view3.
        unsafe {
            ArrayView1::from_shape_ptr([n].strides(self.view_strides([n], [s])), self.ptr::<T>())
        }
    }

    /// A mutable 1-D view, as [`RawTensor::view1`].
    ///
    /// # Safety
    /// As [`RawTensor::view3_mut`], with `ndim` 0 or 1.
    pub unsafe fn view1_mut<'a, T>(&self) -> ArrayViewMut1<'a, T> {
        let (n, s) = self.dim1();
        // SAFETY: as view3_mut.
        unsafe {
            ArrayViewMut1::from_shape_ptr([n].strides(self.view_strides([n], [s])), self.ptr::<T>())
        }
    }

    fn dim1(&self) -> (usize, usize) {
        if self.ndim == 0 {
            (1, 0)
        } else {
            (self.shape[0], self.strides[0])
        }
    }
}
