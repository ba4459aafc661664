#!/usr/bin/env bash
# mini-ceph-stop.sh DIR [--purge]
#
# Stops the daemons that scripts/ceph/mini-ceph.sh started in DIR. Only the pids in
# DIR/run/*.pid are signalled, and only when that process was started with DIR's conf,
# so other clusters and unrelated processes are never touched. Without --purge the data
# stays and mini-ceph.sh DIR restarts the same cluster; with --purge DIR is deleted.
# Safe to run again: a DIR with nothing running (or no DIR at all) is not an error.
set -uo pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 DIR [--purge]" >&2; exit 2; }
PURGE=0
case ${2:-} in
  "") ;;
  --purge) PURGE=1 ;;
  *) echo "usage: $0 DIR [--purge]" >&2; exit 2 ;;
esac
say() { printf '[mini-ceph-stop %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }

if [ ! -d "$1" ]; then
  say "$1 does not exist; nothing to stop"
  exit 0
fi
DIR=$(realpath -- "$1")  # same spelling as mini-ceph.sh gave the daemons
CONF=$DIR/ceph.conf

# ours PID: the process is alive and was started with our conf file.
ours() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' <"/proc/$1/cmdline" | grep -qxF -- "$CONF"
}

# stop NAME: SIGTERM, wait up to 10 s for a clean exit, then SIGKILL.
stop() {
  local pid i
  pid=$(cat "$DIR/run/$1.pid" 2>/dev/null) || return 0
  if [ -z "$pid" ] || ! ours "$pid"; then
    rm -f "$DIR/run/$1.pid"  # stale: the daemon is already gone
    return 0
  fi
  say "stopping $1 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 100); do
    ours "$pid" || { rm -f "$DIR/run/$1.pid"; return 0; }
    sleep 0.1
  done
  say "$1 (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  for i in $(seq 50); do ours "$pid" || break; sleep 0.1; done
  rm -f "$DIR/run/$1.pid"
}

# The OSD goes first: on SIGTERM it tells the monitor it is going down and waits for the
# acknowledgement, which is quick only while the monitor still runs.
shopt -s nullglob
for f in "$DIR"/run/osd.*.pid; do stop "$(basename "$f" .pid)"; done
for f in "$DIR"/run/mon.*.pid; do stop "$(basename "$f" .pid)"; done

if [ "$PURGE" = 1 ]; then
  # Refuse to delete something that does not look like one of our clusters.
  # (mini-ceph.sh writes the conf, with its marker line, before anything else in DIR.)
  if [ ! -e "$CONF" ]; then
    rmdir -- "$DIR" 2>/dev/null || { say "$DIR has no mini-ceph ceph.conf; not deleting it"; exit 1; }
    say "removed $DIR"; exit 0
  fi
  if ! grep -q '^# mini-ceph port = ' "$CONF"; then
    say "$CONF was not written by mini-ceph.sh; not deleting $DIR"
    exit 1
  fi
  rm -rf -- "$DIR"
  say "removed $DIR"
fi
exit 0
