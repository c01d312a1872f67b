//! The library's own stream-ordered memory pool on each device, for workspaces the caller does
//! not provide.
//!
//! The device's default pool (what `cuMemAllocAsync` takes from) keeps nothing after a
//! synchronization unless its release threshold is raised, and raising it would change the pool
//! of every other user in the process. A pool of our own keeps up to [`KEEP_BYTES`] across
//! synchronizations, so that a training loop's calls reuse their workspace instead of going back
//! to the driver each step, and leaves the default pool alone. The pools live as long as the
//! process (like the primary contexts the library retains).

use super::driver::check;
use crate::error::Error;
use cudarc::driver::sys as cu;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Bytes a pool keeps after a synchronization: the bound the CPU path keeps for its own scratch.
pub(crate) const KEEP_BYTES: u64 = 256 << 20;

/// The pool of device `ordinal`, made at its first request.
fn pool(ordinal: i32) -> Result<cu::CUmemoryPool, Error> {
    // Pools as addresses: the handles are only passed back to the driver.
    static POOLS: OnceLock<Mutex<HashMap<i32, usize>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&p) = pools.get(&ordinal) {
        return Ok(p as cu::CUmemoryPool);
    }
    // SAFETY: plain data; every field the driver reads is set below or zero.
    let mut props: cu::CUmemPoolProps = unsafe { std::mem::zeroed() };
    props.allocType = cu::CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED;
    props.handleTypes = cu::CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_NONE;
    props.location.type_ = cu::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = ordinal;
    let mut p: cu::CUmemoryPool = std::ptr::null_mut();
    // SAFETY: the driver is initialized; valid out-pointer and properties.
    check(
        unsafe { cu::cuMemPoolCreate(&mut p, &props) },
        "cuMemPoolCreate",
    )?;
    let mut keep = KEEP_BYTES;
    // SAFETY: `p` was just made; the attribute takes a pointer to a cuuint64_t.
    let set = unsafe {
        cu::cuMemPoolSetAttribute(
            p,
            cu::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut keep as *mut u64).cast(),
        )
    };
    if let Err(e) = check(set, "cuMemPoolSetAttribute") {
        // SAFETY: nothing was allocated from it.
        unsafe { cu::cuMemPoolDestroy(p) };
        return Err(e);
    }
    pools.insert(ordinal, p as usize);
    Ok(p)
}

/// `bytes` from device `ordinal`'s pool, in `stream`'s order (free with `cuMemFreeAsync`).
pub(crate) fn alloc_async(
    ordinal: i32,
    bytes: usize,
    stream: cu::CUstream,
) -> Result<cu::CUdeviceptr, Error> {
    let pool = pool(ordinal)?;
    let mut ptr: cu::CUdeviceptr = 0;
    // SAFETY: a current context on device `ordinal` exists (the caller's guard); valid
    // out-pointer; the pool belongs to that device.
    check(
        unsafe { cu::cuMemAllocFromPoolAsync(&mut ptr, bytes, pool, stream) },
        "cuMemAllocFromPoolAsync",
    )?;
    Ok(ptr)
}
