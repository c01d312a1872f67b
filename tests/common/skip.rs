//! Saying what did not run: a test that cannot run here calls [`skip`], which prints why, records
//! it for the summary of `scripts/test.sh` (in `$CTC_SKIP_LOG`), and fails instead when
//! `CTC_REQUIRE_ALL=1` (CI sets it, so a green CI means every suite ran).

use std::io::Write;

/// Whether every test must run (`CTC_REQUIRE_ALL=1`).
pub fn require_all() -> bool {
    std::env::var("CTC_REQUIRE_ALL").as_deref() == Ok("1")
}

/// Reports that `test` cannot run here because of `why`: prints "SKIPPED test: why", appends it to
/// `$CTC_SKIP_LOG` when set, and panics when `CTC_REQUIRE_ALL=1`.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    let line = format!("SKIPPED {test}: {why}");
    println!("{line}");
    if let Some(path) = std::env::var_os("CTC_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    assert!(!require_all(), "CTC_REQUIRE_ALL=1 but {line}");
}
