//! Helper threads owned by the library. A call with n threads runs on the calling thread and a
//! crew of n - 1 helpers, which take the work items one at a time alongside it. Crews are created
//! on first use, one per concurrent caller of a size, and kept for the life of the process (idle
//! helpers spin briefly after a job, then sleep); a call takes an idle crew and gives it back,
//! so that in steady state a call allocates nothing. rayon's global pool, or any other thread
//! pool of the host application, is never built, configured or used.
//!
//! The only unsafe code is the hand-over of the job (a closure borrowed from the caller's stack)
//! to the helpers, under one rule: a helper calls the job only after taking it from the crew's
//! state while the job is open, and the caller closes the job and waits until every helper that
//! took it has returned before its borrow ends, whether the caller's own share returned or
//! panicked (`Close`).

use crate::error::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The most threads one call may use; larger requests are served by this many.
pub(crate) const MAX_THREADS: usize = 256;

/// How long an idle helper watches for the next job before it sleeps, and a caller for its
/// helpers to finish before it sleeps: back-to-back calls find their helpers awake and are not
/// delayed by a wake-up, and an idle helper does not hold a core for long after the last call.
const SPIN: Duration = Duration::from_micros(50);

/// Spins until `done()` or `SPIN` has passed; returns `done()`.
fn spin_until(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return done();
        }
    }
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

/// The job of a crew: the caller's closure with its lifetime erased (see the module doc).
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn() + Sync + 'static));

// SAFETY: the closure behind the pointer is `Sync`, so calling it from a helper thread is
// allowed; the pointer is dereferenced only while the caller keeps the closure alive (module
// doc).
unsafe impl Send for Job {}

struct State {
    /// The job helpers may take, while `open > 0`.
    job: Option<Job>,
    /// Helpers that may still take the current job.
    open: usize,
    /// Helpers inside the current job.
    running: usize,
    /// Helpers waiting on `start`.
    sleeping: usize,
    /// Whether a helper's share of the current job panicked.
    panicked: bool,
    /// Helpers that have started.
    started: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped with every job (helpers spin on it before they sleep on `start`).
    generation: AtomicU64,
    /// `State::running`, for the caller to spin on.
    busy: AtomicUsize,
    start: Condvar,
    finish: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock (the job runs outside it): recover anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `helpers` threads that run one job at a time with a caller.
struct Crew {
    shared: Arc<Shared>,
    helpers: usize,
}

impl Crew {
    fn new(helpers: usize) -> Result<Crew, Error> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                job: None,
                open: 0,
                running: 0,
                sleeping: 0,
                panicked: false,
                started: 0,
            }),
            generation: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            start: Condvar::new(),
            finish: Condvar::new(),
        });
        for i in 0..helpers {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("ctc-worker-{i}"))
                .spawn(move || helper(&shared))
                .map_err(|e| {
                    Error::OutOfMemory(format!("could not start {helpers} worker threads: {e}"))
                })?;
        }
        // Wait until every helper runs: a thread's start-up (which allocates) then never falls
        // into a later call.
        let mut st = shared.lock();
        while st.started < helpers {
            st = shared.finish.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        drop(st);
        Ok(Crew { shared, helpers })
    }

    /// Runs `work` on the calling thread and on up to `open` helpers that wake up in time;
    /// returns once all of them have returned, and whether a helper's share panicked.
    fn run(&self, work: &(dyn Fn() + Sync), open: usize) -> bool {
        // SAFETY: only the lifetime is changed. Helpers call the job only between taking it
        // (under the lock, while open) and decrementing `running`; `Close` (dropped before this
        // function returns or unwinds) closes the job and waits for `running` to reach 0, so the
        // closure outlives every call.
        let job = Job(unsafe {
            std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const (dyn Fn() + Sync + 'static)>(
                work,
            )
        });
        struct Close<'a>(&'a Shared);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.lock().open = 0;
                spin_until(|| self.0.busy.load(Ordering::Acquire) == 0);
                let mut st = self.0.lock();
                while st.running > 0 {
                    st = self.0.finish.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.job = None;
            }
        }
        // Armed before the job is published, so that nothing between the two can skip it.
        let close = Close(&self.shared);
        let sleeping = {
            let mut st = self.shared.lock();
            st.job = Some(job);
            st.open = open.min(self.helpers);
            st.panicked = false;
            self.shared.generation.fetch_add(1, Ordering::Release);
            st.sleeping
        };
        if sleeping > 0 {
            self.shared.start.notify_all();
        }
        work();
        drop(close);
        self.shared.lock().panicked
    }
}

/// A helper's life: spin a while for the next job, then sleep; take the job if it is still open,
/// run it, report.
fn helper(shared: &Shared) {
    // No job is offered before every helper of the crew has started (`Crew::new`).
    shared.lock().started += 1;
    shared.finish.notify_all();
    let mut seen = 0u64;
    loop {
        spin_until(|| shared.generation.load(Ordering::Acquire) != seen);
        let mut st = shared.lock();
        // The generation changes only under the lock: a job started after this check finds this
        // helper waiting (`sleeping`) and wakes it.
        while shared.generation.load(Ordering::Acquire) == seen {
            st.sleeping += 1;
            st = shared.start.wait(st).unwrap_or_else(|e| e.into_inner());
            st.sleeping -= 1;
        }
        seen = shared.generation.load(Ordering::Acquire);
        let Some(job) = st.job.filter(|_| st.open > 0) else {
            continue; // closed before this helper came
        };
        st.open -= 1;
        st.running += 1;
        shared.busy.store(st.running, Ordering::Release);
        drop(st);
        // SAFETY: the job was taken while open, and the caller keeps its closure alive until
        // `running` is back to 0 (`Crew::run`).
        let ok = match catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)() })) {
            Ok(()) => true,
            Err(payload) => {
                // Not dropped: a payload whose drop panics would end this thread with
                // `running` still counting it, and the caller would wait for ever.
                std::mem::forget(payload);
                false
            }
        };
        let mut st = shared.lock();
        st.running -= 1;
        shared.busy.store(st.running, Ordering::Release);
        st.panicked |= !ok;
        if st.running == 0 {
            shared.finish.notify_all();
        }
    }
}

/// The idle crews, by helper count.
fn idle() -> &'static Mutex<Vec<Vec<Crew>>> {
    static IDLE: OnceLock<Mutex<Vec<Vec<Crew>>>> = OnceLock::new();
    IDLE.get_or_init(|| Mutex::new((0..MAX_THREADS).map(|_| Vec::new()).collect()))
}

/// A crew taken from the idle ones (or new), given back when dropped.
struct Lease(Option<Crew>);

impl Lease {
    fn take(helpers: usize) -> Result<Lease, Error> {
        let crew = idle().lock().unwrap_or_else(|e| e.into_inner())[helpers].pop();
        Ok(Lease(Some(match crew {
            Some(crew) => crew,
            None => Crew::new(helpers)?,
        })))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(crew) = self.0.take() {
            let helpers = crew.helpers;
            idle().lock().unwrap_or_else(|e| e.into_inner())[helpers].push(crew);
        }
    }
}

/// Runs `f` on every item of `items` with up to `threads` threads (at most one per item): the
/// calling thread and helpers of a crew of `threads - 1` (the crew's size depends only on
/// `threads`, so batches of any size share the crews), each taking the next item as it becomes
/// free (so the caller works instead of waiting, and a helper that wakes late finds nothing
/// left). Which thread runs an item never changes what `f` computes. Allocates nothing once a
/// crew of this size is idle (the first call of each concurrent caller creates one).
pub(crate) fn for_each<T: Send, I: ExactSizeIterator<Item = T> + Send>(
    threads: usize,
    items: I,
    f: impl Fn(T) + Sync,
) -> Result<(), Error> {
    let n = threads.clamp(1, MAX_THREADS);
    let useful = n.min(items.len());
    let items = Mutex::new(items);
    let work = || loop {
        // A panic in `f` elsewhere cannot leave the iterator inconsistent: recover it.
        let next = items.lock().unwrap_or_else(|e| e.into_inner()).next();
        match next {
            Some(item) => f(item),
            None => return,
        }
    };
    if useful <= 1 {
        work();
        return Ok(());
    }
    let lease = Lease::take(n - 1)?;
    let crew = lease.0.as_ref().expect("a leased crew");
    if crew.run(&work, useful - 1) {
        return Err(Error::Internal("a worker thread panicked".to_string()));
    }
    Ok(())
}
