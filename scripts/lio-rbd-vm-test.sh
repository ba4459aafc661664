#!/usr/bin/env bash
# rbd LUNs in the daemon's LIO-backed mode on a real kernel: the TCMU handler serves Ceph RBD
# images through librbd, the kernel initiator reads and writes them.
#  - host: the project's one-node cluster (scripts/ceph/mini-ceph.sh on 127.0.0.1; the one named by
#    $CEPH_CONF/$MINI_CEPH_DIR when a caller has one running), an existing image filled with
#    known data;
#  - guest (scripts/lio-vm.sh): the cluster's monitor and OSD ports on the guest's 127.0.0.1 are
#    relayed (socat) to the host's 127.0.0.1 through QEMU's user network, so every address Ceph
#    hands out works unchanged; librbd and librados travel in /share/lib (the daemon loads them
#    with dlopen); `swift-targetd run --config` builds user_7 backstores for an rbd LUN created
#    by "size" and one on the existing image; the kernel initiator logs in;
#  - checks: LIO's device sizes; the existing image reads back byte-exact through the kernel;
#    16 MiB written with O_DIRECT reads back byte-exact through the kernel and, after the guest
#    ends, with `rbd export` on the host; a clean stop removes the export.
# Usage: scripts/lio-rbd-vm-test.sh [-k]   (-k: keep the share dir)
# Needs: qemu-system-x86, Ceph's packages (scripts/install-deps.sh). Prints "RESULT: N passed, M failed".
set -euo pipefail
KEEP=0
while getopts k o; do case $o in k) KEEP=1 ;; *) exit 2 ;; esac; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/vm-share.sh"
VM=$LIO_VM
cd "$ROOT"
swift build --product swift-targetd
swift build --product swift-targetctl
BIN=$(swift build --show-bin-path)

WORK=$(mktemp -d /tmp/lio-rbd-vm.XXXXXX)
OWN_CLUSTER=0
cleanup() {
  [ $OWN_CLUSTER = 1 ] && "$ROOT/scripts/ceph/mini-ceph-stop.sh" "$WORK/ceph" --purge >/dev/null 2>&1 || true
  [ $KEEP = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
if [ -z "${CEPH_CONF:-}" ] || [ -z "${MINI_CEPH_DIR:-}" ]; then
  eval "$("$ROOT/scripts/ceph/mini-ceph.sh" "$WORK/ceph" 2> "$WORK/mini-ceph.log")" \
    || { tail -20 "$WORK/mini-ceph.log"; echo "RESULT: 0 passed, 1 failed"; exit 1; }
  OWN_CLUSTER=1
fi
POOL=${MINI_CEPH_POOL:-rbd}
MON_PORT=${MINI_CEPH_MON##*:}
# Every port a client is sent to: the monitor's and each OSD's public address.
OSD_PORTS=$(ceph osd dump --format json | python3 -c '
import json, sys
for o in json.load(sys.stdin)["osds"]:
    for a in o["public_addrs"]["addrvec"]:
        print(a["addr"].rsplit(":", 1)[1])')
NEW=lio-new-$$ OLD=lio-old-$$
rbd rm "$POOL/$NEW" >/dev/null 2>&1 || true
head -c $((8 << 20)) /dev/urandom > "$WORK/old.bin"
rbd import --no-progress "$WORK/old.bin" "$POOL/$OLD" >/dev/null
remove_images() { rbd rm --no-progress "$POOL/$NEW" >/dev/null 2>&1 || true; rbd rm --no-progress "$POOL/$OLD" >/dev/null 2>&1 || true; }
trap 'remove_images; cleanup' EXIT

SHARE=$WORK/share
mkdir -p "$SHARE/ceph"
share_binaries "$SHARE" "$BIN/swift-targetd" "$BIN/swift-targetctl"
# librbd and librados with their libraries (they are loaded at run time, so ldd of the daemon misses them).
for lib in librbd.so.1 librados.so.2; do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
  [ -n "$path" ] || { echo "no $lib on the host (apt-get install librbd1)"; echo "RESULT: 0 passed, 1 failed"; exit 1; }
  cp -L "$path" "$SHARE/lib/"
  ldd "$path" | awk '/=> \//{print $3}' | xargs -I{} cp -Ln {} "$SHARE/lib/" 2>/dev/null || true
done
cp "$MINI_CEPH_KEYRING" "$SHARE/ceph/keyring"
cat > "$SHARE/ceph/ceph.conf" <<EOF
[global]
mon host = v2:127.0.0.1:$MON_PORT
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
ms bind ipv6 = false
[client]
keyring = /share/ceph/keyring
admin socket =
log file =
EOF
cp "$WORK/old.bin" "$SHARE/old.bin"
printf '%s\n' "$MON_PORT" $OSD_PORTS > "$SHARE/ports"
printf 'POOL=%s\nNEW=%s\nOLD=%s\n' "$POOL" "$NEW" "$OLD" > "$SHARE/names"

cat > "$SHARE/run.sh" <<'GUEST'
#!/bin/sh
. /share/names
IQN=iqn.2025-01.org.swifttarget:lio-rbd
INIT=iqn.2025-01.org.swifttarget:guest
PASS=0 FAIL=0
ok()  { echo "PASS: $*"; PASS=$((PASS+1)); }
bad() { echo "FAIL: $*"; FAIL=$((FAIL+1)); }
finish() { echo "RESULT: $PASS passed, $FAIL failed"; exit 0; }
LOG=/tmp/daemon.log
waitlog() { i=0; while ! grep -q "$1" $LOG; do i=$((i+1)); [ $i -gt $(($2*10)) ] && return 1; sleep 0.1; done; }
find_disk() { for h in /sys/class/scsi_device/*; do
    [ -e "$h/device/model" ] || continue
    grep -q SwiftTarget $h/device/model && [ "${h##*:}" = "$1" ] && ls $h/device/block 2>/dev/null; done; }

# The cluster's ports on the guest's loopback, relayed to the host's (QEMU user net: 10.0.2.2).
RELAYS=""
relay_up() { for p in $(cat /share/ports); do
    socat TCP-LISTEN:$p,bind=127.0.0.1,fork,reuseaddr TCP:10.0.2.2:$p & RELAYS="$RELAYS $!"; done; sleep 0.5; }
# The cluster lost: the relays and every connection they carry.
relay_down() { kill $RELAYS 2>/dev/null; killall socat 2>/dev/null; RELAYS=""; }
relay_up

cat > /tmp/config.json <<EOF
{
  "version": 1,
  "portals": ["127.0.0.1:3260"],
  "targets": [{
    "name": "$IQN",
    "luns": [
      { "id": 0, "backstore": "rbd", "path": "$POOL/$NEW", "size": 33554432,
        "options": { "conf": "/share/ceph/ceph.conf", "id": "admin" } },
      { "id": 1, "backstore": "rbd", "path": "$POOL/$OLD",
        "options": { "conf": "/share/ceph/ceph.conf" } }
    ],
    "allowedClients": [{ "action": "allow", "initiator": "$INIT" }, { "action": "deny" }]
  }]
}
EOF
/share/lib/ld-linux-x86-64.so.2 --library-path /share/lib /share/swift-targetd run --config /tmp/config.json \
  --fabric lio --api-socket /tmp/api.sock --lio-state /tmp/run/lio-export.json > $LOG 2>&1 &
DAEMON=$!
if waitlog "LIO export ready" 120; then ok "daemon in LIO-backed mode with two rbd LUNs"; else bad "daemon did not start"; cat $LOG; finish; fi
CFG=/sys/kernel/config/target
TPG=$CFG/iscsi/$IQN/tpgt_1
size_of() { b=$(ls $TPG/lun/lun_$1 | grep user_7_ | sed 's/^user_7_//'); cat $CFG/core/user_7/$b/attrib/dev_size 2>/dev/null; }
[ "$(size_of 0)" = 33554432 ] && ok "LUN 0: a user_7 backstore of 32 MiB (the image created by size)" || bad "LUN 0 dev_size $(size_of 0)"
[ "$(size_of 1)" = 8388608 ] && ok "LUN 1: the existing image's 8 MiB" || bad "LUN 1 dev_size $(size_of 1)"
grep -q "serving rbd:$POOL/$NEW" $LOG && ok "the TCMU handler serves rbd:$POOL/$NEW" || bad "handler log: $(grep -m2 uio $LOG)"

mkdir -p /etc/iscsi /run/lock/iscsi /var/lib/iscsi /etc/iscsi/nodes /etc/iscsi/send_targets
echo "InitiatorName=$INIT" > /etc/iscsi/initiatorname.iscsi
iscsid -f > /tmp/iscsid.log 2>&1 &
sleep 1
iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 >/dev/null
iscsiadm -m node -T $IQN -p 127.0.0.1:3260 --login >/dev/null && ok "kernel initiator logged in" || { bad "login failed"; finish; }
i=0; SD0=""; SD1=""
while { [ -z "$SD0" ] || [ -z "$SD1" ]; } && [ $i -lt 200 ]; do SD0=$(find_disk 0); SD1=$(find_disk 1); sleep 0.1; i=$((i+1)); done
[ -n "$SD0" ] && [ -n "$SD1" ] || { bad "disks not found"; finish; }
[ "$(cat /sys/block/$SD0/size)" = 65536 ] && [ "$(cat /sys/block/$SD1/size)" = 16384 ] \
  && ok "the initiator sees 32 MiB (/dev/$SD0) and 8 MiB (/dev/$SD1)" || bad "sizes $(cat /sys/block/$SD0/size) $(cat /sys/block/$SD1/size)"

dd if=/dev/$SD1 of=/tmp/old.back bs=1M count=8 iflag=direct 2>/dev/null
cmp -s /share/old.bin /tmp/old.back && ok "the existing image reads back byte-exact through the kernel" || bad "LUN 1 data differs"
dd if=/dev/urandom of=/share/new.bin bs=1M count=16 2>/dev/null
dd if=/share/new.bin of=/dev/$SD0 bs=1M oflag=direct 2>/dev/null && ok "16 MiB written with O_DIRECT" || bad "O_DIRECT write failed"
sync
dd if=/dev/$SD0 of=/tmp/new.back bs=1M count=16 iflag=direct 2>/dev/null
cmp -s /share/new.bin /tmp/new.back && ok "and read back byte-exact through the kernel" || bad "LUN 0 read-back differs"
# A write of a partial object range, then its neighbours: no read-modify-write damage.
dd if=/dev/zero of=/dev/$SD0 bs=4k seek=1 count=1 oflag=direct 2>/dev/null
dd if=/dev/$SD0 of=/tmp/blk bs=4k skip=1 count=1 iflag=direct 2>/dev/null
[ "$(tr -d '\000' < /tmp/blk | wc -c)" = 0 ] && ok "a 4 KiB zero write reads back" || bad "4 KiB write lost"
dd if=/dev/zero of=/share/new.bin bs=4k seek=1 count=1 conv=notrunc 2>/dev/null

BS0=$(ls $TPG/lun/lun_0 | grep user_7_ | sed 's/^user_7_//')
[ "$(cat $CFG/core/user_7/$BS0/attrib/cmd_time_out)" = 60 ] && ok "the kernel gives an rbd command 60 s (cmd_time_out)" \
  || bad "cmd_time_out $(cat $CFG/core/user_7/$BS0/attrib/cmd_time_out)"

# The cluster goes away for 40 s with a read and a write in flight. The read's OSD request
# times out (25 s) and is answered NOT READY, becoming ready, which the kernel initiator retries
# (it counts such an answer in ioerr_cnt). The write waits in librbd for the image's exclusive
# lock to come back, past the initiator's 30 s, which aborts it (iotmo_cnt) and retries; the
# kernel waits for an rbd command at most cmd_time_out. Once the cluster is back both complete:
# nothing hangs for good, nothing is lost, no I/O error reaches the application.
dd if=/dev/urandom of=/share/late.bin bs=1M count=1 2>/dev/null
cnt() { printf '%d' "$(cat /sys/block/$1/device/$2)"; }
RERR0=$(cnt $SD1 ioerr_cnt) RTMO0=$(cnt $SD1 iotmo_cnt)
relay_down
T0=$(cut -d. -f1 /proc/uptime)
dd if=/share/late.bin of=/dev/$SD0 bs=1M seek=20 count=1 oflag=direct 2>/tmp/late.err &
WRITER=$!
dd if=/dev/$SD1 of=/tmp/old.back2 bs=1M count=8 iflag=direct 2>/tmp/read.err &
READER=$!
sleep 40
kill -0 $WRITER 2>/dev/null && kill -0 $READER 2>/dev/null && ok "40 s without the cluster: the read and the write wait (retried), not failed" \
  || bad "a command ended during the outage: $(cat /tmp/late.err /tmp/read.err)"
STATE=$(sed 's/.*) \(.\).*/\1/' /proc/$DAEMON/stat)
[ "$STATE" != D ] && ok "the daemon is not in D state ($STATE)" || bad "the daemon is in D state"
relay_up
if wait $WRITER; then ok "the write completed after the cluster came back ($(( $(cut -d. -f1 /proc/uptime) - T0 )) s)"; else bad "the write failed: $(cat /tmp/late.err)"; fi
if wait $READER; then ok "the read completed after the cluster came back"; else bad "the read failed: $(cat /tmp/read.err)"; fi
dd if=/dev/$SD0 of=/tmp/late.back bs=1M skip=20 count=1 iflag=direct 2>/dev/null
cmp -s /share/late.bin /tmp/late.back && ok "the write reads back byte-exact" || bad "the write after the outage reads back different"
cmp -s /share/old.bin /tmp/old.back2 && ok "the read got the image's data" || bad "the read during the outage got other data"
[ $(( $(cnt $SD1 ioerr_cnt) - RERR0 )) -ge 1 ] && [ $(( $(cnt $SD1 iotmo_cnt) - RTMO0 )) = 0 ] \
  && ok "the read was answered NOT READY $(( $(cnt $SD1 ioerr_cnt) - RERR0 )) time(s) and never timed out at the initiator" \
  || bad "read: $(( $(cnt $SD1 ioerr_cnt) - RERR0 )) error answers, $(( $(cnt $SD1 iotmo_cnt) - RTMO0 )) initiator timeouts"
dmesg | grep -q "I/O error" && bad "the kernel reported an I/O error: $(dmesg | grep -m1 'I/O error')" || ok "no I/O error in the kernel log"

iscsiadm -m node -T $IQN -p 127.0.0.1:3260 --logout >/dev/null 2>&1
kill $DAEMON; wait $DAEMON
[ ! -d $CFG/iscsi/$IQN ] && [ -z "$(ls $CFG/core/user_7 2>/dev/null)" ] && ok "a clean stop removed the export" || bad "export left: $(ls $CFG/core/user_7)"
grep -iE ' (error|critical)[: ]' $LOG | head -3 | sed 's/^/  log: /'
finish
GUEST

set +e
timeout 900 "$VM" -i -x socat -m 1024 -s "$SHARE" -p 0 -t 600 sh /share/run.sh > "$WORK/vm.log" 2>&1
grep -E '^(PASS|FAIL):' "$WORK/vm.log"
guest=$(grep -m1 '^RESULT:' "$WORK/vm.log")
[ -n "$guest" ] || { tail -40 "$WORK/vm.log"; echo "RESULT: 0 passed, 1 failed"; exit 1; }
PASS=$(echo "$guest" | sed 's/RESULT: \([0-9]*\) passed.*/\1/') FAIL=$(echo "$guest" | sed 's/.* \([0-9]*\) failed/\1/')
# The host's view of what the guest wrote: the image itself.
rbd export --no-progress "$POOL/$NEW" "$WORK/new.export" >/dev/null 2>&1
if [ -f "$SHARE/new.bin" ] && cmp -s -n $((16 << 20)) "$SHARE/new.bin" "$WORK/new.export" &&
   cmp -s -n $((1 << 20)) "$SHARE/late.bin" <(tail -c +$(( (20 << 20) + 1 )) "$WORK/new.export"); then
  echo "PASS: rbd export on the host gives what the guest wrote"; PASS=$((PASS+1))
else
  echo "FAIL: rbd export on the host differs from what the guest wrote"; FAIL=$((FAIL+1))
fi
echo "RESULT: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
