# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source this file
# Shared helpers for the test-server scripts in tests/servers/.
# Sourced, not executed.

# Where compiled tools live (outside the repo) and where servers keep their data.
INGESTA_TEST_CACHE="${INGESTA_TEST_CACHE:-${HOME:-/root}/.cache/ingesta-test}"
INGESTA_TEST_RUN="${INGESTA_TEST_RUN:-/tmp/ingesta-test-run}"
# Absolute, without a trailing slash: PID checks match these paths in command lines.
INGESTA_TEST_CACHE="$(realpath -m -- "$INGESTA_TEST_CACHE")"
INGESTA_TEST_RUN="$(realpath -m -- "$INGESTA_TEST_RUN")"
INGESTA_TEST_BIN="$INGESTA_TEST_CACHE/bin"
export INGESTA_TEST_CACHE INGESTA_TEST_RUN INGESTA_TEST_BIN

# Fixed loopback ports (none of them a default one). Each can be moved with
# INGESTA_TEST_<NAME>_PORT, e.g. to run a second, private set of servers.
MARIADB_PORT="${INGESTA_TEST_MARIADB_PORT:-13306}"
POSTGRES_PORT="${INGESTA_TEST_POSTGRES_PORT:-15432}"
FERRETDB_PORT="${INGESTA_TEST_FERRETDB_PORT:-27018}"
MINIO_PORT="${INGESTA_TEST_MINIO_PORT:-19000}"
MINIO_CONSOLE_PORT="${INGESTA_TEST_MINIO_CONSOLE_PORT:-19001}"
TOXIPROXY_PORT="${INGESTA_TEST_TOXIPROXY_PORT:-18474}"
MOTO_PORT="${INGESTA_TEST_MOTO_PORT:-15000}"
TRINO_PORT="${INGESTA_TEST_TRINO_PORT:-18080}"

TEST_HOST=127.0.0.1
TEST_USER=ingesta
TEST_PASSWORD=ingesta-test-pw
TEST_DB=ingesta_test
MINIO_ROOT_USER_VALUE=ingesta-minio
MINIO_ROOT_PASSWORD_VALUE=ingesta-minio-secret

ALL_SERVERS=(mariadb postgres ferretdb minio toxiproxy)
# The lake readers (moto = the Glue stand-in, Trino = Athena's engine), installed by
# trino.sh; started only when named (Trino takes ~35 s and ~750 MB), never by `all`.
LAKE_SERVERS=(moto trino)
KNOWN_SERVERS=("${ALL_SERVERS[@]}" "${LAKE_SERVERS[@]}")
TRINO_VERSION=476
TRINO_HOME="$INGESTA_TEST_CACHE/trino-$TRINO_VERSION"
LAKE_VENV="$INGESTA_TEST_CACHE/lake-venv"

SERVERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export SERVERS_DIR

log() { printf '%s: %s\n' "${SCRIPT_NAME:-servers}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${SCRIPT_NAME:-servers}" "$*" >&2; exit 1; }

# find_go: the machine's Go (>= 1.22); Debian's golang-go (1.19) is too old.
find_go() {
    local cand
    for cand in "${GO:-}" /usr/local/go/bin/go "$(command -v go 2>/dev/null || true)"; do
        [[ -n "$cand" && -x "$cand" ]] || continue
        if go_is_new_enough "$cand"; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    return 1
}

go_is_new_enough() {
    local v major minor
    v="$("$1" env GOVERSION 2>/dev/null)" || return 1   # e.g. go1.26.8
    v="${v#go}"
    major="${v%%.*}"
    minor="${v#*.}"
    minor="${minor%%.*}"
    [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
    (( major > 1 || (major == 1 && minor >= 22) ))
}

# java_major JAVA -> its feature version (17, 25...).
java_major() {
    local v
    v="$("$1" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2; exit }')"
    [[ "$v" =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$v"
}

# find_java: a Java >= 24 for Trino: $TRINO_JAVA, else the newest /usr/lib/jvm/*/bin/java.
find_java() {
    local cand best="" best_v=0 v
    for cand in "${TRINO_JAVA:-}" /usr/lib/jvm/*/bin/java; do
        [[ -n "$cand" && -x "$cand" ]] || continue
        v="$(java_major "$cand")" || continue
        ((v >= 24 && v > best_v)) || continue
        best="$(realpath "$cand")" best_v="$v"
        [[ "$cand" == "${TRINO_JAVA:-}" ]] && break
    done
    [[ -n "$best" ]] || return 1
    printf '%s\n' "$best"
}

# is_known_server NAME
is_known_server() {
    local s
    for s in "${KNOWN_SERVERS[@]}"; do
        [[ "$s" == "$1" ]] && return 0
    done
    return 1
}


# server_log NAME -> the server's log file.
server_log() {
    printf '%s/%s/%s.log\n' "$INGESTA_TEST_RUN" "$1" "$1"
}

# server_exe NAME -> basename of the executable a live server of NAME runs.
server_exe() {
    case "$1" in
        mariadb) echo mariadbd ;;
        postgres) echo postgres ;;
        ferretdb) echo ferretdb ;;
        minio) echo minio ;;
        toxiproxy) echo toxiproxy-server ;;
        moto) basename "$(realpath -m "$LAKE_VENV/bin/python3")" ;;
        trino) echo java ;;
        *) return 1 ;;
    esac
}

# proc_running PID: PID exists and is not a zombie (an exited child that init has
# not reaped yet still answers kill -0).
proc_running() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# pid_is NAME PID: PID is a live process running NAME's executable for this
# $INGESTA_TEST_RUN (so a stale PID file never makes us signal an unrelated process).
pid_is() {
    local exe
    [[ "$2" =~ ^[0-9]+$ ]] || return 1
    proc_running "$2" || return 1
    exe="$(readlink "/proc/$2/exe" 2>/dev/null)" || return 1
    exe="${exe% (deleted)}"
    [[ "${exe##*/}" == "$(server_exe "$1")" ]] || return 1
    # ...and one of this run directory (or, for toxiproxy, of this port).
    local cmdline marker="$INGESTA_TEST_RUN/$1/"
    [[ "$1" == toxiproxy ]] && marker="-port $TOXIPROXY_PORT"
    [[ "$1" == moto ]] && marker="moto_server -H $TEST_HOST -p $MOTO_PORT "
    cmdline="$(tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline " == *"$marker"* ]]
}

# server_pid NAME -> PID of our running server NAME, from $INGESTA_TEST_RUN/NAME.pid,
# else from the server's own PID file (MariaDB, PostgreSQL), which then
# restores ours. Fails if it is not running.
server_pid() {
    local name="$1" pidfile="$INGESTA_TEST_RUN/$1.pid" pid="" own=""
    [[ -f "$pidfile" ]] && pid="$(tr -dc '0-9' <"$pidfile")"
    if pid_is "$name" "$pid"; then
        printf '%s\n' "$pid"
        return 0
    fi
    case "$name" in
        mariadb) own="$INGESTA_TEST_RUN/mariadb/mariadbd.pid" ;;
        postgres) own="$INGESTA_TEST_RUN/postgres/data/postmaster.pid" ;;
    esac
    [[ -n "$own" && -f "$own" ]] || return 1
    pid="$(head -n 1 "$own" | tr -dc '0-9')"
    pid_is "$name" "$pid" || return 1
    printf '%s\n' "$pid" >"$pidfile"
    printf '%s\n' "$pid"
}

# pid_alive PIDFILE -> prints the PID and succeeds if that process exists.
pid_alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(tr -dc '0-9' <"$1")"
    [[ -n "$pid" ]] || return 1
    proc_running "$pid" || return 1
    printf '%s\n' "$pid"
}
