#!/bin/sh
# TCMU handler against the real kernel: boots the LIO VM (scripts/lio-vm.sh) and, in the guest,
#  (1) starts swift-tcmu-probe (TCMUHandler), creates a TCMU backstore user_1/disk0 with
#      dev_config=swifttarget/sparse:/tmp/disk0.img: the netlink ADDED event makes the handler open it;
#      writes attrib/dev_size: RECONFIG is acknowledged (the write succeeds) and the handler serves the
#      new capacity; removing the backstore sends REMOVED and the handler closes it;
#  (2) exports it through tcm_loop as a local SCSI disk: 1 MiB of random data written and read back
#      byte-identical (and found in the backing image), capacity change seen after a SCSI rescan,
#      emulate_write_cache reconfig seen by sd, a second device served at the same time,
#      kill -9 of the handler during reads and a restart that takes the device over (the kernel
#      answers the commands left BUSY, the reads complete), a clean stop and a restart that runs
#      a read queued meanwhile (no reset), an abort of a command held in the ring (TMR entry), an external
#      action/reset_ring, attrib/dev_config switching the backing image;
#  (3) the handler's own LIO configfs export (ConfigfsPlan): a user_10 backstore and an iSCSI target
#      with an ACL and CHAP, logged into with the kernel initiator (open-iscsi), data round trip,
#      a wrong CHAP password refused, and the export removed again when the handler stops.
# Usage: scripts/tcmu-vm-test.sh [-c debug|release] [-k]   (-k: keep the share dir)
# Needs: apt-get install --no-install-recommends qemu-system-x86. Exit status 0 = every check passed.
set -eu
CONF=debug KEEP=0
while getopts c:k o; do case $o in c) CONF=$OPTARG ;; k) KEEP=1 ;; *) exit 2 ;; esac; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/vm-share.sh"
VM=$LIO_VM

cd "$ROOT"
swift build -c "$CONF" --static-swift-stdlib --product swift-tcmu-probe
BIN=$(swift build -c "$CONF" --show-bin-path)/swift-tcmu-probe

SHARE=$(mktemp -d /tmp/tcmu-vm.XXXXXX)
[ $KEEP = 1 ] || trap 'rm -rf "$SHARE"' EXIT
share_binaries "$SHARE" "$BIN"

cat > "$SHARE/run.sh" <<'GUEST'
#!/bin/sh
CFG=/sys/kernel/config/target
DEV=$CFG/core/user_1/disk0
PASS=0 FAIL=0
ok()   { echo "PASS: $*"; PASS=$((PASS+1)); }
bad()  { echo "FAIL: $*"; FAIL=$((FAIL+1)); }
LOG=/tmp/probe.log
waitlog() { # pattern seconds
  i=0; while ! grep -q "$1" $LOG; do i=$((i+1)); [ $i -gt $(($2*10)) ] && return 1; sleep 0.1; done; return 0; }
start_probe() {
  /share/lib/ld-linux-x86-64.so.2 --library-path /share/lib /share/swift-tcmu-probe "$@" > $LOG 2>&1 &
  PROBE=$!
}
readback() { # what
  echo 3 > /proc/sys/vm/drop_caches
  dd if=/dev/sda of=/tmp/back bs=64k skip=3 count=16 2>/dev/null
  cmp /tmp/pat /tmp/back && ok "$1: data read back byte-identical" || bad "$1: read-back differs"
}

start_probe --handover-dir /run/tcmu-handover
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

echo "== RECONFIG emulate_write_cache"
if [ -b /dev/sda ]; then
  echo "sd cache_type before: $(cat /sys/class/scsi_disk/*/cache_type)"
  if echo 1 > $DEV/attrib/emulate_write_cache; then ok "emulate_write_cache=1 acknowledged"; else bad "emulate_write_cache write failed"; fi
  echo 1 > /sys/block/sda/device/rescan; sleep 0.5
  case "$(cat /sys/class/scsi_disk/*/cache_type)" in "write back") ok "sd sees write back cache (WCE from the handler)";; *) bad "sd cache_type: $(cat /sys/class/scsi_disk/*/cache_type)";; esac
fi

echo "== second device"
DEV2=$CFG/core/user_2/disk1
mkdir -p $DEV2
echo -n "dev_size=$((4*1024*1024))" > $DEV2/control
echo -n "dev_config=swifttarget/file:/tmp/disk1.img" > $DEV2/control
echo 1 > $DEV2/enable && ok "second device enabled" || bad "second device enable failed"
waitlog "disk1 capacity=4194304 cfg=file:/tmp/disk1.img" 10 && ok "handler serves two devices" || bad "second device not served"

echo "== handler restart (kill -9 during reads)"
if [ -b /dev/sda ]; then
  echo 3 > /proc/sys/vm/drop_caches
  ( i=0; while [ $i -lt 6 ]; do dd if=/dev/sda of=/dev/null bs=64k 2>/dev/null || exit 1; echo 3 > /proc/sys/vm/drop_caches; i=$((i+1)); done ) &
  READER=$!
  sleep 0.3
  kill -9 $PROBE; wait $PROBE 2>/dev/null
  ok "handler killed with reads in flight"
  mv $LOG /tmp/probe-first.log
  start_probe --handover-dir /run/tcmu-handover
  waitlog "uio0 disk0 capacity=16777216" 20 && ok "restarted handler serves uio0 again" || bad "restarted handler did not pick up uio0"
  waitlog "disk1 capacity=4194304" 5 && ok "restarted handler serves the second device again" || bad "second device lost on restart"
  if wait $READER; then ok "reads running across the restart completed"; else bad "reads across the restart failed"; fi
  readback "after restart"

  echo "== clean stop, a read queued while no handler runs, restart: the new handler runs it"
  kill $PROBE; wait $PROBE
  grep -q "probe: stopped" $LOG && ok "handler stopped cleanly (ring tails noted)" || bad "handler did not stop cleanly"
  cat $LOG >> /tmp/probe-first.log
  echo 3 > /proc/sys/vm/drop_caches
  dd if=/dev/sda of=/tmp/handover-back bs=64k skip=3 count=16 iflag=direct 2>/dev/null &
  DD=$!
  sleep 1
  start_probe --handover-dir /run/tcmu-handover
  waitlog "picking up the commands a cleanly stopped handler left" 20 && ok "queued read picked up, no reset: $(grep 'picking up' $LOG)" || bad "queued read not picked up"
  if wait $DD; then cmp -s /tmp/pat /tmp/handover-back && ok "the queued read returned the right data" || bad "queued read data differs"
  else bad "queued read failed"; fi
  grep -q "answers them BUSY" $LOG && bad "ring reset although the handler stopped cleanly" || ok "no BUSY after a clean stop"

  echo "== task management: an abort reaches the ring as a TMR entry"
  # The handler is stopped (SIGSTOP) so a read sits in the ring; sd's 2 s timeout makes the
  # SCSI error handler abort it; tcm_loop passes ABORT TASK to LIO, which queues a TMR entry
  # behind the command. After SIGCONT the handler must see the TMR, complete both, and the
  # read (retried by the error handler) must return the right data.
  echo 1 > $DEV/attrib/tmr_notification && ok "tmr_notification on" || bad "tmr_notification write failed"
  echo 2 > /sys/block/sda/device/timeout
  echo 3 > /proc/sys/vm/drop_caches
  kill -STOP $PROBE
  dd if=/dev/sda of=/tmp/tmr-back bs=64k skip=3 count=16 iflag=direct 2>/dev/null &
  DD=$!
  sleep 6
  kill -CONT $PROBE
  if wait $DD; then cmp -s /tmp/pat /tmp/tmr-back && ok "read aborted and retried returned the right data" || bad "data after abort differs"
  else bad "read failed after the abort"; fi
  waitlog "uio0 tmr=[1-9]" 20 && ok "TMR entry seen by the handler: $(grep 'task management' $LOG | tail -1)" || bad "no TMR entry reached the handler"
  echo 30 > /sys/block/sda/device/timeout

  echo "== external action/reset_ring"
  echo 1 > $DEV/action/reset_ring && ok "reset_ring written" || bad "reset_ring failed"
  readback "after reset_ring"

  echo "== RECONFIG dev_config"
  if echo -n "swifttarget/sparse:/tmp/disk0b.img" > $DEV/attrib/dev_config; then ok "dev_config acknowledged"; else bad "dev_config write failed"; fi
  waitlog "cfg=sparse:/tmp/disk0b.img" 10 && ok "handler switched to /tmp/disk0b.img" || bad "handler did not switch backstore"
  echo 3 > /proc/sys/vm/drop_caches
  dd if=/dev/sda of=/tmp/back bs=64k skip=3 count=16 2>/dev/null
  cmp -s /tmp/pat /tmp/back && bad "old data still served after dev_config" || ok "new (empty) image served after dev_config"
fi

echo "== (1) REMOVED"
rm -f $CFG/loopback/$NAA/tpgt_1/lun/lun_0/tcmu_port
rmdir $CFG/loopback/$NAA/tpgt_1/lun/lun_0 2>/dev/null; rmdir $CFG/loopback/$NAA/tpgt_1 2>/dev/null; rmdir $CFG/loopback/$NAA 2>/dev/null
rmdir $DEV && ok "backstore removed" || bad "rmdir backstore failed"
rmdir $DEV2 && ok "second backstore removed" || bad "rmdir second backstore failed"
waitlog "devices: \[\]" 10 && ok "handler closed both devices on REMOVED" || bad "handler still serves a device"

kill $PROBE; wait $PROBE
grep -q "probe: stopped" $LOG && ok "handler stopped cleanly" || bad "handler did not stop cleanly"
echo "== handler log (first run)"; cat /tmp/probe-first.log 2>/dev/null
echo "== handler log (restarted)"; cat $LOG

echo "== (3) iSCSI export through the handler's configfs plan (ACL + CHAP)"
IQN=iqn.2025-01.org.swifttarget:tcmu
INIT=iqn.2025-01.org.swifttarget:guest
mkdir -p /etc/iscsi /run/lock/iscsi /var/lib/iscsi /etc/iscsi/nodes /etc/iscsi/send_targets
echo "InitiatorName=$INIT" > /etc/iscsi/initiatorname.iscsi
LOG=/tmp/probe3.log
start_probe --backstore disk2,16777216,sparse:/tmp/disk2.img --iscsi $IQN --portal 127.0.0.1:3260 --acl $INIT --chap user1:secretpass12
waitlog "probe: exported" 20 && ok "export applied" || bad "export not applied"
waitlog "disk2 capacity=16777216" 10 && ok "handler serves the exported backstore" || bad "exported backstore not served"
[ "$(cat $CFG/iscsi/$IQN/tpgt_1/enable)" = 1 ] && [ -d $CFG/iscsi/$IQN/tpgt_1/acls/$INIT/lun_0 ] && ok "TPG enabled with ACL and mapped LUN" || bad "TPG/ACL missing"
if command -v iscsiadm >/dev/null; then
  iscsid -f > /tmp/iscsid.log 2>&1 &
  sleep 1
  iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 | grep -q $IQN && ok "discovery lists the target" || bad "discovery"
  node() { iscsiadm -m node -T $IQN -p 127.0.0.1:3260 "$@"; }
  node -o update -n node.session.auth.authmethod -v CHAP
  node -o update -n node.session.auth.username -v user1
  node -o update -n node.session.auth.password -v wrongpassword1
  if node --login >/dev/null 2>&1; then bad "login with a wrong CHAP password succeeded"; node --logout >/dev/null 2>&1; else ok "wrong CHAP password refused"; fi
  node -o update -n node.session.auth.password -v secretpass12
  node --login && ok "CHAP login" || bad "CHAP login failed"
  SD=""; i=0
  while [ -z "$SD" ] && [ $i -lt 100 ]; do
    for b in /sys/block/sd*; do [ -e "$b" ] && grep -q SwiftTarget $b/device/model 2>/dev/null && SD=${b##*/}; done
    sleep 0.1; i=$((i+1)); done
  if [ -n "$SD" ]; then
    ok "iSCSI disk /dev/$SD: $(cat /sys/block/$SD/size) sectors"
    dd if=/tmp/pat of=/dev/$SD bs=64k seek=5 conv=fsync 2>/dev/null
    echo 3 > /proc/sys/vm/drop_caches
    dd if=/dev/$SD of=/tmp/back bs=64k skip=5 count=16 2>/dev/null
    cmp /tmp/pat /tmp/back && ok "iSCSI: 1 MiB written and read back byte-identical" || bad "iSCSI read-back differs"
    dd if=/tmp/disk2.img of=/tmp/img bs=64k skip=5 count=16 2>/dev/null
    cmp /tmp/pat /tmp/img && ok "iSCSI: the data is in the backing image" || bad "iSCSI: backing image differs"
  else
    bad "no iSCSI disk appeared"
  fi
  node --logout >/dev/null 2>&1
else
  bad "iscsiadm missing (lio-vm -i)"
fi
kill $PROBE; wait $PROBE
grep -q "probe: export removed" $LOG && [ ! -d $CFG/iscsi/$IQN ] && [ ! -d $CFG/core/user_10 ] && ok "export removed on stop" || bad "export left behind: $(ls $CFG/iscsi $CFG/core)"
echo "== handler log (export)"; cat $LOG
echo "RESULT: $PASS passed, $FAIL failed"
[ $FAIL = 0 ]
GUEST
chmod +x "$SHARE/run.sh"
"$VM" -i -s "$SHARE" -p 0 -t 300 sh /share/run.sh
