#!/usr/bin/env bash
# Build ingesta's libFuzzer targets with clang and run them, or replay their
# corpora (what CI runs). Not part of the meson build: the targets are compiled
# here directly against the few project sources each one needs.
#
#   tests/fuzz/build-and-run.sh [--time SECONDS] [--jobs N] [TARGET...]
#       build, then fuzz each target for SECONDS (default 600), N at a time
#       (default 1; the CI machines have 2 cores). New inputs go to
#       $FUZZ_OUT/work/<target>/ (not the repository); crashes to
#       $FUZZ_OUT/crashes/<target>/. Prints execs, coverage and time per target.
#   tests/fuzz/build-and-run.sh --replay [TARGET...]
#       build, then run every file of tests/fuzz/corpus/<target>/ once through
#       its target (seconds). Exit non-zero on any crash. This is the CI mode.
#   tests/fuzz/build-and-run.sh --build-only
#
# Targets: config json bson pgtext s3xml creds http (default: all).
# Needs clang with libFuzzer (Debian 12: clang-14 libclang-rt-14-dev) and the
# project's -dev packages (libbson, libcurl, libssl, libjansson).
# Environment: CLANG (default clang-14, else clang), FUZZ_OUT (default
# /tmp/ingesta-fuzz), FUZZ_SANITIZE (default address,undefined).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-/tmp/ingesta-fuzz}
time_s=600
jobs=1
mode=fuzz
targets=()
all_targets=(config json bson pgtext s3xml creds http)

while (($#)); do
	case "$1" in
	--time) time_s=$2; shift ;;
	--jobs) jobs=$2; shift ;;
	--replay) mode=replay ;;
	--build-only) mode=build ;;
	-h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
	-*) echo "unknown option $1" >&2; exit 2 ;;
	*) targets+=("$1") ;;
	esac
	shift
done
((${#targets[@]})) || targets=("${all_targets[@]}")

if [[ -z ${CLANG:-} ]]; then
	if command -v clang-14 >/dev/null; then CLANG=clang-14; else CLANG=clang; fi
fi
command -v "$CLANG" >/dev/null || {
	echo "fuzz: $CLANG not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
	exit 77
}

# The project sources each target links (besides its harness).
declare -A srcs=(
	[config]="common/config.c common/parse.c common/log.c common/buf.c common/err.c common/util.c common/hex.c"
	[json]="common/json.c common/json_float.c common/hex.c common/util.c common/buf.c common/err.c tests/fuzz/ref/json_reemit_ref.c"
	[bson]="collector/bson_json.c common/json.c common/json_float.c common/hex.c common/util.c common/buf.c common/err.c"
	[pgtext]="collector/pg_text.c common/json.c common/json_float.c common/hex.c common/util.c common/buf.c common/err.c"
	[s3xml]="uploader/s3_http.c uploader/s3_proto.c uploader/sigv4.c uploader/creds.c uploader/creds_file.c uploader/creds_http.c common/config.c common/parse.c common/log.c common/util.c common/hex.c common/buf.c common/err.c"
	[creds]="uploader/creds.c common/config.c common/parse.c common/log.c common/util.c common/hex.c common/buf.c common/err.c"
	[http]="uploader/http_parse.c"
)
declare -A pkgs=(
	[config]="libcrypto" [json]="libcrypto" [bson]="libbson-1.0 libcrypto" [pgtext]="libcrypto"
	[s3xml]="libcurl libcrypto jansson" [creds]="libcurl libcrypto jansson" [http]=""
)

mkdir -p "$out/bin" "$out/gen"
# What meson would generate: the build header, failpoints off.
printf '#define INGESTA_VERSION "fuzz"\n#define INGESTA_FAILPOINTS 0\n' >"$out/gen/ingesta_build.h"

build() {
	local t=$1 flags libs
	flags=$(pkg-config --cflags ${pkgs[$t]} 2>/dev/null || true)
	libs=$(pkg-config --libs ${pkgs[$t]} 2>/dev/null || true)
	local -a files=("$here/fuzz_$t.c")
	for f in ${srcs[$t]}; do files+=("$root/$f"); done
	# shellcheck disable=SC2086 # flags are word lists
	"$CLANG" -std=gnu17 -g -O1 -fno-omit-frame-pointer \
		-fsanitize=fuzzer,${FUZZ_SANITIZE:-address,undefined} -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wno-unused-function \
		-I"$out/gen" -I"$root" -I"$root/common" -I"$root/collector" -I"$root/spool" -I"$root/uploader" -I"$here/ref" \
		$flags "${files[@]}" $libs -lm -lpthread -o "$out/bin/fuzz_$t"
}

for t in "${targets[@]}"; do
	[[ -n ${srcs[$t]+x} ]] || { echo "fuzz: unknown target $t (${all_targets[*]})" >&2; exit 2; }
	echo "fuzz: building $t" >&2
	build "$t"
done
[[ $mode == build ]] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

if [[ $mode == replay ]]; then
	failed=0
	for t in "${targets[@]}"; do
		dir="$here/corpus/$t"
		mapfile -t inputs < <(find "$dir" -type f | sort)
		if ((${#inputs[@]} == 0)); then echo "fuzz replay: $t: no corpus in $dir"; continue; fi
		if "$out/bin/fuzz_$t" -runs=0 "${inputs[@]}" >"$out/replay-$t.log" 2>&1; then
			echo "fuzz replay: $t: ${#inputs[@]} inputs, no crash"
		else
			echo "fuzz replay: $t: FAILED (log: $out/replay-$t.log)"
			tail -n 30 "$out/replay-$t.log"
			failed=1
		fi
	done
	exit $failed
fi

run_one() {
	local rc t=$1 work="$out/work/$t" crashes="$out/crashes/$t/" log="$out/fuzz-$t.log"
	mkdir -p "$work" "$crashes"
	local dict=()
	[[ -f $here/dict/$t.dict ]] && dict=("-dict=$here/dict/$t.dict")
	"$out/bin/fuzz_$t" "$work" "$here/corpus/$t" -max_total_time="$time_s" \
		-max_len=65536 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$crashes" "${dict[@]}" >"$log" 2>&1 && rc=0 || rc=$?
	local execs cov ft secs
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
	cov=$(grep -oE '(DONE|#[0-9]+).*cov: [0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo '?')
	ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo '?')
	secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' || echo "$time_s")
	if ((rc == 0)); then
		echo "fuzz: $t: $execs execs in ${secs}s, coverage $cov edges ($ft features), corpus $(find "$work" -type f | wc -l) units, no crash"
	else
		echo "fuzz: $t: CRASH (rc $rc) after $execs execs; artifacts in $crashes; log $log"
		grep -E 'ERROR|SUMMARY|oracle|==[0-9]+==' "$log" | head -n 20
	fi
	return $rc
}

status=0
running=0
for t in "${targets[@]}"; do
	run_one "$t" &
	running=$((running + 1))
	if ((running >= jobs)); then
		wait -n || status=1
		running=$((running - 1))
	fi
done
while ((running > 0)); do
	wait -n || status=1
	running=$((running - 1))
done
exit $status
