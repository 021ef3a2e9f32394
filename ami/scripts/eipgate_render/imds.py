"""IMDSv2 and sysfs: the facts about this instance (ENIs, addresses, region; kernel names and PCI
addresses of the NICs, CPUs, memory, whether vfio-pci can be used) and its eipgate:* tags."""

import os
import re
import urllib.error
import urllib.request

from .spec import DEFAULT_IMDS, TAG_PREFIX


class Imds:
    """Minimal IMDSv2 client (token, then GETs). Never goes through a proxy."""

    def __init__(self, base=DEFAULT_IMDS, timeout=2.0):
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.token = None
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _token(self):
        if self.token is None:
            req = urllib.request.Request(self.base + "/latest/api/token", method="PUT",
                                         headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"})
            with self.opener.open(req, timeout=self.timeout) as r:
                self.token = r.read().decode()
        return self.token

    def get(self, path):
        """The text at path, or None for 404."""
        req = urllib.request.Request(self.base + "/latest/" + path.lstrip("/"),
                                     headers={"X-aws-ec2-metadata-token": self._token()})
        try:
            with self.opener.open(req, timeout=self.timeout) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise


def read_tags(imds):
    listing = imds.get("meta-data/tags/instance")
    if not listing:
        return {}
    tags = {}
    for key in listing.split("\n"):
        key = key.strip()
        if key.startswith(TAG_PREFIX):
            tags[key] = (imds.get("meta-data/tags/instance/" + key) or "").strip()
    return tags


def read_facts(imds, sysfs="/sys"):
    facts = {
        "region": imds.get("meta-data/placement/region"),
        "az": imds.get("meta-data/placement/availability-zone"),
        "az_id": imds.get("meta-data/placement/availability-zone-id"),
        "instance_id": imds.get("meta-data/instance-id"),
        "instance_type": imds.get("meta-data/instance-type"),
        "enis": [],
    }
    macs = imds.get("meta-data/network/interfaces/macs/") or ""
    for entry in macs.split("\n"):
        mac = entry.strip().rstrip("/").lower()
        if not mac:
            continue
        base = "meta-data/network/interfaces/macs/%s/" % mac
        ips = (imds.get(base + "local-ipv4s") or "").split()
        facts["enis"].append({
            "mac": mac,
            "id": imds.get(base + "interface-id"),
            "device_number": int(imds.get(base + "device-number") or 0),
            "ips": ips,
            "subnet_cidr": imds.get(base + "subnet-ipv4-cidr-block"),
        })
    facts.update(local_facts(sysfs))
    return facts


PCI_RE = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")


def pci_address(device_link):
    """The PCI address behind a netdev's sysfs `device` link: the device itself (ENA) or the
    nearest PCI ancestor (virtio-net: device -> .../0000:00:04.0/virtio1). None if not PCI."""
    if not os.path.exists(device_link):
        return None
    path = os.path.realpath(device_link)
    while path and path != "/":
        if PCI_RE.fullmatch(os.path.basename(path)):
            return os.path.basename(path)
        path = os.path.dirname(path)
    return None


def local_facts(sysfs="/sys"):
    """Kernel names and PCI addresses by MAC, CPU count, memory."""
    nics = {}
    net = os.path.join(sysfs, "class/net")
    if os.path.isdir(net):
        for name in os.listdir(net):
            try:
                with open(os.path.join(net, name, "address")) as f:
                    mac = f.read().strip().lower()
            except OSError:
                continue
            nics[mac] = {"ifname": name, "pci": pci_address(os.path.join(net, name, "device"))}
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {"nics": nics, "cpus": os.cpu_count() or 1, "mem_mib": mem_kib // 1024,
            "vfio_ok": vfio_usable(sysfs)}


def vfio_usable(sysfs="/sys"):
    """vfio-pci can drive the data ENI: the instance has an IOMMU, or the kernel has vfio's
    no-IOMMU mode (CONFIG_VFIO_NOIOMMU; Debian 12's stock kernel does not)."""
    groups = os.path.join(sysfs, "kernel/iommu_groups")
    if os.path.isdir(groups) and os.listdir(groups):
        return True
    if os.path.exists(os.path.join(sysfs, "module/vfio/parameters/enable_unsafe_noiommu_mode")):
        return True
    try:
        with open("/boot/config-" + os.uname().release) as f:
            return "CONFIG_VFIO_NOIOMMU=y" in f.read()
    except OSError:
        return False
