//! Worker pools owned by the library, one per worker count, created on first use and kept for
//! the life of the process (a call with n threads uses the calling thread and a pool of n - 1).
//! rayon's global pool is never built, configured or used, so a host application's own rayon
//! setup is left alone.

use crate::error::Error;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex, OnceLock};

/// The most worker threads one pool may have; larger requests are served by this many.
pub(crate) const MAX_THREADS: usize = 256;

fn pools() -> &'static Mutex<Vec<Option<Arc<ThreadPool>>>> {
    static POOLS: OnceLock<Mutex<Vec<Option<Arc<ThreadPool>>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(vec![None; MAX_THREADS + 1]))
}

/// The thread count a request for `requested` threads (0 = default) is served with.
pub(crate) fn effective_threads(requested: usize) -> usize {
    let n = if requested == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        requested
    };
    n.clamp(1, MAX_THREADS)
}

/// The library's pool of `effective_threads(requested)` workers.
pub(crate) fn pool(requested: usize) -> Result<Arc<ThreadPool>, Error> {
    let n = effective_threads(requested);
    // A panic while the lock was held cannot leave the vector inconsistent: recover it.
    let mut pools = pools().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = &pools[n] {
        return Ok(Arc::clone(p));
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("ctc-worker-{i}"))
        .build()
        .map_err(|e| Error::OutOfMemory(format!("could not start {n} worker threads: {e}")))?;
    let p = Arc::new(p);
    pools[n] = Some(Arc::clone(&p));
    Ok(p)
}

/// Runs `f` on every item of `items` with `threads` threads: the calling thread and
/// `threads - 1` workers of the library's pool of that many, each taking the next item as it
/// becomes free (so the caller works instead of waiting, and a call of as many items as threads
/// wakes one worker fewer). Which thread runs an item never changes what `f` computes. rayon
/// boxes each spawned task: `threads - 1` small allocations per call with more than one thread.
pub(crate) fn for_each<T: Send, I: Iterator<Item = T> + Send>(
    threads: usize,
    items: I,
    f: impl Fn(T) + Sync,
) -> Result<(), Error> {
    let items = Mutex::new(items);
    let work = || loop {
        // A panic in `f` elsewhere cannot leave the iterator inconsistent: recover it.
        let next = items.lock().unwrap_or_else(|e| e.into_inner()).next();
        match next {
            Some(item) => f(item),
            None => return,
        }
    };
    let n = threads.clamp(1, MAX_THREADS);
    if n == 1 {
        work();
        return Ok(());
    }
    pool(n - 1)?.in_place_scope(|s| {
        for _ in 1..n {
            s.spawn(|_| work());
        }
        work();
    });
    Ok(())
}
