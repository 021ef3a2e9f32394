#!/bin/bash
# Makes an arm64 sysroot from Debian 12's own packages, for cross-building eipgate on x86_64:
#   make-sysroot.sh DIR
# A private apt state (DIR.apt/: lists, cache, an empty dpkg status) resolves the build
# dependencies for arm64 as on an empty machine and downloads them; each .deb is unpacked into DIR
# and absolute symlinks are made relative. The host's dpkg database and architectures are not
# touched (installing the -dev packages as multiarch would remove the amd64 ones: they are not
# co-installable). DIR/.eipgate-sysroot lists the packages; a second run with the same list is a
# no-op. DIR/.debs/ keeps the control files (shlibs) for ami/cross/shlibdeps.py.
set -euo pipefail
DIR=${1:?usage: make-sysroot.sh DIR}
ARCH=arm64
# The build and test dependencies of scripts/setup.sh, as Debian arm64 packages.
PKGS=(libc6-dev libstdc++-12-dev linux-libc-dev libdpdk-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
      nlohmann-json3-dev libcli11-dev libbpf-dev libcurl4-openssl-dev libssl-dev libpugixml-dev
      prometheus-cpp-dev libgtest-dev libgmock-dev)
log() { printf '[sysroot] %s\n' "$*"; }
stamp="${ARCH} ${PKGS[*]}"
if [[ -f ${DIR}/.eipgate-sysroot ]] && [[ $(head -1 "${DIR}/.eipgate-sysroot") == "${stamp}" ]]; then
  log "${DIR}: up to date"
  exit 0
fi

APT=${DIR}.apt
rm -rf "${DIR}" "${APT}"
mkdir -p "${APT}"/{lists/partial,cache/archives/partial} "${DIR}/.debs"
: >"${APT}/status"
opts=(-q -o "APT::Architecture=${ARCH}" -o "APT::Architectures::=${ARCH}"
      -o "Dir::State::Lists=${APT}/lists" -o "Dir::State::status=${APT}/status"
      -o "Dir::Cache=${APT}/cache" -o Debug::NoLocking=1)
log "apt-get update (${ARCH} indices of the host's sources)"
apt-get "${opts[@]}" update >"${APT}/update.log" 2>&1 || { cat "${APT}/update.log"; exit 1; }
log "downloading ${PKGS[*]} and their dependencies"
apt-get "${opts[@]}" install -y --download-only --no-install-recommends "${PKGS[@]}" \
  >"${APT}/download.log" 2>&1 || { cat "${APT}/download.log"; exit 1; }
debs=("${APT}"/cache/archives/*.deb)
log "unpacking ${#debs[@]} packages into ${DIR}"
for deb in "${debs[@]}"; do
  dpkg-deb -x "${deb}" "${DIR}"
  pkg=$(dpkg-deb -f "${deb}" Package)
  mkdir -p "${DIR}/.debs/${pkg}"
  dpkg-deb -e "${deb}" "${DIR}/.debs/${pkg}/DEBIAN"
  # Path names (a link's own name, not its target).
  dpkg-deb -c "${deb}" | awk '{ if ($(NF-1) == "->") print $(NF-2); else print $NF }' >"${DIR}/.debs/${pkg}/files"
done
# /lib/x.so -> DIR/lib/x.so, relative, so that the sysroot is self-contained.
while IFS= read -r -d '' link; do
  target=$(readlink "${link}")
  ln -sfn "$(realpath -m --relative-to="$(dirname "${link}")" "${DIR}${target}")" "${link}"
done < <(find "${DIR}" -type l -lname '/*' -print0)
{ echo "${stamp}"; for deb in "${debs[@]}"; do basename "${deb}"; done; } >"${DIR}/.eipgate-sysroot"
rm -rf "${APT}/cache"
log "${DIR}: $(du -sh "${DIR}" | cut -f1), ${#debs[@]} packages"
