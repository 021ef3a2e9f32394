#!/usr/bin/env bash
# Instructions per packet (established fast path) and per new connection, counted by callgrind:
# repeatable on any machine, unlike timings. Usage: bench/callgrind.sh [build-dir]
set -euo pipefail
BUILD_DIR=${1:-build}
BIN=${BUILD_DIR}/bench/engine_callgrind
out=$(mktemp -d)
trap 'rm -rf "${out}"' EXIT

run() {  # name, count, args...
  local name=$1 count=$2
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \
    --callgrind-out-file="${out}/${name}.out" "${BIN}" "$@" >/dev/null 2>"${out}/${name}.log"
  local ir
  ir=$(awk '/Collected :/ { print $NF }' "${out}/${name}.log")
  printf '%-34s %12s instructions / %s = %6.1f per item\n' "${name}" "${ir}" "${count}" \
    "$(awk -v a="${ir}" -v b="${count}" 'BEGIN { print a / b }')"
}

run "established, 1k flows" 320000 1000 320000
run "established, 1M flows" 320000 1048576 320000
run "new TCP connections" 320000 new 320000
run "new TCP connections, txlog on" 320000 new-log 320000
