#!/bin/bash
# Builds the Debian package from a configured build tree with CPack and checks it: lintian
# clean (no error or warning), the expected files, modes and control fields.
#   deb_lintian.sh BUILD_DIR
# Environment: EXPECT_ARCH (default: dpkg's; arm64 for ami/cross/build-deb.sh), DEB_OUT (a directory
# to keep the package in; by default it is removed with the rest).
# Exit 77 (ctest: skipped) when lintian or dpkg-deb is not installed.
set -euo pipefail
BUILD=$(realpath "${1:?usage: deb_lintian.sh BUILD_DIR}")
command -v lintian >/dev/null && command -v dpkg-deb >/dev/null || { echo "lintian not installed: skipped"; exit 77; }
OUT=$(mktemp -d /tmp/eipgate-deb.XXXXXX)
trap 'rm -rf "${OUT}"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack --config "${BUILD}/CPackConfig.cmake" -G DEB -B "${OUT}" >"${OUT}/cpack.log" 2>&1 || { cat "${OUT}/cpack.log"; fail "cpack"; }
DEB=$(ls "${OUT}"/eipgate_*.deb)
echo "built $(basename "${DEB}") ($(du -k "${DEB}" | cut -f1) KiB)"
arch=$(dpkg-deb -f "${DEB}" Architecture)
[[ ${arch} == "${EXPECT_ARCH:-$(dpkg --print-architecture)}" ]] || fail "Architecture: ${arch}"

dpkg-deb -c "${DEB}" >"${OUT}/contents"
for f in ./usr/sbin/eipgate-dataplane ./usr/sbin/eipgate-control ./usr/sbin/eipgatectl \
         ./usr/lib/eipgate/xdp_steer.bpf.o ./usr/lib/eipgate/eipgate-setup ./usr/lib/eipgate/eipgate-render-config \
         ./usr/lib/eipgate/eipgate_render/__init__.py ./usr/lib/eipgate/eipgate_render/cli.py \
         ./usr/lib/eipgate/eipgate_render/grammar.py ./usr/lib/eipgate/eipgate_render/imds.py \
         ./usr/lib/eipgate/eipgate_render/rendering.py ./usr/lib/eipgate/eipgate_render/secret_files.py \
         ./usr/lib/eipgate/eipgate_render/spec.py ./usr/lib/eipgate/eipgate_render/validation.py \
         ./lib/systemd/system/eipgate-dataplane.service ./lib/systemd/system/eipgate-control.service \
         ./lib/systemd/system/eipgate-setup.service ./etc/default/eipgate ./usr/lib/sysctl.d/60-eipgate.conf \
         ./usr/lib/tmpfiles.d/eipgate.conf ./usr/share/doc/eipgate/copyright ./usr/share/man/man8/eipgatectl.8.gz; do
  grep -q " ${f}$" "${OUT}/contents" || fail "missing ${f}"
done
grep -E " ./usr/sbin/eipgate-dataplane$" "${OUT}/contents" | grep -q '^-rwxr-xr-x root/root' || fail "eipgate-dataplane mode/owner"
dpkg-deb -f "${DEB}" Depends | grep -q librte-net-ena23 || fail "Depends lacks the ENA PMD"
dpkg-deb -f "${DEB}" Depends | grep -q python3-yaml || fail "Depends lacks python3-yaml (eipgate-render-config)"
# eipgate-control's /metrics (prometheus-cpp): found by dpkg-shlibdeps (CPACK_DEBIAN_PACKAGE_SHLIBDEPS).
dpkg-deb -f "${DEB}" Depends | grep -q libprometheus-cpp-pull1.0 || fail "Depends lacks prometheus-cpp"
dpkg-deb -e "${DEB}" "${OUT}/ctrl"
grep -qx /etc/default/eipgate "${OUT}/ctrl/conffiles" || fail "conffiles"

lintian --fail-on error,warning --tag-display-limit 0 "${DEB}" | tee "${OUT}/lintian.txt"
echo "lintian: clean (no errors or warnings)"
if [[ -n ${DEB_OUT:-} ]]; then
  cp "${DEB}" "${DEB_OUT}/"
fi
