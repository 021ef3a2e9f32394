#!/usr/bin/env bash
# Style checks, run by scripts/test.sh:
#  - clang-format --dry-run --Werror over every tracked C, C++ and BPF C file;
#  - clang-tidy (.clang-tidy, a small fast check set) over the C++ sources changed since the commit
#    in .ci/lint-base (the last one that passed CI), with the compile database of BUILD_DIR.
#    LINT_ALL=1 checks every source in the compile database instead (about 6 min on 2 cores).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"
BUILD_DIR=${BUILD_DIR:-build}

mapfile -t sources < <(git ls-files '*.cc' '*.h' '*.c')
printf '[lint] clang-format: %d files\n' "${#sources[@]}"
clang-format --dry-run --Werror "${sources[@]}"

if [[ ! -f ${BUILD_DIR}/compile_commands.json ]]; then
  echo "[lint] ${BUILD_DIR}/compile_commands.json missing: configure the build first" >&2
  exit 1
fi
if [[ ${LINT_ALL:-0} == 1 ]]; then
  mapfile -t tidy < <(git ls-files '*.cc')
else
  base=$(<.ci/lint-base)
  if ! git cat-file -e "${base}^{commit}" 2>/dev/null; then
    echo "[lint] .ci/lint-base names ${base}, which this clone does not have" >&2
    exit 1
  fi
  mapfile -t tidy < <(git diff --name-only --diff-filter=d "${base}" -- '*.cc')
fi
# Only translation units in the compile database (the BPF C and fuzz-only sources are not).
checked=()
for f in "${tidy[@]}"; do
  if grep -q "\"file\": \"${ROOT}/${f}\"" "${BUILD_DIR}/compile_commands.json"; then checked+=("${f}"); fi
done
printf '[lint] clang-tidy: %d changed translation unit(s)\n' "${#checked[@]}"
((${#checked[@]} == 0)) && exit 0
# The CI set: checks that find bugs, not taste (.clang-tidy's wider set is for editors).
readonly CHECKS='-*,bugprone-use-after-move,bugprone-dangling-handle,bugprone-undefined-memory-manipulation,bugprone-integer-division,bugprone-suspicious-string-compare,bugprone-string-constructor,bugprone-sizeof-expression,bugprone-infinite-loop,bugprone-move-forwarding-reference,performance-move-const-arg,performance-unnecessary-copy-initialization,performance-for-range-copy'
log=$(mktemp)
rc=0
printf '%s\n' "${checked[@]}" |
  xargs -P "${LINT_JOBS:-$(nproc)}" -n 4 clang-tidy -p "${BUILD_DIR}" --quiet "--checks=${CHECKS}" \
    --extra-arg=-Wno-unknown-warning-option \
    --warnings-as-errors='*' >"${log}" 2>&1 || rc=$?
grep -v 'warnings generated\.$' "${log}" || true
rm -f "${log}"
if ((rc != 0)); then
  echo "[lint] clang-tidy found problems (exit ${rc})" >&2
  exit 1
fi
echo "[lint] clean"
