#!/usr/bin/env bash
# Bounded fuzz run of libctc's C ABI: fuzz/fuzz_targets/c_abi.rs under libFuzzer with
# AddressSanitizer (cargo-fuzz), for SECONDS seconds (default 60).
#
#   bash scripts/fuzz.sh [SECONDS]
#
# Installs cargo-fuzz (cargo install --locked cargo-fuzz) when it is missing. cargo-fuzz needs
# nightly compiler flags (-Zsanitizer=address); this script gets them from the stable toolchain
# with RUSTC_BOOTSTRAP=1, so no nightly toolchain is needed.
#
# Exit status: 0 when the run ends without a finding; 1 on a finding (crash, sanitizer report,
# leak, timeout, out-of-memory: the input is saved under fuzz/artifacts/c_abi/ and the command to
# reproduce it is printed) or when the fuzz target itself does not compile. When the machine
# cannot fuzz (cargo-fuzz cannot be installed, e.g. offline; the sanitizer build or runtime does
# not work here) it prints "SKIPPED fuzz: <reason>" and exits 0 (1 under CTC_REQUIRE_ALL=1).
#
# The committed seeds are in fuzz/corpus/c_abi/ (read only); what a run discovers goes to
# fuzz/corpus-run/c_abi/ (ignored by git) and is reused by the next run on this machine.
# Environment: CTC_FUZZ_DEBUG=1 prints each call's arguments (for reading a finding).
set -uo pipefail
cd "$(dirname "$0")/.."

RUN_SECONDS="${1:-60}"
case "$RUN_SECONDS" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
export CARGO_TERM_COLOR=never
export RUSTC_BOOTSTRAP=1
LOG_DIR="${TMPDIR:-/tmp}/libctc-fuzz.$$"
mkdir -p "$LOG_DIR"
trap 'rm -rf "$LOG_DIR"' EXIT

skip() {
  echo "SKIPPED fuzz: $*"
  # CI (CTC_REQUIRE_ALL=1) must not pass without having fuzzed.
  [ "${CTC_REQUIRE_ALL:-}" = 1 ] && exit 1
  exit 0
}

command -v cargo >/dev/null 2>&1 || skip "cargo is not installed"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64 | Linux-aarch64 | Darwin-*) ;;
  *) skip "libFuzzer with AddressSanitizer is not supported on $(uname -s)-$(uname -m)" ;;
esac
command -v c++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 ||
  skip "no C++ compiler to build libFuzzer (libfuzzer-sys compiles it from source)"

start=$(date +%s)
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install --locked cargo-fuzz"
  if ! cargo install --locked cargo-fuzz >"$LOG_DIR/install.log" 2>&1; then
    tail -n 20 "$LOG_DIR/install.log"
    skip "cargo install --locked cargo-fuzz failed (offline or no registry access?)"
  fi
  echo "   installed in $(($(date +%s) - start)) s"
fi
echo "== $(cargo fuzz --version 2>/dev/null), $(rustc --version)"

echo "== RUSTC_BOOTSTRAP=1 cargo fuzz build c_abi (AddressSanitizer, release with debug assertions)"
build_start=$(date +%s)
if ! cargo fuzz build c_abi >"$LOG_DIR/build.log" 2>&1; then
  tail -n 40 "$LOG_DIR/build.log"
  # A compile error in the target or the library is a real failure; anything else (the
  # sanitizer runtime cannot be linked, the toolchain refuses -Z flags) is the environment.
  # rustc's errors point at a source line on the next line; linker errors do not.
  if awk '/^error/ { e = 1; next } e && /^ *--> .*\.rs:[0-9]+:[0-9]+/ { found = 1 } { e = 0 }
          END { exit !found }' "$LOG_DIR/build.log"; then
    echo "fuzz: the fuzz target does not compile" >&2
    exit 1
  fi
  skip "the instrumented build failed here (see the log above)"
fi
echo "   built in $(($(date +%s) - build_start)) s"

mkdir -p fuzz/corpus-run/c_abi fuzz/artifacts/c_abi
before=$(find fuzz/artifacts/c_abi -type f | sort)
echo "== cargo fuzz run c_abi for ${RUN_SECONDS} s"
run_start=$(date +%s)
# -malloc_limit_mb above the target's ASan max_allocation_size_mb (256): a huge but honest request
# gets NULL from malloc (CTC_STATUS_OUT_OF_MEMORY) instead of stopping the run.
cargo fuzz run c_abi fuzz/corpus-run/c_abi fuzz/corpus/c_abi -- \
  -max_total_time="$RUN_SECONDS" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=512 \
  -print_final_stats=1 >"$LOG_DIR/run.log" 2>&1
status=$?
after=$(find fuzz/artifacts/c_abi -type f | sort)
new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG_DIR/run.log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$LOG_DIR/run.log" | tail -n 1)

if [ -n "$new" ]; then
  # What was detected: the panic message or the sanitizer's report, with a few lines of context.
  grep -v -E '^#[0-9]+' "$LOG_DIR/run.log" |
    grep -A 3 -E "panicked at|ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:" |
    head -n 60
  echo
  echo "fuzz: FINDING after $(($(date +%s) - run_start)) s (${execs:-?} executions). Saved input(s):"
  for f in $new; do
    echo "  $f"
    echo "    reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run c_abi $f"
    echo "    arguments: CTC_FUZZ_DEBUG=1 RUSTC_BOOTSTRAP=1 cargo fuzz run c_abi $f"
  done
  exit 1
fi
if [ "$status" -ne 0 ]; then
  tail -n 40 "$LOG_DIR/run.log"
  if grep -q -E 'Shadow memory range|ReserveShadowMemoryRange|failed to allocate 0x[0-9a-f]+ \([0-9]+\) bytes of SizeClassAllocator|ptrace' "$LOG_DIR/run.log"; then
    skip "AddressSanitizer cannot run here (address-space limit or ptrace restrictions)"
  fi
  # libFuzzer writes an artifact for everything it detects; exiting without one means the
  # process was stopped from outside (e.g. the kernel's OOM killer on a small machine).
  skip "the fuzzer stopped (exit status $status) without a finding (killed from outside?)"
fi
echo "fuzz: no finding: ${execs:-?} executions in $(($(date +%s) - run_start)) s (${cov:-cov: ?}; corpus fuzz/corpus-run/c_abi)"
exit 0
