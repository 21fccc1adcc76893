#!/usr/bin/env bash
# Make sure the test suite can reach PostgreSQL and Redis.
#
# For each service: if something answers on the configured URL
# (TEST_POSTGRES_URL / TEST_REDIS_URL), do nothing.  Otherwise, if the server
# binaries are missing, install Debian's packages so that tests/support/servers.py
# can start a throwaway server itself.  Binaries only: no system service is
# started (a temporary policy-rc.d blocks the packages' postinst from doing so).
#
# Idempotent and quick (two 1-second TCP probes) when everything is present.
set -euo pipefail

PG_URL="${TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"

log() { printf 'ensure_services: %s\n' "$*" >&2; }

# host_port URL DEFAULT_PORT -> "host port" (handles user:pass@, [v6], ?query)
host_port() {
    local url="$1" default_port="$2" rest hostport host port
    rest="${url#*://}"
    rest="${rest%%/*}"
    rest="${rest%%\?*}"
    hostport="${rest##*@}"
    if [[ "$hostport" =~ ^\[([^]]*)\](:([0-9]+))?$ ]]; then
        host="${BASH_REMATCH[1]}"
        port="${BASH_REMATCH[3]}"
    else
        host="${hostport%%:*}"
        port=""
        [[ "$hostport" == *:* ]] && port="${hostport##*:}"
    fi
    printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$default_port}"
}

# answers HOST PORT -> 0 if a TCP connection succeeds within 1 s
answers() {
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

have_pg_binaries() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && return 0
    done
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 \
        && command -v postgres >/dev/null 2>&1
}

have_redis_binary() {
    command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]]
}

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    fi
fi

POLICY_RC=/usr/sbin/policy-rc.d
CREATED_POLICY=0
cleanup() {
    if [[ "$CREATED_POLICY" == 1 ]]; then
        "${SUDO[@]}" rm -f "$POLICY_RC" || true
    fi
}
trap cleanup EXIT

apt_install_first_available() {
    # apt_install_first_available PKG [ALT...]: install the first package that
    # installs; run `apt-get update` only if none does, then retry once.
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found: install $* by hand"
        return 1
    fi
    if [[ "$(id -u)" != 0 && ${#SUDO[@]} == 0 ]]; then
        log "need root (or sudo) to install $*"
        return 1
    fi
    if [[ ! -e "$POLICY_RC" ]]; then
        # Keep the packages' postinst from starting system services.
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY_RC" >/dev/null
        "${SUDO[@]}" chmod 755 "$POLICY_RC"
        CREATED_POLICY=1
    fi
    local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
               -y -q -o Dpkg::Use-Pty=0 --no-install-recommends)
    local updated=0 pkg
    while :; do
        for pkg in "$@"; do
            log "apt-get install $pkg"
            if "${apt[@]}" install "$pkg"; then
                return 0
            fi
        done
        [[ "$updated" == 1 ]] && break
        log "install failed; running apt-get update and retrying"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q update
        updated=1
    done
    log "could not install any of: $*"
    return 1
}

# Serialise concurrent runs (apt/dpkg locks would make the loser fail).
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/quantoxbay-ensure-services.lock" && flock 9 || true
fi

status=0

read -r pg_host pg_port < <(host_port "$PG_URL" 5432)
if answers "$pg_host" "$pg_port"; then
    log "postgres answers on $pg_host:$pg_port"
elif have_pg_binaries; then
    log "postgres not reachable on $pg_host:$pg_port; binaries present (tests start a throwaway server)"
else
    log "postgres not reachable on $pg_host:$pg_port and initdb/pg_ctl not installed"
    apt_install_first_available postgresql-15 postgresql || status=1
    if have_pg_binaries; then
        log "postgres binaries installed: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tr '\n' ' ')"
    else
        log "postgres binaries still missing"; status=1
    fi
fi

read -r redis_host redis_port < <(host_port "$REDIS_URL" 6379)
if [[ "$REDIS_URL" == unix://* ]]; then
    log "redis uses a unix socket ($REDIS_URL); not checking"
elif answers "$redis_host" "$redis_port"; then
    log "redis answers on $redis_host:$redis_port"
elif have_redis_binary; then
    log "redis not reachable on $redis_host:$redis_port; redis-server present (tests start a throwaway server)"
else
    log "redis not reachable on $redis_host:$redis_port and redis-server not installed"
    apt_install_first_available redis-server || status=1
    have_redis_binary || { log "redis-server still missing"; status=1; }
fi

exit "$status"
