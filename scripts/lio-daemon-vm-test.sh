#!/bin/sh
# The daemon's LIO-backed mode on a real kernel (scripts/lio-vm.sh, Debian 6.1 with LIO,
# target_core_user and open-iscsi). In the guest:
#  - foreign LIO objects are made first (a fileio backstore, an iSCSI target, a backstore in our HBA);
#  - `swift-targetd run --config` (fabric auto) finds LIO and builds the export from its configuration:
#    a user_7 backstore per LUN, target + TPG + portal 127.0.0.1:3260, an ACL for one initiator with
#    mutual CHAP, login keys and timeouts; swift-targetctl reads targets and sessions over the API;
#  - the kernel initiator: a wrong CHAP secret is refused; the right one logs in; 64 MiB of random data
#    written with O_DIRECT and read back byte-identical (and found in the backing image);
#  - the daemon is stopped with the export kept (--lio-keep-on-exit), during O_DIRECT reads, and started
#    again: it runs the commands queued meanwhile (ring tails noted at the stop, no BUSY); the session
#    survives and the 64 MiB read back after the restart is byte-identical;
#  - kill -9 of the daemon during O_DIRECT reads, restart: the reads complete and match;
#  - a LUN added live with swift-targetctl appears to the initiator after a rescan, in the same session;
#  - a normal stop removes everything the daemon created, and nothing else.
# Usage: scripts/lio-daemon-vm-test.sh [-k]   (-k: keep the share dir)
# Needs: apt-get install --no-install-recommends qemu-system-x86. Exit status 0 = every check passed.
set -eu
KEEP=0
while getopts k o; do case $o in k) KEEP=1 ;; *) exit 2 ;; esac; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/vm-share.sh"
VM=$LIO_VM

cd "$ROOT"
swift build --product swift-targetd
swift build --product swift-targetctl
BIN=$(swift build --show-bin-path)

SHARE=$(mktemp -d /tmp/lio-daemon-vm.XXXXXX)
[ $KEEP = 1 ] || trap 'rm -rf "$SHARE"' EXIT
share_binaries "$SHARE" "$BIN/swift-targetd" "$BIN/swift-targetctl"

cat > "$SHARE/run.sh" <<'GUEST'
#!/bin/sh
CFG=/sys/kernel/config/target
IQN=iqn.2025-01.org.swifttarget:lio-mode
INIT=iqn.2025-01.org.swifttarget:guest
PASS=0 FAIL=0
ok()  { echo "PASS: $*"; PASS=$((PASS+1)); }
bad() { echo "FAIL: $*"; FAIL=$((FAIL+1)); }
LOG=/tmp/daemon-0.log
SOCK=/tmp/api.sock
run() { /share/lib/ld-linux-x86-64.so.2 --library-path /share/lib "$@"; }
ctl() { run /share/swift-targetctl "$@" --socket $SOCK; }
waitlog() { # pattern seconds
  i=0; while ! grep -q "$1" $LOG; do i=$((i+1)); [ $i -gt $(($2*10)) ] && return 1; sleep 0.1; done; return 0; }
RUNS=0
start_daemon() { # extra options
  RUNS=$((RUNS+1)); LOG=/tmp/daemon-$RUNS.log; : > $LOG
  # Not through run(): $! must be the daemon itself, not a subshell.
  /share/lib/ld-linux-x86-64.so.2 --library-path /share/lib /share/swift-targetd run --config /tmp/config.json \
    --api-socket $SOCK --lio-state /tmp/run/lio-export.json "$@" > $LOG 2>&1 &
  DAEMON=$!
  waitlog "LIO export ready" 60
}
find_disk() { # LUN -> sdX of our target's LUN
  for h in /sys/class/scsi_device/*; do
    [ -e "$h/device/model" ] || continue
    lun=${h##*:}
    grep -q SwiftTarget $h/device/model && [ "$lun" = "$1" ] && ls $h/device/block 2>/dev/null
  done; }

echo "== foreign LIO objects (must survive)"
mkdir -p $CFG/core/fileio_0/foreign
echo -n "fd_dev_name=/tmp/foreign.img,fd_dev_size=4194304" > $CFG/core/fileio_0/foreign/control
echo 1 > $CFG/core/fileio_0/foreign/enable
mkdir -p $CFG/iscsi/iqn.2025-01.org.other:foreign/tpgt_1
mkdir -p $CFG/core/user_7/theirs

cat > /tmp/config.json <<EOF
{
  "version": 1,
  "portals": ["127.0.0.1:3260"],
  "targets": [{
    "name": "$IQN",
    "luns": [
      { "id": 0, "backstore": "file", "path": "/tmp/lun0.img", "size": 134217728 },
      { "id": 1, "backstore": "sparse", "path": "/tmp/lun1.img", "size": 16777216, "writeCache": "write-back" }
    ],
    "auth": { "mode": "mutual-chap",
              "incomingUsers": [{ "user": "guest", "secret": "initiator-secret-1" }],
              "outgoingUser": { "user": "target", "secret": "target-secret-22" } },
    "allowedClients": [{ "action": "allow", "initiator": "$INIT" }, { "action": "deny" }],
    "connection": { "maxRecvDataSegmentLength": 262144, "maxBurstLength": 1048576, "firstBurstLength": 262144 },
    "timeouts": { "nopInInterval": 10, "nopInTimeout": 20, "loginTimeout": 10 }
  }]
}
EOF

echo "== daemon start (fabric auto)"
if start_daemon; then ok "daemon started in LIO-backed mode"; else bad "daemon did not start"; cat $LOG; exit 1; fi
grep -q "LIO-backed mode" $LOG && ok "auto picked LIO" || bad "auto did not pick LIO"
TPG=$CFG/iscsi/$IQN/tpgt_1
BS0=$(ls $TPG/lun/lun_0 | grep user_7_ | sed 's/^user_7_//')
[ -n "$BS0" ] && [ "$(cat $CFG/core/user_7/$BS0/attrib/hw_max_sectors)" = 2048 ] && ok "LUN 0 is user_7/$BS0 with hw_max_sectors 2048" || bad "LUN 0 backstore: '$BS0'"
[ "$(cat $TPG/enable)" = 1 ] && ok "TPG enabled" || bad "TPG not enabled"
[ -d "$TPG/np/127.0.0.1:3260" ] && ok "portal 127.0.0.1:3260" || bad "portal missing: $(ls $TPG/np)"
[ "$(cat $TPG/attrib/generate_node_acls)" = 0 ] && [ -d $TPG/acls/$INIT/lun_1 ] && ok "ACL for $INIT with LUNs 0 and 1" || bad "ACL missing"
[ "$(cat $TPG/acls/$INIT/auth/userid_mutual)" = target ] && ok "mutual CHAP user set" || bad "mutual CHAP user: $(cat $TPG/acls/$INIT/auth/userid_mutual)"
[ "$(cat $TPG/acls/$INIT/attrib/nopin_timeout)" = 10 ] && [ "$(cat $TPG/attrib/login_timeout)" = 10 ] && ok "timeouts applied" || bad "timeouts: nopin $(cat $TPG/acls/$INIT/attrib/nopin_timeout) login $(cat $TPG/attrib/login_timeout)"
grep -q "262144" $TPG/param/MaxRecvDataSegmentLength && ok "MaxRecvDataSegmentLength 262144" || bad "param: $(cat $TPG/param/MaxRecvDataSegmentLength)"
[ "$(cat $CFG/core/user_7/$(ls $TPG/lun/lun_1 | grep user_7_ | sed 's/^user_7_//')/attrib/emulate_write_cache)" = 1 ] && ok "LUN 1 write-back" || bad "LUN 1 write cache"
[ "$(stat -c %a /tmp/run/lio-export.json)" = 600 ] && ok "ownership record is mode 0600" || bad "record mode $(stat -c %a /tmp/run/lio-export.json)"
grep -q "initiator-secret-1\|target-secret-22" $LOG && bad "a CHAP secret appears in the log" || ok "no secret in the log"
ctl list | grep -q "$IQN" && ok "swift-targetctl list shows the target" || bad "ctl list: $(ctl list 2>&1)"

echo "== kernel initiator"
mkdir -p /etc/iscsi /run/lock/iscsi /var/lib/iscsi /etc/iscsi/nodes /etc/iscsi/send_targets
echo "InitiatorName=$INIT" > /etc/iscsi/initiatorname.iscsi
iscsid -f > /tmp/iscsid.log 2>&1 &
sleep 1
iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 | grep -q $IQN && ok "discovery lists the target" || bad "discovery"
node() { iscsiadm -m node -T $IQN -p 127.0.0.1:3260 "$@"; }
node -o update -n node.session.auth.authmethod -v CHAP
node -o update -n node.session.auth.username -v guest
node -o update -n node.session.auth.password -v wrong-secret-123
node -o update -n node.session.auth.username_in -v target
node -o update -n node.session.auth.password_in -v target-secret-22
node -o update -n node.session.timeo.replacement_timeout -v 120
if node --login >/dev/null 2>&1; then bad "login with a wrong CHAP secret succeeded"; node --logout >/dev/null 2>&1; else ok "wrong CHAP secret refused"; fi
node -o update -n node.session.auth.password -v initiator-secret-1
node --login >/dev/null && ok "mutual CHAP login" || bad "mutual CHAP login failed"
i=0; SD=""; while [ -z "$SD" ] && [ $i -lt 100 ]; do SD=$(find_disk 0); sleep 0.1; i=$((i+1)); done
if [ -z "$SD" ]; then bad "no disk for LUN 0"; cat $LOG; echo "RESULT: $PASS passed, $FAIL failed"; exit 1; fi
ok "LUN 0 is /dev/$SD: $(cat /sys/block/$SD/size) sectors"
[ "$(cat /sys/block/$SD/size)" = 262144 ] && ok "128 MiB seen" || bad "size $(cat /sys/block/$SD/size)"
SER=$(grep -m1 '"serial"' /tmp/config.json | sed 's/.*"serial" *: *"\([^"]*\)".*/\1/')
GOT=$(tail -c +5 /sys/block/$SD/device/vpd_pg80 2>/dev/null | tr -d '\000 ')
[ -n "$SER" ] && [ "$GOT" = "$SER" ] && ok "INQUIRY unit serial is the configured one ($SER)" || bad "unit serial: configured '$SER', INQUIRY '$GOT'"
ctl sessions | grep -q "$INIT" && ok "swift-targetctl sessions shows the initiator" || bad "ctl sessions: $(ctl sessions 2>&1)"

echo "== 64 MiB O_DIRECT write and read back"
dd if=/dev/urandom of=/tmp/pat bs=1M count=64 2>/dev/null
readback() { # what
  rm -f /tmp/back
  dd if=/dev/$SD of=/tmp/back bs=1M count=64 iflag=direct 2>/dev/null
  cmp -s /tmp/pat /tmp/back && ok "$1: 64 MiB read back byte-identical" || bad "$1: read-back differs"; }
dd if=/tmp/pat of=/dev/$SD bs=1M oflag=direct 2>/dev/null && ok "64 MiB written with O_DIRECT" || bad "O_DIRECT write failed"
readback "before restart"
cmp -s /tmp/pat /tmp/lun0.img -n $((64*1024*1024)) 2>/dev/null || { dd if=/tmp/lun0.img of=/tmp/img bs=1M count=64 2>/dev/null; cmp -s /tmp/pat /tmp/img; } \
  && ok "the data is in the backing image" || bad "backing image differs"
rm -f /tmp/img
ctl stats 2>/dev/null | head -5

echo "== restart with the export kept"
kill $DAEMON; wait $DAEMON
grep -q "leaving the LIO export in place" $LOG && bad "export kept without --lio-keep-on-exit" || true
# The first daemon ran without --lio-keep-on-exit: a plain stop removes the export.
[ ! -d $CFG/iscsi/$IQN ] && ok "plain stop removed the export" || bad "export still there after a plain stop"
[ -d $CFG/core/fileio_0/foreign ] && [ -d $CFG/iscsi/iqn.2025-01.org.other:foreign/tpgt_1 ] && [ -d $CFG/core/user_7/theirs ] \
  && ok "foreign objects untouched" || bad "a foreign object was removed"
start_daemon --lio-keep-on-exit && ok "daemon started again" || bad "second start failed"
i=0; SD=""; while [ -z "$SD" ] && [ $i -lt 300 ]; do SD=$(find_disk 0); sleep 0.1; i=$((i+1)); done
[ -n "$SD" ] && ok "initiator logged in again by itself (/dev/$SD)" || bad "initiator did not come back"
readback "after re-creating the export"
( dd if=/dev/$SD of=/tmp/back3 bs=1M count=64 iflag=direct 2>/dev/null ) &
READER=$!
sleep 0.5
kill $DAEMON; wait $DAEMON
grep -q "leaving the LIO export in place" $LOG && [ -d $CFG/iscsi/$IQN ] && ok "export kept on exit" || bad "export not kept"
[ "$(ls /tmp/run/tcmu-handover/*.tail 2>/dev/null | wc -l)" = 2 ] && ok "both rings' tails noted for the next daemon" || bad "hand-over notes: $(ls /tmp/run/tcmu-handover 2>&1)"
start_daemon && ok "daemon restarted on the kept export" || bad "restart on kept export failed"
grep -q "LIO target created" $LOG && bad "the kept target was re-created" || ok "kept target reused (session not dropped)"
if wait $READER; then cmp -s /tmp/pat /tmp/back3 && ok "reads across the clean restart completed byte-identical" || bad "reads across the clean restart differ"; else bad "reads across the clean restart failed"; fi
rm -f /tmp/back3
grep -q "answers them BUSY" $LOG && bad "commands answered BUSY although the daemon stopped cleanly" || ok "no BUSY after a clean stop ($(grep -c 'picking up' $LOG) ring(s) with queued commands picked up)"
[ -z "$(ls /tmp/run/tcmu-handover 2>/dev/null)" ] && ok "hand-over notes used once" || bad "notes left: $(ls /tmp/run/tcmu-handover)"
readback "after restart with the export kept"

echo "== kill -9 during O_DIRECT reads"
( dd if=/dev/$SD of=/tmp/back2 bs=1M count=64 iflag=direct 2>/dev/null ) &
READER=$!
sleep 0.5
kill -9 $DAEMON; wait $DAEMON 2>/dev/null
ok "daemon killed with reads in flight"
start_daemon && ok "daemon restarted after kill -9" || bad "restart after kill -9 failed"
if wait $READER; then cmp -s /tmp/pat /tmp/back2 && ok "reads across the crash completed byte-identical" || bad "reads across the crash differ"; else bad "reads across the crash failed"; fi
rm -f /tmp/back2

echo "== live change through the API"
SID=$(iscsiadm -m session | sed -n 's/.*\[\([0-9]*\)\].*/\1/p')
ctl add-lun $IQN --lun 2 --backstore sparse --path /tmp/lun2.img --size 8M > /tmp/ctl.out 2>&1 && ok "add-lun accepted" || bad "add-lun failed: $(cat /tmp/ctl.out)"
grep -q "applied live (sessions kept)" /tmp/ctl.out && ok "add-lun applied in place" || bad "add-lun outcome: $(tr '\n' ' ' < /tmp/ctl.out)"
[ -d $TPG/lun/lun_2 ] && [ -d $TPG/acls/$INIT/lun_2 ] && ok "LIO has LUN 2, mapped for the ACL" || bad "LUN 2 missing in LIO"
i=0; SD2=""; while [ -z "$SD2" ] && [ $i -lt 300 ]; do iscsiadm -m session --rescan >/dev/null 2>&1; SD2=$(find_disk 2); sleep 0.2; i=$((i+1)); done
[ -n "$SD2" ] && [ "$(cat /sys/block/$SD2/size)" = 16384 ] && ok "initiator sees LUN 2 (8 MiB)" || bad "LUN 2 not seen"
[ "$(iscsiadm -m session | sed -n 's/.*\[\([0-9]*\)\].*/\1/p')" = "$SID" ] && [ "$(find_disk 0)" = "$SD" ] \
  && ok "same session and disk after the live change" || bad "the session changed: $(iscsiadm -m session)"
SD=$(find_disk 0)
[ -n "$SD" ] && readback "after the live change" || bad "LUN 0 gone after the live change"

echo "== a LUN map becomes the ACL's mapped LUNs"
ctl map-luns $IQN --initiator "$INIT" --lun 0=0 --lun 5=1,ro > /tmp/ctl.out 2>&1 && ok "map-luns accepted" || bad "map-luns failed: $(cat /tmp/ctl.out)"
[ -d $TPG/acls/$INIT/lun_5 ] && [ "$(cat $TPG/acls/$INIT/lun_5/write_protect)" = 1 ] && [ ! -d $TPG/acls/$INIT/lun_1 ] \
  && [ ! -d $TPG/acls/$INIT/lun_2 ] && ok "the ACL maps LUN 0, and LUN 1 as 5 write protected; not LUN 2" || bad "ACL LUNs: $(ls $TPG/acls/$INIT 2>&1)"
i=0; SD5=""; while [ -z "$SD5" ] && [ $i -lt 300 ]; do iscsiadm -m session --rescan >/dev/null 2>&1; SD5=$(find_disk 5); sleep 0.2; i=$((i+1)); done
[ -n "$SD5" ] && [ "$(cat /sys/block/$SD5/size)" = 32768 ] && ok "initiator sees the target's LUN 1 as LUN 5 (/dev/$SD5)" || bad "LUN 5 not seen"
if [ -n "$SD5" ]; then
  dd if=/dev/zero of=/dev/$SD5 bs=4k count=1 oflag=direct 2>/dev/null && bad "a write to the read-only mapping succeeded" || ok "a write to the read-only mapping is refused"
fi
SD=$(find_disk 0)
[ -n "$SD" ] && readback "after the LUN map" || bad "LUN 0 gone after the LUN map"

echo "== stop removes only our objects"
node --logout >/dev/null 2>&1
kill $DAEMON; wait $DAEMON
[ ! -d $CFG/iscsi/$IQN ] && [ -z "$(ls $CFG/core/user_7 | grep '^st-')" ] && ok "export removed on stop" || bad "left behind: $(ls $CFG/iscsi $CFG/core/user_7)"
[ ! -e /tmp/run/lio-export.json ] && ok "record removed" || bad "record left"
[ -d $CFG/core/fileio_0/foreign ] && [ -d $CFG/iscsi/iqn.2025-01.org.other:foreign/tpgt_1 ] && [ -d $CFG/core/user_7/theirs ] \
  && ok "foreign objects still untouched" || bad "a foreign object was removed"
for f in /tmp/daemon-*.log; do echo "== $f"; cat $f; done
echo "RESULT: $PASS passed, $FAIL failed"
[ $FAIL = 0 ]
GUEST
chmod +x "$SHARE/run.sh"
"$VM" -i -m 1024 -s "$SHARE" -p 0 -t 600 sh /share/run.sh
