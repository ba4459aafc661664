#!/usr/bin/env bash
# Benchmark (not a test): the rbd backstore against tgtd's bs_rbd (Debian's tgt-rbd) on two
# images of the same one-node cluster (scripts/ceph/mini-ceph.sh), filled with data first,
# alternating the two targets per round; `rbd bench` at the same depth is the limit. Prints
# medians, ours/tgtd ratios and each daemon's CPU per I/O (user+system over the run's I/Os):
#   rr4k   4k random read QD32       iscsi-perf -m 32 -b 8 -r       rbd bench read 4K rand, 32 threads
#   sr128k 128k sequential read QD32 iscsi-perf -m 32 -b 256         rbd bench read 128K seq, 32 threads
#   rw4k   4k random write QD32      qemu-img bench -w -d 32 -s 4k   rbd bench write 4K rand, 32 threads
#   sw1m   1M sequential write QD8   qemu-img bench -w -d 8 -s 1M    rbd bench write 1M seq, 8 threads
# Then two gateways (--port-group 1 and 2) with one writer each, on an image with RBD's
# exclusive lock (shared=no) and without it (shared=yes): the lock moving between them.
# Usage: scripts/benchmark.sh rbd [rounds]   (default 3; needs root; BENCH_WORKLOADS picks some)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
"$here/scripts/install-deps.sh" >/dev/null
command -v tgtd >/dev/null || apt-get install -y -qq --no-install-recommends tgt >/dev/null
[ -e /usr/lib/tgt/backing-store/bs_rbd.so ] || apt-get install -y -qq --no-install-recommends tgt-rbd >/dev/null
[ -n "${BENCH_NO_BUILD:-}" ] || (cd "$here" && swift build -c release --product swift-targetd >/dev/null)
bin=$here/.build/release/swift-targetd
work=$(mktemp -d /tmp/swtgt-rbd-bench.XXXXXX)
pids=()
cleanup() {
  # Under set -e: a daemon that already ended must not stop the cleanup.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  tgtadm -C 8 --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1 || true
  tgtadm -C 8 --op delete --mode system --force >/dev/null 2>&1 || true
  "$here/scripts/ceph/mini-ceph-stop.sh" "$work/ceph" --purge >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$here/scripts/ceph/mini-ceph.sh" "$work/ceph" 2> "$work/mini-ceph.log")"
size=1G
for img in ours tgt; do
  rbd create --size $size rbd/bench-$img
  rbd bench --io-type write --io-size 4M --io-pattern seq --io-total $size rbd/bench-$img >/dev/null
done
ours_iqn=iqn.2026-12.org.swifttarget:rbd-bench
tgt_iqn=iqn.2026-12.org.tgt:rbd-bench
tgtd -f -C 8 --iscsi portal=127.0.0.1:3281 > "$work/tgtd.log" 2>&1 &
tgt_pid=$!  # not in pids: tgtd leaves when its system is deleted (SIGTERM alone does not end it)
sleep 1
tgtadm -C 8 --lld iscsi --op new --mode target --tid 1 -T "$tgt_iqn"
# Both targets without librbd's client cache, as a gateway must run (see "Scale-out" in the
# README): with its default (rbd_cache=true, policy writearound) librbd acknowledges writes before
# the OSDs have them once it has seen one flush, and tgtd keeps the image open across rounds, so its
# first round was write-through and the later ones not (measured 5,743 then 12,011 and 10,320 4k
# write IOPS). TGT_RBD_CACHE=default runs tgtd with librbd's defaults instead.
tgt_conf=$CEPH_CONF
if [ "${TGT_RBD_CACHE:-off}" != default ]; then
  tgt_conf=$work/tgt-ceph.conf
  { cat "$CEPH_CONF"; printf '\n[client.admin]\n\trbd cache = false\n'; } > "$tgt_conf"
fi
echo "tgtd's librbd cache: ${TGT_RBD_CACHE:-off} (ours: off)"
tgtadm -C 8 --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 --bstype rbd --backing-store rbd/bench-tgt \
  --bsopts "conf=$tgt_conf;id=admin"
tgtadm -C 8 --lld iscsi --op bind --mode target --tid 1 -I ALL
"$bin" serve --listen 127.0.0.1:3282 --target "$ours_iqn" --lun "rbd:rbd/bench-ours,conf=$CEPH_CONF" \
  --digests None --log-level warning > "$work/ours.log" 2>&1 &
ours_pid=$!; pids+=($ours_pid)
sleep 1
A="iscsi://127.0.0.1:3281/$tgt_iqn/1"
B="iscsi://127.0.0.1:3282/$ours_iqn/0"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks, user + system
tick=$(getconf CLK_TCK)
ios() { # workload seconds-measured rate -> I/Os done
  case $1 in rr4k|rw4k) echo "$2 * $3" | bc;; sr128k) echo "$2 * $3 * 8" | bc;; sw1m) echo "$2 * $3" | bc;; esac
}
run() { # url workload -> "rate seconds"
  local s e out
  case $2 in
    rr4k)  out=$(timeout 10 iscsi-perf -m 32 -b 8 -r -t 6 "$1" 2>&1 | tr '\r' '\n' | grep -o 'iops average [0-9]*' | tail -1 | awk '{print $3}'); echo "${out:-0} 6";;
    sr128k) out=$(timeout 10 iscsi-perf -m 32 -b 256 -t 6 "$1" 2>&1 | tr '\r' '\n' | grep -o 'iops average [0-9]* ([0-9]* MB/s)' | tail -1 | sed 's/.*(\([0-9]*\) MB.*/\1/'); echo "${out:-0} 6";;
    rw4k)  s=$(date +%s.%N); qemu-img bench -w -f raw -c 20000 -d 32 -s 4k -S 1052672 -t none "$1" >/dev/null 2>&1 || { echo "0 1"; return; }
           e=$(date +%s.%N); echo "$(echo "20000/($e-$s)" | bc) $(echo "$e-$s" | bc)";;
    sw1m)  s=$(date +%s.%N); qemu-img bench -w -f raw -c 500 -d 8 -s 1M -t none "$1" >/dev/null 2>&1 || { echo "0 1"; return; }
           e=$(date +%s.%N); echo "$(echo "500/($e-$s)" | bc) $(echo "$e-$s" | bc)";;
  esac
}
limit() { # rbd bench at the same depth on our image: IOPS (4k) or MB/s
  local out
  case $1 in
    rr4k)  out=$(rbd bench --io-type read --io-size 4K --io-threads 32 --io-pattern rand --io-total 400M rbd/bench-ours 2>&1 | grep -o 'ops/sec: [0-9.]*' | tail -1 | awk '{printf "%d", $2}');;
    sr128k) out=$(rbd bench --io-type read --io-size 128K --io-threads 32 --io-pattern seq --io-total 2G rbd/bench-ours 2>&1 | grep -o 'bytes/sec: [0-9.]* [KMG]iB' | tail -1 | awk '{v=$2; if ($3=="GiB") v*=1024; if ($3=="KiB") v/=1024; printf "%d", v}');;
    rw4k)  out=$(rbd bench --io-type write --io-size 4K --io-threads 32 --io-pattern rand --io-total 80M rbd/bench-ours 2>&1 | grep -o 'ops/sec: [0-9.]*' | tail -1 | awk '{printf "%d", $2}');;
    sw1m)  out=$(rbd bench --io-type write --io-size 1M --io-threads 8 --io-pattern seq --io-total 500M rbd/bench-ours 2>&1 | grep -o 'bytes/sec: [0-9.]* [KMG]iB' | tail -1 | awk '{v=$2; if ($3=="GiB") v*=1024; if ($3=="KiB") v/=1024; printf "%d", v}');;
  esac
  echo "${out:-?}"
}
unit() { case $1 in rr4k|rw4k) echo IOPS;; *) echo MB/s;; esac; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
printf '%-7s %10s %14s %7s %10s %11s %11s\n' workload tgtd swift-targetd ratio "rbd bench" "tgtd µs/IO" "ours µs/IO"
for w in ${BENCH_WORKLOADS:-rr4k sr128k rw4k sw1m}; do
  a=(); b=(); ca=(); cb=()
  for _ in $(seq "$rounds"); do
    for side in tgt ours; do
      url=$A; pid=$tgt_pid; [ $side = ours ] && { url=$B; pid=$ours_pid; }
      c0=$(cpu $pid); read -r rate secs < <(run "$url" $w); c1=$(cpu $pid)
      n=$(ios $w "$secs" "$rate"); us=$(echo "scale=1; ($c1 - $c0) * 1000000 / $tick / ($n + 0.001)" | bc)
      if [ $side = tgt ]; then a+=("$rate"); ca+=("$us"); else b+=("$rate"); cb+=("$us"); fi
    done
  done
  ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
  ratio=$(echo "scale=2; ${mb:-0}/${ma:-1}" | bc 2>/dev/null || echo "?")
  printf '%-7s %10s %14s %7s %10s %11s %11s   %s  tgtd=[%s] ours=[%s]\n' "$w" "$ma" "$mb" "$ratio" "$(limit $w)" \
    "$(median "${ca[@]}")" "$(median "${cb[@]}")" "$(unit $w)" "${a[*]}" "${b[*]}"
done

# Two gateways, one writer each (4k random writes QD8 on interleaved blocks): with RBD's
# exclusive lock it moves between the gateways; shared=yes has none.
iqn=iqn.2026-12.org.swifttarget:rbd-bench-gw
for shared in no yes; do
  gw=()
  for n in 1 2; do
    "$bin" serve --listen 127.0.0.1:$((3290 + n)) --target $iqn --lun "rbd:rbd/gw-$shared,conf=$CEPH_CONF,size=256M,shared=$shared" \
      --port-group $n --port-groups 1,2 --digests None --log-level warning > "$work/gw-$shared-$n.log" 2>&1 &
    gw+=($!); pids+=($!)
    sleep 1
  done
  s=$(date +%s.%N)
  qemu-img bench -f raw -w -c 4000 -d 8 -s 4k -S 8192 -o 0 -t none "iscsi://127.0.0.1:3291/$iqn/0" >/dev/null 2>&1 & w1=$!
  qemu-img bench -f raw -w -c 4000 -d 8 -s 4k -S 8192 -o 4096 -t none "iscsi://127.0.0.1:3292/$iqn/0" >/dev/null 2>&1 & w2=$!
  wait $w1 $w2
  e=$(date +%s.%N)
  s1=$(date +%s.%N)
  qemu-img bench -f raw -w -c 4000 -d 8 -s 4k -S 8192 -o 0 -t none "iscsi://127.0.0.1:3291/$iqn/0" >/dev/null 2>&1
  e1=$(date +%s.%N)
  printf 'two gateways, shared=%-3s: 8000 4k writes through both in %.1f s (%d IOPS); 4000 through one alone in %.1f s (%d IOPS)\n' \
    $shared "$(echo "$e-$s" | bc)" "$(echo "8000/($e-$s)" | bc)" "$(echo "$e1-$s1" | bc)" "$(echo "4000/($e1-$s1)" | bc)"
  for p in "${gw[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
done
