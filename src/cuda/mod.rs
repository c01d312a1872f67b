//! The CUDA backend: the kernels of `kernels/ctc.cu` (the recurrence of [`crate::algorithm`],
//! same names), compiled by NVRTC at first use for each device's own architecture, launched on
//! the caller's stream in the caller's context.

pub(crate) mod driver;
pub(crate) mod launch;
pub(crate) mod layout;
mod module;
mod nvrtc;
mod params;

/// The kernel source, compiled at run time.
pub(crate) const KERNEL_SOURCE: &str = include_str!("kernels/ctc.cu");

/// CUDA devices the library can use: 0 when there is no driver or no device.
pub(crate) fn device_count() -> i32 {
    driver::device_count()
}
