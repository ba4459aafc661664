#!/usr/bin/env bash
# mini-ceph.sh DIR [--port N] [--osd-size BYTES]
#
# Starts a disposable one-node Ceph cluster for SwiftTarget's rbd backstore tests:
# one monitor and one bluestore OSD (backed by a sparse file), cephx enabled, bound to
# 127.0.0.1 only, with a size-1 `rbd` pool ready for I/O. Everything (config, keys,
# data, logs, pid files, sockets) lives under DIR, so several clusters can coexist.
#
# Needs Debian 12's packages: ceph-mon ceph-osd ceph-common (scripts/install-deps.sh).
#
# On success the last lines on stdout are `export ...` statements, so a caller does
#     eval "$(scripts/ceph/mini-ceph.sh /tmp/c1)"
# and then librados/librbd/rbd/ceph find the cluster through $CEPH_CONF (the conf names
# the client.admin keyring). All progress messages go to stderr.
#
# Re-running on a DIR whose cluster is up only prints the exports again; a DIR left by
# mini-ceph-stop.sh (without --purge) is restarted with its data (images survive), and a
# daemon that died (or a test killed) is started again.
#
# Options / environment:
#   --port N | MINI_CEPH_PORT=N        monitor port (msgr2 only). Default: the first free
#                                      port from 13300 upwards (not Ceph's 3300/6789, so a
#                                      real cluster on the host does not clash).
#   --osd-size B | MINI_CEPH_OSD_SIZE  size of the sparse OSD file, default 8 GiB
#   MINI_CEPH_POOL                     pool name, default rbd
#   MINI_CEPH_TIMEOUT                  seconds to wait for each step, default 60
set -euo pipefail

usage() { echo "usage: $0 DIR [--port N] [--osd-size BYTES]" >&2; exit 2; }
[ $# -ge 1 ] || usage
DIR=$1; shift
PORT=${MINI_CEPH_PORT:-}
OSD_SIZE=${MINI_CEPH_OSD_SIZE:-8589934592}
POOL=${MINI_CEPH_POOL:-rbd}
STEP_TIMEOUT=${MINI_CEPH_TIMEOUT:-60}
while [ $# -gt 0 ]; do
  case $1 in
    --port) [ $# -ge 2 ] || usage; PORT=$2; shift 2 ;;
    --osd-size) [ $# -ge 2 ] || usage; OSD_SIZE=$2; shift 2 ;;
    *) usage ;;
  esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
say() { printf '[mini-ceph %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# A client environment from another cluster (e.g. an earlier eval) must not redirect our
# own ceph/rbd calls.
unset CEPH_CONF CEPH_ARGS CEPH_KEYRING

for tool in ceph-mon ceph-osd ceph ceph-authtool monmaptool rbd rados timeout; do
  command -v "$tool" >/dev/null 2>&1 ||
    fail "'$tool' not found; install: apt-get install -y --no-install-recommends ceph-mon ceph-osd ceph-common (or run scripts/install-deps.sh)"
done

# Absolute path without creating anything yet: a start refused up front leaves no trace.
DIR=$(realpath -m -- "$DIR")
CONF=$DIR/ceph.conf
KEYRING=$DIR/client.admin.keyring

# daemon_alive NAME: the pid in run/NAME.pid is a live ceph daemon started with our conf
# (so a recycled pid or another cluster's daemon is never mistaken for ours).
daemon_alive() {
  local pid
  pid=$(cat "$DIR/run/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$CONF"
}

# port_busy PORT: something listens on it (ss from iproute2 when present, else a connect).
port_busy() {
  if command -v ss >/dev/null 2>&1; then
    ss -Htln "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

print_exports() {
  cat <<EOF
export CEPH_CONF=$CONF
export MINI_CEPH_DIR=$DIR
export MINI_CEPH_KEYRING=$KEYRING
export MINI_CEPH_MON=127.0.0.1:$PORT
export MINI_CEPH_POOL=$POOL
EOF
}

# CLI wrapper: bounded in time even if the monitor never answers.
cephc() { timeout 20 ceph --conf "$CONF" --connect-timeout 15 "$@"; }

# start_daemon mon|osd ID: the daemon forks into the background once initialised; what it
# says on stderr before that goes to a log, not to the caller's terminal.
start_daemon() {
  "ceph-$1" --conf "$CONF" -i "$2" >>"$DIR/log/$1.$2-start.log" 2>&1 ||
    { tail -5 "$DIR/log/$1.$2-start.log" >&2; fail "ceph-$1 -i $2 did not start (see $DIR/log/$1.$2.log)"; }
}

osd_up() { cephc osd dump 2>/dev/null | grep -q '^osd.0 up'; }

# retry SECONDS WHAT CMD...: re-run CMD every 0.25 s until it succeeds or time runs out.
retry() {
  local limit=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$limit" ] || fail "timed out waiting for $what (logs: $DIR/log)"
    sleep 0.25
  done
}

# -------------------------------------------------------------------- existing DIR
if [ -e "$CONF" ]; then
  PORT=$(sed -n 's/^# mini-ceph port = //p' "$CONF")
  POOL=$(sed -n 's/^# mini-ceph pool = //p' "$CONF")
  [ -n "$PORT" ] && [ -n "$POOL" ] || fail "$CONF was not written by mini-ceph.sh; use another DIR"
  if daemon_alive mon.a && daemon_alive osd.0; then
    say "cluster in $DIR is already running (mon 127.0.0.1:$PORT)"
    print_exports
    exit 0
  fi
  [ -d "$DIR/mon.a/store.db" ] && [ -e "$DIR/ready" ] ||
    fail "$DIR holds an incomplete cluster (an earlier start failed?); run scripts/ceph/mini-ceph-stop.sh $DIR --purge"
  # Start whatever is not running (both after mini-ceph-stop.sh; one after a test killed it).
  T0=$(date +%s%N)
  if ! daemon_alive mon.a; then
    port_busy "$PORT" && fail "port $PORT (recorded in $CONF) is in use by another process"
    say "restarting mon.a in $DIR (127.0.0.1:$PORT)"
    start_daemon mon a
  fi
  if ! daemon_alive osd.0; then
    say "restarting osd.0 in $DIR"
    start_daemon osd 0
  fi
  retry "$STEP_TIMEOUT" "osd.0 to be up" osd_up
  # I/O through the pool only works once its PGs are active again; a tiny object write
  # proves it.
  retry "$STEP_TIMEOUT" "pool $POOL to accept writes" \
    sh -c "echo ok | timeout 20 rados --conf '$CONF' -p '$POOL' put mini-ceph-probe -"
  say "cluster ready in $(( ($(date +%s%N) - T0) / 1000000 )) ms"
  print_exports
  exit 0
fi

# -------------------------------------------------------------------- fresh cluster
[ ! -e "$DIR" ] || [ -z "$(ls -A "$DIR")" ] || fail "$DIR is not empty and holds no mini-ceph cluster; give an empty or new DIR"

if [ -n "$PORT" ]; then
  [[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65535 ] || fail "bad port '$PORT'"
  port_busy "$PORT" && fail "port $PORT is already in use (pick another with --port or MINI_CEPH_PORT)"
else
  PORT=13300
  while port_busy "$PORT"; do
    PORT=$((PORT + 1))
    [ "$PORT" -lt 13400 ] || fail "no free port in 13300-13399; pass --port"
  done
fi

# If anything below fails, do not leave daemons behind.
STARTED=0
cleanup_on_error() {
  local rc=$?
  [ -z "${MKFS_PID:-}" ] || kill "$MKFS_PID" 2>/dev/null || true
  if [ "$rc" != 0 ] && [ "$STARTED" = 1 ]; then
    say "start failed (rc $rc); stopping what was started. Logs stay in $DIR/log"
    "$HERE/mini-ceph-stop.sh" "$DIR" >&2 || true
  fi
}
trap cleanup_on_error EXIT

T0=$(date +%s%N)
mkdir -p "$DIR"/{run,log,crash,mon.a,osd.0}
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)

# Settings chosen for a fast, quiet, single-host test cluster. Per-daemon sections keep
# client processes (librbd in the target, the rbd CLI) from writing to daemon logs.
cat >"$CONF" <<EOF
# mini-ceph port = $PORT
# mini-ceph pool = $POOL
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$PORT
public addr = 127.0.0.1
public network = 127.0.0.1/32
cluster network = 127.0.0.1/32
ms bind msgr1 = false
ms bind ipv6 = false
run dir = $DIR/run
crash dir = $DIR/crash
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
# a modern-clients-only cluster; also silences the "insecure global_id reclaim" warning
auth allow insecure global id reclaim = false
# one OSD: pools of one replica, placement by OSD rather than host
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# commit monitor changes (osd boot, pool create, ...) after 0.1 s instead of batching for 1 s
paxos propose interval = 0.1
# there is no ceph-mgr (I/O does not need one); don't raise MGR_DOWN after 2 minutes
mon mgr mkfs grace = 31536000
# the host disk may be fairly full: do not warn or stop the mon because of it
mon data avail warn = 2
mon data avail crit = 1
# a dead client's watch (and so its exclusive lock) is noticed after 10 s, not 30 s
osd client watch timeout = 10

[mon]
mon data = $DIR/mon.\$id
# ceph-mon --mkfs copies the mon. key here (it wants an empty data dir, so the initial
# keyring lives at DIR/mon.keyring)
keyring = $DIR/mon.\$id/keyring
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
# the cluster and audit logs default to /var/log/ceph
mon cluster log file = default=$DIR/log/cluster.log audit=$DIR/log/audit.log

[osd]
osd data = $DIR/osd.\$id
keyring = $DIR/osd.\$id/keyring
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
osd objectstore = bluestore
bluestore block path = $DIR/osd.\$id.block
# (not inside osd data: bluestore puts a "block" symlink there)
bluestore block create = true
bluestore block size = $OSD_SIZE
bluestore fsck on mkfs = false
bluestore fsck on mount = false
# keep the OSD small: test clusters share the machine with the target and fio
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
osd op num shards = 1
osd op num threads per shard = 2
bdev enable discard = false

[client]
keyring = $KEYRING
# no admin sockets or log files for short-lived clients
admin socket =
log file =
EOF

# ---- keys. Every key exists before the mon is created, so the mon's mkfs imports them all
# into its auth database and no `ceph auth` round trips are needed later.
# (ceph-authtool talks on stdout, which is kept for the export lines.)
authtool() {
  ceph-authtool "$@" >>"$DIR/log/authtool.log" 2>&1 ||
    { cat "$DIR/log/authtool.log" >&2; fail "ceph-authtool $*: failed"; }
}
authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *'
authtool --create-keyring "$KEYRING" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
authtool --create-keyring "$DIR/osd.0/keyring" --gen-key -n osd.0 \
  --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
authtool "$DIR/mon.keyring" --import-keyring "$KEYRING"
authtool "$DIR/mon.keyring" --import-keyring "$DIR/osd.0/keyring"
chmod 600 "$KEYRING" "$DIR/mon.keyring" "$DIR/osd.0/keyring"

# ---- OSD mkfs needs no monitor (--no-mon-config, fsid from the conf), so it runs in the
# background while the monitor is created and started; it is the slowest step.
say "formatting osd.0 (bluestore on a sparse $((OSD_SIZE >> 20)) MiB file)"
ceph-osd --conf "$CONF" --no-mon-config -i 0 --mkfs --osd-uuid "$OSD_UUID" \
  >"$DIR/log/osd.0-mkfs.log" 2>&1 &
MKFS_PID=$!

say "creating mon.a on 127.0.0.1:$PORT (fsid $FSID)"
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$PORT]" "$DIR/monmap" \
  >"$DIR/log/monmap.log" 2>&1 || { cat "$DIR/log/monmap.log" >&2; fail "monmaptool failed"; }
ceph-mon --conf "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" \
  >"$DIR/log/mon.a-mkfs.log" 2>&1 || { cat "$DIR/log/mon.a-mkfs.log" >&2; fail "ceph-mon --mkfs failed"; }
STARTED=1
start_daemon mon a
retry "$STEP_TIMEOUT" "mon.a to answer" cephc mon stat
say "mon.a is up"

# Register the OSD (its key is already known) while mkfs may still be running.
OSD_ID=$(cephc osd new "$OSD_UUID" 0) || fail "'ceph osd new' failed"
[ "$OSD_ID" = 0 ] || fail "expected osd id 0, got '$OSD_ID'"
# The pool needs only the monitor, so it is created while the OSD is still being formatted;
# its PGs come up as soon as the OSD boots.
cephc osd pool create "$POOL" 8 8 replicated >/dev/null 2>&1 || fail "could not create pool $POOL"
wait "$MKFS_PID" || { MKFS_PID=; tail -n 20 "$DIR/log/osd.0-mkfs.log" >&2; fail "ceph-osd --mkfs failed"; }
MKFS_PID=
start_daemon osd 0
retry "$STEP_TIMEOUT" "osd.0 to be up" osd_up
say "osd.0 is up"

# `rbd pool init` tags the pool for rbd and writes to it, so it returns only once the
# pool's PGs are active: after it, I/O works.
timeout "$STEP_TIMEOUT" rbd --conf "$CONF" pool init "$POOL" || fail "rbd pool init $POOL failed or timed out"
touch "$DIR/ready"  # marks a complete cluster, so a restart can trust DIR
trap - EXIT
say "cluster ready in $(( ($(date +%s%N) - T0) / 1000000 )) ms"
print_exports
