#!/usr/bin/env bash
# PostgreSQL for the test suite. The tests start their own throwaway server
# (tests/pg.py) from the binaries under /usr/lib/postgresql/*/bin; this script
# only makes sure those binaries are there.
#
#   scripts/postgres.sh install   install PostgreSQL with apt when missing (quick no-op when present)
set -euo pipefail

have_postgres() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

install() {
    if have_postgres; then
        return 0
    fi
    if ! command -v apt-get >/dev/null; then
        echo "postgres.sh: no PostgreSQL under /usr/lib/postgresql and no apt-get to install it;" \
            "install PostgreSQL, or point OMNIROUTE_TEST_POSTGRES at a server" >&2
        return 1
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "postgres.sh: installing PostgreSQL with apt-get" >&2
    "${sudo[@]}" apt-get update -qq
    # Debian's package creates a cluster and a service; the tests use neither.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    if ! have_postgres; then
        echo "postgres.sh: apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb appeared" >&2
        return 1
    fi
}

case "${1:-}" in
    install) install ;;
    *)
        echo "usage: $0 install" >&2
        exit 2
        ;;
esac
