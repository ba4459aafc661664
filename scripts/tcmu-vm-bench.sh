#!/bin/sh
# Rough throughput of the TCMU handler (release build) against the kernel's own fileio backstore,
# both exported through tcm_loop in the LIO VM, same image size, same dd workloads (sequential 64 KiB
# and 1 MiB writes with fsync, reads after dropping caches). Numbers are from a TCG-emulated guest on a
# shared host: compare the two columns, not with bare metal.
# Usage: scripts/tcmu-vm-bench.sh [MiB]   (default 64)
set -eu
MB=${1:-64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM=/work/shared/tools/lio-vm.sh
cd "$ROOT"
swift build -c release --product swift-tcmu-probe
BIN=$(swift build -c release --show-bin-path)/swift-tcmu-probe
SHARE=$(mktemp -d /tmp/tcmu-bench.XXXXXX)
trap 'rm -rf "$SHARE"' EXIT
mkdir -p "$SHARE/lib"
cp "$BIN" "$SHARE/swift-tcmu-probe"
ldd "$BIN" | awk '/=> \//{print $3}' | xargs -I{} cp -L {} "$SHARE/lib/"
cp -L /lib64/ld-linux-x86-64.so.2 "$SHARE/lib/"
cat > "$SHARE/run.sh" <<GUEST
#!/bin/sh
MB=$MB
GUEST
cat >> "$SHARE/run.sh" <<'GUEST'
CFG=/sys/kernel/config/target
SIZE=$((MB*1024*1024*2))
/share/lib/ld-linux-x86-64.so.2 --library-path /share/lib /share/swift-tcmu-probe > /tmp/probe.log 2>&1 &
sleep 1
mkdir -p $CFG/core/user_1/t
echo -n "dev_size=$SIZE" > $CFG/core/user_1/t/control
echo -n "dev_config=swifttarget/file:/tmp/t.img" > $CFG/core/user_1/t/control
echo -n "hw_max_sectors=2048" > $CFG/core/user_1/t/control
echo 1 > $CFG/core/user_1/t/enable
mkdir -p $CFG/core/fileio_0/f
echo -n "fd_dev_name=/tmp/f.img,fd_dev_size=$SIZE" > $CFG/core/fileio_0/f/control
echo 1 > $CFG/core/fileio_0/f/enable
lun() { # naa backstore-path
  mkdir -p $CFG/loopback/$1/tpgt_1/lun/lun_0
  echo $1.i > $CFG/loopback/$1/tpgt_1/nexus 2>/dev/null || echo naa.${1#naa.}f > $CFG/loopback/$1/tpgt_1/nexus
  ln -s $2 $CFG/loopback/$1/tpgt_1/lun/lun_0/port; }
lun naa.5001405000000011 $CFG/core/user_1/t
sleep 1
lun naa.5001405000000021 $CFG/core/fileio_0/f
sleep 1
disk() { for b in /sys/block/sd*; do grep -q "$1" $b/device/model && echo ${b##*/}; done; }
T=$(disk SwiftTarget); F=$(disk FILEIO)
echo "tcmu=/dev/$T fileio=/dev/$F"
now() { cut -d' ' -f1 /proc/uptime; }
rate() { # dev bs count mode -> MB/s (busybox dd prints no rate; /proc/uptime has 10 ms resolution)
  [ $4 = r ] && echo 3 > /proc/sys/vm/drop_caches
  t0=$(now)
  if [ $4 = w ]; then dd if=/dev/zero of=/dev/$1 bs=$2 count=$3 conv=fsync 2>/dev/null
  else dd if=/dev/$1 of=/dev/null bs=$2 count=$3 2>/dev/null; fi
  t1=$(now)
  awk -v a=$t0 -v b=$t1 -v mb=$MB 'BEGIN { d = b - a; if (d < 0.01) d = 0.01; printf "%.1f MB/s (%.2fs)", mb / d, d }'; }
printf "%-22s %-22s %-22s\n" workload "swifttarget" "kernel fileio"
for w in "64k $((MB*16)) w" "64k $((MB*16)) r" "1M $MB w" "1M $MB r"; do
  set -- $w
  printf "%-22s %-22s %-22s\n" "dd $3 bs=$1 ${MB}MiB" "$(rate $T $1 $2 $3)" "$(rate $F $1 $2 $3)"
done
GUEST
"$VM" -s "$SHARE" -p 0 -t 600 sh /share/run.sh
