#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need, when they are missing.
set -euo pipefail
need=()
# ceph-mon ceph-osd ceph-common: scripts/ceph/mini-ceph.sh (rbd backstore tests); librbd-dev pulls in
# librbd1/librados2, which CModules/CRBD dlopens at run time (it needs no headers to build).
# systemd (systemd-analyze verify) and man-db: the unit and the manual pages install-service writes.
for p in libnl-3-dev libnl-genl-3-dev linux-libc-dev libiscsi-bin qemu-utils qemu-block-extra qemu-system-x86 fio \
         ceph-mon ceph-osd ceph-common librbd-dev systemd man-db; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
