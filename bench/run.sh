#!/usr/bin/env bash
# One command for the whole benchmark (see BENCHMARKS.md):
#
#   bench/run.sh [--quick] [bench.py options...]
#
# Installs what the contenders need (Debian packages; dlt, s3fs and Sling in
# bench/.venv from bench/requirements-dlt.txt and requirements-sling.txt), builds ingesta in build-bench (release), starts
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
if ! cat "$here/requirements-dlt.txt" "$here/requirements-sling.txt" | cmp -s - "$stamp" 2>/dev/null ||
    ! "$venv/bin/python" -c "import dlt, s3fs, sling_linux_amd64" 2>/dev/null; then
    say "installing dlt, s3fs and sling into $venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements-dlt.txt" \
        -r "$here/requirements-sling.txt"
    cat "$here/requirements-dlt.txt" "$here/requirements-sling.txt" > "$stamp"
fi
# The wheel ships Sling's binary; make sure it is executable.
chmod +x "$venv"/lib/python3*/site-packages/sling_linux_amd64/bin/sling-linux-* 2>/dev/null || true

build="${BENCH_BUILD_DIR:-$root/build-bench}"
if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" "$root" --buildtype=release >&2
fi
ninja -C "$build" >&2

bash "$root/tests/servers/start.sh" all >&2

exec /usr/bin/python3 "$here/bench.py" --ingesta "$build/ingesta" "$@"
