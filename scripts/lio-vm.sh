#!/bin/bash
# lio-vm.sh - runs one command in a throw-away QEMU guest with the real Linux SCSI target (LIO):
# Debian 12's stock 6.1 kernel with target_core_mod, TCMU (target_core_user + uio, so /dev/uio*
# appears), the fileio/iblock/pscsi backstores, tcm_loop, the LIO iSCSI target (iscsi_target_mod)
# and the kernel iSCSI initiator modules (iscsi_tcp) loaded. The project's real-kernel tests
# (scripts/tcmu-vm-test.sh, lio-daemon-vm-test.sh, lio-conformance.sh, lio-bench.sh) run in it.
#
# Nothing is installed on the host but qemu-system-x86 (apt-get install --no-install-recommends
# qemu-system-x86); the kernel, busybox and any guest programs are Debian packages fetched with
# apt-get download and unpacked with dpkg -x into an initramfs, so the host must be Debian/Ubuntu-like
# with apt lists for Debian 12 (bookworm).
#
# Usage: scripts/lio-vm.sh [options] [--] [command ...]
#   -s DIR    host folder mounted read-write at /share in the guest (9p; default $LIOVM_DIR/share)
#   -m MB     guest RAM in MiB (default 512)
#   -c N      guest vCPUs (default 1)
#   -t SEC    stop the guest after SEC seconds (default 900); the exit status is then 124
#   -p PORT   forward host 127.0.0.1:PORT to the guest's port 3260 (default 13260; 0 = no forward)
#   -a ACCEL  tcg | kvm | auto (default auto: kvm only on a real VMX/SVM /dev/kvm, not under kvm_pvm)
#   -i        also put open-iscsi (iscsiadm, iscsid) and the libraries it needs in the guest
#   -x PKGS   also unpack these Debian packages (space-separated, repeatable) into the guest: their
#             programs go to /sbin, their shared libraries to /lib/x86_64-linux-gnu, together with the
#             library packages they depend on (found with apt-cache depends) and glibc
#   -k MODS   also load these kernel modules at boot (space-separated, repeatable), e.g. -k "ext4 xfs"
#   -b        rebuild the initramfs even when a cached one fits
#   -S        an interactive shell on the serial console instead of a command (Ctrl-A x quits)
#   -h        this text
#   command   run with sh in /share in the guest (default: sh /share/run.sh)
# Env: LIOVM_DIR (default ${XDG_CACHE_HOME:-~/.cache}/lio-vm: downloaded .debs, kernel, initramfs),
#      LIOVM_KPKG (kernel package, default the one linux-image-amd64 depends on)
# Exit status: the guest command's; 124 on timeout, 125 when the guest ended without a result,
#      2 when the host lacks something.
# The guest: busybox in /bin, configfs at /sys/kernel/config, /tmp and /run on tmpfs, eth0 10.0.2.15/24
# via QEMU user networking (the host is 10.0.2.2). "[lio-vm] ready, guest uptime Ns" is printed when
# the command starts. Under TCG a warm start takes ~7 s, a cold one (downloads) longer.
set -euo pipefail

LIOVM_DIR=${LIOVM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lio-vm}
CACHE=$LIOVM_DIR/cache
SHARE=$LIOVM_DIR/share
MEM=512 CPUS=1 TMO=900 PORT=13260 ACCEL=auto ISCSI=0 REBUILD=0 SHELL_MODE=0 XPKGS="" XMODS=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while getopts "s:m:c:t:p:a:x:k:ibSh" opt; do
  case $opt in
    s) SHARE=$OPTARG;; m) MEM=$OPTARG;; c) CPUS=$OPTARG;; t) TMO=$OPTARG;; p) PORT=$OPTARG;;
    a) ACCEL=$OPTARG;; i) ISCSI=1;; b) REBUILD=1;; S) SHELL_MODE=1;;
    x) XPKGS="$XPKGS $OPTARG";; k) XMODS="$XMODS $OPTARG";;
    h) usage; exit 0;;
    *) usage >&2; exit 2;;
  esac
done
shift $((OPTIND - 1))
XPKGS=$(echo $XPKGS) XMODS=$(echo $XMODS)   # squeeze the blanks: they are part of the cache key
say() { echo "[lio-vm] $*" >&2; }
need() { command -v "$1" >/dev/null || { say "needs $1 on the host ($2)"; exit 2; }; }
need qemu-system-x86_64 "apt-get install --no-install-recommends qemu-system-x86"
need apt-get "a Debian-like host"; need dpkg "a Debian-like host"; need flock util-linux
mkdir -p "$CACHE/debs" "$SHARE"
SHARE=$(cd "$SHARE" && pwd)

# ------------------------------------------------------------------ Debian packages
# fetch PKG...: each PKG's .deb into $CACHE/debs unless one is there already. A failed download
# retries once after apt-get update (stale lists); downloads land in a temp dir first so that an
# interrupted one never looks cached.
fetch() {
  local p tmp
  for p in "$@"; do
    ls "$CACHE/debs/${p}_"*.deb >/dev/null 2>&1 && continue
    tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
    if ! (cd "$tmp" && apt-get download "$p" >/dev/null 2>&1); then
      apt-get update >/dev/null 2>&1 || true
      (cd "$tmp" && apt-get download "$p" >/dev/null) || { rm -rf "$tmp"; say "cannot download $p"; return 1; }
    fi
    mv "$tmp"/*.deb "$CACHE/debs/"; rmdir "$tmp"
  done
}
# with_libs PKG...: the packages plus, recursively, the library packages (lib*, zlib1g) they
# (Pre-)Depend on: what their programs need at run time, without daemons, debconf or udev. Of
# alternatives "a | b" only the first counts.
with_libs() {
  local todo=" $* " done=" " p
  while [ -n "${todo// /}" ]; do
    set -- $todo; p=$1; shift; todo=" $* "
    case $done in *" $p "*) continue;; esac
    done="$done$p "
    todo="$todo $(apt-cache depends "$p" 2>/dev/null | awk '
      $1 ~ /^\|?(Pre)?Depends:$/ { if (!alt && $2 ~ /^(lib[^<:]*|zlib1g)$/) print $2; alt = ($1 ~ /^\|/); next }
      /^ *[A-Za-z|]+:/ { alt = 0 }')"
  done
  echo $done
}

# The kernel: the ABI linux-image-amd64 points at (a newer point release changes the name and
# so the cache key), or LIOVM_KPKG.
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}'; }
KPKG=${LIOVM_KPKG:-$(kernel_pkg)}
[ -n "$KPKG" ] || { apt-get update >/dev/null 2>&1 || true; KPKG=$(kernel_pkg); }
[ -n "$KPKG" ] || { say "cannot tell the kernel package (no apt lists for Debian 12? set LIOVM_KPKG)"; exit 2; }
KV=${KPKG#linux-image-}
VMLINUZ=$CACHE/vmlinuz-$KV
VMLINUX=$CACHE/vmlinux-$KV
# The initramfs is keyed by this script's text as well as the options that change its content: an
# edited script never boots an image built by an older one (nor by another tool in the same cache).
KEY=$( { cat "$0"; echo "$KPKG|$ISCSI|$XPKGS|$XMODS"; } | md5sum | cut -c1-10)
INITRD=$CACHE/swifttarget-initramfs-$KV-$KEY.cpio.gz

# Kernel modules wanted in the guest (their dependencies come along); LOAD is what init loads, in
# this order: virtio and 9p first (the share), then LIO, TCMU and the initiator side.
MODS="configfs target_core_mod target_core_user target_core_file target_core_iblock target_core_pscsi
  iscsi_target_mod tcm_loop uio crc32c_generic crc32c_intel scsi_mod sd_mod sg scsi_transport_iscsi
  libiscsi libiscsi_tcp iscsi_tcp loop virtio_pci virtio_net virtio_blk virtio_scsi 9pnet_virtio 9p $XMODS"
LOAD="virtio_pci virtio_net 9pnet_virtio 9p configfs crc32c_generic uio target_core_mod target_core_user
  target_core_file target_core_iblock target_core_pscsi iscsi_target_mod tcm_loop scsi_mod sd_mod sg
  iscsi_tcp loop $XMODS"
ISCSI_PKGS="open-iscsi"

# ------------------------------------------------------------------ initramfs
build() { # in the staging folder $ST
  local st=$ST K R BB M f
  K=$st/kernel R=$st/root M=lib/modules/$KV
  say "building $(basename "$INITRD") from $KPKG and busybox-static$([ $ISCSI = 1 ] && echo ", open-iscsi")${XPKGS:+, $XPKGS}${XMODS:+, modules $XMODS}"
  fetch "$KPKG" busybox-static
  dpkg -x "$CACHE/debs/${KPKG}_"*.deb "$K"
  dpkg -x "$CACHE/debs/busybox-static_"*.deb "$st/bb"
  BB=$st/bb/bin/busybox
  cp "$K/boot/vmlinuz-$KV" "$VMLINUZ.tmp" && mv "$VMLINUZ.tmp" "$VMLINUZ"
  [ -s "$VMLINUX" ] || extract_vmlinux

  mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,run,share,ctl,root,etc/target,var/lib,usr,"$M"}
  ln -s ../bin "$R/usr/bin"; ln -s ../sbin "$R/usr/sbin"
  cp "$BB" "$R/bin/busybox"
  for f in $("$BB" --list); do [ "$f" = busybox ] || ln -s busybox "$R/bin/$f"; done
  ln -s ../bin/busybox "$R/sbin/modprobe"     # the kernel's request_module() runs /sbin/modprobe
  echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"; echo "root:x:0:" > "$R/etc/group"

  # Modules: the package ships no modules.dep; busybox depmod makes one, then the wanted modules and
  # their dependency closure are copied and indexed again for the guest's busybox modprobe.
  "$BB" depmod -b "$K" "$KV"
  awk -v want="$MODS" '
    function base(p) { sub(/:$/, "", p); sub(/.*\//, "", p); sub(/\.ko(\.[a-z]+)?$/, "", p); gsub("-", "_", p); return p }
    function take(p,   i, n, d) { if (p in taken) return; taken[p] = 1; print p
      n = split(deps[p], d, " "); for (i = 1; i <= n; i++) take(d[i]) }
    BEGIN { n = split(want, w, /[ \t\n]+/); for (i = 1; i <= n; i++) if (w[i] != "") { gsub("-", "_", w[i]); W[w[i]] = 1 } }
    { p = $1; sub(/:$/, "", p); deps[p] = ""; for (i = 2; i <= NF; i++) deps[p] = deps[p] " " $i; path[base(p)] = p }
    END { for (m in W) if (m in path) take(path[m]); else print "missing " m > "/dev/stderr" }
  ' "$K/$M/modules.dep" 2> "$st/missing" | while read -r f; do
    mkdir -p "$R/$M/$(dirname "$f")"; cp "$K/$M/$f" "$R/$M/$f"
  done
  # a wanted module that is neither a file nor built in is a typo in -k (or gone from this kernel)
  while read -r _ f; do
    grep -q "/${f}.ko\$\|/${f//_/-}.ko\$" "$K/$M/modules.builtin" || say "warning: no kernel module $f in $KV"
  done < "$st/missing"
  cp "$K/$M"/modules.builtin* "$K/$M/modules.order" "$R/$M/"
  "$BB" depmod -b "$R" "$KV"

  # Programs from Debian packages, with glibc and their libraries.
  local pkgs="" x bd
  [ $ISCSI = 1 ] && pkgs="$ISCSI_PKGS"
  pkgs="$pkgs $XPKGS"
  if [ -n "${pkgs// /}" ]; then
    pkgs=$(with_libs libc6 $pkgs)
    say "guest packages: $pkgs"
    fetch $pkgs
    for x in $pkgs; do dpkg -x "$CACHE/debs/${x}_"*.deb "$st/x"; done
    for bd in sbin usr/sbin bin usr/bin; do
      [ -d "$st/x/$bd" ] && find "$st/x/$bd" -maxdepth 1 \( -type f -o -type l \) -exec cp -an {} "$R/sbin/" \;
    done
    mkdir -p "$R/lib/x86_64-linux-gnu" "$R/lib64"
    for bd in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu; do
      [ -d "$st/x/$bd" ] && find "$st/x/$bd" -maxdepth 1 -name '*.so*' -exec cp -a {} "$R/lib/x86_64-linux-gnu/" \;
    done
    ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
    if [ $ISCSI = 1 ]; then
      cp -a "$st/x/etc/iscsi" "$R/etc/"
      echo "InitiatorName=iqn.2004-10.com.debian:liovm" > "$R/etc/iscsi/initiatorname.iscsi"
      mkdir -p "$R/var/lib/iscsi"
    fi
    check_libs "$R"
  fi

  # PID 1: a busybox sh script. The command and its exit status travel through the 9p "ctl" folder.
  printf 'LOAD="%s"\n' "$(echo $LOAD)" > "$R/etc/lio-vm.conf"
  cat > "$R/init" <<'INIT'
#!/bin/sh
export PATH=/sbin:/bin HOME=/root
. /etc/lio-vm.conf
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /run; mkdir -p /run/lock
for m in $LOAD; do modprobe "$m" || echo "[lio-vm] modprobe $m failed"; done
grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs configfs /sys/kernel/config
hostname lio-vm
ip link set lo up
if ip link set eth0 up 2>/dev/null; then ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2; fi
# msize: large 9p messages for copying binaries; cache=mmap: programs on /share can be mmapped
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap share /share || echo "[lio-vm] no /share"
mount -t 9p -o trans=virtio,version=9p2000.L ctl /ctl || echo "[lio-vm] no /ctl"
echo "[lio-vm] ready, guest uptime $(cut -d' ' -f1 /proc/uptime)s"
cd /share
if grep -q lio-vm.shell /proc/cmdline; then
  setsid cttyhack sh -l; rc=$?
else
  sh /ctl/cmd.sh </dev/null; rc=$?
  echo "$rc" > /ctl/rc
fi
echo "[lio-vm] command exited with $rc, guest uptime $(cut -d' ' -f1 /proc/uptime)s"
cd /; sync; umount /share /ctl 2>/dev/null; poweroff -f
INIT
  chmod +x "$R/init"
  (cd "$R" && find . | "$BB" cpio -o -H newc 2>/dev/null | gzip -1 > "$INITRD.tmp")
  mv "$INITRD.tmp" "$INITRD"
  say "initramfs $(du -h "$INITRD" | cut -f1), $(find "$R/$M" -name '*.ko*' | wc -l) modules"
}

# The bzImage's payload as an ELF vmlinux: QEMU enters it directly (PVH), which skips SeaBIOS and
# the guest's own xz decompression, seconds under TCG. Without one the bzImage boots the slow way.
extract_vmlinux() {
  local off
  for off in $(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$VMLINUZ" | cut -d: -f1); do
    tail -c +$((off + 1)) "$VMLINUZ" | xz -dcq > "$VMLINUX.tmp" 2>/dev/null || true
    if [ "$(head -c 4 "$VMLINUX.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
      mv "$VMLINUX.tmp" "$VMLINUX"; return 0
    fi
  done
  rm -f "$VMLINUX.tmp"
}

# check_libs ROOT: warns about a shared library a guest program needs that no package brought
# (then name its package with -x). Only when the host has readelf (binutils).
check_libs() {
  command -v readelf >/dev/null || return 0
  local f lib missing=""
  for f in "$1"/sbin/* "$1"/lib/x86_64-linux-gnu/*.so*; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    for lib in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [ -e "$1/lib/x86_64-linux-gnu/$lib" ] || case " $missing " in *" $lib "*) ;; *) missing="$missing $lib";; esac
    done
  done
  [ -z "$missing" ] || say "warning: guest programs need libraries no package provides:$missing"
}

# One build at a time per cache (parallel runs share $CACHE); a second run waits, then finds it built.
(
  flock 9
  if [ $REBUILD = 1 ] || [ ! -s "$INITRD" ] || [ ! -s "$VMLINUZ" ]; then
    ST=$(mktemp -d "$CACHE/build.XXXXXX")
    trap 'rm -rf "$ST"' EXIT
    build
  fi
  [ -s "$VMLINUX" ] || extract_vmlinux
) 9> "$CACHE/.build.lock"

# ------------------------------------------------------------------ boot
if [ "$ACCEL" = auto ]; then
  # kvm_pvm is a paravirtual "KVM" under which an unmodified kernel crawls; TCG is faster there
  ACCEL=tcg
  if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
fi
case $ACCEL in
  kvm) ACC=(-accel kvm -cpu host);;
  tcg) ACC=(-accel tcg,thread=multi -cpu max);;
  *) say "-a tcg|kvm|auto"; exit 2;;
esac
KIMG=$VMLINUZ; [ -s "$VMLINUX" ] && KIMG=$VMLINUX
RUN=$(mktemp -d "$LIOVM_DIR/run.XXXXXX")
mkdir "$RUN/ctl"
trap 'rm -rf "$RUN"' EXIT
if [ $# -gt 0 ]; then printf '%s\n' "$*" > "$RUN/ctl/cmd.sh"; else echo "sh /share/run.sh" > "$RUN/ctl/cmd.sh"; fi
NET=user,id=n0
[ "$PORT" = 0 ] || NET="$NET,hostfwd=tcp:127.0.0.1:$PORT-:3260"
# panic=-1 + -no-reboot: a guest panic ends QEMU at once; tsc=reliable no_timer_check: TCG's clock
# is too irregular for the kernel's TSC and timer checks, which otherwise cost boot time
APPEND="console=ttyS0 quiet loglevel=4 panic=-1 tsc=reliable no_timer_check"
[ $SHELL_MODE = 1 ] && APPEND="$APPEND lio-vm.shell"
QEMU=(qemu-system-x86_64 "${ACC[@]}" -m "$MEM" -smp "$CPUS" -nodefaults -no-user-config -no-reboot
  -display none -kernel "$KIMG" -initrd "$INITRD" -append "$APPEND"
  -netdev "$NET" -device virtio-net-pci,netdev=n0,romfile=
  -virtfs "local,path=$SHARE,mount_tag=share,security_model=none,id=share"
  -virtfs "local,path=$RUN/ctl,mount_tag=ctl,security_model=none,id=ctl")
say "booting $KV ($ACCEL, ${MEM} MiB, $CPUS vCPU), /share=$SHARE, $([ "$PORT" = 0 ] && echo "no port forward" || echo "127.0.0.1:$PORT -> guest 3260")"
if [ $SHELL_MODE = 1 ]; then
  "${QEMU[@]}" -serial mon:stdio
  exit 0
fi
# QEMU runs in the background so that a TERM/INT sent to this script (a caller's cleanup) stops
# the guest too instead of leaving it running until the timeout; the console loses its CRs.
mkfifo "$RUN/console"
sed -u 's/\r$//' < "$RUN/console" &
SED_PID=$!
timeout -k 5 "$TMO" "${QEMU[@]}" -serial stdio < /dev/null > "$RUN/console" &
QEMU_PID=$!
trap 'kill -TERM $QEMU_PID 2>/dev/null; wait $QEMU_PID; wait $SED_PID; exit 143' TERM INT HUP
set +e
wait $QEMU_PID; qrc=$?
wait $SED_PID
set -e
[ $qrc = 124 ] && { say "timeout after ${TMO} s"; exit 124; }
[ -s "$RUN/ctl/rc" ] || { say "the guest ended without a result (qemu status $qrc)"; exit 125; }
exit "$(cat "$RUN/ctl/rc")"
