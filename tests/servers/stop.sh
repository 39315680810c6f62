#!/usr/bin/env bash
# Stop test servers started by start.sh, by PID: a polite signal (TERM; INT for
# PostgreSQL, its "fast" shutdown), a wait, then KILL. Removes the PID files.
#
#   tests/servers/stop.sh [--wipe] [NAME...]   NAME: mariadb postgres ferretdb minio toxiproxy
#                                               moto trino | all (all of these)
#
# No NAME means all. --wipe also deletes ${INGESTA_TEST_RUN:-/tmp/ingesta-test-run}
# (all data, logs and the env file). INGESTA_TEST_STOP_TIMEOUT: seconds to wait
# before KILL (default 30).
set -euo pipefail

SCRIPT_NAME="stop"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

STOP_TIMEOUT="${INGESTA_TEST_STOP_TIMEOUT:-30}"

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# wait_gone PID SECONDS: true once PID has exited.
wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while proc_running "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

stop_one() {
    local name="$1" pidfile="$INGESTA_TEST_RUN/$1.pid" pid sig=TERM
    if ! pid="$(server_pid "$name")"; then
        if [[ -f "$pidfile" ]]; then
            log "$name: not running (removing stale $pidfile)"
            rm -f "$pidfile"
        fi
        return 0
    fi
    [[ "$name" == postgres ]] && sig=INT
    log "$name: stopping pid $pid (SIG$sig)"
    kill -s "$sig" "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
        log "$name: still running after ${STOP_TIMEOUT} s, sending KILL"
        kill -s KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "$name: pid $pid survived KILL"
    fi
    rm -f "$pidfile"
    log "$name: stopped"
}

wipe_run_dir() {
    local dir
    dir="$(realpath -m "$INGESTA_TEST_RUN")"
    case "$dir" in
        / | /tmp | /root | /home | /var | /usr | /etc | "$(realpath -m "${HOME:-/}")")
            die "refusing to wipe $dir" ;;
    esac
    if [[ -d "$dir" ]]; then
        log "wiping $dir"
        rm -rf -- "$dir"
    fi
}

main() {
    local -a names=()
    local wipe=0 arg n
    for arg in "$@"; do
        case "$arg" in
            --wipe) wipe=1 ;;
            -h | --help) usage; exit 0 ;;
            all) names+=("${KNOWN_SERVERS[@]}") ;;
            *) is_known_server "$arg" || { usage; die "unknown server: $arg"; }
               names+=("$arg") ;;
        esac
    done
    [[ ${#names[@]} -gt 0 ]] || names=("${KNOWN_SERVERS[@]}")

    if [[ -d "$INGESTA_TEST_RUN" ]]; then
        for n in "${names[@]}"; do
            stop_one "$n"
        done
    else
        log "nothing to stop: $INGESTA_TEST_RUN does not exist"
    fi

    if ((wipe)); then
        # Wiping data under a server that is still running would break it.
        for n in "${KNOWN_SERVERS[@]}"; do
            if server_pid "$n" >/dev/null; then
                die "--wipe: $n is still running; stop it too (or run stop.sh --wipe with no names)"
            fi
        done
        wipe_run_dir
    fi
}

main "$@"
