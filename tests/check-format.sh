#!/usr/bin/env bash
# Fail when any C file drifts from .clang-format (the CI format step).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files '*.c' '*.h')
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/ingesta-format.log; then
  echo "format drift (run: clang-format -i \$(git ls-files '*.c' '*.h')):" >&2
  grep -E "^[^ ].*(warning|error)" /tmp/ingesta-format.log | cut -d: -f1 | sort -u >&2
  exit 1
fi
echo "format: ${#files[@]} files clean"
