#!/usr/bin/env bash
# Heap allocations per SCSI command on the steady-state read and write paths of the release
# daemon, over real TCP with a real initiator (qemu-img bench over iscsi://).
#
# How: the daemon runs with scripts/alloc-count/malloc_counter.c preloaded, which counts every
# malloc/calloc/realloc/memalign of every thread and writes the totals at exit. Each workload
# runs twice on a fresh daemon, with SHORT and LONG commands; login, the initiator's probing
# commands and start-up cost the same in both, so (allocations(LONG) - allocations(SHORT)) /
# (LONG - SHORT) is what one more command costs.
#
# Usage: scripts/alloc-count.sh [--check]   (--check: fail when a workload exceeds its bound)
# Env: BENCH_NO_BUILD=1 reuses .build/release/swift-targetd.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
check=${1:-}
command -v qemu-img >/dev/null || { echo "alloc-count: qemu-img missing (scripts/install-deps.sh)"; exit 1; }
# --static-swift-stdlib: the same release build flags as scripts/lio-conformance.sh, so test.sh builds once.
[ -n "${BENCH_NO_BUILD:-}" ] || (cd "$here" && swift build -c release --static-swift-stdlib --product swift-targetd >/dev/null)
daemon=$here/.build/release/swift-targetd
work=$(mktemp -d /var/tmp/swtgt-alloc.XXXXXX)  # not tmpfs: cached reads need RWF_NOWAIT
cc=$(command -v clang || command -v cc)
"$cc" -O2 -shared -fPIC -o "$work/malloc_counter.so" "$here/scripts/alloc-count/malloc_counter.c"
img=$work/lun.img
dd if=/dev/urandom of="$img" bs=1M count=64 status=none  # written and cached before the runs
iqn=iqn.2026-12.org.swifttarget:alloc
port=3290
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Per command at most this many allocations: reads allocate none (their buffers and PDU headers
# are used again, BufferRecycler); what writes still allocate is NIO's ByteToMessageHandler
# copying a PDU that spans two socket reads together while commands in flight hold slices of the
# receive buffer (immediate data). The bounds sit above the figures measured when they were set
# (0.00, 0.35, 0.00, 2.34), with room for the run-to-run spread of the write figures.
declare -A bound=([read4k]=0.2 [write4k]=1.0 [read128k]=0.2 [write128k]=3.5)

count() { # workload commands -> allocations of a daemon that served them
  local workload=$1 commands=$2 args
  case $workload in
    read4k)    args=(-d 32 -s 4k -S 4k) ;;
    write4k)   args=(-w -d 32 -s 4k -S 4k) ;;
    read128k)  args=(-d 32 -s 128k -S 128k) ;;
    write128k) args=(-w -d 8 -s 128k -S 128k) ;;
  esac
  MALLOC_COUNTER_OUT=$work/counts LD_PRELOAD=$work/malloc_counter.so "$daemon" serve \
    --listen 127.0.0.1:$port --target "$iqn" --lun "file:$img" --digests None --log-level warning \
    >"$work/daemon.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  qemu-img bench -f raw -t none -c "$commands" "${args[@]}" "iscsi://127.0.0.1:$port/$iqn/0" >/dev/null
  kill -TERM "$pid"; wait "$pid" || { echo "alloc-count: the daemon failed:"; cat "$work/daemon.log"; exit 1; }
  pid=
  awk '$1 == "allocations" { print $2 }' "$work/counts"
}

short=2000 long=22000
status=0
for workload in read4k write4k read128k write128k; do
  a=$(count $workload $short); b=$(count $workload $long)
  per=$(awk -v a="$a" -v b="$b" -v n=$((long - short)) 'BEGIN { printf "%.2f", (b - a) / n }')
  verdict=
  if [ "$check" = --check ]; then
    if awk -v p="$per" -v m="${bound[$workload]}" 'BEGIN { exit !(p <= m) }'; then verdict=" (bound ${bound[$workload]}: ok)"
    else verdict=" (bound ${bound[$workload]}: EXCEEDED)"; status=1; fi
  fi
  echo "alloc-count: $workload: $per allocations per command$verdict"
done
exit $status
