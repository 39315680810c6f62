#!/usr/bin/env bash
# The full test suite, as CI runs it (README's second command), on Debian 12 as root:
#   1. install build and test dependencies, build the Go test servers (cached),
#   2. start MariaDB, PostgreSQL, FerretDB, MinIO, toxiproxy, moto (Glue) and
#      Trino 476 (the lake suite's query engine; downloaded once into the cache) on 127.0.0.1,
#   3. check formatting, build with -Werror, run the unit, integration, lake (Trino) and
#      reliability suites, a benchmark smoke run (bench/run.sh --quick), then the
#      unit and integration suites and the cold-start test again under AddressSanitizer +
#      UndefinedBehaviorSanitizer; a clone of the repository into an empty
#      directory builds and passes the unit and golden tests on its own,
#   4. stop the servers and print "N passed, N failed" as the last line.
# Options: --quick (skip the benchmark smoke run and the sanitizer build),
# --suite NAME (only that suite).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

quick=0
suites=()
while (($#)); do
  case "$1" in
  --quick) quick=1 ;;
  --suite) suites+=(--suite "$2"); shift ;;
  *) echo "usage: tests/run.sh [--quick] [--suite NAME]..." >&2; exit 2 ;;
  esac
  shift
done

passed=0
failed=0
step() { echo; echo "=== $*"; }

# Count meson's per-test results from its JSON log (one line per test).
count_results() {
  local log="$1/meson-logs/testlog.json" p f
  [[ -f $log ]] || { failed=$((failed + 1)); return; }
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  passed=$((passed + p))
  failed=$((failed + f))
}

step "dependencies"
bash packaging/build.sh >/dev/null || { echo "build dependencies failed"; echo "0 passed, 1 failed"; exit 1; }
bash tests/servers/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
bash tests/servers/build-tools.sh || { echo "0 passed, 1 failed"; exit 1; }

step "servers"
trap 'bash "$root/tests/servers/stop.sh" >/dev/null 2>&1' EXIT
if ! bash tests/servers/start.sh all trino; then
  echo "test servers did not start"
  echo "0 passed, 1 failed"
  exit 1
fi

step "format"
if bash tests/check-format.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

step "fuzz corpora replay (libFuzzer targets, clang-14)"
if bash tests/fuzz/build-and-run.sh --replay; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

step "build (-Werror) and test"
rm -rf build-test
if meson setup build-test -Dfailpoints=true >/dev/null && ninja -C build-test; then
  meson test -C build-test --print-errorlogs "${suites[@]}"
  count_results build-test
else
  echo "build failed"
  failed=$((failed + 1))
fi

if ((${#suites[@]} == 0)); then
  # The repository stands on its own: a clone into an empty directory (nothing
  # beside it, so no sibling directory of the checkout can be read) builds and passes
  # the unit suite and the golden integration tests of every source.
  step "fresh clone into an empty directory: unit suite and golden tests"
  lone=$(mktemp -d /tmp/ingesta-lone-XXXXXX)
  if git clone -q "$root" "$lone/ingesta" && (cd "$lone/ingesta" &&
    meson setup build >/dev/null && ninja -C build >/dev/null &&
    meson test -C build --print-errorlogs --suite unit &&
    meson test -C build --print-errorlogs sqlite postgres mysql mongo); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
  rm -rf "$lone"
fi

if ((!quick)) && ((${#suites[@]} == 0)); then
  step "benchmark smoke run (bench/run.sh --quick; the full run is not part of the tests)"
  if timeout 900 bash bench/run.sh --quick >/tmp/ingesta-bench-quick.log 2>&1; then
    passed=$((passed + 1))
    tail -n 5 /tmp/ingesta-bench-quick.log
  else
    failed=$((failed + 1))
    tail -n 40 /tmp/ingesta-bench-quick.log
  fi
fi

if ((!quick)) && ((${#suites[@]} == 0)); then
  step "AddressSanitizer + UndefinedBehaviorSanitizer: unit, integration, cold starts"
  rm -rf build-asan
  if meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null &&
    ninja -C build-asan; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C build-asan --print-errorlogs --suite unit --suite integration --suite coldstart \
      --timeout-multiplier 3
    count_results build-asan
  else
    echo "sanitizer build failed"
    failed=$((failed + 1))
  fi
fi

echo
echo "$passed passed, $failed failed"
((failed == 0))
