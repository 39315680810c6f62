#!/usr/bin/env bash
# One command for the whole benchmark (see BENCHMARKS.md):
#
#   bench/run.sh [--quick] [bench.py options...]
#
# Installs what the contenders need (Debian packages; dlt in bench/.venv from
# bench/requirements-dlt.txt), builds ingesta in build-bench (release), starts
# the test servers (tests/servers/start.sh), then runs bench/bench.py, which
# builds the datasets, runs every contender alternately with ingesta and prints
# the report. Exit status: bench.py's (non-zero when any run failed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

say() { printf 'bench: %s\n' "$*" >&2; }

# Debian packages: the servers and their clients, the original's drivers, the
# upload contenders, the profilers.
bash "$root/tests/servers/install-deps.sh" python3-psycopg2 python3-pymysql python3-venv \
    python3-pip valgrind time >&2

venv="$here/.venv"
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements-dlt.txt" "$stamp" 2>/dev/null ||
    ! "$venv/bin/python" -c "import dlt" 2>/dev/null; then
    say "installing dlt into $venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements-dlt.txt"
    cp "$here/requirements-dlt.txt" "$stamp"
fi

build="${BENCH_BUILD_DIR:-$root/build-bench}"
if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" "$root" --buildtype=release >&2
fi
ninja -C "$build" >&2

bash "$root/tests/servers/start.sh" all >&2

exec /usr/bin/python3 "$here/bench.py" --ingesta "$build/ingesta" "$@"
