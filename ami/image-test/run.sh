#!/bin/bash
# Local boot test of the eipgate image, one command, as root on Debian 12:
#   bash ami/image-test/run.sh [path/to/eipgate_<ver>_amd64.deb]
#   DATA_PATH=vfio bash ami/image-test/run.sh [deb]    # the vfio-pci data path (see 4.)
#   ARCH=arm64 bash ami/image-test/run.sh [deb]        # the Graviton image (see 6.)
#
# 1. builds the .deb if none is given (build-pkg/, cpack)
# 2. debootstraps Debian 12 from apt's configured mirror and provisions it with
#    ami/scripts/provision.sh — the script the Packer build runs on EC2
# 3. adds the test overlay: local user data (/etc/eipgate/user-data.json: the same JSON as EC2
#    user data), the IMDS/EC2 endpoint of the simulator, a console reporter unit
# 4. boots it under qemu (KVM if /dev/kvm works, else TCG) with two virtio NICs: the management
#    NIC (IMDS + fake EC2: tests/sim/fake_aws.py) and the data NIC (the "data ENI"). The user
#    data says data_path auto, so the data path is what eipgate-render-config picks:
#    - DATA_PATH=af_xdp (default): a pc machine without an IOMMU. Debian 12's kernel has no vfio
#      no-IOMMU mode, so auto = af_xdp: the kernel keeps the data NIC, DPDK's net_af_xdp with the
#      XDP steering program takes the NAT traffic.
#    - DATA_PATH=vfio: a q35 machine with a virtual Intel IOMMU (intel-iommu, guest kernel
#      intel_iommu=on), the data NIC modern-only virtio behind it (iommu_platform=on, ats=on).
#      auto = vfio: eipgate-setup binds the data NIC to vfio-pci (type1 IOMMU mode), DPDK's
#      virtio PMD (net_virtio) drives it, and the kernel's traffic for the data address goes
#      through the exception path's TAP eipgate0.
# 5. checks that eipgate-setup, eipgate-dataplane and eipgate-control come up (console markers),
#    that the data path is the one asked for (render-config's choice, the data NIC's kernel
#    driver, the dataplane port's DPDK driver), that the VPC router reaches the data address
#    (af_xdp: the kernel's own interface; vfio: the exception path), and that a "Lambda"
#    namespace reaches an internet host through the VM with the EIP
# 6. ARCH=arm64: the same test for the arm64 image. The package comes from
#    ami/cross/build-deb.sh (cross-built, build-arm64/), debootstrap and provision.sh run the
#    arm64 programs through qemu-user (binfmt_misc), and the VM is qemu's aarch64 "virt" machine
#    (TCG: a Cortex-A72, console ttyAMA0). Data path af_xdp (no IOMMU). Slower: about 35 min for
#    the first debootstrap (cached), then minutes per run.
#
# Topology (namespaces made and removed by this script; prefix eg-img-):
#   eg-img-lambda 10.0.128.10/20 --gw 10.0.128.1-- eg-img-vpc (VPC router + internet gateway)
#      eg-img-vpc: br 10.0.0.1/24 (public subnet) <- tap: VM data NIC (10.0.0.5, service 10.0.0.100)
#                  policy route: from 10.0.128.0/20 -> 10.0.0.5 (the private route table)
#                  IGW: 10.0.0.100 <-> EIP 203.0.113.10 (1:1, nftables)
#                  198.51.100.254/24 -- eg-img-inet 198.51.100.1 (what-is-my-IP on :8080)
#   eg-img-mgmt  192.168.77.1/24 + 169.254.169.254 (fake_aws.py: IMDSv2 + EC2) <- tap: VM mgmt NIC
# Environment: WORK (default /var/tmp/eipgate-image-test; the debootstrap result is cached
# there), MIRROR (default: the first deb.debian.org-style URI in apt's sources), KEEP=1 (leave
# the VM running and the namespaces up), BOOT_TIMEOUT (s, default 600), DATA_PATH (af_xdp, the
# default, or vfio: see 4.), VM_MEM (MiB, default 2048: the renderer reserves 132 hugepages).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARCH=${ARCH:-amd64}
case ${ARCH} in
  amd64) WORK=${WORK:-/var/tmp/eipgate-image-test}; CONSOLE=ttyS0; KPKG=linux-image-amd64
         QEMU_PKG=qemu-system-x86; BOOT_TIMEOUT=${BOOT_TIMEOUT:-600} ;;
  arm64) WORK=${WORK:-/var/tmp/eipgate-image-test-arm64}; CONSOLE=ttyAMA0; KPKG=linux-image-arm64
         QEMU_PKG="qemu-system-arm qemu-user-static"; BOOT_TIMEOUT=${BOOT_TIMEOUT:-1800} ;;
  *) printf '[image-test] FAIL: ARCH=%s: amd64 or arm64\n' "${ARCH}" >&2; exit 1 ;;
esac
DATA_PATH=${DATA_PATH:-af_xdp}
VM_MEM=${VM_MEM:-2048}
P=eg-img
EIP=203.0.113.10
MAC_MGMT=0e:00:00:00:0a:01
MAC_DATA=0e:00:00:00:0a:02
log() { printf '[image-test] %s\n' "$*"; }
die() { printf '[image-test] FAIL: %s\n' "$*" >&2; exit 1; }
[[ ${EUID} -eq 0 ]] || die "run as root"
[[ ${DATA_PATH} == af_xdp || ${DATA_PATH} == vfio ]] || die "DATA_PATH=${DATA_PATH}: af_xdp or vfio"
[[ ${ARCH} == amd64 || ${DATA_PATH} == af_xdp ]] || die "DATA_PATH=vfio is amd64 only (intel-iommu)"
mkdir -p "${WORK}"
# One run at a time: the namespaces and taps have fixed names (whatever WORK is), the files too.
LOCK=/run/lock/eipgate-image-test.lock
exec 9>"${LOCK}"
flock -n 9 || die "another image test is running (${LOCK})"
log "data path: ${DATA_PATH}"

# --- tools (only for this manual test; CI does not install them) -------------------------------
need=()
for pkg in debootstrap ${QEMU_PKG} qemu-utils e2fsprogs nftables curl; do
  dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" || need+=("${pkg}")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

# --- 1. the package ---------------------------------------------------------------------------
DEB=${1:-}
if [[ -z ${DEB} && ${ARCH} == arm64 ]]; then
  log "building the arm64 package (ami/cross/build-deb.sh, build-arm64/)"
  (cd "${ROOT}" && TESTS=0 BUILD_DIR=build-arm64 JOBS=${JOBS:-2} bash ami/cross/build-deb.sh \
    >"${WORK}/build.log" 2>&1) || die "arm64 package build failed: ${WORK}/build.log"
  DEB=$(ls -t "${ROOT}"/build-arm64/eipgate_*_arm64.deb | head -1)
elif [[ -z ${DEB} ]]; then
  log "building the package (build-pkg/)"
  (cd "${ROOT}" && BUILD_DIR=build-pkg BUILD_TYPE=Release JOBS=${JOBS:-2} \
    TARGETS="eipgate-dataplane eipgate-control eipgatectl" bash scripts/build.sh \
    -DEIPGATE_TESTS=OFF -DEIPGATE_BENCH=OFF >"${WORK}/build.log" 2>&1) || die "build failed: ${WORK}/build.log"
  (cd "${ROOT}/build-pkg" && cpack -G DEB >"${WORK}/cpack.log" 2>&1) || die "cpack failed: ${WORK}/cpack.log"
  DEB=$(ls -t "${ROOT}"/build-pkg/eipgate_*_amd64.deb | head -1)
fi
DEB=$(realpath "${DEB}")
[[ $(dpkg-deb -f "${DEB}" Architecture) == "${ARCH}" ]] || die "${DEB} is not an ${ARCH} package"
# The chroot steps of the arm64 image run arm64 programs: through qemu-user.
[[ ${ARCH} == arm64 ]] && bash "${ROOT}/ami/cross/binfmt-aarch64.sh"
log "package: ${DEB}"

# --- 2. debootstrap (cached) + provision --------------------------------------------------------
if [[ -z ${MIRROR:-} ]]; then
  MIRROR=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '{print $2}' | grep -v security | head -1 || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
BASE=${WORK}/rootfs.base
if [[ ! -f ${BASE}/.done ]]; then
  log "debootstrap bookworm from ${MIRROR} (cached in ${BASE})"
  rm -rf "${BASE}"
  debootstrap --arch="${ARCH}" --variant=minbase \
    --include=systemd,systemd-sysv,udev,kmod,iproute2,python3,ca-certificates,${KPKG},initramfs-tools,procps,e2fsprogs \
    bookworm "${BASE}" "${MIRROR}" >"${WORK}/debootstrap.log" 2>&1 || die "debootstrap failed: ${WORK}/debootstrap.log"
  touch "${BASE}/.done"
fi
RFS=${WORK}/rootfs
log "provisioning a copy with ami/scripts/provision.sh"
rm -rf "${RFS}"
cp -a "${BASE}" "${RFS}"
cleanup_chroot() {
  for m in dev/pts dev proc sys; do umount -l "${RFS}/${m}" 2>/dev/null || true; done
}
trap cleanup_chroot EXIT
mount --bind /dev "${RFS}/dev"; mount --bind /dev/pts "${RFS}/dev/pts"
mount -t proc proc "${RFS}/proc"; mount -t sysfs sys "${RFS}/sys"
cp /etc/resolv.conf "${RFS}/etc/resolv.conf" 2>/dev/null || true
printf '#!/bin/sh\nexit 101\n' >"${RFS}/usr/sbin/policy-rc.d"; chmod +x "${RFS}/usr/sbin/policy-rc.d"
cp "${DEB}" "${RFS}/tmp/eipgate.deb"
cp "${ROOT}/ami/scripts/provision.sh" "${RFS}/tmp/provision.sh"
# sources for apt inside the chroot: the same mirror
printf 'deb %s bookworm main\n' "${MIRROR}" >"${RFS}/etc/apt/sources.list"
chroot "${RFS}" env EIPGATE_PROVISION_EXTRA="systemd-resolved" EIPGATE_PROVISION_CLEAN=1 \
  bash /tmp/provision.sh /tmp/eipgate.deb >"${WORK}/provision.log" 2>&1 || die "provision failed: ${WORK}/provision.log"
rm -f "${RFS}/usr/sbin/policy-rc.d" "${RFS}/tmp/eipgate.deb" "${RFS}/tmp/provision.sh"
cleanup_chroot
trap - EXIT

# --- 3. test overlay ------------------------------------------------------------------------------
log "test overlay: local user data, network, console reporter"
echo eipgate-imgtest >"${RFS}/etc/hostname"
printf 'root:eipgate\n' | chroot "${RFS}" chpasswd
mkdir -p "${RFS}/etc/systemd/network"
cat >"${RFS}/etc/systemd/network/10-mgmt.network" <<EOF
[Match]
MACAddress=${MAC_MGMT}
[Network]
Address=192.168.77.2/24
[Route]
Destination=169.254.169.254/32
Gateway=192.168.77.1
EOF
# The data NIC as EC2's DHCP would leave it (primary IP), plus the service IP: with AF_XDP the
# kernel keeps the interface and answers ARP (the simulated VPC router ARPs; AWS's does not).
# With vfio the interface goes away when eipgate-setup binds the NIC to vfio-pci; the
# exception path's TAP (eipgate0) carries the same MAC but is the dataplane's to configure, so
# the match names the kernel driver too.
cat >"${RFS}/etc/systemd/network/20-data.network" <<EOF
[Match]
MACAddress=${MAC_DATA}
Driver=virtio_net
[Network]
Address=10.0.0.5/24
Address=10.0.0.100/32
[Link]
RequiredForOnline=no
EOF
chroot "${RFS}" systemctl enable systemd-networkd.service >/dev/null 2>&1
# The same JSON an EC2 instance gets as user data (ami/README.md); only the endpoints (the
# simulator's fake EC2/IMDS) and the inline secret are test-specific. The MTU is the default,
# 1500, on both data paths (AF_XDP on virtio_net also needs a frame that fits a page).
cat >"${RFS}/etc/eipgate/user-data.json" <<EOF
{"eipgate": {"version": 1, "pair": "imgtest-0", "priority": 150, "peer_address": "10.0.0.16",
  "service_ips": ["10.0.0.100"], "inside_prefixes": ["10.0.128.0/20"],
  "route_table_ids": ["rtb-0aa00000000000001"], "ha_secret": "0123456789abcdef0123456789abcdef",
  "data_path": "auto", "max_flows": "64K", "log_json": false,
  "endpoints": {"ec2": "http://169.254.169.254", "imds": "http://169.254.169.254"}}}
EOF
cat >"${RFS}/usr/local/sbin/eipgate-imagetest-report" <<'EOF'
#!/bin/bash
# Prints the state of the eipgate units to the console for ami/image-test/run.sh.
exec >/dev/ttyS0 2>&1
for _ in $(seq 180); do
  if eipgatectl health >/dev/null 2>&1; then break; fi
  sleep 1
done
for u in eipgate-setup eipgate-dataplane eipgate-control; do
  echo "EIPGATE-TEST unit ${u} $(systemctl is-active ${u}.service)"
done
eipgatectl health >/dev/null 2>&1 && echo "EIPGATE-TEST dataplane healthy" || echo "EIPGATE-TEST dataplane unhealthy"
# The data path as set up: render-config's choice, the data NIC's kernel driver, the IOMMU
# group, the DPDK driver of the dataplane's port, the exception path's TAP.
(
  . /run/eipgate/setup.env 2>/dev/null
  echo "EIPGATE-TEST data-path ${EIPGATE_DATA_PATH:-?} pci ${EIPGATE_DATA_PCI:-?} mtu ${EIPGATE_DATA_MTU:-?}"
  dev=/sys/bus/pci/devices/${EIPGATE_DATA_PCI:-none}
  drv=none; [[ -e ${dev}/driver ]] && drv=$(basename "$(readlink -f "${dev}/driver")")
  grp=none; [[ -e ${dev}/iommu_group ]] && grp=$(basename "$(readlink -f "${dev}/iommu_group")")
  echo "EIPGATE-TEST data-nic ${EIPGATE_DATA_PCI:-?} driver ${drv} iommu-group ${grp} iommu-groups $(ls /sys/kernel/iommu_groups 2>/dev/null | wc -l)"
)
echo "EIPGATE-TEST dataplane-port $(journalctl -b -u eipgate-dataplane --no-pager -o cat | grep -o 'port data (.*): id [0-9]* driver [a-z0-9_]*' | tail -1)"
echo "EIPGATE-TEST dataplane-eal $(journalctl -b -u eipgate-dataplane --no-pager -o cat | grep -oE "Selected IOVA mode '[A-Z]+'|Using IOMMU type [0-9]+ \([^)]*\)" | sort -u | tr '\n' ' ')"
echo "EIPGATE-TEST exception-path $(ip -br addr show dev eipgate0 2>&1 | tr -s ' ') mtu $(cat /sys/class/net/eipgate0/mtu 2>/dev/null)"
echo "EIPGATE-TEST log-begin"
journalctl -b -u eipgate-setup -u eipgate-dataplane -u eipgate-control --no-pager -o short-monotonic | tail -60
echo "EIPGATE-TEST log-end"
role="?"
for _ in $(seq 30); do
  role=$(eipgatectl --json ha-status 2>/dev/null | grep -o '"role": *"[a-z]*"' | head -1 | grep -o '[a-z]*"$' | tr -d '"')
  [[ ${role} == active ]] && break
  sleep 2
done
echo "EIPGATE-TEST control role ${role:-?}"
while sleep 5; do
  echo "EIPGATE-TEST flows $(eipgatectl --json stats 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d.get("nat", d))[:300])' 2>/dev/null)"
done
EOF
sed -i "s|/dev/ttyS0|/dev/${CONSOLE}|" "${RFS}/usr/local/sbin/eipgate-imagetest-report"
chmod +x "${RFS}/usr/local/sbin/eipgate-imagetest-report"
cat >"${RFS}/etc/systemd/system/eipgate-imagetest-report.service" <<'EOF'
[Unit]
Description=eipgate image test: report unit states on the console
After=eipgate-control.service eipgate-dataplane.service
[Service]
ExecStart=/usr/local/sbin/eipgate-imagetest-report
[Install]
WantedBy=multi-user.target
EOF
chroot "${RFS}" systemctl enable eipgate-imagetest-report.service >/dev/null 2>&1

# Disk: ext4 image from the directory (no partition table; the kernel and initrd are the
# image's own, booted directly by qemu).
KERNEL=$(ls "${RFS}"/boot/vmlinuz-* | sort -V | tail -1)
INITRD=$(ls "${RFS}"/boot/initrd.img-* | sort -V | tail -1)
cp "${KERNEL}" "${WORK}/vmlinuz"; cp "${INITRD}" "${WORK}/initrd.img"
IMG=${WORK}/eipgate-imgtest.ext4
rm -f "${IMG}"
mkfs.ext4 -q -L eipgate-root -d "${RFS}" "${IMG}" 3G

# --- 4. simulator namespaces + fake AWS ----------------------------------------------------------
QEMU_PID=""; FAKE_PID=""; WEB_PID=""
teardown() {
  [[ ${KEEP:-0} == 1 ]] && { log "KEEP=1: VM (pid ${QEMU_PID}) and namespaces left up"; return; }
  [[ -n ${QEMU_PID} ]] && kill "${QEMU_PID}" 2>/dev/null || true
  [[ -n ${FAKE_PID} ]] && kill "${FAKE_PID}" 2>/dev/null || true
  [[ -n ${WEB_PID} ]] && kill "${WEB_PID}" 2>/dev/null || true
  sleep 1
  for ns in lambda vpc inet mgmt; do ip netns del "${P}-${ns}" 2>/dev/null || true; done
  ip link del "${P}-tdata" 2>/dev/null || true
  ip link del "${P}-tmgmt" 2>/dev/null || true
}
trap teardown EXIT
teardown_ns_only() { for ns in lambda vpc inet mgmt; do ip netns del "${P}-${ns}" 2>/dev/null || true; done; }
teardown_ns_only
for ns in lambda vpc inet mgmt; do ip netns add "${P}-${ns}"; ip -n "${P}-${ns}" link set lo up; done
nsx() { local ns=$1; shift; ip netns exec "${P}-${ns}" "$@"; }

ip link add lam0 netns "${P}-lambda" type veth peer name vpc-lam netns "${P}-vpc"
ip link add inet0 netns "${P}-inet" type veth peer name vpc-inet netns "${P}-vpc"
nsx lambda ip addr add 10.0.128.10/20 dev lam0; nsx lambda ip link set lam0 up
nsx lambda ip route add default via 10.0.128.1
nsx inet ip addr add 198.51.100.1/24 dev inet0; nsx inet ip link set inet0 up
nsx inet ip route add default via 198.51.100.254
nsx vpc ip link add br0 type bridge; nsx vpc ip link set br0 up
nsx vpc ip addr add 10.0.0.1/24 dev br0
nsx vpc ip addr add 10.0.128.1/20 dev vpc-lam; nsx vpc ip link set vpc-lam up
nsx vpc ip addr add 198.51.100.254/24 dev vpc-inet; nsx vpc ip link set vpc-inet up
nsx vpc sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
  net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.br0.send_redirects=0
# the private route table: 0.0.0.0/0 -> the NAT's data ENI
nsx vpc ip rule add from 10.0.128.0/20 iif vpc-lam lookup 100
nsx vpc ip route add default via 10.0.0.5 dev br0 table 100
# the internet gateway: the service address <-> its EIP, 1:1
nsx vpc nft -f - <<EOF
table ip igw {
  chain pre { type nat hook prerouting priority -100; iifname "vpc-inet" ip daddr ${EIP} dnat to 10.0.0.100; }
  chain post { type nat hook postrouting priority 100; oifname "vpc-inet" ip saddr 10.0.0.100 snat to ${EIP}; }
}
EOF
nsx mgmt ip addr add 169.254.169.254/32 dev lo

# what-is-my-IP on the internet host
cat >"${WORK}/whatismyip.py" <<'EOF'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("198.51.100.1", 8080), H).serve_forever()
EOF
ip netns exec "${P}-inet" python3 "${WORK}/whatismyip.py" & WEB_PID=$!

# fake EC2 + IMDS: one instance, its two ENIs, the route table, the EIP on the service address
cat >"${WORK}/fake_state.json" <<EOF
{
  "region": "us-east-1", "account_id": "123456789012", "credentials": [],
  "vpcs": [{"id": "vpc-0a1b2c3d", "cidr": "10.0.0.0/16"}],
  "subnets": [
    {"id": "subnet-public-a", "vpc_id": "vpc-0a1b2c3d", "cidr": "10.0.0.0/24", "availability_zone": "us-east-1a"},
    {"id": "subnet-private-a1", "vpc_id": "vpc-0a1b2c3d", "cidr": "10.0.128.0/20", "availability_zone": "us-east-1a"}
  ],
  "instances": [{"id": "i-0aaaaaaaaaaaaaaa1", "availability_zone": "us-east-1a", "availability_zone_id": "use1-az1", "role": "eipgate-nat"}],
  "network_interfaces": [
    {"id": "eni-0aaaaaaaaaaaaaaa1", "subnet_id": "subnet-public-a", "mac": "${MAC_MGMT}", "instance_id": "i-0aaaaaaaaaaaaaaa1", "device_index": 0, "private_ips": ["10.0.0.15"]},
    {"id": "eni-0aaaaaaaaaaaaaad1", "subnet_id": "subnet-public-a", "mac": "${MAC_DATA}", "instance_id": "i-0aaaaaaaaaaaaaaa1", "device_index": 1, "private_ips": ["10.0.0.5", "10.0.0.100"], "source_dest_check": false}
  ],
  "addresses": [{"allocation_id": "eipalloc-0aa00000000000001", "public_ip": "${EIP}", "private_ip": "10.0.0.100", "network_interface_id": "eni-0aaaaaaaaaaaaaad1"}],
  "route_tables": [{"id": "rtb-0aa00000000000001", "vpc_id": "vpc-0a1b2c3d", "tags": {"eipgate:pair": "imgtest-0"},
    "routes": [{"destination": "0.0.0.0/0", "network_interface_id": "eni-0aaaaaaaaaaaaaad1"}]}]
}
EOF
ip netns exec "${P}-mgmt" /usr/bin/python3 "${ROOT}/tests/sim/fake_aws.py" --state "${WORK}/fake_state.json" \
  --host 169.254.169.254 --port 80 --port-file "${WORK}/fake.port" >"${WORK}/fake_aws.log" 2>&1 & FAKE_PID=$!

# --- 5. boot -------------------------------------------------------------------------------------
ip tuntap add dev "${P}-tdata" mode tap
ip tuntap add dev "${P}-tmgmt" mode tap
# Nested KVM often refuses the ARCH_CAPABILITIES MSR of "-cpu host": mask it; fall back to TCG.
ACCELS=()
if [[ ${ARCH} == arm64 ]]; then
  # Cortex-A72 (ARMv8.0 + CRC, what DPDK's armv8-a+crc build needs): "max" would add pointer
  # authentication, which TCG emulates slowly.
  ACCELS+=("-accel tcg,thread=multi -cpu cortex-a72")
  QEMU=qemu-system-aarch64
else
  [[ -w /dev/kvm ]] && ACCELS+=("-accel kvm -cpu host,-arch-capabilities" "-accel kvm -cpu host")
  ACCELS+=("-accel tcg -cpu max")
  QEMU=qemu-system-x86_64
fi
# vfio: a virtual IOMMU (q35 + intel-iommu; interrupt remapping needs the split irqchip under
# KVM, TCG ignores it) and the data NIC behind it: modern virtio only, its DMA translated by the
# IOMMU (iommu_platform) with ATS. The other devices keep bypassing it (no iommu_platform).
MACHINE="-machine pc"; APPEND_EXTRA=""; DATA_NIC_EXTRA=""
[[ ${ARCH} == arm64 ]] && MACHINE="-machine virt"
if [[ ${DATA_PATH} == vfio ]]; then
  MACHINE="-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on,device-iotlb=on"
  APPEND_EXTRA=" intel_iommu=on"
  DATA_NIC_EXTRA=",disable-legacy=on,iommu_platform=on,ats=on"
fi
for ACCEL in "${ACCELS[@]}"; do
  log "booting (${ACCEL}); console: ${WORK}/console.log"
  : >"${WORK}/console.log"
  # shellcheck disable=SC2086
  ${QEMU} ${ACCEL} ${MACHINE} -m "${VM_MEM}" -smp 2 -no-reboot \
    -kernel "${WORK}/vmlinuz" -initrd "${WORK}/initrd.img" \
    -append "root=/dev/vda rw console=${CONSOLE} net.ifnames=1${APPEND_EXTRA}" \
    -drive "file=${IMG},format=raw,if=virtio" \
    -netdev "tap,id=mgmt,ifname=${P}-tmgmt,script=no,downscript=no" -device "virtio-net-pci,netdev=mgmt,mac=${MAC_MGMT}" \
    -netdev "tap,id=data,ifname=${P}-tdata,script=no,downscript=no" -device "virtio-net-pci,netdev=data,mac=${MAC_DATA}${DATA_NIC_EXTRA}" \
    -serial "file:${WORK}/console.log" -monitor none -display none >"${WORK}/qemu.log" 2>&1 &
  QEMU_PID=$!
  # Alive and printing the kernel's first lines within 30 s, or try the next (nested KVM can
  # start and then hang without a single line of output).
  for _ in $(seq 30); do
    kill -0 "${QEMU_PID}" 2>/dev/null || break
    [[ -s ${WORK}/console.log ]] && break
    sleep 1
  done
  kill -0 "${QEMU_PID}" 2>/dev/null && [[ -s ${WORK}/console.log ]] && break
  log "qemu with ${ACCEL} failed or printed nothing in 30 s: $(head -c 300 "${WORK}/qemu.log")"
  kill "${QEMU_PID}" 2>/dev/null || true
  wait "${QEMU_PID}" 2>/dev/null || true
  QEMU_PID=""
done
[[ -n ${QEMU_PID} ]] || die "qemu did not start"
# qemu holds the taps open; move them into their namespaces.
ip link set "${P}-tdata" netns "${P}-vpc"
ip link set "${P}-tmgmt" netns "${P}-mgmt"
nsx vpc ip link set "${P}-tdata" master br0 up
nsx mgmt ip addr add 192.168.77.1/24 dev "${P}-tmgmt"; nsx mgmt ip link set "${P}-tmgmt" up

deadline=$((SECONDS + BOOT_TIMEOUT))
until grep -q "EIPGATE-TEST control role" "${WORK}/console.log"; do
  kill -0 "${QEMU_PID}" 2>/dev/null || die "the VM stopped; see ${WORK}/console.log"
  ((SECONDS < deadline)) || die "no report from the VM within ${BOOT_TIMEOUT}s; see ${WORK}/console.log"
  sleep 3
done
log "VM reports:"
grep -a "EIPGATE-TEST" "${WORK}/console.log" | grep -v flows | sed 's/^/    /'
fails=0
for u in eipgate-setup eipgate-dataplane eipgate-control; do
  grep -aq "EIPGATE-TEST unit ${u} active" "${WORK}/console.log" || { log "unit ${u} is not active"; fails=1; }
done
grep -aq "EIPGATE-TEST dataplane healthy" "${WORK}/console.log" || { log "dataplane not healthy"; fails=1; }
grep -aq "EIPGATE-TEST control role active" "${WORK}/console.log" || log "note: eipgate-control did not report role active"
# The data path is the one asked for.
if [[ ${DATA_PATH} == vfio ]]; then
  want_lines=("EIPGATE-TEST data-path vfio pci "
              "EIPGATE-TEST data-nic [0-9a-f:.]* driver vfio-pci iommu-group [0-9]"
              "EIPGATE-TEST dataplane-port port data [(][0-9a-f:.]*[)]: id [0-9]* driver net_virtio"
              "EIPGATE-TEST dataplane-eal .*Selected IOVA mode 'VA'.*"
              "EIPGATE-TEST dataplane-eal .*Using IOMMU type 1 "
              "EIPGATE-TEST exception-path eipgate0 .* 10[.]0[.]0[.]5/24 10[.]0[.]0[.]100/32 ")
else
  want_lines=("EIPGATE-TEST data-path af_xdp "
              "EIPGATE-TEST data-nic [0-9a-f:.]* driver virtio-pci "
              "EIPGATE-TEST dataplane-port port data [(]net_af_xdp0,.*[)]: id [0-9]* driver net_af_xdp")
fi
for re in "${want_lines[@]}"; do
  grep -aqE "${re}" "${WORK}/console.log" || { log "no console line matching: ${re}"; fails=1; }
done

# --- 6. the VPC router reaches the data address ---------------------------------------------------
# af_xdp: the kernel's own interface; vfio: the dataplane answers ARP, the exception path carries
# the ICMP to the kernel, the kernel resolves the router through it, and the reply goes back.
# Retried like the egress check (seen once: 3 pings within 2 s of the VM's report all went
# unanswered while the egress check then passed; the other runs answered at once; cause not found).
pinged=0
for try in $(seq 10); do
  if nsx vpc ping -c 1 -W 3 -q 10.0.0.5 >"${WORK}/ping.log" 2>&1; then pinged=${try}; break; fi
done
if ((pinged)); then
  log "PASS ping: the VPC router reached the data address 10.0.0.5 (attempt ${pinged})"
else
  log "ping 10.0.0.5 from the VPC router failed 10 times: $(tr '\n' ' ' <"${WORK}/ping.log")"; fails=1
fi

# --- 7. a Lambda egresses through the VM with the EIP ---------------------------------------------
got=""
for _ in $(seq 20); do
  got=$(nsx lambda curl -s --max-time 3 http://198.51.100.1:8080/ || true)
  [[ -n ${got} ]] && break
  sleep 2
done
if [[ ${got} == "${EIP}" ]]; then
  log "PASS egress: the Lambda namespace reached 198.51.100.1 as ${got} (the EIP) through the VM"
else
  log "egress: expected ${EIP}, got '${got}'"; fails=1
fi
((fails == 0)) || die "see ${WORK}/console.log and ${WORK}/fake_aws.log"
log "PASS (${ARCH}, ${DATA_PATH}): image boots, the three units are active, the dataplane is healthy, the data path is ${DATA_PATH}, egress uses the EIP"
