#!/usr/bin/env bash
# Builds swift-targetd (release) and serves ./disk.img (1 GiB, created if missing) as LUN 0 of
# iqn.2026-11.org.example:disk1 on 127.0.0.1:3260, in the foreground. Extra arguments are
# passed to `swift-targetd serve` (e.g. --lun sparse:./thin.img,size=20G --chap user:secret).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
(cd "$here" && swift build -c release --product swift-targetd)
exec "$here/.build/release/swift-targetd" serve --listen 127.0.0.1:3260 \
  --target iqn.2026-11.org.example:disk1 --lun file:./disk.img,size=1G "$@"
