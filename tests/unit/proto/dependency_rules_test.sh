#!/usr/bin/env bash
# The dataplane links and includes nothing from control/ (they share proto/):
#  1. no dataplane source includes a control/ header;
#  2. proto/ includes only the standard library and common/byte_order.h;
#  3. eipgate_forbid_links_under (cmake/DependencyRules.cmake) passes a clean fixture tree and
#     fails one where a dataplane target reaches a control/ target through another library.
# Usage: dependency_rules_test.sh REPO_ROOT SCRATCH_DIR
set -uo pipefail
root=$1 scratch=$2
fail=0

if grep -rnE '#[[:space:]]*include[[:space:]]*["<](\.\./)*control/' "${root}/dataplane"; then
  echo "FAIL: the dataplane includes headers from control/ (share them through proto/)"
  fail=1
fi
if grep -rnE '#[[:space:]]*include[[:space:]]*"' "${root}/proto" |
   grep -vE '"(proto/[a-z_]+\.h|common/byte_order\.h)"'; then
  echo "FAIL: proto/ includes something beyond the standard library and common/byte_order.h"
  fail=1
fi

rm -rf "${scratch}" && mkdir -p "${scratch}"
fixture=${root}/tests/unit/proto/dependency_rules
if ! cmake -S "${fixture}" -B "${scratch}/clean" -DEIPGATE_ROOT="${root}" >"${scratch}/clean.log" 2>&1; then
  cat "${scratch}/clean.log"
  echo "FAIL: the clean fixture was refused"
  fail=1
fi
if cmake -S "${fixture}" -B "${scratch}/violating" -DEIPGATE_ROOT="${root}" -DVIOLATE=ON \
    >"${scratch}/violating.log" 2>&1; then
  echo "FAIL: a dataplane target linking control/ through common/ was accepted"
  fail=1
else
  said=$(tr -s ' \n' '  ' <"${scratch}/violating.log")  # cmake wraps its messages
fi
if [[ -n ${said:-} ]] && { [[ ${said} != *"dp must not link anything from control/, but links ctl"* ]] ||
                           [[ ${said} != *"via dp -> mid -> ctl"* ]]; }; then
  cat "${scratch}/violating.log"
  echo "FAIL: the refusal does not name the path to the control/ target"
  fail=1
fi
[[ ${fail} == 0 ]] && echo "PASS: dataplane -> control/ dependency rules hold"
exit "${fail}"
