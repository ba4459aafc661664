#!/usr/bin/env bash
# Copy offload benchmark: one EXTENDED COPY(LID1) (SPC-4 6.4) of MIB MiB from LUN 0 to LUN 1
# of one swift-targetd target (two image files on one file system: copy_file_range), against
# the same copy done by the initiator over the wire:
#   raw       scripts/xcopy_bench.py, READ(16) then WRITE(16), 1 MiB each, one command at a time
#   qemu-img  qemu-img convert -n between the two iscsi:// LUNs (8 requests in flight)
# and, as an independent initiator's XCOPY, qemu-img convert -C (copy offload).
# Each measurement gets a fresh daemon and a fresh destination image, both image files synced
# first; afterwards the whole destination must equal the source (cmp of the image files
# after SYNCHRONIZE CACHE / logout). Wall time is of the copy commands (qemu-img: the whole
# process, its login included). Bytes on the wire: the `lo` tx counter of /proc/net/dev;
# as root the script runs in its own network namespace, so that counter holds only its own
# traffic (TCP/IP headers included). Prints per-run lines, then the medians.
#
# Usage: scripts/xcopy-bench.sh [--runs N] [--mib N] [--no-qemu] [--keep]
#   SWIFT_TARGETD  the daemon (default .build/release/swift-targetd, or .build/debug when
#                  that is newer or the release build is missing)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
argv=("$@")
runs=3; mib=256; qemu=1; keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift;; --mib) mib=$2; shift;;
    --no-qemu) qemu=0;; --keep) keep=1;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
  shift
done
# A private network namespace: its loopback carries nothing but this benchmark.
if [ -z "${XCOPY_BENCH_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
  XCOPY_BENCH_NETNS=1 exec unshare -n -- bash "$0" "${argv[@]}"
fi
if [ "${XCOPY_BENCH_NETNS:-}" = 1 ]; then
  ip link set lo up
  wire="lo of a private network namespace"
else
  wire="the shared lo (other traffic on it counts too)"
fi
bin=${SWIFT_TARGETD:-}
if [ -z "$bin" ]; then
  bin=$here/.build/release/swift-targetd
  debug=$here/.build/debug/swift-targetd
  if [ ! -x "$bin" ] || { [ -x "$debug" ] && [ "$debug" -nt "$bin" ]; }; then bin=$debug; fi
fi
[ -x "$bin" ] || { echo "no swift-targetd at $bin (set SWIFT_TARGETD)" >&2; exit 1; }
helper=$here/scripts/xcopy_bench.py
if [ $qemu = 1 ] && ! qemu-img --help 2>/dev/null | grep -q 'Supported formats:.* iscsi'; then
  echo "qemu-img without the iscsi driver (qemu-block-extra): skipping the qemu-img copies" >&2; qemu=0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/swtgt-xcopy.XXXXXX")
port=$((13000 + RANDOM % 2000))
iqn=iqn.2026-11.org.swifttarget:xcopy
bytes=$((mib << 20))
size=$((2 * mib))M
pid=""
stop_daemon() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi
}
cleanup() {
  stop_daemon
  if [ $keep = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

lo_tx() { awk -F'[: ]+' '$2 == "lo" { print $11 }' /proc/net/dev; }
now() { date +%s.%N; }

start_daemon() {
  rm -f "$work/dst.img"
  "$bin" serve --listen 127.0.0.1:$port --target "$iqn" \
    --lun "file:$work/src.img,size=$size" --lun "file:$work/dst.img,size=$size" \
    --log-level warning >> "$work/daemon.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null || { echo "swift-targetd did not start:"; tail -20 "$work/daemon.log"; exit 1; }
  sync "$work/src.img" "$work/dst.img"
}

verify() {  # the destination image equals the source (the copied range and the rest)
  stop_daemon
  if ! cmp "$work/src.img" "$work/dst.img" > "$work/cmp.txt" 2>&1; then
    echo "DATA MISMATCH after $1: $(cat "$work/cmp.txt")"; exit 1
  fi
}

qemu_opts() {
  echo "driver=raw,size=$bytes,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:$port,file.target=$iqn,file.lun=$1,file.initiator-name=iqn.2026-11.org.swifttarget:xcopy-bench-qemu"
}

run_qemu() {  # METHOD FLAGS...: one qemu-img convert, timed as a whole
  local method=$1; shift
  local lo0 t0 t1 lo1
  lo0=$(lo_tx); t0=$(now)
  qemu-img convert "$@" -n --image-opts "$(qemu_opts 0)" --target-image-opts "$(qemu_opts 1)" \
    > "$work/qemu.log" 2>&1 || { echo "qemu-img convert $* failed:"; cat "$work/qemu.log"; exit 1; }
  t1=$(now); lo1=$(lo_tx)
  printf '{"method": "%s", "seconds": %s, "lo_bytes": %d}\n' "$method" "$(awk "BEGIN { print $t1 - $t0 }")" $((lo1 - lo0))
}

run_helper() {  # MODE: the helper's JSON line, or its error and the daemon's log
  local out
  out=$(python3 "$helper" "$1" $port "$iqn" "$mib") || { echo "$1 failed: $out"; tail -5 "$work/daemon.log"; exit 1; }
  echo "$out"
}

echo "swift-targetd: $bin; load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
echo "source: $mib MiB of random data at LBA 0 of LUN 0 (file:$work/src.img,size=$size); destination LUN 1 LBA 0; bytes on the wire: $wire"
dd if=/dev/urandom of="$work/src.img" bs=1M count="$mib" status=none
truncate -s "$size" "$work/src.img"
results=$work/results.jsonl
methods=(xcopy raw)
[ $qemu = 1 ] && methods+=(qemu qemu-xcopy)
for run in $(seq "$runs"); do
  for m in "${methods[@]}"; do
    start_daemon
    case $m in
      xcopy) line=$(run_helper xcopy);;
      raw) line=$(run_helper rw);;
      qemu) line=$(run_qemu qemu);;
      qemu-xcopy) line=$(run_qemu qemu-xcopy -C);;
    esac
    verify "$m (run $run)"
    echo "$line" | sed "s/^{/{\"run\": $run, /" >> "$results"
  done
  python3 - "$results" "$run" "$mib" <<'PY'
import json, sys
run, mib = int(sys.argv[2]), sys.argv[3]
for r in map(json.loads, open(sys.argv[1])):
    if r["run"] == run:
        print(f"run {run}: {r['method']:10} {r['seconds']:8.3f} s  {r['lo_bytes']:>11} bytes on lo" +
              (f"  ({r['iscsi_bytes']} iSCSI PDU bytes)" if "iscsi_bytes" in r else ""))
PY
done
python3 - "$results" "$mib" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mib = sys.argv[2]
med = {}
for m in {r["method"] for r in rows}:
    rs = [r for r in rows if r["method"] == m]
    med[m] = (statistics.median(r["seconds"] for r in rs), int(statistics.median(r["lo_bytes"] for r in rs)),
              int(statistics.median(r.get("iscsi_bytes", 0) for r in rs)), rs[0])
n = len([r for r in rows if r["method"] == "xcopy"])
print(f"medians of {n} runs:")
t, b, p, x = med["xcopy"]
print(f"xcopy {mib} MiB: {t:.3f} s, {b} bytes on the wire ({p} iSCSI PDU bytes; {x['commands']} EXTENDED COPY, "
      f"{x['segments']} segments of <= {x['segment_blocks']} blocks)")
t, b, p, _ = med["rw"]
print(f"initiator copy {mib} MiB (READ(16)+WRITE(16), 1 MiB, one at a time): {t:.3f} s, {b} bytes on the wire ({p} iSCSI PDU bytes)")
if "qemu" in med:
    t, b, _, _ = med["qemu"]
    print(f"initiator copy {mib} MiB (qemu-img convert): {t:.3f} s, {b} bytes on the wire")
    t, b, _, _ = med["qemu-xcopy"]
    print(f"xcopy {mib} MiB (qemu-img convert -C, qemu's own EXTENDED COPY): {t:.3f} s, {b} bytes on the wire")
xt = med["xcopy"][0]
ratios = [f"{med['rw'][0] / xt:.1f} (READ/WRITE)"]
if "qemu" in med:
    ratios.append(f"{med['qemu'][0] / xt:.1f} (qemu-img convert)")
print("ratio (initiator time / xcopy time): " + ", ".join(ratios))
print(f"ratio (initiator bytes / xcopy bytes on the wire): {med['rw'][1] / max(med['xcopy'][1], 1):.0f}")
PY
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
