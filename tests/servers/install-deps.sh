#!/usr/bin/env bash
# Install (as root, on Debian 12) the Debian packages the test servers and the
# independent checking clients need. Idempotent and fast when all is installed:
# dpkg-query decides what is missing, and apt-get runs only for that.
#
#   tests/servers/install-deps.sh [EXTRA_PACKAGE...]
set -euo pipefail

SCRIPT_NAME="install-deps"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

PACKAGES=(
    # source databases and their own clients
    mariadb-server mariadb-client
    postgresql postgresql-client
    # independent readers of what ingesta wrote
    python3 python3-boto3 python3-pymongo awscli zstd sqlite3 rclone
    # what the scripts themselves use
    procps curl ca-certificates coreutils util-linux
    # reliability suite: valgrind memcheck, libFuzzer corpus replay, strace
    # (test_retention reads the uploader's syscalls)
    valgrind clang-14 libclang-rt-14-dev strace
    # operator tests: status JSON schema, Prometheus text parser, systemd-analyze
    python3-jsonschema python3-prometheus-client systemd
    # deploy suite: podman images from a debootstrapped base (runc: crun refuses hybrid cgroups)
    podman debootstrap runc uidmap slirp4netns python3-venv
)

# missing_packages PKG... -> prints those not fully installed (one dpkg-query call).
missing_packages() {
    local installed
    installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null \
        | awk '$2 == "installed" { print $1 }' || true)"
    local p
    for p in "$@"; do
        grep -qxF -- "$p" <<<"$installed" || printf '%s\n' "$p"
    done
}

# apt_lists_fresh: true when the package lists were updated in the last 24 hours.
apt_lists_fresh() {
    local lists=/var/lib/apt/lists
    [[ -n "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]]
}

main() {
    [[ $EUID -eq 0 ]] || die "run as root (apt-get install)"
    command -v dpkg-query >/dev/null || die "dpkg-query not found: this script is for Debian"

    local -a missing
    mapfile -t missing < <(missing_packages "${PACKAGES[@]}" "$@")
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "all ${#PACKAGES[@]} packages already installed"
        return 0
    fi

    export DEBIAN_FRONTEND=noninteractive
    if ! apt_lists_fresh; then
        log "apt-get update"
        apt-get update -q
    fi
    log "installing: ${missing[*]}"
    # Services are not started here (policy-rc.d in containers); start.sh starts
    # its own instances on non-default ports.
    if ! apt-get install -y -q "${missing[@]}"; then
        log "install failed; retrying after apt-get update"
        apt-get update -q
        apt-get install -y -q "${missing[@]}"
    fi

    mapfile -t missing < <(missing_packages "${PACKAGES[@]}" "$@")
    [[ ${#missing[@]} -eq 0 ]] || die "still not installed: ${missing[*]}"
    log "done"
}

main "$@"
