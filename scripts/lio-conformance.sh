#!/usr/bin/env bash
# libiscsi's iscsi-test-cu against LIO itself: our TCMU handler behind LIO's iSCSI target, next to
# LIO's in-kernel fileio backstore as the reference, both in the LIO VM (scripts/lio-vm.sh).
#
# In the guest: swift-tcmu-probe (release build) is started first, then two demo-mode LIO iSCSI
# targets (generate_node_acls=1, cache_dynamic_acls=1, demo_mode_write_protect=0, authentication=0)
# on portal 0.0.0.0:3260 (QEMU's hostfwd delivers to the guest's eth0 address 10.0.2.15, so a
# 127.0.0.1 portal is not reachable from the host):
#   A  iqn.2025-01.org.swifttarget:lio-user    LUN 0 = TCMU backstore user_1/lio_user,
#      dev_config=swifttarget/file:/tmp/u.img, hw_max_sectors=2048 (control, before enable)
#   B  iqn.2025-01.org.swifttarget:lio-fileio  LUN 0 = fileio_0/lio_fileio on /tmp/f.img
# both 128 MiB on the guest's tmpfs, nothing else set (no node ACLs, no unit serial, no
# /etc/target/pr: LIO answers every PR command NOT READY for either, see shared/peers.md).
# The guest signals readiness with $SHARE/ready; from the host `iscsi-test-cu --dataloss --test=ALL
# iscsi://127.0.0.1:PORT/IQN/0` runs against A, then B (forwarded port); then the host creates
# $SHARE/done and the guest stops the handler (which must still be alive) and powers off.
# Each log is scored with scripts/cu-score.py; target A must pass every test in the
# committed pass list Tests/Conformance/passlist-lio-user.txt (as scripts/conformance.sh does).
# Known: the iSCSIResiduals tests that want an overflow residual (EDTL < CDB length) and every write
# residual fail on A: LIO parses no CDB of a TCMU (passthrough) device, so it computes no residual, and
# a TCMU reply can only shorten a read (read_len, clamped to EDTL). The failures on A that B does not
# share are re-run with -V into verbose-onlyA-*.log.
# All tests run (--test=ALL); under TCG no test family hangs (per-test times are in
# cu-timed-*.log; the slowest tests are listed at the end of the run).
#
# Usage: scripts/lio-conformance.sh [--update] [--no-build]
#   --update    rewrite Tests/Conformance/passlist-lio-user.txt from this run's passes on target A
#   --no-build  use the existing .build/release/swift-tcmu-probe
# Env: ARTIFACTS (default ci-artifacts) -> logs and scores in $ARTIFACTS/lio-conformance/
#      LIOVM (path of lio-vm.sh), PORT (host port forwarded to the guest's 3260; default random)
# Needs: qemu-system-x86 and libiscsi-bin on the host. Takes ~3 min under TCG on 2 cores (suite: ~115 s
# against A, ~60 s against B; the slowest single tests take 3-7 s: CompareAndWrite.DpoFua, Verify*.Dpo,
# Reserve6.ITNexusLoss, iSCSIcmdsn.iSCSICmdSnTooHigh).
# Exit status: 0 = setup fine and the pass list holds; 1 = pass list violated; 2 = setup failed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
update=0 build=1
for a in "$@"; do
  case $a in --update) update=1;; --no-build) build=0;; *) echo "unknown option $a" >&2; exit 2;; esac
done
. "$ROOT/scripts/vm-share.sh"
VM=$LIO_VM
SCORE=$ROOT/scripts/cu-score.py
OUT=${ARTIFACTS:-$ROOT/ci-artifacts}/lio-conformance
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log "$OUT"/*.json "$OUT"/*.txt
IQN_A=iqn.2025-01.org.swifttarget:lio-user
IQN_B=iqn.2025-01.org.swifttarget:lio-fileio
MB=128
T0=$(date +%s)
say() { echo "[lio-conformance +$(( $(date +%s) - T0 ))s] $*"; }

cd "$ROOT"
if [ $build = 1 ]; then swift build -c release --static-swift-stdlib --product swift-tcmu-probe; fi
BIN=$(swift build -c release --show-bin-path)/swift-tcmu-probe
[ -x "$BIN" ] || { echo "no $BIN" >&2; exit 2; }

if [ -z "${PORT:-}" ]; then
  for _ in $(seq 50); do
    PORT=$((13000 + RANDOM % 2000))
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || break
  done
fi

SHARE=$(mktemp -d /tmp/lio-conf.XXXXXX)
VMPID=""
cleanup() {
  if [ -n "$VMPID" ] && kill -0 "$VMPID" 2>/dev/null; then
    touch "$SHARE/done"
    for _ in $(seq 60); do kill -0 "$VMPID" 2>/dev/null || break; sleep 1; done
    kill "$VMPID" 2>/dev/null || true
  fi
  rm -rf "$SHARE"
}
trap cleanup EXIT
share_binaries "$SHARE" "$BIN"

cat > "$SHARE/run.sh" <<GUEST
#!/bin/sh
MB=$MB IQN_A=$IQN_A IQN_B=$IQN_B
GUEST
cat >> "$SHARE/run.sh" <<'GUEST'
CFG=/sys/kernel/config/target
SIZE=$((MB*1024*1024))
U=$CFG/core/user_1/lio_user
F=$CFG/core/fileio_0/lio_fileio
LOG=/tmp/probe.log
fail() { echo "fail: $*" > /share/ready; echo "SETUP FAILED: $*"; cat $LOG; dmesg | tail -30; exit 1; }
waitlog() { i=0; while ! grep -q "$1" $LOG; do i=$((i+1)); [ $i -gt $(($2*10)) ] && return 1; sleep 0.1; done; }
/share/lib/ld-linux-x86-64.so.2 --library-path /share/lib /share/swift-tcmu-probe > $LOG 2>&1 &
PROBE=$!
waitlog "probe: started" 30 || fail "probe did not start"
mkdir -p $U
echo -n "dev_size=$SIZE" > $U/control
echo -n "dev_config=swifttarget/file:/tmp/u.img" > $U/control
echo -n "hw_max_sectors=2048" > $U/control
echo 1 > $U/enable || fail "enable of user_1/lio_user"
waitlog "lio_user capacity=$SIZE" 20 || fail "handler does not serve user_1/lio_user"
mkdir -p $F
echo -n "fd_dev_name=/tmp/f.img,fd_dev_size=$SIZE" > $F/control
echo 1 > $F/enable || fail "enable of fileio_0/lio_fileio"
target() { # iqn backstore
  T=$CFG/iscsi/$1/tpgt_1
  mkdir -p $T/lun/lun_0 || return 1
  ln -s $2 $T/lun/lun_0/port || return 1
  mkdir -p $T/np/0.0.0.0:3260 || return 1
  echo 1 > $T/attrib/generate_node_acls; echo 1 > $T/attrib/cache_dynamic_acls
  echo 0 > $T/attrib/demo_mode_write_protect; echo 0 > $T/attrib/authentication
  echo 1 > $T/enable
}
target $IQN_A $U || fail "target A"
target $IQN_B $F || fail "target B"
echo "== TCMU device"; cat $U/info; echo
for a in hw_max_sectors hw_block_size hw_queue_depth max_data_area_mb cmd_time_out emulate_write_cache; do
  echo "  $a=$(cat $U/attrib/$a)"; done
echo "== fileio device"; cat $F/info; echo
netstat -ltn 2>/dev/null | grep 3260
echo ok > /share/ready
echo "[guest] ready at uptime $(cut -d' ' -f1 /proc/uptime)s; waiting for /share/done"
i=0; while [ ! -e /share/done ] && [ $i -lt 3000 ]; do sleep 1; i=$((i+1)); done
rc=0
if kill -0 $PROBE 2>/dev/null; then echo "[guest] handler still running"; else echo "[guest] HANDLER DIED"; rc=3; fi
dmesg > /share/dmesg.log
cat $U/info > /share/tcmu-info.txt 2>/dev/null
kill $PROBE 2>/dev/null; wait $PROBE
cp $LOG /share/probe.log
exit $rc
GUEST
chmod +x "$SHARE/run.sh"

say "booting the VM (port 127.0.0.1:$PORT -> guest 3260), share $SHARE"
"$VM" -s "$SHARE" -p "$PORT" -m 1024 -t 1500 sh /share/run.sh > "$OUT/vm.log" 2>&1 &
VMPID=$!
while [ ! -e "$SHARE/ready" ]; do
  kill -0 "$VMPID" 2>/dev/null || { echo "the VM exited before the targets were ready:"; cat "$OUT/vm.log"; exit 2; }
  sleep 1
done
if [ "$(cat "$SHARE/ready")" != ok ]; then
  echo "guest setup failed: $(cat "$SHARE/ready")"; touch "$SHARE/done"; wait "$VMPID" || true; cat "$OUT/vm.log"; exit 2
fi
say "targets ready"

# iscsi-test-cu with a time stamp per line (per-test durations) and the plain log for cu-score.py
run_suite() { # name iqn
  local name=$1 iqn=$2 t=$(date +%s)
  say "iscsi-test-cu against $iqn"
  timeout 1200 stdbuf -oL -eL iscsi-test-cu --dataloss --test=ALL "iscsi://127.0.0.1:$PORT/$iqn/0" 2>&1 |
    python3 -u -c '
import sys, time
plain = open(sys.argv[1], "w"); timed = open(sys.argv[2], "w"); t0 = time.time()
for line in sys.stdin:
    plain.write(line); plain.flush(); timed.write("%8.2f %s" % (time.time() - t0, line)); timed.flush()
' "$OUT/iscsi-test-cu-$name.log" "$OUT/cu-timed-$name.log" || true
  echo "$(( $(date +%s) - t ))" > "$OUT/suite-seconds-$name.txt"
  python3 "$SCORE" "$OUT/iscsi-test-cu-$name.log" "$OUT/score-$name.json" --families > "$OUT/score-$name.txt" || true
  say "$name: $(tail -1 "$OUT/score-$name.txt") in $(cat "$OUT/suite-seconds-$name.txt") s"
}
run_suite lio-user "$IQN_A"
run_suite lio-fileio "$IQN_B"

# the failures on A that B does not share, once more with -V (the suite's own explanations) on both
onlya=$(python3 -c '
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
print(",".join("ALL." + k for k, v in sorted(a.items()) if v == "FAILED" and b.get(k) != "FAILED"))
' "$OUT/score-lio-user.json" "$OUT/score-lio-fileio.json" 2>/dev/null || true)
if [ -n "$onlya" ]; then
  say "re-running the failures on A only with -V: $onlya"
  for t in "lio-user $IQN_A" "lio-fileio $IQN_B"; do
    set -- $t
    timeout 300 iscsi-test-cu --dataloss -V --test="$onlya" "iscsi://127.0.0.1:$PORT/$2/0" > "$OUT/verbose-onlyA-$1.log" 2>&1 || true
  done
fi

touch "$SHARE/done"
set +e; wait "$VMPID"; vmrc=$?; set -e
VMPID=""
cp "$SHARE/probe.log" "$SHARE/dmesg.log" "$OUT/" 2>/dev/null || true
setup_ok=1
[ $vmrc = 0 ] || { echo "guest finished with status $vmrc (3 = the handler died during the suite):"; tail -20 "$OUT/vm.log"; setup_ok=0; }

# side by side, the slowest tests, the failures on A that B does not share, the pass list
set +e
python3 - "$OUT" "$ROOT/Tests/Conformance/passlist-lio-user.txt" "$update" <<'PY' | tee "$OUT/summary.txt"
import json, sys, re, os
out, path, update = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
a = json.load(open(f"{out}/score-lio-user.json")); b = json.load(open(f"{out}/score-lio-fileio.json"))
def tot(s): return {k: sum(1 for v in s.values() if v == k) for k in ("passed", "FAILED", "skipped")}
ta, tb = tot(a), tot(b)
print(f"{'':22}{'passed':>8}{'failed':>8}{'skipped':>9}{'seconds':>9}")
for n, t in (("A lio-user (TCMU)", ta), ("B lio-fileio (kernel)", tb)):
    key = "lio-user" if n.startswith("A") else "lio-fileio"
    secs = open(f"{out}/suite-seconds-{key}.txt").read().strip()
    print(f"{n:22}{t['passed']:>8}{t['FAILED']:>8}{t['skipped']:>9}{secs:>9}")
onlya = sorted(k for k, v in a.items() if v == "FAILED" and b.get(k) != "FAILED")
onlyb = sorted(k for k, v in b.items() if v == "FAILED" and a.get(k) != "FAILED")
print(f"failed on A only ({len(onlya)}): " + " ".join(f"{k}[B:{b.get(k, 'absent')}]" for k in onlya))
print(f"failed on B only ({len(onlyb)}): " + " ".join(f"{k}[A:{a.get(k, 'absent')}]" for k in onlyb))
diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
print(f"verdicts that differ ({len(diff)}): " + " ".join(f"{k}[{a.get(k)}/{b.get(k)}]" for k in diff))
# per-test durations from the time-stamped logs
for key in ("lio-user", "lio-fileio"):
    dur, cur, t0 = {}, None, 0.0
    for line in open(f"{out}/cu-timed-{key}.log", errors="replace"):
        t, _, rest = line.lstrip().partition(" ")
        m = re.match(r"\s*(?:Suite: (\S+)|Test: (\S+) \.\.\.|(Run Summary))", rest.strip("\n"))
        if not m: continue
        if cur: dur[cur] = float(t) - t0
        if m.group(1) or m.group(3): suite = m.group(1); cur = None
        else: cur, t0 = f"{suite}.{m.group(2)}", float(t)
    slow = sorted(dur.items(), key=lambda x: -x[1])[:6]
    print(f"slowest on {key}: " + ", ".join(f"{k} {v:.0f}s" for k, v in slow))
passed = sorted(k for k, v in a.items() if v == "passed")
if update:
    open(path, "w").write("\n".join(passed) + "\n"); print(f"wrote {len(passed)} tests to {path}"); sys.exit(0)
try:
    required = [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]
except FileNotFoundError:
    print(f"no pass list at {path} (run with --update)"); sys.exit(1)
lost = [t for t in required if a.get(t) != "passed"]
new = [t for t in passed if t not in required]
if new: print(f"newly passing on A (add to the list with --update): {' '.join(new)}")
if lost:
    print(f"REGRESSION: {len(lost)} listed tests no longer pass on A: {' '.join(lost)}"); sys.exit(1)
print(f"all {len(required)} listed tests pass on A")
PY
rc=${PIPESTATUS[0]}
set -e
say "done; logs in $OUT"
[ $setup_ok = 1 ] || exit 2
exit "$rc"
