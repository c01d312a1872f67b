//! Library-owned scratch memory for calls without a caller workspace: a process-wide cache of
//! buffers, so that a call allocates nothing in steady state, with a bound on what stays cached
//! between calls ([`CACHED_WORKSPACE_LIMIT`] bytes in all, not per thread) and a way to free it
//! ([`release`]).
//!
//! A call takes the smallest cached buffer that is large enough (or grows the largest), uses it
//! alone, and gives it back; concurrent calls get different buffers.

use crate::error::Error;
use std::sync::Mutex;

/// The most scratch memory the library keeps cached between calls, in bytes, for the whole
/// process. A call may use more while it runs; what exceeds the bound is freed when it returns.
pub const CACHED_WORKSPACE_LIMIT: usize = 256 << 20;

/// Free buffers, by no particular order, and the bytes they hold.
struct Cache {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    free: Vec::new(),
    bytes: 0,
});

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    // Nothing panics while holding the lock; recover anyway.
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cached buffer of at least `bytes` bytes if there is one, else the largest (to grow).
fn take(bytes: usize) -> Vec<u8> {
    let mut cache = lock();
    let fits = |v: &Vec<u8>| v.len() >= bytes;
    let pick = (0..cache.free.len())
        .filter(|&i| fits(&cache.free[i]))
        .min_by_key(|&i| cache.free[i].len())
        .or_else(|| (0..cache.free.len()).max_by_key(|&i| cache.free[i].len()));
    match pick {
        Some(i) => {
            let v = cache.free.swap_remove(i);
            cache.bytes -= v.len();
            v
        }
        None => Vec::new(),
    }
}

/// Puts `v` back, then drops the smallest buffers until the cache is within its bound.
fn give_back(v: Vec<u8>) {
    let mut evicted = Vec::new();
    {
        let mut cache = lock();
        if cache.free.capacity() == 0 {
            // Once, so that giving back never grows the list in steady state.
            cache.free.reserve(64);
        }
        cache.bytes += v.len();
        cache.free.push(v);
        while cache.bytes > CACHED_WORKSPACE_LIMIT || cache.free.len() > 64 {
            let i = (0..cache.free.len())
                .min_by_key(|&i| cache.free[i].len())
                .expect("a non-empty cache");
            let gone = cache.free.swap_remove(i);
            cache.bytes -= gone.len();
            evicted.push(gone);
        }
    }
    drop(evicted); // freed outside the lock
}

/// Grows `v` to `bytes` bytes, reporting failure instead of aborting.
fn grow(v: &mut Vec<u8>, bytes: usize) -> Result<(), Error> {
    if v.len() < bytes {
        *v = Vec::new();
        v.try_reserve_exact(bytes).map_err(|_| {
            Error::OutOfMemory(format!("could not allocate a workspace of {bytes} bytes"))
        })?;
        v.resize(bytes, 0);
    }
    Ok(())
}

/// Runs `f` on `bytes` bytes of library-owned scratch memory.
pub(crate) fn with_scratch<R>(
    bytes: usize,
    f: impl FnOnce(&mut [u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    let mut buffer = take(bytes);
    let result = grow(&mut buffer, bytes).and_then(|()| f(&mut buffer[..bytes]));
    give_back(buffer);
    result
}

/// Frees every cached buffer (those in use by running calls are cached again when their calls
/// return); returns the bytes freed.
pub(crate) fn release() -> usize {
    let freed = std::mem::take(&mut lock().free);
    let bytes = freed.iter().map(Vec::len).sum();
    lock().bytes -= bytes;
    bytes
}
