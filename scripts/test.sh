#!/usr/bin/env bash
# The README's test command: every suite (`cargo test`), then a summary of what did not run on
# this machine and why. With --quick, the unit tests and the quick integration suites only (an
# edit-compile-test cycle of under a minute); CI runs the whole set (.ci/run).
# CTC_REQUIRE_ALL=1 turns every skip into a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export CTC_SKIP_LOG=$log
quick=(--lib --test alloc --test c_api --test cpp_api --test golden --test gradcheck --test header
       --test limits --test numeric --test oracle --test stress --test validation)
if [ "${1:-}" = --quick ]; then
  cargo test "${quick[@]}"
else
  cargo test
fi
status=$?
echo
if [ -s "$log" ]; then
  echo "Not run on this machine (install what they name, or see .ci/run):"
  sort -u "$log" | sed 's/^/  /'
else
  echo "Every suite ran."
fi
exit $status
