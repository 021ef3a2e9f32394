"""Rendering (pure): (merged spec, facts) -> the YAML config and the environment for
eipgate-setup. The YAML is written by PyYAML (python3-yaml), read back by yaml-cpp."""

import ipaddress

import yaml

from . import grammar
from .spec import DEFAULT_PORT, ConfigError
from .validation import _count, allocation_ids, service_ip_limit_error, validate


def pick_data_eni(spec, facts, data_path):
    enis = facts.get("enis", [])
    if spec.get("data_mac"):
        want = spec["data_mac"].lower()
        for e in enis:
            if e["mac"] == want:
                return e
        raise ConfigError(["data_mac: %s is not one of this instance's ENIs (%s)"
                           % (want, ", ".join(e["mac"] for e in enis))])
    if data_path == "af_xdp" and len(enis) == 1:
        return enis[0]  # single-ENI AF_XDP: the primary ENI is the data ENI
    for e in enis:
        if e["device_number"] == 1:
            return e
    raise ConfigError(["no data ENI: attach one at device index 1 or set data_mac "
                       "(ENIs: %s)" % ", ".join("%s#%d" % (e["mac"], e["device_number"]) for e in enis)])


def render(spec, facts, secret_path="/etc/eipgate/ha.key"):
    """Pure: (merged spec, facts) -> (config dict, setup env dict). Raises ConfigError."""
    validate(spec)
    errors = []
    data_path = spec.get("data_path", "auto")
    if data_path == "auto":
        data_path = "vfio" if facts.get("vfio_ok") else "af_xdp"
    eni = pick_data_eni(spec, facts, data_path)
    subnet = ipaddress.IPv4Network(eni["subnet_cidr"])
    service_ips = list(spec["service_ips"])
    primary = next((ip for ip in eni["ips"] if ip not in service_ips), None)
    if primary is None:
        errors.append("the data ENI %s has no primary private IP besides the service IPs" % eni["mac"])
    for service_ip in service_ips:
        if ipaddress.IPv4Address(service_ip) not in subnet:
            errors.append("service_ips: %s is not in the data ENI's subnet %s" % (service_ip, subnet))
    too_many = service_ip_limit_error(facts.get("instance_type"), len(service_ips))
    if too_many:
        errors.append(too_many)
    rules = spec.get("fallback_for") or []
    rescued = [p for r in rules for p in r.get("inside_prefixes", [])]
    for p in spec["inside_prefixes"] + rescued:
        if primary and ipaddress.IPv4Address(primary) in ipaddress.IPv4Network(p):
            errors.append("inside_prefixes: %s holds the NAT's own address %s (list the private "
                          "subnets, not the VPC CIDR)" % (p, primary))
    for i, r in enumerate(rules):
        if facts.get("instance_id") in r["instances"]:
            errors.append("fallback_for[%d].instances: %s is this instance: a pair does not rescue "
                          "itself (list the other AZ's pair)" % (i, facts["instance_id"]))
    nic = facts.get("nics", {}).get(eni["mac"])
    if nic is None:
        errors.append("the data ENI %s has no kernel network device (sysfs)" % eni["mac"])
    elif data_path == "vfio" and not nic.get("pci"):
        errors.append("the data ENI %s (%s) is not a PCI device: use data_path af_xdp"
                      % (eni["mac"], nic["ifname"]))
    if errors:
        raise ConfigError(errors)

    cpus = max(1, int(facts.get("cpus", 1)))
    workers = max(1, cpus - 1) if spec.get("workers", "auto") == "auto" else int(spec["workers"])
    mem_mib = int(facts.get("mem_mib", 0))
    if "max_flows" in spec:
        max_flows = _count(spec["max_flows"])
    else:  # 1M a worker, fewer on small instances: about a quarter of RAM for flow tables
        max_flows = 1048576
        while max_flows > 65536 and max_flows * workers * 128 > mem_mib * 1048576 // 4:
            max_flows //= 2
    # Hugepages (2 MiB): flow tables (~96 B a flow, 128 B with slack) + mbuf pools (~ 64 MiB a
    # queue) + 128 MiB for DPDK itself.
    need_mib = max_flows * workers * 128 // 1048576 + 64 * (workers + 1) + 128
    hugepages = int(spec.get("hugepages", (need_mib + 1) // 2))
    mtu = int(spec.get("mtu", 1500))

    if data_path == "vfio":
        port = {"name": "data", "device": nic["pci"], "mtu": mtu}
    else:  # single-ENI AF_XDP: the kernel keeps the interface and its addresses
        port = {"name": "data",
                "device": "net_af_xdp0,iface=%s,start_queue=0,queue_count=%d" % (nic["ifname"], workers),
                "mtu": mtu, "xdp_steering": True,
                "xdp_program": "/usr/lib/eipgate/xdp_steer.bpf.o"}
    cfg = {
        "mode": "one-armed",
        "ports": [port],
        "interface": {"address": "%s/%d" % (primary, subnet.prefixlen)},
        "next_hop": {"gateway": str(next(subnet.hosts()))},
        "nat": {
            "inside_prefixes": list(spec["inside_prefixes"]) + rescued,
            "outside_addresses": service_ips,
            "max_flows": max_flows,
            "tcp_mss_clamp": int(spec.get("tcp_mss_clamp", 1460)),
        },
        "workers": {"lcores": list(range(1, workers + 1)), "main_lcore": 0},
        "eal": {"extra_args": "--in-memory"},
        "exception_path": {"enabled": data_path == "vfio", "tap_name": "eipgate0"},
        "admin": {"socket": "/run/eipgate/dataplane.sock"},
        "logging": {"level": spec.get("log_level", "info"), "json": grammar.parse_bool(spec.get("log_json", True))},
        "polling": {"adaptive": True},
    }
    if spec.get("policy"):
        cfg["policy"] = spec["policy"]

    route_tables = {}
    if spec.get("route_table_ids"):
        route_tables["ids"] = list(spec["route_table_ids"])
    if spec.get("route_table_tags"):
        route_tables["tags"] = dict(spec["route_table_tags"])
    if not route_tables:
        route_tables["tags"] = {"eipgate:pair": spec["pair"]}
    aws = {"route_tables": route_tables,
           "service_address": {"mode": spec.get("service_mode", "secondary-ip"),
                               "private_ips": list(service_ips)}}
    if facts.get("region"):
        aws["region"] = facts["region"]
    if allocation_ids(spec):  # paired with private_ips by index
        aws["service_address"]["allocation_ids"] = list(allocation_ids(spec))
    if spec.get("endpoints"):
        aws["endpoints"] = dict(spec["endpoints"])
    if spec.get("management") == "Ipv6":
        # No public IPv4 on the instance: EC2 over IPv6 to ec2.<region>.api.aws (the egress-only
        # internet gateway); IMDS stays at its IPv4 link-local address (no gateway involved).
        aws["ip_family"] = "ipv6"
        aws.setdefault("endpoints", {})["dual_stack"] = True
    cfg["aws"] = aws

    # HA runs over the primary (management) ENI: it stays with the kernel whatever the data path.
    ha = {"priority": int(spec.get("priority", 100)),
          "peers": [{"address": spec["peer_address"], "port": DEFAULT_PORT}],
          "port": DEFAULT_PORT,
          "secret_file": spec.get("ha_secret_file", secret_path),
          "data_mac": eni["mac"],
          "control_socket": "/run/eipgate/control.sock"}
    for k in ("preempt", "heartbeat_interval", "miss_count", "hold_down"):
        if k in spec:
            ha[k] = spec[k]
    if spec.get("peer_eni"):
        ha["peer_eni"] = spec["peer_eni"]
    if spec.get("probe_targets"):
        ha["probes"] = {"targets": list(spec["probe_targets"])}
    if rules:  # the schema of control/ha/config.cc (fallback_rules); defaults are control's
        ha["fallback_for"] = [{k: (list(r[k]) if isinstance(r[k], list) else r[k])
                               for k in ("route_tables", "instances", "target", "after", "check_interval")
                               if k in r} for r in rules]
    cfg["ha"] = ha
    cloudwatch = spec.get("cloudwatch", "off")
    if cloudwatch != "off":  # control/daemon/README.md, "CloudWatch metrics"
        cw = {"enabled": True, "metrics": cloudwatch, "pair_name": spec["pair"]}
        if facts.get("az"):
            cw["availability_zone"] = facts["az"]
        cfg["cloudwatch"] = cw
    group = spec.get("translation_log_group", "")
    if group:  # control/daemon/README.md, "CloudWatch Logs": the dataplane writes, control ships
        cfg["translation_log"] = {"enabled": True}
        cfg["cloudwatch_logs"] = {"enabled": True, "log_group": group}
    _merge(cfg, spec.get("overrides", {}))

    env = {"EIPGATE_DATA_PATH": data_path,
           "EIPGATE_DATA_IFACE": nic["ifname"],
           "EIPGATE_DATA_PCI": nic.get("pci") or "",
           "EIPGATE_DATA_MAC": eni["mac"],
           "EIPGATE_DATA_MTU": str(mtu),
           "EIPGATE_HUGEPAGES": str(hugepages),
           "EIPGATE_WORKERS": str(workers)}
    return cfg, env


def _merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def to_yaml(value):
    """Block-style YAML in the dict's own order, by PyYAML: strings that would read as another
    type (yes, 1.0, null) are quoted, so yaml-cpp reads back exactly the values written."""
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=False, allow_unicode=False,
                          width=1 << 16).rstrip("\n")


HEADER = ("# Rendered by eipgate-render-config from EC2 user data / instance tags at boot.\n"
          "# Do not edit: the next boot overwrites it. To manage this file by hand set\n"
          "# EIPGATE_CONFIG_SOURCE=file in /etc/default/eipgate. Schema: dataplane/config/README.md.\n")
