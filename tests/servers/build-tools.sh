#!/usr/bin/env bash
# Build the Go test servers (MinIO, FerretDB with SQLite, toxiproxy) into the
# test-tool cache, ${INGESTA_TEST_CACHE:-$HOME/.cache/ingesta-test}/bin, skipping
# whatever is already there. Needs the machine's Go >= 1.22 (not Debian's 1.19).
#
#   tests/servers/build-tools.sh [--force] [minio] [ferretdb] [toxiproxy]
#
# Environment:
#   INGESTA_TEST_CACHE  cache directory (default ~/.cache/ingesta-test)
#   MINIO_VERSION       module version of github.com/minio/minio (default: pinned below;
#                       falling back to MINIO_FALLBACK_VERSION if latest does not build)
#   TOXIPROXY_VERSION   module version of github.com/Shopify/toxiproxy/v2 (default v2.5.0)
#   GO                  path of the go command (default /usr/local/go/bin/go, then PATH)
#
# Nothing is written into the repository except tests/servers/ferretdb/go.sum when it
# is missing (go mod tidy).
set -euo pipefail

SCRIPT_NAME="build-tools"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
# A version known to build with Go 1.26 here; used only if @latest fails.
MINIO_FALLBACK_VERSION="${MINIO_FALLBACK_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
TOXIPROXY_VERSION="${TOXIPROXY_VERSION:-v2.5.0}"
FERRETDB_DIR="$SERVERS_DIR/ferretdb"

FORCE=0
GO_BIN=""

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

setup_go() {
    GO_BIN="$(find_go)" || die "no Go >= 1.22 found (tried \$GO, /usr/local/go/bin/go, PATH); Debian's golang-go is too old"
    # Persistent module cache (default GOPATH/pkg/mod) so a second run downloads nothing.
    export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
    export CGO_ENABLED=0
    log "using $("$GO_BIN" version) at $GO_BIN; GOMODCACHE=$("$GO_BIN" env GOMODCACHE)"
    mkdir -p "$INGESTA_TEST_BIN"
}

# module_version BINARY -> prints "path version" of the main module built into BINARY.
module_version() {
    "$GO_BIN" version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $2, $3; exit }'
}

# go_install_as PKG@VERSION NAME: go install into a scratch GOBIN, move to the cache as NAME.
go_install_as() {
    local pkgver="$1" name="$2" tmp built
    tmp="$(mktemp -d "$INGESTA_TEST_CACHE/gobin.XXXXXX")"
    if ! GOBIN="$tmp" "$GO_BIN" install -trimpath "$pkgver"; then
        rm -rf "$tmp"
        return 1
    fi
    built="$(find "$tmp" -maxdepth 1 -type f -perm -u+x | head -n 1)"
    [[ -n "$built" ]] || { rm -rf "$tmp"; die "go install $pkgver produced no binary"; }
    mv -f "$built" "$INGESTA_TEST_BIN/$name"
    rm -rf "$tmp"
}

build_minio() {
    local bin="$INGESTA_TEST_BIN/minio" want="$MINIO_VERSION" have start
    if [[ $FORCE -eq 0 && -x "$bin" ]]; then
        have="$(module_version "$bin")"
        if [[ "$want" == "latest" || "$have" == *" $want" ]]; then
            log "minio: already built ($have), skipping"
            return 0
        fi
    fi
    start=$SECONDS
    log "minio: go install github.com/minio/minio@$want (first build takes several minutes)"
    if ! go_install_as "github.com/minio/minio@$want" minio; then
        [[ "$want" == "latest" ]] || die "minio@$want failed to build"
        log "minio: @latest failed to build with this Go; trying $MINIO_FALLBACK_VERSION"
        go_install_as "github.com/minio/minio@$MINIO_FALLBACK_VERSION" minio \
            || die "minio@$MINIO_FALLBACK_VERSION failed to build too"
    fi
    module_version "$bin" >"$INGESTA_TEST_BIN/minio.version"
    log "minio: built $(cat "$INGESTA_TEST_BIN/minio.version") in $((SECONDS - start)) s"
}

# The FerretDB wrapper is rebuilt whenever its sources change.
ferretdb_stamp() {
    (cd "$FERRETDB_DIR" && cat main.go go.mod go.sum; "$GO_BIN" env GOVERSION) | sha256sum | cut -d' ' -f1
}

build_ferretdb() {
    local bin="$INGESTA_TEST_BIN/ferretdb" stampfile="$INGESTA_TEST_BIN/ferretdb.stamp" stamp start
    [[ -f "$FERRETDB_DIR/main.go" && -f "$FERRETDB_DIR/go.mod" ]] || die "missing $FERRETDB_DIR/main.go or go.mod"
    if [[ ! -f "$FERRETDB_DIR/go.sum" ]]; then
        log "ferretdb: go.sum missing, running go mod tidy in $FERRETDB_DIR"
        (cd "$FERRETDB_DIR" && "$GO_BIN" mod tidy)
    fi
    stamp="$(ferretdb_stamp)"
    if [[ $FORCE -eq 0 && -x "$bin" && -f "$stampfile" && "$(cat "$stampfile")" == "$stamp" ]]; then
        log "ferretdb: already built ($(module_dep_version "$bin" github.com/FerretDB/FerretDB)), skipping"
        return 0
    fi
    start=$SECONDS
    log "ferretdb: building $FERRETDB_DIR -> $bin"
    # Only the SQLite backend is needed; leave PostgreSQL's out.
    (cd "$FERRETDB_DIR" && "$GO_BIN" build -trimpath -tags ferretdb_no_postgresql -o "$bin.tmp" .)
    mv -f "$bin.tmp" "$bin"
    printf '%s\n' "$stamp" >"$stampfile"
    module_dep_version "$bin" github.com/FerretDB/FerretDB >"$INGESTA_TEST_BIN/ferretdb.version"
    log "ferretdb: built FerretDB $(cat "$INGESTA_TEST_BIN/ferretdb.version") in $((SECONDS - start)) s"
}

# module_dep_version BINARY MODULE -> version of a dependency built into BINARY.
module_dep_version() {
    "$GO_BIN" version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "dep" && $2 == m { print $3; exit }'
}

build_toxiproxy() {
    local server="$INGESTA_TEST_BIN/toxiproxy-server" cli="$INGESTA_TEST_BIN/toxiproxy-cli" start
    local mod="github.com/Shopify/toxiproxy/v2" have
    if [[ $FORCE -eq 0 && -x "$server" && -x "$cli" ]]; then
        have="$(module_version "$server")"
        if [[ "$have" == "$mod $TOXIPROXY_VERSION" ]]; then
            log "toxiproxy: already built ($have), skipping"
            return 0
        fi
    fi
    start=$SECONDS
    log "toxiproxy: go install $mod/cmd/server and cmd/cli @$TOXIPROXY_VERSION"
    go_install_as "$mod/cmd/server@$TOXIPROXY_VERSION" toxiproxy-server || die "toxiproxy server failed to build"
    go_install_as "$mod/cmd/cli@$TOXIPROXY_VERSION" toxiproxy-cli || die "toxiproxy cli failed to build"
    printf '%s\n' "$TOXIPROXY_VERSION" >"$INGESTA_TEST_BIN/toxiproxy.version"
    log "toxiproxy: built $TOXIPROXY_VERSION in $((SECONDS - start)) s"
}

main() {
    local -a which=()
    local arg t
    for arg in "$@"; do
        case "$arg" in
            --force) FORCE=1 ;;
            -h | --help) usage; exit 0 ;;
            minio | ferretdb | toxiproxy) which+=("$arg") ;;
            all) which+=(minio ferretdb toxiproxy) ;;
            *) usage; die "unknown argument: $arg" ;;
        esac
    done
    [[ ${#which[@]} -gt 0 ]] || which=(minio ferretdb toxiproxy)

    setup_go
    local start=$SECONDS
    for t in "${which[@]}"; do
        "build_$t"
    done

    log "done in $((SECONDS - start)) s; tools in $INGESTA_TEST_BIN:"
    local v
    for t in minio ferretdb toxiproxy-server toxiproxy-cli; do
        [[ -x "$INGESTA_TEST_BIN/$t" ]] || continue
        case "$t" in
            minio) v="github.com/minio/minio $(module_version "$INGESTA_TEST_BIN/$t" | cut -d' ' -f2)" ;;
            ferretdb) v="FerretDB $(module_dep_version "$INGESTA_TEST_BIN/$t" github.com/FerretDB/FerretDB), SQLite backend (tests/servers/ferretdb)" ;;
            *) v="toxiproxy $(module_version "$INGESTA_TEST_BIN/$t" | cut -d' ' -f2)" ;;
        esac
        printf '  %-17s %s\n' "$t" "$v" >&2
    done
}

main "$@"
