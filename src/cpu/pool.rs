//! CPU parallelism: one rayon pool owned by the library, shared by every caller and every thread
//! count.
//!
//! - The pool is created on the first call that asks for more than one thread, with one thread
//!   per CPU available to the process (`std::thread::available_parallelism`), and configured
//!   only here (never from the host's environment; rayon's global pool is never built or used).
//! - `num_threads` caps the parallelism of one call: the calling thread works and at most
//!   `min(num_threads, pool size, items) - 1` pool threads join it. Larger requests are served by
//!   the pool's size, so no request creates threads.
//! - Fork: a child process inherits the pool's bookkeeping but not its threads. The pool
//!   remembers the process it was built in; a call in another process builds a new pool (the old
//!   one is left untouched: its locks may have been held by threads that no longer exist).
//! - A failed thread start fails that call with `OutOfMemory`; later calls in the process run on
//!   their calling thread until [`reset_after_failure`] (`ctc_release_cached_memory`) allows a
//!   new attempt.
//!
//! Which thread runs an item never changes what is computed, so results are bitwise identical for
//! every thread count.

use crate::error::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The pool of one process.
struct Pool {
    /// The process the pool's threads run in.
    pid: u32,
    threads: rayon_core::ThreadPool,
}

/// The current pool, leaked so that references stay valid for the life of the process (one
/// pool per process: the first, and one per forked child that computes with threads).
static CURRENT: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

/// The process in which a thread start failed (0: none): its calls run on the calling thread.
static FAILED_IN: AtomicU32 = AtomicU32::new(0);

/// The process whose thread is building the pool (0: none).
static BUILDER: AtomicU32 = AtomicU32::new(0);

/// CPUs available to the process when first asked (the pool's size). Cached: the query reads
/// cgroup files and allocates, and the pool's size is fixed once it exists anyway.
pub(crate) fn available_cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The pool of this process, built on first use; `None` when an earlier thread start failed in
/// this process.
fn pool() -> Result<Option<&'static Pool>, Error> {
    let pid = std::process::id();
    loop {
        // SAFETY: CURRENT only ever holds null or a leaked, never freed `Pool`.
        if let Some(p) = unsafe { CURRENT.load(Ordering::Acquire).as_ref() } {
            if p.pid == pid {
                return Ok(Some(p));
            }
        }
        if FAILED_IN.load(Ordering::Acquire) == pid {
            return Ok(None);
        }
        // One builder at a time, named by its process: a builder of another process is a
        // parent's, frozen by fork(), and does not hold this process back (a Mutex held across
        // fork() would stay locked in the child for ever).
        let builder = BUILDER.load(Ordering::Acquire);
        if builder == pid {
            std::thread::yield_now();
            continue;
        }
        if BUILDER
            .compare_exchange(builder, pid, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let built = build(pid);
            BUILDER.store(0, Ordering::Release);
            return built;
        }
    }
}

/// Starts the pool of process `pid` and publishes it (the caller is the only builder).
fn build(pid: u32) -> Result<Option<&'static Pool>, Error> {
    // SAFETY: as in `pool`.
    if let Some(p) = unsafe { CURRENT.load(Ordering::Acquire).as_ref() } {
        if p.pid == pid {
            return Ok(Some(p)); // built while this caller waited
        }
    }
    let size = available_cpus();
    let threads = rayon_core::ThreadPoolBuilder::new()
        .num_threads(size)
        .thread_name(|i| format!("ctc-worker-{i}"))
        .build()
        .map_err(|e| {
            FAILED_IN.store(pid, Ordering::Release);
            Error::OutOfMemory(format!(
                "could not start the {size} CPU worker threads of libctc ({e}); this call failed, \
                 later calls run on their calling thread until ctc_release_cached_memory()"
            ))
        })?;
    let pool: &'static Pool = Box::leak(Box::new(Pool { pid, threads }));
    CURRENT.store(pool as *const Pool as *mut Pool, Ordering::Release);
    Ok(Some(pool))
}

/// Lets the next call that wants threads try to start them again after a failed start.
pub(crate) fn reset_after_failure() {
    FAILED_IN.store(0, Ordering::Release);
}

/// The thread count a request for `requested` threads (0 = every CPU) is served with: at most
/// the pool's size.
pub(crate) fn effective_threads(requested: usize) -> usize {
    let cpus = available_cpus();
    if requested == 0 {
        cpus
    } else {
        requested.min(cpus)
    }
}

/// Runs `f` on every item of `items` with up to `threads` threads (at most one per item): the
/// calling thread and pool threads, each taking the next item as it becomes free.
pub(crate) fn for_each<T: Send, I: ExactSizeIterator<Item = T> + Send>(
    threads: usize,
    items: I,
    f: impl Fn(T) + Sync,
) -> Result<(), Error> {
    let useful = effective_threads(threads.max(1)).min(items.len());
    let items = Mutex::new(items);
    let work = || loop {
        // A panic in `f` elsewhere cannot leave the iterator inconsistent: recover it.
        let next = items.lock().unwrap_or_else(|e| e.into_inner()).next();
        match next {
            Some(item) => f(item),
            None => return,
        }
    };
    let pool = if useful > 1 { pool()? } else { None };
    let Some(pool) = pool else {
        work();
        return Ok(());
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.threads.in_place_scope(|scope| {
            for _ in 1..useful {
                scope.spawn(|_| work());
            }
            work();
        })
    }));
    outcome.map_err(|_| Error::Internal("a CPU worker thread panicked".to_string()))
}
