# Sourced by the scripts that run things in the LIO VM (scripts/lio-vm.sh).
# LIO_VM: the VM tool ($LIOVM, else scripts/lio-vm.sh next to this file).
# share_binaries SHARE BIN...: copies each host binary into SHARE/, and the shared libraries
# ldd lists plus the dynamic loader into SHARE/lib/. swift-tcmu-probe is built with
# --static-swift-stdlib (the Swift runtime inside; libnl, libstdc++ and glibc remain); the
# daemon and swift-targetctl are not: they use Foundation, whose static link (ICU) fails now
# and then after a switch between static and shared builds, so their Swift libraries travel
# too. In the guest run them as
#   /share/lib/ld-linux-x86-64.so.2 --library-path /share/lib /share/BIN
# (sh-compatible: tcmu-vm-test.sh and lio-daemon-vm-test.sh are /bin/sh scripts; every script that
# sources this file lives in scripts/, so $0 names the folder.)
LIO_VM=${LIOVM:-$(cd "$(dirname "$0")" && pwd)/lio-vm.sh}

share_binaries() {
  _share=$1; shift
  mkdir -p "$_share/lib"
  for _bin in "$@"; do
    cp "$_bin" "$_share/$(basename "$_bin")"
    ldd "$_bin" | awk '/=> \//{print $3}' | xargs -I{} cp -L {} "$_share/lib/"
  done
  cp -L /lib64/ld-linux-x86-64.so.2 "$_share/lib/"
}
