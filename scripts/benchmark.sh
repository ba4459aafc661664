#!/usr/bin/env bash
# Benchmark (not a test): swift-targetd against tgtd, side by side in this session, on the
# same backing file, through libiscsi's iscsi-perf and qemu-img bench over iscsi://.
# Alternates the two targets per round and prints medians and our/tgtd ratios for:
#   rr4k   4k random read QD32            iscsi-perf -m 32 -b 8 -r
#   rw4k   4k random write QD32           qemu-img bench -w -d 32 -s 4k, stride 1 MiB+4 KiB (wraps)
#   sr128k 128k sequential read QD32      iscsi-perf -m 32 -b 256
#   sw1m   1M sequential write QD8        qemu-img bench -w -d 8 -s 1M
# Both targets negotiate no digests (tgtd's default), so the comparison is like for like.
# Beside each figure: the target's CPU per I/O (user+system of every thread, from
# /proc/PID/stat over the run, divided by the run's I/Os: counted by qemu-img bench, and for
# iscsi-perf its average IOPS x its 6 s, so login and ramp-up are charged to them), and at the start the
# loopback TCP limit of one stream (iperf3, 5 s), with sr128k as a fraction of it.
# Usage: scripts/benchmark.sh [rounds]   (default 3; needs root for tgtd; BENCH_WORKLOADS="rr4k sr128k" picks some)
#        scripts/benchmark.sh rbd [rounds]   the rbd backstore against tgtd's bs_rbd (scripts/rbd-benchmark.sh)
#        scripts/benchmark.sh crc32c         CRC32C on 1 MiB buffers, one core: `crc32c: N GB/s`
#        scripts/benchmark.sh admin-scale [N] administration with N (1,000) targets (scripts/admin_scale.py)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = admin-scale ]; then
  (cd "$here" && swift build -c release --product swift-targetd >/dev/null && swift build -c release --product swift-targetctl >/dev/null)
  exec python3 "$here/scripts/admin_scale.py" --daemon "$here/.build/release/swift-targetd" \
    --ctl "$here/.build/release/swift-targetctl" --targets "${2:-1000}"
fi
[ "${1:-}" = rbd ] && { shift; exec "$here/scripts/rbd-benchmark.sh" "$@"; }
if [ "${1:-}" = crc32c ]; then
  log=$(mktemp)
  (cd "$here" && swift build -c release --product swift-target-bench > "$log" 2>&1) || { cat "$log"; exit 1; }
  rm -f "$log"
  exec "$here/.build/release/swift-target-bench" crc32c
fi
rounds=${1:-3}
"$here/scripts/install-deps.sh"
command -v tgtd >/dev/null || { apt-get install -y -qq --no-install-recommends tgt >/dev/null; }
command -v iperf3 >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 >/dev/null; }
[ -n "${BENCH_NO_BUILD:-}" ] || (cd "$here" && swift build -c release --product swift-targetd >/dev/null)
work=$(mktemp -d /tmp/swtgt-bench.XXXXXX)
img=$work/bench.img
fallocate -l 1G "$img"
ours_iqn=iqn.2026-11.org.swifttarget:bench
tgt_iqn=iqn.2026-11.org.tgt:bench
cleanup() {
  [ -n "${ours:-}" ] && kill -TERM "$ours" 2>/dev/null && wait "$ours" 2>/dev/null || true
  tgtadm -C 7 --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1 || true
  tgtadm -C 7 --op delete --mode system --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# One TCP stream on loopback, the ceiling for one iSCSI connection (MB/s).
iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
iperf_server=$!
sleep 0.5
loopback=$(iperf3 -c 127.0.0.1 -p 5299 -t 5 -J 2>/dev/null | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e6))' || echo 0)
wait "$iperf_server" 2>/dev/null || true
echo "loopback TCP, one stream: $loopback MB/s"
tgtd -f -C 7 --iscsi portal=127.0.0.1:3271 >"$work/tgtd.log" 2>&1 &
tgtd_pid=$!
sleep 1
tgtadm -C 7 --lld iscsi --op new --mode target --tid 1 -T "$tgt_iqn"
tgtadm -C 7 --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$img"
tgtadm -C 7 --lld iscsi --op bind --mode target --tid 1 -I ALL
"$here/.build/release/swift-targetd" serve --listen 127.0.0.1:3272 --target "$ours_iqn" \
  --lun "file:$img" --digests None --log-level warning >"$work/ours.log" 2>&1 &
ours=$!
sleep 1
A="iscsi://127.0.0.1:3271/$tgt_iqn/1"
B="iscsi://127.0.0.1:3272/$ours_iqn/0"

run() { # url workload -> "figure I/Os" (figure: IOPS or MB/s)
  local line
  case $2 in
    rr4k)  line=$(timeout 8 iscsi-perf -m 32 -b 8 -r -t 6 "$1" 2>&1 | tr '\r' '\n' | grep -o 'iops average [0-9]*' | tail -1)
           echo "$line" | awk '{print $3, $3 * 6}';;
    sr128k) line=$(timeout 8 iscsi-perf -m 32 -b 256 -t 6 "$1" 2>&1 | tr '\r' '\n' | grep -o 'iops average [0-9]* ([0-9]* MB/s)' | tail -1)
           echo "$line" | sed 's/iops average \([0-9]*\) (\([0-9]*\) MB.*/\2 \1/' | awk '{print $1, $2 * 6}';;
    rw4k)  s=$(date +%s.%N); qemu-img bench -w -f raw -c 60000 -d 32 -s 4k -S 1052672 -t none "$1" >/dev/null 2>&1 || { echo "0 0"; return; }; e=$(date +%s.%N); echo "$(echo "60000/($e-$s)" | bc) 60000";;
    sw1m)  s=$(date +%s.%N); qemu-img bench -w -f raw -c 2000 -d 8 -s 1M -t none "$1" >/dev/null 2>&1 || { echo "0 0"; return; }; e=$(date +%s.%N); echo "$(echo "2000/($e-$s)" | bc) 2000";;
  esac
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime of all threads, clock ticks
hz=$(getconf CLK_TCK)
measure() { # pid url workload -> "figure µs-of-CPU-per-I/O"
  local c0 c1 out ops
  c0=$(ticks "$1"); out=$(run "$2" "$3"); c1=$(ticks "$1")
  ops=${out#* }; [ "${ops:-0}" -gt 0 ] 2>/dev/null || { echo "${out% *} 0"; return; }
  echo "${out% *} $(echo "($c1 - $c0) * 1000000 / $hz / $ops" | bc)"
}
median() { sort -n | sed -n "$(( (rounds+1)/2 ))p"; }
unit() { case $1 in rr4k|rw4k) echo IOPS;; *) echo MB/s;; esac; }
printf '%-7s %12s %12s %7s %14s %14s   (%s rounds, medians)\n' workload tgtd swift-targetd ratio 'tgtd µs/IO' 'ours µs/IO' "$rounds"
for w in ${BENCH_WORKLOADS:-rr4k rw4k sr128k sw1m}; do
  a=(); b=(); ca=(); cb=()
  for _ in $(seq "$rounds"); do
    r=$(measure "$tgtd_pid" "$A" $w); a+=("${r% *}"); ca+=("${r#* }")
    r=$(measure "$ours" "$B" $w); b+=("${r% *}"); cb+=("${r#* }")
  done
  ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
  mca=$(printf '%s\n' "${ca[@]}" | median); mcb=$(printf '%s\n' "${cb[@]}" | median)
  ratio=$(echo "scale=2; ${mb:-0}/${ma:-1}" | bc 2>/dev/null || echo "?")
  printf '%-7s %12s %12s %7s %14s %14s   %s  tgtd=[%s] ours=[%s]\n' "$w" "$ma" "$mb" "$ratio" "$mca" "$mcb" "$(unit $w)" "${a[*]}" "${b[*]}"
  if [ "$w" = sr128k ] && [ "${loopback:-0}" -gt 0 ]; then
    printf 'sr128k as a fraction of one loopback stream: ours %.2f, tgtd %.2f\n' "$(echo "scale=3; $mb/$loopback" | bc)" "$(echo "scale=3; $ma/$loopback" | bc)"
  fi
done
