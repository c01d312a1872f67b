//! Running a test body alone in a fresh process of the same test binary, for tests that count the
//! process's threads or memory, fork, or lower its resource limits.

use std::process::Command;

const VAR: &str = "CTC_ISOLATED_TEST";

/// Runs `body` in a new process of this test binary in which no other test runs (and in which
/// libctc has done nothing yet), and fails if that process fails. `name` is the test's name.
pub fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var(VAR).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(VAR, name)
        .output()
        .expect("the test binary runs again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{text}");
    assert!(out.status.success(), "isolated run of {name} failed");
    assert!(
        text.contains("1 passed"),
        "the isolated run of {name} ran no test:\n{text}"
    );
}

/// Threads of this process (Linux: entries of /proc/self/task).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of this process in bytes (Linux: /proc/self/statm).
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Threads of this process once at most `bound` remain, or after a second: a joined thread can
/// stay listed in /proc for a moment after `join` returns.
pub fn settled_thread_count(bound: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let n = thread_count();
        if n <= bound || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
