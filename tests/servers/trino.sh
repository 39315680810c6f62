#!/usr/bin/env bash
# Install the lake readers the `lake` test suite needs into the cache (outside the
# repo), skipping what is already there:
#   trino  Trino 476 (the engine of Athena v3) from Maven Central with mvn:
#          io.trino:trino-server-core:476:tar.gz, io.trino:trino-hive:476:zip
#          (unpacked into plugin/hive) and io.trino:trino-cli:476:jar:executable,
#          into $INGESTA_TEST_CACHE/trino-476/ (~700 MB unpacked). Needs Java >= 24.
#   venv   a Python venv (made from /usr/bin/python3) with moto[server] (the Glue
#          stand-in), duckdb and its httpfs extension, in $INGESTA_TEST_CACHE/lake-venv/.
#
#   tests/servers/trino.sh [--force] [trino|venv...]     (default: both)
#
# start.sh calls it for `start.sh moto` / `start.sh trino` when something is missing.
set -euo pipefail

SCRIPT_NAME="trino.sh"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

FORCE=0
# The venv's packages. duckdb is pinned to the version of the newest
# duckdb-extension-httpfs on PyPI: DuckDB cannot download extensions here.
VENV_PACKAGES=('moto[server]' 'duckdb==1.5.5' 'duckdb-extension-httpfs==1.5.5')

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# mvn_copy ARTIFACT DIR: download one artifact (group:artifact:version:type[:classifier]).
mvn_copy() {
    (cd "$2" && mvn -q -B dependency:copy -Dartifact="$1" -DoutputDirectory="$2") \
        || die "mvn dependency:copy $1 failed"
}

install_trino() {
    local v="$TRINO_VERSION" tmp
    if [[ -f "$TRINO_HOME/.complete" && $FORCE -eq 0 ]]; then
        log "trino: $TRINO_HOME already installed"
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
    find_java >/dev/null || die "no Java >= 24 under /usr/lib/jvm (Trino $v needs it; set TRINO_JAVA)"
    mkdir -p "$INGESTA_TEST_CACHE"
    tmp="$(mktemp -d "$INGESTA_TEST_CACHE/trino-tmp.XXXXXX")"
    # shellcheck disable=SC2064 # expand now
    trap "rm -rf -- '$tmp'" EXIT
    log "trino: downloading Trino $v with mvn (~470 MB)"
    mvn_copy "io.trino:trino-server-core:$v:tar.gz" "$tmp"
    mvn_copy "io.trino:trino-hive:$v:zip" "$tmp"
    mvn_copy "io.trino:trino-cli:$v:jar:executable" "$tmp"
    tar -xzf "$tmp/trino-server-core-$v.tar.gz" -C "$tmp"
    mkdir -p "$tmp/trino-server-core-$v/plugin"
    (cd "$tmp" && unzip -q "trino-hive-$v.zip") || die "unzip trino-hive-$v.zip failed"
    mv "$tmp/trino-hive-$v" "$tmp/trino-server-core-$v/plugin/hive"
    mv "$tmp/trino-cli-$v-executable.jar" "$tmp/trino-server-core-$v/trino-cli.jar"
    printf '%s\n' "$v" >"$tmp/trino-server-core-$v/.complete"
    rm -rf -- "$TRINO_HOME"
    mv "$tmp/trino-server-core-$v" "$TRINO_HOME"
    rm -rf -- "$tmp"
    trap - EXIT
    log "trino: installed in $TRINO_HOME ($(du -sh "$TRINO_HOME" | cut -f1))"
}

install_venv() {
    if [[ -f "$LAKE_VENV/.complete" && $FORCE -eq 0 ]]; then
        log "venv: $LAKE_VENV already installed"
        return 0
    fi
    rm -rf -- "$LAKE_VENV"
    log "venv: creating $LAKE_VENV with ${VENV_PACKAGES[*]}"
    /usr/bin/python3 -m venv "$LAKE_VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$LAKE_VENV/bin/pip" install -q --disable-pip-version-check "${VENV_PACKAGES[@]}" \
        || die "pip install ${VENV_PACKAGES[*]} failed"
    "$LAKE_VENV/bin/pip" freeze --disable-pip-version-check \
        | grep -iE '^(moto|duckdb|duckdb[-_]extension[-_]httpfs|boto3)==' >"$LAKE_VENV/.complete"
    log "venv: $(tr '\n' ' ' <"$LAKE_VENV/.complete")"
}

main() {
    local -a what=()
    local arg
    for arg in "$@"; do
        case "$arg" in
            --force) FORCE=1 ;;
            -h | --help) usage; exit 0 ;;
            trino | venv) what+=("$arg") ;;
            *) usage; die "unknown argument: $arg" ;;
        esac
    done
    [[ ${#what[@]} -gt 0 ]] || what=(trino venv)
    for arg in "${what[@]}"; do
        "install_$arg"
    done
}

main "$@"
