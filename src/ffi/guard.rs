//! The guard every exported function runs its body in: it catches panics (a panic must never
//! unwind into C), converts the crate's [`Error`] into a status and keeps the message in the
//! calling thread's last-error slot.

use super::CtcStatus;
use crate::error::{Error, Status};
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// The message of this thread's last call: empty after a success.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Messages are built by the library and never hold NUL, but a panic payload could.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
}

/// A pointer to this thread's last message, valid until the next call on this thread.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs `body`, maps its outcome (a caught panic included) to a status and records the message.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Error>) -> CtcStatus {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(Error::Internal(format!(
            "libctc panicked (a bug; please report it): {}",
            panic_message(payload.as_ref())
        )))
    });
    match outcome {
        Ok(()) => {
            set_last_error("");
            Status::Success as CtcStatus
        }
        Err(e) => {
            set_last_error(e.message());
            e.status() as CtcStatus
        }
    }
}
