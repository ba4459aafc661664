#!/usr/bin/env bash
# The unit tests under AddressSanitizer (+ LeakSanitizer) and ThreadSanitizer, each in its own
# build folder (.build-asan, .build-tsan: every module is rebuilt instrumented, so neither can
# share .build or the fuzz build's .build-fuzz without rebuilding it each time).
#
# Usage: scripts/sanitizers.sh [asan|tsan|all]      (default all)
#
# Measured on the 2-core machine (with another engineer's builds running), from an empty
# build folder: ASan build 709 s + tests 33 s (all 393 tests); TSan build 513 s + tests 66 s
# (all) or 35 s (TSAN_SUITES, serial) -- ~22 minutes for both, over the ~15 asked for, so:
#   ASan: every test suite.
#   TSan: TSAN_SUITES only (fabric, engine, TCMU, backstores: the code with its own threads,
#         locks and atomics); the admin web/API, config and runtime suites mostly wait on
#         Hummingbird/NIO. The build dominates either way (every test target is linked into
#         one test bundle, so a filter cannot shorten it).
# The test run is bounded by `timeout`; a sanitizer report fails the step with its first lines
# printed (full logs under ci-artifacts/sanitizers/).
# Skipped under sanitizers: nothing needs root beyond the loop-device tests (CI runs as root);
# the LIO VM and libiscsi suites are scripts, not unit tests, and are not run here.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
which=${1:-all}
out=${ARTIFACTS:-$here/ci-artifacts}/sanitizers
mkdir -p "$out"
TSAN_SUITES=${TSAN_SUITES:-'^(ISCSIFabricTests|SCSIEngineTests|TCMUTests|BackstoresTests)\.'}
test_timeout=${SANITIZER_TEST_TIMEOUT:-1200}
# The Swift runtime's backtracer would catch a sanitizer's trap before the sanitizer reports it.
export SWIFT_BACKTRACE=enable=no
# Suppressions (scripts/sanitizers/*.supp) cover the toolchain and test tooling only; each
# entry says why.
supp=$here/scripts/sanitizers
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:suppressions=$supp/asan.supp}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1:suppressions=$supp/tsan.supp}

status=0
run() { # name sanitizer scratch [swift test args…]
  local name=$1 sanitizer=$2 scratch=$3; shift 3
  local start build_s test_s rc=0
  start=$(date +%s)
  # Only the test bundle and what it links, and the two binaries (not the fuzz and probe executables):
  # CtlProcessTests runs swift-targetctl and swift-targetd from beside the test bundle.
  if ! { nice -n 10 swift build --product SwiftTargetPackageTests --sanitize="$sanitizer" --scratch-path "$scratch" \
         && nice -n 10 swift build --product swift-targetctl --sanitize="$sanitizer" --scratch-path "$scratch" \
         && nice -n 10 swift build --product swift-targetd --sanitize="$sanitizer" --scratch-path "$scratch"; } \
      > "$out/$name-build.log" 2>&1; then
    echo "sanitizer[$name]: build FAILED"; grep -E 'error' "$out/$name-build.log" | head -20; status=1; return
  fi
  build_s=$(( $(date +%s) - start )); start=$(date +%s)
  timeout "$test_timeout" nice -n 10 swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "$@" \
    > "$out/$name-test.log" 2>&1 || rc=$?
  test_s=$(( $(date +%s) - start ))
  local reports summary
  reports=$(grep -cE '^(==[0-9]+==ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|SUMMARY: (Address|Thread|Leak)Sanitizer)' "$out/$name-test.log" || true)
  summary=$(grep -E 'Test run with [0-9]+ tests?' "$out/$name-test.log" | tail -1 | sed -E 's/^[^A-Za-z]*//')
  echo "sanitizer[$name]: build ${build_s} s, tests ${test_s} s: ${summary:-no test summary}; $reports sanitizer reports"
  if [ "$rc" != 0 ] || [ "$reports" != 0 ] || ! grep -qE 'Test run with [0-9]+ tests? .*passed' "$out/$name-test.log"; then
    status=1
    [ "$rc" = 124 ] && echo "  timed out after ${test_timeout} s"
    grep -m 12 -E -A3 '^(==[0-9]+==ERROR|WARNING: ThreadSanitizer)' "$out/$name-test.log" | sed 's/^/  /' || true
    grep -m 10 -E '✘|error:' "$out/$name-test.log" | sed 's/^/  /' || true
    echo "  log: ci-artifacts/sanitizers/$name-test.log"
  fi
}

case $which in
  asan|all) run asan address "$here/.build-asan" ;;&
  tsan|all) # --no-parallel: concurrently running tests' system() children briefly inherit the
            # other tests' descriptors (and flocks); under TSan that window is long enough to make
            # HandlerTests' second handler find its image "in use". Serial is no slower here.
            run tsan thread "$here/.build-tsan" --no-parallel --filter "$TSAN_SUITES" ;;
  asan) ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
exit $status
