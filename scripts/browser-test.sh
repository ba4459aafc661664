#!/bin/sh
# Installs what the browser test needs when missing, then runs scripts/browser-test.py with the
# same arguments (see docs/web.md). Needs root (or sudo) for apt-get.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

need_apt=""
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need_apt="$need_apt chromium"
command -v chromedriver >/dev/null 2>&1 || need_apt="$need_apt chromium-driver"
command -v iscsi-inq >/dev/null 2>&1 || need_apt="$need_apt libiscsi-bin"
command -v python3 >/dev/null 2>&1 || need_apt="$need_apt python3 python3-pip"
if [ -n "$need_apt" ]; then
    echo "[browser-test] installing:$need_apt"
    $SUDO apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $need_apt
fi

if ! python3 -c 'import selenium' >/dev/null 2>&1; then
    echo "[browser-test] installing selenium from PyPI"
    python3 -m pip install --user selenium 2>/dev/null \
        || python3 -m pip install --user --break-system-packages selenium
fi

exec python3 "$here/browser-test.py" "$@"
