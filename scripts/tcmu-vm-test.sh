#!/bin/sh
# TCMU handler against the real kernel: boots the LIO VM (shared/tools/lio-vm.sh) and, in the guest,
#  (1) starts swift-tcmu-probe (TCMUHandler), creates a TCMU backstore user_1/disk0 with
#      dev_config=swifttarget/sparse:/tmp/disk0.img: the netlink ADDED event makes the handler open it;
#      writes attrib/dev_size: RECONFIG is acknowledged (the write succeeds) and the handler serves the
#      new capacity; removing the backstore sends REMOVED and the handler closes it;
#  (2) exports it through tcm_loop as a local SCSI disk: 1 MiB of random data written and read back
#      byte-identical (and found in the backing image), capacity change seen after a SCSI rescan.
# Usage: scripts/tcmu-vm-test.sh [-c debug|release] [-k]   (-k: keep the share dir)
# Needs: apt-get install --no-install-recommends qemu-system-x86. Exit status 0 = every check passed.
set -eu
CONF=debug KEEP=0
while getopts c:k o; do case $o in c) CONF=$OPTARG ;; k) KEEP=1 ;; *) exit 2 ;; esac; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM=${LIOVM:-$ROOT/../shared/tools/lio-vm.sh}
[ -x "$VM" ] || VM=/work/shared/tools/lio-vm.sh

cd "$ROOT"
swift build -c "$CONF" --product swift-tcmu-probe
BIN=$(swift build -c "$CONF" --show-bin-path)/swift-tcmu-probe

SHARE=$(mktemp -d /tmp/tcmu-vm.XXXXXX)
[ $KEEP = 1 ] || trap 'rm -rf "$SHARE"' EXIT
mkdir -p "$SHARE/lib"
cp "$BIN" "$SHARE/swift-tcmu-probe"
ldd "$BIN" | awk '/=> \//{print $3}' | xargs -I{} cp -L {} "$SHARE/lib/"
cp -L /lib64/ld-linux-x86-64.so.2 "$SHARE/lib/"

cat > "$SHARE/run.sh" <<'GUEST'
#!/bin/sh
CFG=/sys/kernel/config/target
DEV=$CFG/core/user_1/disk0
PASS=0 FAIL=0
ok()   { echo "PASS: $*"; PASS=$((PASS+1)); }
bad()  { echo "FAIL: $*"; FAIL=$((FAIL+1)); }
waitlog() { # pattern seconds
  i=0; while ! grep -q "$1" /tmp/probe.log; do i=$((i+1)); [ $i -gt $(($2*10)) ] && return 1; sleep 0.1; done; return 0; }

/share/lib/ld-linux-x86-64.so.2 --library-path /share/lib /share/swift-tcmu-probe > /tmp/probe.log 2>&1 &
PROBE=$!
waitlog "probe: started" 20 && ok "handler started (netlink family joined)" || { bad "handler did not start"; cat /tmp/probe.log; exit 1; }

echo "== (1) ADDED"
mkdir -p $DEV
echo -n "dev_size=$((8*1024*1024))" > $DEV/control
echo -n "dev_config=swifttarget/sparse:/tmp/disk0.img" > $DEV/control
echo -n "hw_max_sectors=1024" > $DEV/control 2>/dev/null || true
if echo 1 > $DEV/enable; then ok "enable returned (ADDED_DEVICE_DONE status 0)"; else bad "enable failed"; fi
cat /sys/class/uio/uio0/name; echo
waitlog "uio0 disk0 capacity=8388608" 10 && ok "handler serves uio0 with 8 MiB" || bad "handler did not open uio0"
[ -f /tmp/disk0.img ] && ok "backing image created: $(ls -l /tmp/disk0.img | awk '{print $5}') bytes" || bad "no backing image"

echo "== (2) tcm_loop LUN on the TCMU device"
NAA=naa.5001405000000001
mkdir -p $CFG/loopback/$NAA/tpgt_1/lun/lun_0
echo naa.5001405000000002 > $CFG/loopback/$NAA/tpgt_1/nexus
ln -s $DEV $CFG/loopback/$NAA/tpgt_1/lun/lun_0/tcmu_port
i=0; while [ ! -b /dev/sda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ -b /dev/sda ]; then
  ok "/dev/sda appeared: $(cat /sys/block/sda/device/vendor) $(cat /sys/block/sda/device/model) $(cat /sys/block/sda/size) sectors"
  [ "$(cat /sys/block/sda/size)" = 16384 ] && ok "initiator sees 8 MiB" || bad "initiator sees $(cat /sys/block/sda/size) sectors"
  dd if=/dev/urandom of=/tmp/pat bs=64k count=16 2>/dev/null
  dd if=/tmp/pat of=/dev/sda bs=64k seek=3 conv=fsync 2>/dev/null
  echo 3 > /proc/sys/vm/drop_caches
  dd if=/dev/sda of=/tmp/back bs=64k skip=3 count=16 2>/dev/null
  cmp /tmp/pat /tmp/back && ok "1 MiB written and read back byte-identical through TCMU" || bad "read-back differs"
  dd if=/tmp/disk0.img of=/tmp/img bs=64k skip=3 count=16 2>/dev/null
  cmp /tmp/pat /tmp/img && ok "the data is in the backing image" || bad "backing image differs"
else
  bad "/dev/sda did not appear"
fi

echo "== (1) RECONFIG dev_size"
if echo $((16*1024*1024)) > $DEV/attrib/dev_size; then ok "dev_size write acknowledged (RECONFIG_DEVICE_DONE status 0)"; else bad "dev_size write failed"; fi
[ "$(cat $DEV/attrib/dev_size)" = $((16*1024*1024)) ] && ok "attrib/dev_size = 16 MiB" || bad "attrib/dev_size = $(cat $DEV/attrib/dev_size)"
waitlog "uio0 disk0 capacity=16777216" 10 && ok "handler serves 16 MiB" || bad "handler capacity not updated"
if [ -b /dev/sda ]; then
  echo 1 > /sys/block/sda/device/rescan; sleep 0.5
  [ "$(cat /sys/block/sda/size)" = 32768 ] && ok "initiator sees 16 MiB after rescan" || bad "initiator sees $(cat /sys/block/sda/size) sectors after rescan"
fi
if echo 1000 > $DEV/attrib/dev_size 2>/dev/null; then bad "bad dev_size accepted"; else ok "bad dev_size refused by the handler's reply"; fi

echo "== (1) REMOVED"
rm -f $CFG/loopback/$NAA/tpgt_1/lun/lun_0/tcmu_port
rmdir $CFG/loopback/$NAA/tpgt_1/lun/lun_0 2>/dev/null; rmdir $CFG/loopback/$NAA/tpgt_1 2>/dev/null; rmdir $CFG/loopback/$NAA 2>/dev/null
rmdir $DEV && ok "backstore removed" || bad "rmdir backstore failed"
waitlog "devices: \[\]" 10 && ok "handler closed uio0 on REMOVED" || bad "handler still serves uio0"

kill $PROBE; wait $PROBE
grep -q "probe: stopped" /tmp/probe.log && ok "handler stopped cleanly" || bad "handler did not stop cleanly"
echo "== handler log"; cat /tmp/probe.log
echo "RESULT: $PASS passed, $FAIL failed"
[ $FAIL = 0 ]
GUEST
chmod +x "$SHARE/run.sh"
"$VM" -s "$SHARE" -p 0 -t 300 sh /share/run.sh
