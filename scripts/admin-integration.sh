#!/usr/bin/env bash
# Live administration against a real daemon: `swift-targetd run --config`, a libiscsi session
# held on target A (iscsi-perf) while swift-targetctl changes target B (CHAP user, new LUN).
# Checks: A's session sees no error, new logins to B see the change (CHAP required, LUN 1),
# CLI exit codes. Exits non-zero on the first failure. Needs libiscsi-bin (iscsi-perf, iscsi-ls,
# iscsi-inq). Binaries: $SWIFT_TARGETD / $SWIFT_TARGETCTL, default .build/debug (built if missing).
# Artifacts (daemon log, config, perf log) go to ${ARTIFACTS:-ci-artifacts/admin-integration}.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
daemon=${SWIFT_TARGETD:-$here/.build/debug/swift-targetd}
ctl=${SWIFT_TARGETCTL:-$here/.build/debug/swift-targetctl}
if [ ! -x "$daemon" ] || [ ! -x "$ctl" ]; then
    swift build --product swift-targetd
    swift build --product swift-targetctl
fi
for tool in iscsi-perf iscsi-ls iscsi-inq; do
    command -v $tool >/dev/null || { echo "admin-integration: $tool missing (apt-get install libiscsi-bin)"; exit 1; }
done

port=${PORT:-$((20000 + RANDOM % 20000))}
artifacts=${ARTIFACTS:-$here/ci-artifacts/admin-integration}
mkdir -p "$artifacts"
work=$(mktemp -d /tmp/swtgt-admin-XXXXXX)
sock=$work/api.sock
A=iqn.2026-11.org.example:admin-a
B=iqn.2026-11.org.example:admin-b
daemon_pid=
perf_pid=

cleanup() {
    [ -n "$perf_pid" ] && kill "$perf_pid" 2>/dev/null || true
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" 2>/dev/null || true
    fi
    cp -f "$work"/config.json "$work"/daemon.log "$work"/perf.log "$artifacts"/ 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "admin-integration: FAIL: $*"; echo "--- daemon log"; tail -30 "$work/daemon.log" || true; exit 1; }
ok() { echo "admin-integration: ok: $*"; }

cat > "$work/config.json" <<JSON
{
  "version": 1,
  "portals": ["127.0.0.1:$port"],
  "targets": [
    {"name": "$A", "luns": [{"id": 0, "backstore": "sparse", "path": "$work/a0.img", "size": 67108864}]},
    {"name": "$B", "luns": [{"id": 0, "backstore": "sparse", "path": "$work/b0.img", "size": 33554432}]}
  ]
}
JSON
chmod 600 "$work/config.json"

"$daemon" run --config "$work/config.json" --api-socket "$sock" --logout-grace 2 >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "the API socket $sock did not appear"
export SWIFT_TARGETD_SOCKET=$sock
"$ctl" list >/dev/null || fail "swift-targetctl list"
ok "daemon running on 127.0.0.1:$port, API on $sock"
# This host has no LIO: --fabric auto says so once and serves through the embedded target.
[ "$(grep -c 'LIO is not available' "$work/daemon.log")" = 1 ] || fail "no (or repeated) fallback notice: $(head -3 "$work/daemon.log")"
ok "fallback to the embedded target announced once"

# A session on A that keeps doing I/O for the whole test.
iscsi-perf -m 4 -b 8 -r "iscsi://127.0.0.1:$port/$A/0" >"$work/perf.log" 2>&1 &
perf_pid=$!
sleep 2
kill -0 "$perf_pid" 2>/dev/null || fail "iscsi-perf on A stopped early: $(tail -3 "$work/perf.log")"
"$ctl" sessions --json | grep -q "\"$A\"" || fail "the session on A is not listed"

# Change B: CHAP user (secret via stdin) and a new LUN.
printf 'bobsecret1234\n' | "$ctl" set-auth "$B" --chap bob --secret-stdin || fail "set-auth"
"$ctl" add-lun "$B" --backstore sparse --path "$work/b1.img" --size 16M || fail "add-lun"
"$ctl" allow-client "$B" 127.0.0.0/8 || fail "allow-client"
sleep 2

# A's session kept working.
kill -0 "$perf_pid" 2>/dev/null || fail "iscsi-perf on A died after the change on B: $(tail -3 "$work/perf.log")"
kill -INT "$perf_pid"; wait "$perf_pid" || fail "iscsi-perf on A exited with an error"
perf_pid=
if grep -qiE 'error|fail|reconnect' "$work/perf.log"; then fail "iscsi-perf on A reported errors: $(grep -iE 'error|fail|reconnect' "$work/perf.log" | head -3)"; fi
grep -q 'iops average' "$work/perf.log" || fail "iscsi-perf did no I/O"
ok "session on A ran without errors through the changes on B"

# New logins to B see the change.
iscsi-inq "iscsi://127.0.0.1:$port/$B/0" >/dev/null 2>&1 && fail "B accepted a login without CHAP"
iscsi-inq "iscsi://bob%bobsecret1234@127.0.0.1:$port/$B/0" >/dev/null || fail "CHAP login to B failed"
iscsi-ls -s "iscsi://bob%bobsecret1234@127.0.0.1:$port/$B" >"$work/ls.txt" 2>&1 || fail "iscsi-ls on B: $(cat "$work/ls.txt")"
grep -q 'Lun:1' "$work/ls.txt" || fail "LUN 1 of B not visible: $(cat "$work/ls.txt")"
iscsi-inq "iscsi://127.0.0.1:$port/$A/0" >/dev/null || fail "a new login to A failed"
ok "new logins to B need CHAP and see LUN 1; A unaffected"

# Statistics and security counters, exit codes.
"$ctl" stats --json | grep -q '"chapFailures" : [1-9]' || fail "the CHAP failure was not counted"
"$ctl" stats --json | grep -q '"readCommands" : [1-9]' || fail "no reads counted"
set +e
"$ctl" show iqn.2026-11.org.example:none >/dev/null 2>&1; [ $? -eq 3 ] || fail "not found should exit 3"
"$ctl" add-target "$A" >/dev/null 2>&1; [ $? -eq 4 ] || fail "conflict should exit 4"
"$ctl" add-lun "$B" --backstore floppy --path /x >/dev/null 2>&1; [ $? -eq 2 ] || fail "invalid input should exit 2"
"$ctl" list --socket "$work/none.sock" >/dev/null 2>&1; [ $? -eq 69 ] || fail "unreachable daemon should exit 69"
set -e
ok "exit codes 2, 3, 4, 69"

# Stop/start one target, then a polite shutdown.
"$ctl" stop "$B" >/dev/null || fail "stop B"
iscsi-inq "iscsi://bob%bobsecret1234@127.0.0.1:$port/$B/0" >/dev/null 2>&1 && fail "stopped B accepted a login"
"$ctl" start "$B" >/dev/null || fail "start B"
iscsi-inq "iscsi://bob%bobsecret1234@127.0.0.1:$port/$B/1" >/dev/null || fail "B after start"
grep -q '"bob"' "$work/config.json" || fail "the change was not saved to the configuration"
grep -q 'bobsecret1234' "$work/daemon.log" && fail "a secret appeared in the daemon log"
# save-config / wipe / restore-config: the same configuration, secrets too, and CHAP works again.
"$ctl" save-config "$work/saved.json" >/dev/null || fail "save-config"
[ "$(stat -c %a "$work/saved.json")" = 600 ] || fail "save-config wrote mode $(stat -c %a "$work/saved.json")"
grep -q 'bobsecret1234' "$work/saved.json" || fail "save-config left the CHAP secret out"
cp "$work/config.json" "$work/before-wipe.json"
"$ctl" remove-target "$B" --force >/dev/null || fail "remove-target B"
"$ctl" remove-target "$A" --force >/dev/null || fail "remove-target A"
iscsi-inq "iscsi://bob%bobsecret1234@127.0.0.1:$port/$B/0" >/dev/null 2>&1 && fail "B answered after the wipe"
"$ctl" restore-config "$work/saved.json" >/dev/null || fail "restore-config"
cmp -s "$work/config.json" "$work/before-wipe.json" || fail "the restored configuration differs: $(diff "$work/before-wipe.json" "$work/config.json" | head -5)"
iscsi-inq "iscsi://bob%bobsecret1234@127.0.0.1:$port/$B/0" >/dev/null || fail "CHAP login to B after restore-config"
iscsi-inq "iscsi://bob%wrongsecret99@127.0.0.1:$port/$B/0" >/dev/null 2>&1 && fail "a wrong secret logged in after restore-config"
ok "save-config, wipe, restore-config: identical configuration file, CHAP login works again"

# A hand edit: API changes are refused until it is reloaded (SIGHUP); then it is live.
python3 - "$work/config.json" "$work/c0.img" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["targets"].append({"name": "iqn.2026-11.org.example:admin-c",
                     "luns": [{"id": 0, "backstore": "sparse", "path": sys.argv[2], "size": 8388608}]})
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
set +e
"$ctl" add-lun "$A" --backstore sparse --path "$work/a9.img" --size 1M >"$work/ctl.out" 2>&1; rc=$?
set -e
[ $rc = 4 ] && grep -q "changed on disk" "$work/ctl.out" || fail "an API change over a hand edit: exit $rc, $(cat "$work/ctl.out")"
grep -q "admin-c" "$work/config.json" || fail "the hand edit was overwritten"
kill -HUP "$daemon_pid"
for _ in $(seq 1 50); do grep -q "reloaded" "$work/daemon.log" && break; sleep 0.1; done
grep -q "reloaded" "$work/daemon.log" || fail "no reload after SIGHUP: $(tail -3 "$work/daemon.log")"
iscsi-inq "iscsi://127.0.0.1:$port/iqn.2026-11.org.example:admin-c/0" >/dev/null || fail "the reloaded target C does not answer"
"$ctl" add-lun "$A" --backstore sparse --path "$work/a9.img" --size 1M >/dev/null || fail "add-lun after the reload"
"$ctl" reload | grep -q "no change" || fail "swift-targetctl reload of an unchanged file"
ok "a hand edit is kept until reloaded; SIGHUP applies it live; swift-targetctl reload"

kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited with an error on SIGTERM"
daemon_pid=
ok "stop/start of one target, clean SIGTERM"
echo "admin-integration: PASS"
