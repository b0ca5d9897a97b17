#!/usr/bin/env bash
# Chromium for the browser tests (tests/test_browser.py drives Debian's
# chromium through Playwright's executable_path; Playwright's own browser
# downloads are not used).
#
#   scripts/chromium.sh install   install chromium with apt when missing (quick no-op when present)
set -euo pipefail

install() {
    if command -v chromium >/dev/null; then
        return 0
    fi
    if ! command -v apt-get >/dev/null; then
        echo "chromium.sh: no chromium on PATH and no apt-get to install it;" \
            "install Chromium, or point OMNIROUTE_CHROMIUM at its executable" >&2
        return 1
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "chromium.sh: installing chromium with apt-get" >&2
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    command -v chromium >/dev/null
}

case "${1:-}" in
    install) install ;;
    *)
        echo "usage: $0 install" >&2
        exit 2
        ;;
esac
