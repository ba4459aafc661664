#!/usr/bin/env bash
# Every test: unit tests per module (incl. a real loop device when root), the fuzz targets
# and the unit tests again under ASan and TSan (scripts/sanitizers.sh), then libiscsi's
# iscsi-test-cu conformance suite against the daemon on a file, a sparse image, a loop
# device, over CHAP, and with two URLs (MultipathIO); then the TCMU handler: the randomized
# ring test at 1,000,000 commands and the real-kernel tests in the LIO VM (the handler alone,
# then the daemon's LIO-backed mode with the kernel initiator, then iscsi-test-cu against LIO
# with our handler next to LIO's fileio); before the VM, the release daemon's heap allocations per
# command (scripts/alloc-count.sh). Installs missing Debian packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# The seconds each phase took, so a slow phase shows in CI's log (the whole run is kept < 60 min).
t0=$(date +%s); tphase=$t0; pname=deps-build-unit-tests
phase() { local now; now=$(date +%s); echo "[time] $pname: $((now - tphase)) s (total $((now - t0)) s)"; tphase=$now; pname=$1; }
"$here/scripts/install-deps.sh"
swift build
swift test 2>&1 | tee /tmp/swift-test.log | grep -E '^(✔|✘|􀟈|Test run|.*error:)|tests? (passed|failed)' | tail -40
grep -qE 'Test run with [0-9]+ tests? .*passed' /tmp/swift-test.log || { echo "unit tests failed"; grep -E '✘|error' /tmp/swift-test.log | head -60; exit 1; }
status=0
# Every libFuzzer target (Tests/Fuzz: PDU framing and AHS, text keys, login sequences, the
# session state machine, CDBs on the engine, TCMU rings, configuration, ietd.conf) for 30 s
# each under ASan, seeded with the committed corpora (CI's time bound; for a longer campaign
# run e.g. scripts/fuzz.sh all 600 by hand).
phase fuzz
if scripts/fuzz.sh all 30 > /tmp/fuzz.log 2>&1; then grep -E '^fuzz' /tmp/fuzz.log
else echo "fuzzing FAILED"; grep -E '^fuzz|crash|ERROR' /tmp/fuzz.log | tail -20; status=1; fi
# The unit tests under AddressSanitizer+LeakSanitizer (all suites) and ThreadSanitizer (the
# suites with threads of their own), each in its own build folder.
phase sanitizers
scripts/sanitizers.sh || status=1
# Raw-socket attacks on the running daemon: malformed AHS, 100,000 connect/close cycles and
# 2,000 abandoned WRITEs measured from /proc (no growth), CHAP guessing throttled per address.
phase hostile-input
python3 scripts/hostile-input-test.py --daemon "$here/.build/debug/swift-targetd" > /tmp/hostile-input.log 2>&1 \
  && { echo "hostile input: passed"; grep RESULT /tmp/hostile-input.log; } \
  || { echo "hostile input FAILED"; grep -E 'FAIL|RESULT' /tmp/hostile-input.log; status=1; }
# File and sparse LUNs as the issue's runs: iscsi-test-cu -d -S --test=ALL URL URL.
phase conformance
scripts/conformance.sh file file --multipath --sanitize || status=1
scripts/conformance.sh sparse sparse --multipath --sanitize || status=1
# With two sessions Sanitize.Reset cannot pass: Sanitize.Reservations leaves the second
# session's RESERVE(6) in place (it logs out only a connection of its own). Alone, it runs.
scripts/conformance.sh sanitize file --sanitize --tests SCSI.Sanitize || status=1
# A read-only LUN: ReadOnly.ReadOnlySBC (every write command refused as WRITE PROTECTED) and
# every read test pass; the suite's write tests fail there by design.
scripts/conformance.sh readonly sparse --readonly || status=1
if [ "$(id -u)" = 0 ]; then scripts/conformance.sh loop loop || status=1; else echo "conformance[loop]: needs root for losetup"; status=1; fi
scripts/conformance.sh chap file --chap || status=1
# The rbd backstore on a real one-node Ceph cluster (scripts/ceph/mini-ceph.sh).
phase rbd
if scripts/rbd-test.sh > /tmp/rbd-test.log 2>&1; then echo "rbd backstore on a real Ceph: $(grep -E '^conformance|^RESULT' /tmp/rbd-test.log | tr '\n' ' ')"
else echo "rbd backstore test FAILED"; grep -E 'FAIL|RESULT|conformance' /tmp/rbd-test.log | tail -20; status=1; fi
phase admin-and-browser
scripts/admin-integration.sh > /tmp/admin-integration.log 2>&1 && echo "admin integration: live change on B while A's session runs: passed" \
  || { echo "admin integration FAILED"; tail -30 /tmp/admin-integration.log; status=1; }
# The web console in headless Chromium; "another address" is 127.0.0.2, which needs its own
# source-address route on lo (Linux otherwise sends from 127.0.0.1).
ip route replace local 127.0.0.2/32 dev lo src 127.0.0.2 table local 2>/dev/null || true
scripts/browser-test.sh --swift-targetd "$here/.build/debug/swift-targetd" --web-port 9871 --iscsi-port 3297 \
  > /tmp/browser-test.log 2>&1 && echo "web console in Chromium, then libiscsi allowed/refused: passed (screenshots: ci-artifacts/screenshots/)" \
  || { echo "browser test FAILED"; grep '\[browser-test\]' /tmp/browser-test.log | tail -20; status=1; }
phase tcmu-random
scripts/tcmu-random-test.sh 1000000 > /tmp/tcmu-random.log 2>&1 && echo "tcmu random ring test: 1,000,000 commands passed" \
  || { echo "tcmu random ring test FAILED"; tail -30 /tmp/tcmu-random.log; status=1; }
# Heap allocations per command of the release daemon on the steady-state read and write paths
# (an LD_PRELOAD counter, qemu-img bench as the initiator), each under its bound.
phase alloc-count
scripts/alloc-count.sh --check || status=1
phase lio-vm
if scripts/tcmu-vm-test.sh > /tmp/tcmu-vm.log 2>&1; then grep RESULT /tmp/tcmu-vm.log; else echo "TCMU real-kernel test FAILED"; tail -40 /tmp/tcmu-vm.log; status=1; fi
if scripts/lio-daemon-vm-test.sh > /tmp/lio-daemon-vm.log 2>&1; then echo "daemon in LIO-backed mode (real kernel): $(grep RESULT /tmp/lio-daemon-vm.log)"
else echo "daemon LIO-backed mode test FAILED"; grep -E 'FAIL|RESULT' /tmp/lio-daemon-vm.log | tail -40; status=1; fi
# iscsi-test-cu from this host against LIO with our handler (and LIO fileio as the reference)
# in the VM; the pass list Tests/Conformance/passlist-lio-user.txt must hold.
if scripts/lio-conformance.sh > /tmp/lio-conformance.log 2>&1; then echo "conformance through LIO (TCMU handler vs fileio):"; grep -E '^(A|B) lio-' /tmp/lio-conformance.log | tail -2
else echo "conformance through LIO FAILED"; tail -30 /tmp/lio-conformance.log; status=1; fi
phase end
exit $status
