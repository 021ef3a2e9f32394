#!/bin/bash
# Provisions a Debian 12 system as an eipgate NAT instance. The same script runs in the Packer
# build (on the amazon-ebs builder instance) and in the local image test (in the debootstrap
# chroot, ami/image-test/run.sh), so the image that is tested is the image that ships.
#   provision.sh PATH/TO/eipgate_<ver>_<arch>.deb
# Environment: EIPGATE_PROVISION_EXTRA="pkg ..." more Debian packages (the image test adds the
# kernel, SSH-less console login and test tools); EIPGATE_PROVISION_CLEAN=1 (default) strips
# per-instance state (machine-id, SSH host keys, logs) for an image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
DEB=${1:?usage: provision.sh eipgate_<ver>_<arch>.deb}
[[ -r ${DEB} ]] || { echo "provision.sh: ${DEB} not readable" >&2; exit 1; }
log() { printf '[provision] %s\n' "$*"; }

log "installing $(basename "${DEB}") and its dependencies"
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends "$(realpath "${DEB}")" python3-botocore ethtool \
  ${EIPGATE_PROVISION_EXTRA:-}

# vfio-pci early (the setup unit modprobes it too), and hugepage mount by systemd.
printf '# eipgate: the data ENI is bound to vfio-pci at boot by eipgate-setup\nvfio-pci\n' \
  >/etc/modules-load.d/eipgate.conf

# The units: the package enables them; make sure (an image built with --no-triggers, etc.).
systemctl enable eipgate-setup.service eipgate-dataplane.service eipgate-control.service

# No configuration in the image: every instance renders its own from user data / tags at boot.
rm -f /etc/eipgate/eipgate.yaml /etc/eipgate/ha.key /etc/eipgate/user-data.json

if [[ ${EIPGATE_PROVISION_CLEAN:-1} == 1 ]]; then
  log "cleaning per-instance state"
  apt-get clean
  rm -rf /var/lib/apt/lists/*
  rm -f /etc/ssh/ssh_host_*key* 2>/dev/null || true
  : >/etc/machine-id
  rm -f /var/lib/dbus/machine-id
  find /var/log -type f -name '*.log' -exec truncate -s 0 {} +
fi
log "done: $(dpkg-query -W -f='${Package} ${Version}' eipgate)"
