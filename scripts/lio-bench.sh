#!/usr/bin/env bash
# fio in the LIO VM (scripts/lio-vm.sh): our TCMU handler (swift-tcmu-probe, release build)
# against LIO's in-kernel fileio backstore, same size image on the guest's /tmp tmpfs, each through
#   iscsi     the LIO iSCSI target on 127.0.0.1:3260 (demo mode) + the kernel initiator (open-iscsi)
#   tcm_loop  local SCSI disks (tcm_loop)
# TCMU device: user_1/bench, dev_config=swifttarget/file:/tmp/u.img, hw_max_sectors=2048 (+ $TCMU_CONTROL)
# written to control before enable; fileio device: fileio_0/bench on /tmp/f.img. Both images are
# filled with zeros first (real tmpfs pages, no holes). Block-layer scheduler "none" on every disk.
# Workloads (fio, libaio, direct=1, one job): 4k randread QD1/QD32, 4k randwrite QD1/QD32,
# 128k sequential read QD32, 1M sequential write QD8; each $RUNTIME s after $RAMP s ramp.
# Rounds: every round runs each workload on both devices back to back, alternating which goes first;
# the table shows the medians over the rounds and the ratio ours/fileio. In round 1 the guest also
# records per-thread CPU time (from /proc/*/task/*/stat) around every run: cpu-profile.txt.
# fio: the host's /usr/bin/fio (apt-get install --no-install-recommends fio) and the libraries ldd
# lists travel in the share folder with the probe and are started through the bundled ld.so.
#
# Usage: scripts/lio-bench.sh [-c VCPUS] [-m MB] [-r ROUNDS] [-t RUNTIME] [-R RAMP] [-s MiB] [-w WORKLOADS]
#                             [-p PATHS] [--no-build]
#   defaults: -c 2 -m 1536 -r 3 -t 5 -R 1 -s 256, all workloads (rr4k1 rr4k32 rw4k1 rw4k32 sr128k32 sw1m8),
#   both paths ("iscsi tcm_loop")
# Env: TCMU_CONTROL="max_data_area_mb=64,..." extra control parameters for the TCMU device;
#      PROBE_ARGS handler options, default "--poll-us 1500": the daemon's default poll of 50 us is
#      sized for real hardware; under TCG a command's round trip through fio and the guest kernel
#      takes 0.3-1 ms (iSCSI the longer), so the poll is scaled like the guest's clock (measured:
#      500 us left iSCSI QD1 at 0.52-0.62 of fileio, 1500 us 0.72-0.77; see --tcmu-poll-us);
#      ARTIFACTS (default ci-artifacts) -> $ARTIFACTS/lio-bench/ (table.txt, results.json, raw fio JSON)
# Under TCG the guest CPU is 30-90x slower than the host: only the ratios mean anything; run-to-run
# noise is about +-30%. 2 vCPUs by default: the handler's worker threads then run beside the kernel's
# submission path, which lifts our QD32 and large-block numbers 2-4x while fileio gains little; QD1 is
# unchanged. shared/peers.md measured tcmu-runner with 1 vCPU (-c 1 compares with that: there the guest
# is 97% busy in every workload). With 2 vCPUs the guest needs both host cores: other load on the host
# (a build) makes QD1 collapse for both backstores (seen once: ~200 IOPS through iSCSI).
# Takes ~8.5 min with the defaults on 2 host cores.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CPUS=2 MEM=1536 ROUNDS=3 RUNTIME=5 RAMP=1 MB=256 build=1
WORKLOADS="rr4k1 rr4k32 rw4k1 rw4k32 sr128k32 sw1m8" PATHS="iscsi tcm_loop"
while [ $# -gt 0 ]; do
  case $1 in
    -c) CPUS=$2; shift;; -m) MEM=$2; shift;; -r) ROUNDS=$2; shift;; -t) RUNTIME=$2; shift;;
    -R) RAMP=$2; shift;; -s) MB=$2; shift;; -w) WORKLOADS=$2; shift;; -p) PATHS=$2; shift;;
    --no-build) build=0;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2;;
  esac
  shift
done
PROBE_ARGS=${PROBE_ARGS:-"--poll-us 1500"}
. "$ROOT/scripts/vm-share.sh"
VM=$LIO_VM
OUT=${ARTIFACTS:-$ROOT/ci-artifacts}/lio-bench
FIO=${FIO:-/usr/bin/fio}
[ -x "$FIO" ] || { echo "no $FIO on the host: apt-get install --no-install-recommends fio" >&2; exit 2; }
T0=$(date +%s)
say() { echo "[lio-bench +$(( $(date +%s) - T0 ))s] $*"; }

cd "$ROOT"
if [ $build = 1 ]; then swift build -c release --static-swift-stdlib --product swift-tcmu-probe; fi
BIN=$(swift build -c release --show-bin-path)/swift-tcmu-probe
[ -x "$BIN" ] || { echo "no $BIN" >&2; exit 2; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/raw"; rm -f "$OUT"/*.txt "$OUT"/*.json "$OUT"/*.log

SHARE=$(mktemp -d /tmp/lio-bench.XXXXXX)
trap 'rm -rf "$SHARE"' EXIT
mkdir -p "$SHARE/raw"
share_binaries "$SHARE" "$BIN" "$FIO"

cat > "$SHARE/run.sh" <<GUEST
#!/bin/sh
MB=$MB ROUNDS=$ROUNDS RUNTIME=$RUNTIME RAMP=$RAMP
WORKLOADS="$WORKLOADS" PATHS="$PATHS" TCMU_CONTROL="${TCMU_CONTROL:-}" PROBE_ARGS="$PROBE_ARGS"
GUEST
cat >> "$SHARE/run.sh" <<'GUEST'
CFG=/sys/kernel/config/target
SIZE=$((MB*1024*1024))
U=$CFG/core/user_1/bench
F=$CFG/core/fileio_0/bench
LOG=/tmp/probe.log
RAW=/share/raw
fail() { echo "SETUP FAILED: $*"; cat $LOG; dmesg | tail -30; exit 1; }
waitlog() { i=0; while ! grep -q "$1" $LOG; do i=$((i+1)); [ $i -gt $(($2*10)) ] && return 1; sleep 0.1; done; }
echo "guest: $(grep -c ^processor /proc/cpuinfo) vCPU, $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB RAM"
# libraries to the guest's tmpfs: fio links ~80 MB of them, loaded at every start otherwise over 9p
# (started through ld.so links named like the program, so the CPU profile can tell fio from the handler)
mkdir -p /tmp/lib /tmp/bin && cp /share/lib/* /tmp/lib/ && cp /share/fio /share/swift-tcmu-probe /tmp/
ln -s /tmp/lib/ld-linux-x86-64.so.2 /tmp/bin/fio; ln -s /tmp/lib/ld-linux-x86-64.so.2 /tmp/bin/swift-tcmu-probe
FIO() { /tmp/bin/fio --library-path /tmp/lib /tmp/fio "$@"; }
t0=$(cut -d' ' -f1 /proc/uptime); FIO --version; echo "fio start: $(awk -v a=$t0 '{print $1-a}' /proc/uptime)s"
dd if=/dev/zero of=/tmp/u.img bs=1M count=$MB 2>/dev/null
dd if=/dev/zero of=/tmp/f.img bs=1M count=$MB 2>/dev/null
/tmp/bin/swift-tcmu-probe --library-path /tmp/lib /tmp/swift-tcmu-probe $PROBE_ARGS > $LOG 2>&1 &
PROBE=$!
waitlog "probe: started" 30 || fail "probe did not start"
mkdir -p $U
echo -n "dev_size=$SIZE" > $U/control
echo -n "dev_config=swifttarget/file:/tmp/u.img" > $U/control
echo -n "hw_max_sectors=2048" > $U/control
for kv in $(echo "$TCMU_CONTROL" | tr ',' ' '); do echo -n "$kv" > $U/control || fail "control $kv"; done
echo 1 > $U/enable || fail "enable of user_1/bench"
waitlog "bench capacity=$SIZE" 20 || fail "handler does not serve user_1/bench"
mkdir -p $F
echo -n "fd_dev_name=/tmp/f.img,fd_dev_size=$SIZE" > $F/control
echo 1 > $F/enable || fail "enable of fileio_0/bench"
echo "== TCMU device: $(cat $U/info)"
for a in hw_max_sectors hw_queue_depth max_data_area_mb data_pages_per_blk cmd_ring_size_mb emulate_write_cache; do
  printf '  %s=%s' $a "$(cat $U/attrib/$a)"; done; echo
echo "== fileio device: $(cat $F/info)"
for a in hw_max_sectors hw_queue_depth emulate_write_cache; do printf '  %s=%s' $a "$(cat $F/attrib/$a)"; done; echo

disk() { # model-pattern iscsi|tcm_loop
  for b in /sys/block/sd*; do
    [ -e $b/device/model ] && grep -q "$1" $b/device/model || continue
    case $(readlink -f $b) in *session*) [ $2 = iscsi ] && echo ${b##*/};; *) [ $2 = tcm_loop ] && echo ${b##*/};; esac
  done; }
waitdisk() { i=0; while [ -z "$(disk "$1" $2)" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; disk "$1" $2; }
for p in $PATHS; do
  case $p in
  tcm_loop)
    for x in "1 $U" "2 $F"; do set -- $x
      N=$CFG/loopback/naa.500140500000001$1/tpgt_1
      mkdir -p $N/lun/lun_0; echo naa.500140500000002$1 > $N/nexus; ln -s $2 $N/lun/lun_0/port
    done;;
  iscsi)
    for x in "lio-user $U" "lio-fileio $F"; do set -- $x
      T=$CFG/iscsi/iqn.2025-01.org.swifttarget:$1/tpgt_1
      mkdir -p $T/lun/lun_0; ln -s $2 $T/lun/lun_0/port; mkdir -p $T/np/127.0.0.1:3260
      echo 1 > $T/attrib/generate_node_acls; echo 1 > $T/attrib/cache_dynamic_acls
      echo 0 > $T/attrib/demo_mode_write_protect; echo 0 > $T/attrib/authentication; echo 1 > $T/enable
    done
    mkdir -p /run/lock/iscsi /var/lib/iscsi /etc/iscsi/nodes /etc/iscsi/send_targets
    iscsid -f > /tmp/iscsid.log 2>&1 &
    sleep 1
    iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 >/dev/null || fail "iSCSI discovery"
    iscsiadm -m node -p 127.0.0.1:3260 --login >/dev/null || fail "iSCSI login";;
  esac
done
for p in $PATHS; do
  o=$(waitdisk SwiftTarget $p); f=$(waitdisk FILEIO $p)
  [ -n "$o" ] && [ -n "$f" ] || fail "disks for $p: ours='$o' fileio='$f'"
  eval "OURS_$p=$o FILEIO_$p=$f"
  for d in $o $f; do echo none > /sys/block/$d/queue/scheduler 2>/dev/null
    echo "$p $d: $(cat /sys/block/$d/device/model) max_sectors_kb=$(cat /sys/block/$d/queue/max_sectors_kb) nr_requests=$(cat /sys/block/$d/queue/nr_requests) queue_depth=$(cat /sys/block/$d/device/queue_depth) scheduler=$(cat /sys/block/$d/queue/scheduler)"; done
done
free -m | sed -n 2p

snap() { # file: per-thread CPU ticks (tid name utime stime), then the /proc/stat cpu line
  cat /proc/[0-9]*/task/[0-9]*/stat 2>/dev/null | awk '{
    p = 0; s = $0; while ((i = index(s, ") ")) > 0) { p += i + 1; s = substr(s, i + 2) }
    head = substr($0, 1, p); split(substr($0, p + 1), f, " ")
    name = substr(head, index(head, "(") + 1); sub(/\) $/, "", name); gsub(/ /, "_", name)
    print substr(head, 1, index(head, " ") - 1), name, f[12], f[13] }' > $1
  head -1 /proc/stat >> $1; }
wl() { case $1 in
  rr4k1) echo "randread 4k 1";;  rr4k32) echo "randread 4k 32";; rw4k1) echo "randwrite 4k 1";;
  rw4k32) echo "randwrite 4k 32";; sr128k32) echo "read 128k 32";; sw1m8) echo "write 1m 8";; esac; }
run() { # round path workload which dev
  set -- "$@" $(wl $3)
  tag=$1-$2-$3-$4
  [ $1 = 1 ] && snap $RAW/cpu0-$tag.txt
  FIO --name=$tag --filename=/dev/$5 --ioengine=libaio --direct=1 --rw=$6 --bs=$7 --iodepth=$8 \
    --time_based --runtime=$RUNTIME --ramp_time=$RAMP --output-format=json --output=$RAW/$tag.json > /dev/null 2>$RAW/$tag.err
  [ $1 = 1 ] && snap $RAW/cpu1-$tag.txt
  [ -n "$PROBE" ] && ! kill -0 $PROBE 2>/dev/null && { echo "HANDLER DIED during $tag"; PROBE=""; }
  return 0; }
echo "[guest] benchmark starts at uptime $(cut -d' ' -f1 /proc/uptime)s"
r=1
while [ $r -le $ROUNDS ]; do
  for p in $PATHS; do
    eval "o=\$OURS_$p f=\$FILEIO_$p"
    for w in $WORKLOADS; do
      if [ $((r % 2)) = 1 ]; then run $r $p $w ours $o; run $r $p $w fileio $f
      else run $r $p $w fileio $f; run $r $p $w ours $o; fi
    done
  done
  echo "[guest] round $r done at uptime $(cut -d' ' -f1 /proc/uptime)s"
  r=$((r+1))
done
iscsiadm -m node --logout >/dev/null 2>&1
rc=0
if [ -n "$PROBE" ] && kill -0 $PROBE 2>/dev/null; then kill $PROBE; wait $PROBE; else echo "HANDLER NOT RUNNING"; rc=3; fi
cp $LOG /share/probe.log; dmesg > /share/dmesg.log
exit $rc
GUEST
chmod +x "$SHARE/run.sh"

say "VM: $CPUS vCPU, $MEM MiB; ${MB} MiB images; $ROUNDS rounds x (${RAMP}+${RUNTIME}) s; paths: $PATHS; workloads: $WORKLOADS; TCMU_CONTROL=${TCMU_CONTROL:-}; handler: $PROBE_ARGS"
set +e
"$VM" -i -s "$SHARE" -p 0 -c "$CPUS" -m "$MEM" -t 1800 sh /share/run.sh 2>&1 | tee "$OUT/vm.log"
vmrc=${PIPESTATUS[0]}
set -e
cp -r "$SHARE/raw" "$OUT/raw"
cp "$SHARE/probe.log" "$SHARE/dmesg.log" "$OUT/" 2>/dev/null || true
[ $vmrc = 0 ] || { echo "guest finished with status $vmrc"; exit 2; }

python3 - "$OUT" "$ROUNDS" "$PATHS" "$WORKLOADS" "$CPUS" "${TCMU_CONTROL:-}" "$RUNTIME" "$RAMP" "$PROBE_ARGS" <<'PY' | tee "$OUT/table.txt"
import json, sys, os, statistics, glob
from collections import defaultdict
out, rounds, paths, wls, cpus, ctl = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5], sys.argv[6]
runtime, ramp, handler_args = float(sys.argv[7]), float(sys.argv[8]), sys.argv[9]
names = {"rr4k1": "4k randread QD1", "rr4k32": "4k randread QD32", "rw4k1": "4k randwrite QD1",
         "rw4k32": "4k randwrite QD32", "sr128k32": "128k seq read QD32", "sw1m8": "1M seq write QD8"}
target = {"iscsi": 0.8, "tcm_loop": 0.3}
def value(tag, w):
    try: j = json.load(open(f"{out}/raw/{tag}.json"))
    except Exception: return None
    job = j["jobs"][0]
    if job.get("error"): return None
    d = job["write" if w.startswith(("rw", "sw")) else "read"]
    return d["iops"] if "4k" in w else d["bw_bytes"] / 1e6
res, rows = {}, []
print(f"guest vCPUs: {cpus}; TCMU control extras: {ctl or '-'}; handler options: {handler_args or '-'}; medians of {rounds} rounds")
print(f"{'workload':20} {'path':9} {'unit':5} {'fileio':>9} {'ours':>9} {'ours/fileio':>12}  {'target':>6}  per-round fileio | ours")
for p in paths:
    for w in wls:
        v = {k: [value(f"{r}-{p}-{w}-{k}", w) for r in range(1, rounds + 1)] for k in ("fileio", "ours")}
        med = {k: statistics.median([x for x in v[k] if x is not None]) if any(x is not None for x in v[k]) else None for k in v}
        ratio = med["ours"] / med["fileio"] if med["ours"] and med["fileio"] else None
        unit = "IOPS" if "4k" in w else "MB/s"
        fmt = (lambda x: f"{x:9.0f}") if unit == "IOPS" else (lambda x: f"{x:9.1f}")
        show = lambda x: fmt(x) if x is not None else f"{'n/a':>9}"
        rs = f"{ratio:12.2f}" if ratio else f"{'n/a':>12}"
        per = " ".join(show(x).strip() for x in v["fileio"]) + " | " + " ".join(show(x).strip() for x in v["ours"])
        print(f"{names[w]:20} {p:9} {unit:5} {show(med['fileio'])} {show(med['ours'])} {rs}  {target[p]:>6}  {per}")
        res[f"{p}/{w}"] = {"fileio": v["fileio"], "ours": v["ours"], "median_fileio": med["fileio"], "median_ours": med["ours"], "ratio": ratio, "unit": unit}
json.dump(res, open(f"{out}/results.json", "w"), indent=1)
# CPU profile of round 1: busiest threads per run (CPU seconds over the run) and how busy the guest was
hz = 100
lines = []
for f0 in sorted(glob.glob(f"{out}/raw/cpu0-1-*.txt")):
    tag = os.path.basename(f0)[5:-4]
    def load(f):
        th, sy, cpu = {}, {}, None
        for l in open(f):
            x = l.split()
            if x[0] == "cpu": cpu = [int(y) for y in x[1:]]
            elif len(x) == 4:
                # by thread id: a kworker's name changes with the workqueue it serves
                name = "kworker" if x[1].startswith("kworker/") else x[1]
                th[x[0]] = (name, int(x[2]) + int(x[3])); sy[x[0]] = int(x[3])
        return th, sy, cpu
    a, sa, ca = load(f0); b, sb, cb = load(f"{out}/raw/cpu1-{tag}.txt")
    d = sorted(((b[k][1] - (a[k][1] if k in a else 0), b[k][0]) for k in b), reverse=True)
    probe_sys = sum(sb[k] - sa.get(k, 0) for k in sb if b[k][0] == "swift-tcmu-prob") / hz
    total = sum(cb) - sum(ca); idle = (cb[3] + cb[4]) - (ca[3] + ca[4])
    busy = 100 * (total - idle) / total if total else 0
    agg, nthr = defaultdict(int), defaultdict(int)
    for t, n in d:
        agg[n] += t
        if t: nthr[n] += 1
    top = sorted(agg.items(), key=lambda x: -x[1])[:6]
    try:
        job = json.load(open(f"{out}/raw/{tag}.json"))["jobs"][0]
        w = "write" if "-rw" in tag or "-sw" in tag else "read"
        ios = job[w]["total_ios"]; fio = f"fio {job['usr_cpu']:.0f}%usr {job['sys_cpu']:.0f}%sys; "
    except Exception:
        ios, fio = 0, ""
    probe = agg.get("swift-tcmu-prob", 0) / hz
    # the CPU window also covers the ramp (and fio's start): IOs in it estimated from the measured rate
    per = (f"; handler ~{1e6 * probe / (ios * (runtime + ramp) / runtime):.0f} us CPU/IO ({100 * probe_sys / probe:.0f}% in the kernel)"
           if ios and probe and tag.endswith("-ours") else "")
    lines.append(f"{tag:30} busy {busy:3.0f}% of {total / hz:4.1f} cpu-s, {ios} IOs{per}; {fio}"
                 + ", ".join(f"{n}{'x' + str(nthr[n]) if nthr[n] > 1 else ''} {t / hz:.1f}s" for n, t in top if t))
open(f"{out}/cpu-profile.txt", "w").write("\n".join(lines) + "\n")
PY
say "done: $OUT/table.txt (CPU profile of round 1: $OUT/cpu-profile.txt)"
