#!/usr/bin/env bash
# sipp for the voice channel's tests: tests/test_sip.py plays SIP callers
# against the SIP connector on loopback with Debian's sip-tester package.
#
#   scripts/sipp.sh install   install sip-tester with apt when missing (quick no-op when present)
set -euo pipefail

install() {
    if command -v sipp >/dev/null; then
        return 0
    fi
    if ! command -v apt-get >/dev/null; then
        echo "sipp.sh: no sipp on PATH and no apt-get to install it; install sipp (sip-tester)" >&2
        return 1
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "sipp.sh: installing sip-tester with apt-get" >&2
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester >/dev/null
    command -v sipp >/dev/null
}

case "${1:-}" in
    install) install ;;
    *)
        echo "usage: $0 install" >&2
        exit 2
        ;;
esac
