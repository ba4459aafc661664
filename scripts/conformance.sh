#!/usr/bin/env bash
# Runs libiscsi's iscsi-test-cu (an independent initiator) over ALL tests against a live
# swift-targetd, scores the log with CUnit's own verdicts, and fails when a test from the
# committed pass list (Tests/Conformance/passlist-NAME.txt) no longer passes.
#
# Usage: scripts/conformance.sh NAME KIND [--chap] [--multipath] [--sanitize] [--readonly] [--tests PATTERN] [--update]
#   NAME  label for logs and the pass list (file, sparse, loop, chap)
#   KIND  file | sparse | loop   (loop needs root: a 256 MiB loop device)
#   --multipath  the LUN twice (two sessions: the MultipathIO and two-nexus tests)
#   --sanitize   also the SANITIZE tests (-S); the daemon then sanitizes at 32 MiB/s, so a
#                sanitize of the 256 MiB LUN lasts the ~8 s Sanitize.Reset watches it run,
#                and pings every 90 s: Sanitize.Reset ends with `while TUR fails: sleep(60)`,
#                and libiscsi's synchronous tool answers no NOP-In while it sleeps, so at the
#                default (30 s + 30 s) each sleep lost the connection, the re-login's TUR met
#                a new unit attention, and the loop ran on (150-600 s, up to the 900 s cap)
#   --readonly   the LUN exported read-only (`,ro`, on an image made beforehand): the write
#                tests fail by design; ReadOnly.ReadOnlySBC and every read test must pass
#   --tests P    only the tests matching P (iscsi-test-cu --test), instead of ALL
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
name=$1; kind=$2; shift 2
chap=0; multipath=0; sanitize=0; readonly=0; update=0; tests=ALL
while [ $# -gt 0 ]; do
  case $1 in
    --chap) chap=1;; --multipath) multipath=1;; --sanitize) sanitize=1;; --readonly) readonly=1;; --update) update=1;;
    --tests) tests=$2; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
  shift
done
bin=${SWIFT_TARGETD:-$here/.build/debug/swift-targetd}
out=${ARTIFACTS:-$here/ci-artifacts}/conformance
mkdir -p "$out"
work=$(mktemp -d /tmp/swtgt-conf.XXXXXX)
port=$((13000 + RANDOM % 2000))
iqn=iqn.2026-11.org.swifttarget:conformance-$name
loopdev=""
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

case $kind in
  file)   lun="file:$work/disk.img,size=256M";;
  sparse) lun="sparse:$work/thin.img,size=256M";;
  loop)   truncate -s 256M "$work/loop.img"; loopdev=$(losetup --find --show "$work/loop.img"); lun="raw:$loopdev";;
  *) echo "unknown kind $kind" >&2; exit 2;;
esac
if [ $readonly = 1 ]; then
  image=${lun#*:}; image=${image%%,*}
  [ "$kind" = loop ] || { truncate -s 256M "$image"; head -c 1048576 /dev/urandom | dd of="$image" conv=notrunc status=none; }
  lun="${lun%%,*},ro"
fi
args=(serve --listen 127.0.0.1:$port --target "$iqn" --lun "$lun" --log-level warning)
userinfo=""
suite=(--dataloss)
if [ $sanitize = 1 ]; then
  args+=(--sanitize-mb-per-second 32 --nop-interval 90)
  suite+=(--allow-sanitize)
fi
if [ $chap = 1 ]; then
  args+=(--chap conformance:s3cret-pass-12)
  userinfo="conformance%s3cret-pass-12@"
fi
"$bin" "${args[@]}" > "$out/daemon-$name.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
url="iscsi://${userinfo}127.0.0.1:$port/$iqn/0"
urls=("$url"); [ $multipath = 1 ] && urls+=("$url")
log="$out/iscsi-test-cu-$name.log"
timeout 900 iscsi-test-cu "${suite[@]}" --test="$tests" "${urls[@]}" > "$log" 2>&1 || true
kill -0 "$pid" 2>/dev/null || { echo "swift-targetd died during the suite:"; tail -20 "$out/daemon-$name.log"; exit 1; }
python3 "$here/scripts/cu-score.py" "$log" "$out/score-$name.json" --families > "$out/score-$name.txt"
totals=$(tail -1 "$out/score-$name.txt")
echo "conformance[$name]: $totals"
passlist=$here/Tests/Conformance/passlist-$name.txt
python3 - "$out/score-$name.json" "$passlist" "$update" <<'PY'
import json, sys
score = json.load(open(sys.argv[1])); path = sys.argv[2]; update = sys.argv[3] == "1"
passed = sorted(k for k, v in score.items() if v == "passed")
if update:
    open(path, "w").write("\n".join(passed) + "\n"); print(f"wrote {len(passed)} tests to {path}"); sys.exit(0)
try:
    required = [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]
except FileNotFoundError:
    print(f"no pass list at {path}"); sys.exit(1)
lost = [t for t in required if score.get(t) != "passed"]
new = [t for t in passed if t not in required]
if new: print(f"newly passing (add to the list with --update): {' '.join(new)}")
if lost:
    print(f"REGRESSION: {len(lost)} listed tests no longer pass: {' '.join(lost)}"); sys.exit(1)
print(f"all {len(required)} listed tests pass")
PY
