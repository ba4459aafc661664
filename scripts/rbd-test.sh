#!/usr/bin/env bash
# The rbd backstore against a real Ceph cluster (scripts/ceph/mini-ceph.sh: 1 mon, 1 OSD on
# 127.0.0.1): 64 MiB written through iSCSI read back byte-exact with `rbd export`, an image
# created by size=, libiscsi's iscsi-test-cu over ALL tests (Tests/Conformance/passlist-rbd.txt
# must hold), and the faults an admin meets: a missing image, pool or keyring, a wrong key,
# a cluster that does not answer, Ceph's libraries absent; each must stop the start within a
# bounded time with a message naming it; then two gateways on one image (shared=yes, ALUA
# port groups 1 and 2): identities, data across gateways, iscsi-test-cu with one URL per
# gateway (Tests/Conformance/passlist-rbd-gateways.txt must hold), the kill -9 failover time.
# Prints "RESULT: N passed, M failed".
#
# Usage: scripts/rbd-test.sh [--update]   (--update rewrites the pass lists)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SWIFT_TARGETD:-$here/.build/debug/swift-targetd}
out=${ARTIFACTS:-$here/ci-artifacts}/rbd
mkdir -p "$out"
work=$(mktemp -d /tmp/swtgt-rbd.XXXXXX)
update=0; [ "${1:-}" = --update ] && update=1
passed=0; failed=0
ok() { echo "  ok    $*"; passed=$((passed + 1)); }
bad() { echo "  FAIL  $*"; failed=$((failed + 1)); }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  "$here/scripts/ceph/mini-ceph-stop.sh" "$work/ceph" --purge >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s%N)
eval "$("$here/scripts/ceph/mini-ceph.sh" "$work/ceph" 2> "$out/mini-ceph.log")" \
  || { echo "cannot start the Ceph cluster:"; tail -20 "$out/mini-ceph.log"; echo "RESULT: 0 passed, 1 failed"; exit 1; }
echo "ceph cluster up in $(( ($(date +%s%N) - start) / 1000000 )) ms ($CEPH_CONF)"
port=$((15000 + RANDOM % 1000))
iqn=iqn.2026-12.org.swifttarget:rbd-test

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# --- data through iSCSI, read back with rbd export
"$bin" serve --listen 127.0.0.1:$port --target $iqn --lun "rbd:rbd/lun0,conf=$CEPH_CONF,size=256M" \
  --log-level notice > "$out/daemon.log" 2>&1 &
pids+=($!)
wait_port $port && ok "daemon serves rbd:rbd/lun0 (created by size=256M)" || bad "daemon did not start: $(tail -3 "$out/daemon.log")"
[ "$(rbd info rbd/lun0 --format json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" = $((256 << 20)) ] \
  && ok "image created with 268435456 bytes" || bad "image size wrong"
url=iscsi://127.0.0.1:$port/$iqn/0
head -c $((64 << 20)) /dev/urandom > "$work/data"
if qemu-img convert -n -f raw -O raw "$work/data" "$url" 2> "$work/qemu.err"; then
  rbd export rbd/lun0 "$work/export" > /dev/null 2>&1
  cmp -n $((64 << 20)) "$work/data" "$work/export" && ok "64 MiB written through iSCSI read back byte-exact with rbd export" \
    || bad "rbd export differs from what was written"
  qemu-img convert -f raw -O raw "$url" "$work/back" 2>/dev/null
  cmp -n $((64 << 20)) "$work/data" "$work/back" && ok "and byte-exact through iSCSI" || bad "iSCSI read back differs"
else
  bad "qemu-img write failed: $(head -2 "$work/qemu.err")"
fi

# --- iscsi-test-cu, pass list enforced
suite() {  # suite NAME WHAT URL... : iscsi-test-cu ALL, Tests/Conformance/passlist-NAME.txt must hold
  local name=$1 what=$2; shift 2
  local log=$out/iscsi-test-cu-$name.log score=$out/score-$name.json list=$here/Tests/Conformance/passlist-$name.txt missing
  timeout 1500 iscsi-test-cu --dataloss --test=ALL "$@" > "$log" 2>&1
  python3 "$here/scripts/cu-score.py" "$log" "$score" --families > "$out/score-$name.txt"
  echo "conformance[$what]: $(tail -1 "$out/score-$name.txt")"
  if [ $update = 1 ]; then
    python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print('\n'.join(sorted(k for k,v in s.items() if v=='passed')))" \
      "$score" > "$list"
    echo "wrote $(wc -l < "$list") tests to $list"
  fi
  missing=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); [print(t) for t in open(sys.argv[2]).read().split() if s.get(t)!='passed']" \
    "$score" "$list" 2>/dev/null)
  [ -f "$list" ] && [ -z "$missing" ] && ok "all $(wc -l < "$list") listed iscsi-test-cu tests pass ($what)" \
    || bad "listed tests no longer pass ($what): $(echo $missing | head -c 300)"
}
suite rbd rbd "$url"
kill -0 "${pids[0]}" 2>/dev/null && ok "daemon alive after the suite" || bad "daemon died during the suite"

# --- two gateways on one image (shared=yes: no exclusive lock), ALUA groups 1 and 2
gw_iqn=$iqn-gw
gw_spec="rbd:rbd/gw,conf=$CEPH_CONF,size=128M,shared=yes"
port_a=$((port + 2)); port_b=$((port + 3))
"$bin" serve --listen 127.0.0.1:$port_a --target $gw_iqn --lun "$gw_spec" --port-group 1 --port-groups 1,2 \
  --log-level notice > "$out/gateway-a.log" 2>&1 &
pid_a=$!; pids+=($pid_a)
wait_port $port_a || bad "gateway A did not start: $(tail -3 "$out/gateway-a.log")"
"$bin" serve --listen 127.0.0.1:$port_b --target $gw_iqn --lun "$gw_spec" --port-group 2 --port-groups 1,2 \
  --log-level notice > "$out/gateway-b.log" 2>&1 &
pids+=($!)
wait_port $port_b || bad "gateway B did not start: $(tail -3 "$out/gateway-b.log")"
features=$(rbd info rbd/gw --format json 2>/dev/null | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["features"]))')
case ",$features," in *,exclusive-lock,*) bad "shared image still has exclusive-lock ($features)" ;;
  *) ok "shared=yes image has no exclusive lock to pass between gateways (features: $features)" ;; esac
probe_a=$(python3 "$here/scripts/gateway-probe.py" $port_a $gw_iqn 2>&1); probe_b=$(python3 "$here/scripts/gateway-probe.py" $port_b $gw_iqn 2>&1)
echo "$probe_a" > "$out/gateway-a-probe.json"; echo "$probe_b" > "$out/gateway-b-probe.json"
python3 - "$probe_a" "$probe_b" "$gw_iqn" <<'PY' && ok "VPD 0x83 and REPORT TARGET PORT GROUPS: gateway A is port group/relative port 1, B is 2, one NAA, both list groups 1 and 2 active/optimized" || bad "gateway identities wrong: $probe_a / $probe_b"
import json, sys
a, b, iqn = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
groups = [{"group": 1, "state": 0, "preferred": True, "ports": [1]}, {"group": 2, "state": 0, "preferred": True, "ports": [2]}]
for probe, n in ((a, 1), (b, 2)):
    assert probe["loginTag"] == str(n) and probe["relativeTargetPort"] == n and probe["targetPortGroup"] == n, probe
    assert probe["targetPortName"] == f"{iqn},t,0x{n:04x}", probe
    assert probe["groups"] == groups, probe
assert a["naa"] == b["naa"], (a["naa"], b["naa"])
PY
url_a=iscsi://127.0.0.1:$port_a/$gw_iqn/0; url_b=iscsi://127.0.0.1:$port_b/$gw_iqn/0
# iscsi-test-cu with one URL per gateway: the reservation, RESERVE(6) and MultipathIO tests
# run their second session through the other gateway. Pass list enforced.
suite rbd-gateways "rbd, two gateways" "$url_a" "$url_b"
head -c $((16 << 20)) /dev/urandom > "$work/gw-data"
qemu-img convert -n -f raw -O raw "$work/gw-data" "$url_a" 2> "$work/gw.err" || bad "write through A failed: $(head -2 "$work/gw.err")"
qemu-img convert -f raw -O raw "$url_b" "$work/gw-back" 2>/dev/null
cmp -n $((16 << 20)) "$work/gw-data" "$work/gw-back" && ok "16 MiB written through gateway A read back byte-exact through gateway B at once" \
  || bad "gateway B reads other data than was written through A"
qemu-io -f raw -c "write -P 0xa5 32M 4M" "$url_b" > "$work/gw-io.log" 2>&1
qemu-io -f raw -c "read -P 0xa5 32M 4M" "$url_a" >> "$work/gw-io.log" 2>&1
grep -q "Pattern verification failed\|error\|failed" "$work/gw-io.log" && bad "4 MiB written through B did not read back through A: $(head -3 "$work/gw-io.log")" \
  || ok "4 MiB written through gateway B read back through gateway A"
# Failover: gateway A is killed; how long until a write through B is acknowledged?
kill -9 $pid_a; t0=$(date +%s%N)
failover_ms=""
for _ in $(seq 200); do
  if qemu-io -f raw -c "write -P 0x3c 40M 1M" "$url_b" > "$work/gw-failover.log" 2>&1 && grep -q "wrote 1048576" "$work/gw-failover.log"; then
    failover_ms=$(( ($(date +%s%N) - t0) / 1000000 )); break
  fi
  sleep 0.05
done
echo "gateway failover: ${failover_ms:-none} ms from kill -9 of A to a write acknowledged through B" | tee "$out/failover.txt"
[ -n "$failover_ms" ] && [ "$failover_ms" -le 10000 ] && ok "after kill -9 of gateway A a write through B is acknowledged in $failover_ms ms (limit 10000)" \
  || bad "no write through B within 10 s of gateway A's kill -9"
qemu-img convert -f raw -O raw "$url_b" "$work/gw-after" 2>/dev/null
cmp -n $((16 << 20)) "$work/gw-data" "$work/gw-after" && ok "what A acknowledged before its kill -9 reads back byte-exact through B" \
  || bad "data acknowledged by A is not what B reads after A's death"

# --- the store's own tests (Tests/BackstoresTests/RBDImageStoreTests) against this cluster
if (cd "$here" && CEPH_CONF=$CEPH_CONF timeout 300 swift test --skip-build --filter RBDImageStoreTests > "$out/store-tests.log" 2>&1) \
   && grep -qE "Test run with [0-9]+ tests? .*passed" "$out/store-tests.log"; then
  ok "RBDImageStore unit tests against the cluster"
else
  bad "RBDImageStore unit tests: $(grep -E '✘' "$out/store-tests.log" | head -3)"
fi

# --- faults: each start must fail, quickly, saying why
fault() {  # fault NAME EXPECTED-TEXT SECONDS SPEC [ENV...]
  local name=$1 text=$2 limit=$3 spec=$4; shift 4
  local t0 rc
  t0=$(date +%s%N)
  env "$@" timeout 60 "$bin" serve --listen 127.0.0.1:$((port + 1)) --target $iqn-f --lun "$spec" --log-level notice \
    > "$work/fault.log" 2>&1
  rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "$text" "$work/fault.log" && [ $ms -lt $((limit * 1000)) ]; then
    ok "$name: exit $rc in $ms ms: $(grep -m1 "$text" "$work/fault.log" | cut -c1-200)"
  else
    bad "$name: exit $rc in $ms ms (want non-zero within $limit s, naming '$text'): $(tail -2 "$work/fault.log")"
  fi
}
fault "missing image" "does not exist; give size=" 15 "rbd:rbd/nope,conf=$CEPH_CONF"
fault "missing pool" "pool 'nopool' does not exist" 15 "rbd:nopool/img,conf=$CEPH_CONF,size=1G"
fault "missing keyring" "cannot read the keyring" 15 "rbd:rbd/lun9,conf=$CEPH_CONF,keyring=$work/none.keyring,size=1G"
printf '[client.admin]\n\tkey = %s\n' "$(ceph-authtool --gen-print-key)" > "$work/wrong.keyring"
fault "wrong key" "was refused by the cluster" 25 "rbd:rbd/lun9,conf=$CEPH_CONF,keyring=$work/wrong.keyring,size=1G"
sed "s/^\(\s*mon[ _]host\s*=\).*/\1 127.0.0.1:1/" "$CEPH_CONF" > "$work/dead.conf"
fault "cluster not answering" "did not answer\|cannot connect" 25 "rbd:rbd/lun9,conf=$work/dead.conf,size=1G"
fault "Ceph libraries absent" "librbd1" 10 "rbd:rbd/lun9,conf=$CEPH_CONF,size=1G" CRBD_LIBRBD=/nonexistent/librbd.so.1
fault "existing image of another size" "not the 536870912 bytes" 15 "rbd:rbd/lun0,conf=$CEPH_CONF,size=512M"

# --- the same images through LIO: the TCMU handler in a real kernel (scripts/lio-rbd-vm-test.sh,
# on this cluster), unless the machine cannot boot the VM
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  "$here/scripts/lio-rbd-vm-test.sh" > "$out/lio-rbd-vm.log" 2>&1
  grep -E '^(PASS|FAIL):' "$out/lio-rbd-vm.log" | sed 's/^/  lio: /'
  vm=$(grep -m1 '^RESULT:' "$out/lio-rbd-vm.log")
  [ -n "$vm" ] && [ "${vm##*, }" = "0 failed" ] && ok "rbd LUNs in LIO mode (real kernel): ${vm#RESULT: }" \
    || bad "rbd LUNs in LIO mode: ${vm:-no result} (see $out/lio-rbd-vm.log)"
else
  bad "rbd LUNs in LIO mode: qemu-system-x86_64 missing (scripts/install-deps.sh)"
fi

echo "RESULT: $passed passed, $failed failed"
[ $failed = 0 ]
