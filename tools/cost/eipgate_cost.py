"""Monthly cost of egress NAT on AWS: NAT Gateway against eipgate HA pairs, fck-nat and alterNAT.

The model (formulas in tools/cost/README.md) is pure functions over a prices file and a few
measured figures; the CLI (`eipgate-cost`) prints one case, the TB x AZ grid, or a series for plots.
Standard library only: runs with Debian's /usr/bin/python3.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import sys
from dataclasses import dataclass, field

PROFILES = ("nat-gateway", "eipgate", "fck-nat", "alternat")
PROFILE_TITLES = {"nat-gateway": "NAT Gateway", "eipgate": "eipgate", "fck-nat": "fck-nat",
                  "alternat": "alterNAT"}
GRID_TB = (0.1, 1.0, 10.0, 100.0)
GRID_AZS = (2, 3)
GB_PER_TB = 1000.0       # AWS bills per GB; 1 TB = 1000 GB here
BYTES_PER_GB = 1e9
SECONDS_PER_MONTH = 730 * 3600.0  # AWS's 730-hour month

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))


# --- inputs --------------------------------------------------------------------------------------

def load_prices(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        prices = json.load(f)
    for key in ("hours_per_month", "nat_gateway", "public_ipv4", "ebs_root", "data_transfer_out",
                "instances", "profiles"):
        if key not in prices:
            raise ValueError(f"{path}: missing '{key}'")
    return prices


def default_prices_path(region: str) -> str:
    return os.path.join(HERE, f"prices-{region}.json")


@dataclass
class Measured:
    """Per-core packet rates (packets/s) of the NAT engines, with where they come from."""
    eipgate_pps_per_core: float | None = None
    kernel_pps_per_core: float | None = None
    source: str = "none"


_SAMPLE_RE = re.compile(r"^(\S+) (\d+) (\S+) (\d+) (\d+) ")


def parse_nat_compare(path: str) -> dict[str, float]:
    """Median over rounds of each mode's peak received pps, from nat_compare.sh's raw samples.

    With NAT core busy at ~100% at the peak (eipgate modes), the peak is that core's capacity; for
    the kernel modes the generator is the limit, so their figure is a lower bound."""
    peaks: dict[tuple[str, str], float] = {}
    in_block = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                in_block = not in_block
                continue
            m = _SAMPLE_RE.match(line) if in_block else None
            if m:
                mode, rnd, received = m.group(1), m.group(2), float(m.group(4))
                peaks[(mode, rnd)] = max(peaks.get((mode, rnd), 0.0), received)
    by_mode: dict[str, list[float]] = {}
    for (mode, _), v in peaks.items():
        by_mode.setdefault(mode, []).append(v)
    return {mode: statistics.median(v) for mode, v in by_mode.items()}


# bench/nat_xdp.sh's workload whose peaks size instances: the one nearest the model's default
# connections per AZ.
NAT_XDP_FLOWS = 100_000


def parse_nat_xdp(path: str) -> dict[tuple[int, str], float]:
    """{(flows, mode): median over rounds of the peak forwarded pps} from nat_xdp.sh's CSV, read by
    bench/nat_xdp_report.py (the one reader of that file)."""
    sys.path.insert(0, os.path.join(REPO_ROOT, "bench"))
    try:
        import nat_xdp_report  # noqa: E402 (bench/, standard library only)
    finally:
        sys.path.pop(0)
    return nat_xdp_report.peaks(path)


def latest_nat_compare(root: str = REPO_ROOT) -> str | None:
    """The newest forwarding result under bench/results (by the date in its path): nat_xdp.sh's
    CSV, or an older nat_compare.sh Markdown file; nat_xdp wins on the same date. Those of QUICK
    reports are left out."""
    paths = glob.glob(os.path.join(root, "bench/results/nat_compare-*.md"))
    paths += glob.glob(os.path.join(root, "bench/results/report-*/nat_compare.md"))
    paths += glob.glob(os.path.join(root, "bench/results/nat_xdp-*.csv"))
    paths += glob.glob(os.path.join(root, "bench/results/report-*/nat_xdp.csv"))
    dated = []
    for p in paths:
        m = re.search(r"(\d{4}-\d{2}-\d{2})", p)
        if m and not _quick_report(p):
            dated.append((m.group(1), p.endswith(".csv"), "report-" in p, p))
    return max(dated)[3] if dated else None


def _quick_report(path: str) -> bool:
    """A QUICK report's nat_compare (one short round) is too noisy to size instances on."""
    try:
        with open(os.path.join(os.path.dirname(path), "machine.json"), encoding="utf-8") as f:
            return bool(json.load(f).get("quick"))
    except (OSError, ValueError):
        return False


def measured_from_nat_compare(path: str) -> Measured:
    """Per-core rates from a forwarding result: nat_xdp.sh's CSV (the workload nearest
    NAT_XDP_FLOWS; eipgate's fast path, else af_xdp, else af_packet; iptables, else nftables) or
    an older nat_compare.sh file."""
    source = os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT) else path
    if path.endswith(".csv"):
        peaks = parse_nat_xdp(path)
        if not peaks:
            return Measured(source=source)
        flows = min({f for f, _ in peaks}, key=lambda f: (abs(f - NAT_XDP_FLOWS), f))
        modes = {m: v for (f, m), v in peaks.items() if f == flows}
        source = f"{source} ({flows} flows)"
    else:
        modes = parse_nat_compare(path)
    eip = modes.get("eipgate-fastpath") or modes.get("eipgate-af_xdp") or modes.get("eipgate-af_packet")
    kern = modes.get("iptables") or modes.get("nftables")
    return Measured(eip, kern, source)


# --- model ---------------------------------------------------------------------------------------

MANAGEMENT_ACCESS = ("PublicIp", "VpcEndpoints", "Ipv6")
CLOUDWATCH_SETS = ("none", "default", "full")

# Every billed line, in the order the itemised tables print them: (key, label).
LINES = (
    ("nat_gateway_hours", "NAT Gateway hours"),
    ("nat_gateway_processing", "NAT Gateway data processing"),
    ("public_ipv4_nat", "public IPv4: NAT / service addresses"),
    ("public_ipv4_management", "public IPv4: management ENIs"),
    ("instances", "instances (on demand)"),
    ("ebs_root", "EBS root volumes (gp3)"),
    ("vpc_endpoints_hours", "interface VPC endpoints (per AZ-hour)"),
    ("vpc_endpoints_data", "interface VPC endpoints (per GB)"),
    ("secrets_manager", "Secrets Manager (HA key)"),
    ("detailed_monitoring", "EC2 detailed monitoring"),
    ("recovery_alarms", "EC2 auto-recovery alarms"),
    ("cloudwatch_metrics", "CloudWatch custom metrics"),
    ("cloudwatch_requests", "CloudWatch PutMetricData requests"),
    ("cloudwatch_alarms", "CloudWatch alarms"),
    ("cloudwatch_logs", "CloudWatch Logs (translation logs)"),
    ("cross_az", "cross-AZ data (fallback)"),
    ("lambda", "Lambda (connectivity tester)"),
)
LINE_LABELS = dict(LINES)


@dataclass
class Workload:
    tb_per_month: float            # bytes processed by the NAT, both directions, all AZs
    azs: int
    peak_to_average: float = 4.0
    packet_bytes: float = 800.0
    out_share: float = 0.5         # share of the processed bytes that leave AWS (data transfer out)
    allow_burst: bool = False      # size peaks on burst bandwidth instead of baseline
    connections_per_az: float = 100_000  # concurrent tracked connections an AZ's NAT must hold

    def avg_bps_per_az(self) -> float:
        return self.tb_per_month * GB_PER_TB * BYTES_PER_GB * 8 / SECONDS_PER_MONTH / self.azs

    def peak_bps_per_az(self) -> float:
        return self.avg_bps_per_az() * self.peak_to_average


@dataclass
class Deployment:
    """How eipgate is deployed (the other options are costed as their templates deploy them)."""
    management_access: str = "Ipv6"       # ami/cloudformation/eipgate-pair.yaml ManagementAccess
    service_eips: int | None = None       # per pair; None: the profile's (1 today)
    cloudwatch: str = "none"              # none | default | full custom metric set (+ alarms)
    logs_gb_per_month: float = 0.0        # translation logs shipped to CloudWatch Logs, all AZs
    cross_az_share: float = 0.0           # share of the processed bytes carried across AZs
    ssm_endpoints: bool = False           # VpcEndpoints: also ssm, ssmmessages, ec2messages
    detailed_monitoring: bool | None = None  # None: as the template (off)

    def label(self) -> str:
        s = self.management_access
        if self.cloudwatch != "none":
            s += f" + {self.cloudwatch} CloudWatch metrics"
        return s


@dataclass
class Sizing:
    instance: str
    fits: bool
    binding: str                   # the constraint that ruled out the next smaller instance
    peak_bps: float
    avg_bps: float
    peak_pps: float
    avg_pps: float
    cores_needed_peak: float | None


@dataclass
class Line:
    key: str
    quantity: float
    unit: str
    usd: float


@dataclass
class Cost:
    profile: str
    monthly: float                 # per month, all AZs, data transfer out excluded
    per_az: float
    items: dict = field(default_factory=dict)   # line key -> monthly USD, all AZs
    sizing: Sizing | None = None
    lines: list = field(default_factory=list)   # Line, in LINES order
    deployment: str = ""


def worker_cores(inst: dict) -> int:
    # One lcore runs the main loop (ARP, admin, stats); the rest are workers. A one-core
    # instance shares its core between both.
    return max(1, int(inst["cores"]) - 1)


def memory_need_mib(memory: dict | None, inst: dict, connections: float) -> float:
    """RAM the NAT needs on this instance: OS + fixed + buffers per queue + per connection."""
    if not memory:
        return 0.0
    return (memory.get("os_mib", 0) + memory.get("fixed_mib", 0)
            + memory.get("per_queue_mib", 0) * (worker_cores(inst) + 1)
            + connections * memory.get("per_connection_bytes", 0) / 2**20)


def internet_gbps(inst: dict, rate_gbps: float, egress: dict | None) -> float:
    """What the instance may send to an internet gateway: 50% of its bandwidth from 32 vCPUs,
    else up to 5 Gbps (never more than its own bandwidth)."""
    if not egress:
        return rate_gbps
    if inst["vcpus"] >= 32:
        return rate_gbps * egress["share_from_32_vcpus"]
    return min(rate_gbps, egress["gbps_below_32_vcpus"])


def instance_fits(inst: dict, w: Workload, pps_per_core: float | None,
                  memory: dict | None = None, egress: dict | None = None) -> tuple[bool, str]:
    peak_bps, avg_bps = w.peak_bps_per_az(), w.avg_bps_per_az()
    if memory_need_mib(memory, inst, w.connections_per_az) > inst["memory_gib"] * 1024:
        return False, "memory"
    if w.allow_burst:
        if avg_bps > inst["baseline_gbps"] * 1e9:
            return False, "baseline bandwidth (average)"
        if peak_bps > inst["burst_gbps"] * 1e9:
            return False, "burst bandwidth (peak)"
        if w.out_share * peak_bps > internet_gbps(inst, inst["burst_gbps"], egress) * 1e9:
            return False, "internet gateway bandwidth (peak)"
    else:
        if peak_bps > inst["baseline_gbps"] * 1e9:
            return False, "baseline bandwidth (peak)"
        if w.out_share * peak_bps > internet_gbps(inst, inst["baseline_gbps"], egress) * 1e9:
            return False, "internet gateway bandwidth (peak)"
    if pps_per_core:
        peak_pps = peak_bps / 8 / w.packet_bytes
        avg_pps = avg_bps / 8 / w.packet_bytes
        if peak_pps > pps_per_core * worker_cores(inst):
            return False, "packet rate per core (peak)"
        # A burstable instance must stay under its CPU baseline on average or buy CPU credits.
        if avg_pps > pps_per_core * inst["cpu_baseline"] * inst["cores"]:
            return False, "CPU baseline (average)"
    return True, ""


def size_instance(prices: dict, w: Workload, pps_per_core: float | None,
                  forced: str | None = None, memory: dict | None = None) -> Sizing:
    """The cheapest instance that carries the AZ's peak (bandwidth, packets/s, memory)."""
    insts = prices["instances"]
    egress = prices.get("internet_egress")
    peak_bps, avg_bps = w.peak_bps_per_az(), w.avg_bps_per_az()
    peak_pps, avg_pps = peak_bps / 8 / w.packet_bytes, avg_bps / 8 / w.packet_bytes
    cores = peak_pps / pps_per_core if pps_per_core else None
    if forced:
        if forced not in insts:
            raise ValueError(f"unknown instance type {forced} (not in the prices file)")
        ok, why = instance_fits(insts[forced], w, pps_per_core, memory, egress)
        return Sizing(forced, ok, why, peak_bps, avg_bps, peak_pps, avg_pps, cores)
    binding = ""
    for name in sorted(insts, key=lambda n: (insts[n]["hourly"], n)):
        ok, why = instance_fits(insts[name], w, pps_per_core, memory, egress)
        if ok:
            return Sizing(name, True, binding or "none", peak_bps, avg_bps, peak_pps, avg_pps, cores)
        binding = why
    biggest = max(insts, key=lambda n: insts[n]["hourly"])
    return Sizing(biggest, False, binding, peak_bps, avg_bps, peak_pps, avg_pps, cores)


def data_transfer_out(prices: dict, tb_out: float) -> float:
    """Tiered EC2 data transfer out to the internet; the same for every option."""
    cost, done = 0.0, 0.0
    for tier in prices["data_transfer_out"]["tiers"]:
        top = tier["up_to_tb"] if tier["up_to_tb"] is not None else float("inf")
        amount = max(0.0, min(tb_out, top) - done)
        cost += amount * GB_PER_TB * tier["per_gb"]
        done = top
        if tb_out <= top:
            break
    return cost


def cloudwatch_metric_names(p: dict, which: str) -> list[str]:
    """The custom metrics an eipgate pair publishes with this set (one per name per pair)."""
    cw = p.get("cloudwatch", {})
    if which == "none":
        return []
    if which == "default":
        return list(cw.get("default_metrics", []))
    if which == "full":
        names = list(cw.get("nat_gateway_metrics", [])) + list(cw.get("eipgate_metrics", []))
        return names + [n for n in cw.get("ha_metrics", []) if n not in names]
    raise ValueError(f"unknown CloudWatch metric set {which!r} (none, default, full)")


def management_endpoints(p: dict, d: Deployment) -> list[str]:
    """The interface VPC endpoints eipgate needs in each AZ with this deployment."""
    m = management_option(p, d.management_access)
    eps = list(m.get("endpoints", []))
    if eps:
        if d.cloudwatch != "none":
            eps += m.get("endpoints_with_metrics", [])
        if d.logs_gb_per_month > 0:
            eps += m.get("endpoints_with_logs", [])
        if d.ssm_endpoints:
            eps += m.get("endpoints_with_ssm", [])
    return eps


def management_option(p: dict, access: str) -> dict:
    opts = p.get("management", {})
    if access not in opts:
        raise ValueError(f"unknown ManagementAccess {access!r} (one of {', '.join(opts) or 'none'})")
    return opts[access]


def profile_cost(prices: dict, profile: str, w: Workload, measured: Measured,
                 instance: str | None = None, deployment: Deployment | None = None) -> Cost:
    """Every billed line of one option per month (formulas: tools/cost/README.md)."""
    d = deployment or Deployment()
    h = prices["hours_per_month"]
    p = prices["profiles"][profile]
    ipv4_month = prices["public_ipv4"]["hourly"] * h
    lines: list[Line] = []

    def add(key: str, quantity: float, unit: str, usd: float) -> None:
        if quantity:
            lines.append(Line(key, quantity, unit, usd))

    n_gw = p.get("nat_gateways_per_az", 0) * w.azs
    add("nat_gateway_hours", n_gw, "gateways", n_gw * prices["nat_gateway"]["hourly"] * h)
    if not p.get("nat_gateway_idle", False):
        gb = w.tb_per_month * GB_PER_TB
        add("nat_gateway_processing", gb if n_gw else 0, "GB",
            gb * prices["nat_gateway"]["per_gb_processed"])

    eipgate = profile == "eipgate" or "pairs_per_az" in p
    if eipgate:
        pairs = p.get("pairs_per_az", 1) * w.azs
        n_inst = pairs * p.get("instances_per_pair", 2)
        svc = d.service_eips if d.service_eips is not None else p.get("service_eips_per_pair", 1)
        if svc < 1:
            raise ValueError("a pair needs at least one service EIP")
        add("public_ipv4_nat", svc * pairs, "addresses", svc * pairs * ipv4_month)
        m = management_option(p, d.management_access) if "management" in p else {}
        mgmt = m.get("public_ipv4_per_instance", 0) * n_inst
        add("public_ipv4_management", mgmt, "addresses", mgmt * ipv4_month)
    else:
        pairs = 0
        n_inst = p.get("instances_per_az", 0) * w.azs
        n_ip = p.get("public_ipv4_nat_per_az", p.get("public_ipv4_per_az", 0)) * w.azs
        add("public_ipv4_nat", n_ip, "addresses", n_ip * ipv4_month)

    sizing = None
    if n_inst:
        pps = (measured.eipgate_pps_per_core if p.get("nat_engine") == "eipgate"
               else measured.kernel_pps_per_core)
        sizing = size_instance(prices, w, pps, instance, p.get("memory"))
        inst = prices["instances"][sizing.instance]
        add("instances", n_inst, sizing.instance, n_inst * inst["hourly"] * h)
        ebs_gb = p.get("ebs_root_gb", prices["ebs_root"]["gb_per_instance"])
        add("ebs_root", n_inst * ebs_gb, "GB", n_inst * ebs_gb * prices["ebs_root"]["per_gb_month"])

    ep = prices.get("vpc_interface_endpoint")
    if eipgate and "management" in p:
        eps = management_endpoints(p, d)
        if eps:
            n_ep = len(eps) * w.azs
            add("vpc_endpoints_hours", n_ep, "endpoint-AZs (" + ", ".join(eps) + ")",
                n_ep * ep["hourly_per_az"] * h)
            gb = n_inst * p.get("management_gb_per_instance_month", 0) + d.logs_gb_per_month
            add("vpc_endpoints_data", gb, "GB", gb * ep["per_gb"])
    elif p.get("endpoints_per_az"):
        eps = p["endpoints_per_az"]
        n_ep = len(eps) * w.azs
        add("vpc_endpoints_hours", n_ep, "endpoint-AZs (" + ", ".join(eps) + ")",
            n_ep * ep["hourly_per_az"] * h)
        gb = p.get("endpoint_gb_per_az_month", 0) * w.azs
        add("vpc_endpoints_data", gb, "GB", gb * ep["per_gb"])

    n = p.get("secrets_per_pair", 0) * pairs
    if n:
        add("secrets_manager", n, "secrets", n * prices["secrets_manager"]["secret_month"])

    cw = prices.get("cloudwatch", {})
    dm = p.get("detailed_monitoring", False)
    if eipgate and d.detailed_monitoring is not None:
        dm = d.detailed_monitoring
    if dm and n_inst:
        n = n_inst * cw["detailed_monitoring_metrics_per_instance"]
        add("detailed_monitoring", n, "metrics", n * cw["custom_metric_month"])
    if pairs:
        n = p.get("recovery_alarms_per_pair", 0) * pairs
        add("recovery_alarms", n, "alarms", n * cw.get("alarm_standard_month", 0))
        names = cloudwatch_metric_names(p, d.cloudwatch)
        if names:
            c = p["cloudwatch"]
            n = len(names) * pairs
            add("cloudwatch_metrics", n, "metrics", n * cw["custom_metric_month"])
            req = c["publishers_per_pair"] * pairs * h * 60 * c["put_metric_data_per_publisher_minute"]
            add("cloudwatch_requests", req, "requests", req / 1000 * cw["put_metric_data_per_1000"])
            n = c["alarms_per_pair"] * pairs
            add("cloudwatch_alarms", n, "alarms", n * cw["alarm_standard_month"])
        gb = d.logs_gb_per_month
        add("cloudwatch_logs", gb, "GB",
            gb * (cw.get("logs_ingest_per_gb", 0) + cw.get("logs_store_per_gb_month", 0)))
        # Every byte the fallback carries crosses once (client -> rescuer, or back), billed on
        # both sides of the AZ boundary.
        gb = d.cross_az_share * w.tb_per_month * GB_PER_TB
        if gb:
            add("cross_az", gb, "GB", gb * 2 * prices["cross_az"]["per_gb_each_direction"])

    lam = p.get("lambda")
    if lam:
        inv = lam["invocations_per_az_month"] * w.azs
        usd = (inv / 1e6 * prices["lambda"]["per_million_requests"]
               + inv * lam["memory_gb"] * lam["seconds"] * prices["lambda"]["per_gb_second"])
        add("lambda", inv, "invocations", usd)

    order = {k: i for i, (k, _) in enumerate(LINES)}
    lines.sort(key=lambda ln: order[ln.key])
    items = {ln.key: ln.usd for ln in lines}
    total = sum(items.values())
    return Cost(profile, total, total / w.azs, items, sizing, lines,
                d.label() if eipgate else "")


def all_costs(prices: dict, w: Workload, measured: Measured, profiles=PROFILES,
              instance: str | None = None, deployment: Deployment | None = None) -> dict[str, Cost]:
    return {p: profile_cost(prices, p, w, measured, instance if p != "nat-gateway" else None,
                            deployment)
            for p in profiles}


# The columns of the itemised tables: every ManagementAccess option of eipgate, without and with
# the default CloudWatch metric set, beside the other three options.
VARIANTS = (
    ("nat-gateway", "NAT Gateway", "nat-gateway", None, None),
    ("eipgate", "eipgate PublicIp", "eipgate", "PublicIp", "none"),
    ("eipgate+cw", "eipgate PublicIp + CW", "eipgate", "PublicIp", "default"),
    ("eipgate-vpce", "eipgate VpcEndpoints", "eipgate", "VpcEndpoints", "none"),
    ("eipgate-vpce+cw", "eipgate VpcEndpoints + CW", "eipgate", "VpcEndpoints", "default"),
    ("eipgate-ipv6", "eipgate Ipv6 (CloudWatchMetrics off)", "eipgate", "Ipv6", "none"),
    ("eipgate-ipv6+cw", "eipgate Ipv6 + CW (template default)", "eipgate", "Ipv6", "default"),
    ("fck-nat", "fck-nat", "fck-nat", None, None),
    ("alternat", "alterNAT", "alternat", None, None),
)


def variant_costs(prices: dict, w: Workload, measured: Measured,
                  base: Deployment | None = None) -> dict[str, Cost]:
    """Every column of VARIANTS; `base` carries the options shared by the eipgate columns."""
    base = base or Deployment()
    out = {}
    for key, _, profile, access, cw in VARIANTS:
        d = base
        if access:
            d = Deployment(access, base.service_eips, cw, base.logs_gb_per_month,
                           base.cross_az_share, base.ssm_endpoints, base.detailed_monitoring)
        out[key] = profile_cost(prices, profile, w, measured, None, d)
    return out


def break_even_tb(prices: dict, azs: int, a: str, b: str, measured: Measured,
                  lo: float = 0.001, hi: float = 10000.0, steps: int = 400, **wkw) -> float | None:
    """Smallest TB/month (log grid) from which profile a is cheaper than b; None if never,
    `lo` if always."""
    for i in range(steps + 1):
        tb = lo * (hi / lo) ** (i / steps)
        w = Workload(tb, azs, **wkw)
        if profile_cost(prices, a, w, measured).monthly < profile_cost(prices, b, w, measured).monthly:
            return tb
    return None


def cheaper_ranges(prices: dict, azs: int, a: str, b: str, measured: Measured,
                   lo: float = 0.01, hi: float = 1000.0, steps: int = 600,
                   **wkw) -> list[tuple[float, float]]:
    """The TB/month intervals (on a log grid from lo to hi) in which profile a costs less than b."""
    ranges: list[tuple[float, float]] = []
    start = None
    prev = lo
    for i in range(steps + 1):
        tb = lo * (hi / lo) ** (i / steps)
        w = Workload(tb, azs, **wkw)
        cheaper = (profile_cost(prices, a, w, measured).monthly
                   < profile_cost(prices, b, w, measured).monthly)
        if cheaper and start is None:
            start = tb
        elif not cheaper and start is not None:
            ranges.append((start, prev))
            start = None
        prev = tb
    if start is not None:
        ranges.append((start, hi))
    return ranges


def describe_ranges(ranges: list[tuple[float, float]], lo: float = 0.01, hi: float = 1000.0) -> str:
    if not ranges:
        return f"at no volume from {lo:g} to {hi:g} TB/month"
    if ranges == [(lo, hi)]:
        return f"at every volume from {lo:g} to {hi:g} TB/month"
    return "from " + ", and from ".join(f"{a:.3g} to {b:.3g} TB/month" for a, b in ranges)


# --- output --------------------------------------------------------------------------------------

def money(v: float) -> str:
    return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}"


def fmt_qty(q: float) -> str:
    return f"{q:,.0f}" if q >= 10 or q == int(q) else f"{q:.3g}"


def cost_json(c: Cost) -> dict:
    d = {"profile": c.profile, "monthly_usd": round(c.monthly, 2), "per_az_usd": round(c.per_az, 2),
         "items_usd": {k: round(v, 2) for k, v in c.items.items()},
         "lines": [{"item": ln.key, "label": LINE_LABELS[ln.key], "quantity": round(ln.quantity, 4),
                    "unit": ln.unit, "usd": round(ln.usd, 4)} for ln in c.lines]}
    if c.deployment:
        d["deployment"] = c.deployment
    if c.sizing:
        s = c.sizing
        d["instance"] = {"type": s.instance, "fits": s.fits, "binding_constraint": s.binding,
                         "peak_mbps_per_az": round(s.peak_bps / 1e6, 3),
                         "avg_mbps_per_az": round(s.avg_bps / 1e6, 3),
                         "peak_kpps_per_az": round(s.peak_pps / 1e3, 3),
                         "cores_needed_at_peak": (round(s.cores_needed_peak, 4)
                                                  if s.cores_needed_peak is not None else None)}
    return d


def grid(prices: dict, measured: Measured, tbs=GRID_TB, azss=GRID_AZS,
         deployment: Deployment | None = None, **wkw) -> list[dict]:
    """Every (TB, AZs) case: `costs` per option (eipgate as `deployment`), `variants` per column
    of the itemised tables."""
    rows = []
    for azs in azss:
        for tb in tbs:
            w = Workload(tb, azs, **wkw)
            costs = all_costs(prices, w, measured, deployment=deployment)
            variants = variant_costs(prices, w, measured, deployment)
            rows.append({"tb_per_month": tb, "azs": azs,
                         "costs": {p: cost_json(c) for p, c in costs.items()},
                         "variants": {k: cost_json(c) for k, c in variants.items()},
                         "data_transfer_out_usd": round(data_transfer_out(prices, tb * w.out_share), 2)})
    return rows


def grid_markdown(rows: list[dict]) -> str:
    """Totals per (TB, AZs): every option, and eipgate with each ManagementAccess option when the
    rows have them."""
    with_variants = all("variants" in r for r in rows)
    cols = ([("nat-gateway", "NAT Gateway"), ("eipgate", "eipgate PublicIp"),
             ("eipgate-vpce", "eipgate VpcEndpoints"), ("eipgate-ipv6", "eipgate Ipv6, no CW"),
             ("fck-nat", "fck-nat (1/AZ, no HA)"), ("alternat", "alterNAT (1/AZ + idle NAT GW)")]
            if with_variants else
            [("nat-gateway", "NAT Gateway"), ("eipgate", "eipgate (HA pair/AZ)"),
             ("fck-nat", "fck-nat (1/AZ, no HA)"), ("alternat", "alterNAT (1/AZ + idle NAT GW)")])
    out = ["| TB/month | AZs | " + " | ".join(t for _, t in cols)
           + (" | NAT Gateway ÷ eipgate (PublicIp / VpcEndpoints / Ipv6) |" if with_variants
              else " | NAT Gateway ÷ eipgate |") + " data transfer out (all options) |",
           "|---:|---:|" + "---:|" * len(cols) + "---:|---:|"]
    for r in rows:
        src = r["variants"] if with_variants else r["costs"]
        cells = []
        for k, _ in cols:
            c = src[k]
            v = money(c["monthly_usd"])
            if "instance" in c:
                inst = c["instance"]
                v += f" ({inst['type']}{'' if inst['fits'] else ', TOO SMALL'})"
            cells.append(v)
        ngw = src["nat-gateway"]["monthly_usd"]
        ratios = [k for k, _ in cols if k.startswith("eipgate")]
        ratio = " / ".join(f"{ngw / src[k]['monthly_usd']:.1f}×" for k in ratios)
        out.append(f"| {r['tb_per_month']:g} | {r['azs']} | " + " | ".join(cells)
                   + f" | {ratio} | {money(r['data_transfer_out_usd'])} |")
    return "\n".join(out)


def itemised_markdown(costs: dict[str, Cost], columns=VARIANTS) -> str:
    """One column per option, one row per billed line (quantity in brackets), total last."""
    cols = [(k, t) for k, t, *_ in columns if k in costs]
    out = ["| line | " + " | ".join(t for _, t in cols) + " |",
           "|---|" + "---:|" * len(cols)]
    for key, label in LINES:
        if not any(key in costs[k].items for k, _ in cols):
            continue
        cells = []
        for k, _ in cols:
            ln = next((x for x in costs[k].lines if x.key == key), None)
            if ln is None:
                cells.append("—")
            elif key == "instances":
                cells.append(f"{money(ln.usd)} ({fmt_qty(ln.quantity)} {ln.unit}"
                             f"{'' if costs[k].sizing.fits else ', TOO SMALL'})")
            else:
                cells.append(f"{money(ln.usd)} ({fmt_qty(ln.quantity)})")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("| **total per month** | " + " | ".join(f"**{money(costs[k].monthly)}**" for k, _ in cols) + " |")
    ngw = costs.get("nat-gateway")
    if ngw:
        out.append("| NAT Gateway ÷ this | " + " | ".join(
            f"{ngw.monthly / costs[k].monthly:.1f}×" for k, _ in cols) + " |")
    return "\n".join(out)


def prices_note(prices: dict) -> str:
    return (f"{prices['region']} list prices recorded {prices['recorded']}"
            f"{'' if prices.get('verified_online') else ' and **not verified online**'}")


README_BEGIN = "<!-- eipgate-cost --markdown: begin (generated; do not edit by hand) -->"
README_END = "<!-- eipgate-cost --markdown: end -->"
README_ITEMISED = ((1.0, 2), (10.0, 2))


def readme_markdown(prices: dict, measured: Measured, deployment: Deployment | None = None,
                    **wkw) -> str:
    """The top-level README's cost tables (`eipgate-cost --markdown`; a test keeps them equal)."""
    w0 = Workload(1, 2, **wkw)
    rows = grid(prices, measured, deployment=deployment, **wkw)
    out = [README_BEGIN, "",
           f"Monthly USD, {prices_note(prices)} (check "
           f"[`tools/cost/prices-us-east-1.json`](tools/cost/prices-us-east-1.json)). TB/month "
           f"processed by the NAT in all AZs, both directions; peak {w0.peak_to_average:g}× the average, "
           f"{w0.packet_bytes:g}-byte packets, {w0.connections_per_az:,.0f} connections per AZ; per-core "
           f"rates eipgate {fmt_pps(measured.eipgate_pps_per_core)}, iptables "
           f"{fmt_pps(measured.kernel_pps_per_core)} from `{measured.source}`. Data transfer out to "
           f"the internet is paid the same with every option and is not in the totals. eipgate: an HA "
           f"pair per AZ, one service EIP a pair; `Ipv6` (the default: no management public IPv4), `PublicIp` "
           f"and `VpcEndpoints` are the CloudFormation `ManagementAccess` options; \"+ CW\" adds the default "
           f"CloudWatch metric set and its 5 alarms a pair, as the templates deploy it "
           f"(`CloudWatchMetrics=default`; `off` removes both).", "",
           grid_markdown(rows), ""]
    for tb, azs in README_ITEMISED:
        w = Workload(tb, azs, **wkw)
        out += [f"Every billed line at {tb:g} TB/month over {azs} AZs (quantity in brackets):", "",
                itemised_markdown(variant_costs(prices, w, measured, deployment)), ""]
    out += targets_markdown(prices, measured, deployment, **wkw) + ["", README_END]
    return "\n".join(out)


def targets_markdown(prices: dict, measured: Measured, deployment: Deployment | None = None,
                     **wkw) -> list[str]:
    """Issue 15's targets against the model: <= $25/month at 1 TB over 2 AZs, >= 10x cheaper than
    NAT Gateway at 10 TB; also with EC2 detailed monitoring turned on (the template leaves it off)."""
    base = deployment or Deployment()
    out = ["Targets (issue 15): the whole bill at 1 TB/month over 2 AZs ≤ $25, and ≥ 10× cheaper "
           "than NAT Gateway at 10 TB/month over 2 AZs. What the model gives:", ""]
    for dm in (None, True):
        d = Deployment(base.management_access, base.service_eips, base.cloudwatch,
                       base.logs_gb_per_month, base.cross_az_share, base.ssm_endpoints, dm)
        c1 = variant_costs(prices, Workload(1, 2, **wkw), measured, d)
        c10 = variant_costs(prices, Workload(10, 2, **wkw), measured, d)
        parts = []
        for k, t, profile, access, _ in VARIANTS:
            if profile != "eipgate":
                continue
            a, b = c1[k].monthly, c10["nat-gateway"].monthly / c10[k].monthly
            parts.append(f"{t.replace('eipgate ', '')}: {money(a)} {'✓' if a <= 25 else '✗'}, "
                         f"{b:.1f}× {'✓' if b >= 10 else '✗'}")
        head = ("- as the template deploys it (EC2 detailed monitoring off: the recovery alarms "
                "read status checks, which are 1-minute without it)" if dm is None else
                "- with EC2 detailed monitoring turned on (~7 billed metrics per instance)")
        out.append(head + ": " + "; ".join(parts) + ".")
    return out


def update_readme(path: str, block: str) -> bool:
    """Replaces the block between README_BEGIN and README_END; True when the file changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        a = text.index(README_BEGIN)
        b = text.index(README_END, a) + len(README_END)
    except ValueError:
        raise ValueError(f"{path}: no '{README_BEGIN}' ... '{README_END}' block") from None
    new = text[:a] + block + text[b:]
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text


def readme_block(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    a = text.index(README_BEGIN)
    return text[a:text.index(README_END, a) + len(README_END)]


def series_tsv(prices: dict, measured: Measured, azs: int, lo=0.01, hi=1000.0, points=121,
               deployment: Deployment | None = None, **wkw) -> str:
    lines = ["# tb_per_month\t" + "\t".join(PROFILES) + "\tdata_transfer_out"]
    for i in range(points):
        tb = lo * (hi / lo) ** (i / (points - 1))
        w = Workload(tb, azs, **wkw)
        costs = all_costs(prices, w, measured, deployment=deployment)
        lines.append(f"{tb:.6g}\t" + "\t".join(f"{costs[p].monthly:.2f}" for p in PROFILES)
                     + f"\t{data_transfer_out(prices, tb * w.out_share):.2f}")
    return "\n".join(lines)


def describe(prices: dict, w: Workload, costs: dict[str, Cost], measured: Measured) -> str:
    out = [f"{w.tb_per_month:g} TB/month through the NAT over {w.azs} AZs "
           f"({prices['region']}, prices recorded {prices['recorded']}"
           f"{'' if prices.get('verified_online') else ', NOT verified online'}); "
           f"peak {w.peak_to_average:g}x average, {w.packet_bytes:g} B packets, "
           f"{w.connections_per_az:g} connections per AZ",
           f"per AZ: average {w.avg_bps_per_az() / 1e6:.3g} Mbit/s, peak {w.peak_bps_per_az() / 1e6:.3g} Mbit/s, "
           f"peak {w.peak_bps_per_az() / 8 / w.packet_bytes / 1e3:.3g} kpps",
           f"per-core packet rates: eipgate {fmt_pps(measured.eipgate_pps_per_core)}, "
           f"kernel NAT {fmt_pps(measured.kernel_pps_per_core)} (from {measured.source})", ""]
    for p, c in costs.items():
        line = f"{PROFILE_TITLES[p]:12s} {money(c.monthly):>10s}/month ({money(c.per_az)}/AZ)"
        if c.deployment:
            line += f"  [{c.deployment}]"
        if c.sizing:
            s = c.sizing
            if s.fits:
                line += f"  instance {s.instance}" + (f", next cheaper ruled out by {s.binding}"
                                                     if s.binding not in ("", "none") else "")
            else:
                line += f"  instance {s.instance} TOO SMALL ({s.binding})"
        out.append(line)
        for ln in c.lines:
            out.append(f"    {LINE_LABELS[ln.key]:42s} {fmt_qty(ln.quantity):>9s} {ln.unit:28s} "
                       f"{money(ln.usd):>9s}")
    out.append(f"data transfer out to the internet ({w.out_share:g} of the bytes), the same for every "
               f"option: {money(data_transfer_out(prices, w.tb_per_month * w.out_share))}/month")
    return "\n".join(out)


def fmt_pps(v: float | None) -> str:
    return f"{v / 1e3:.0f} kpps" if v else "unknown (packet rate not checked)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="eipgate-cost", description=__doc__.split("\n")[0],
                                 epilog="Model and formulas: tools/cost/README.md")
    ap.add_argument("--tb-per-month", type=float, default=1.0,
                    help="TB/month processed by the NAT, both directions, all AZs (default 1)")
    ap.add_argument("--azs", type=int, default=2, help="number of AZs (default 2)")
    ap.add_argument("--instance-type", help="use this instance type instead of sizing one")
    ap.add_argument("--region", default="us-east-1", help="prices-<region>.json next to this tool")
    ap.add_argument("--prices", help="prices file (overrides --region)")
    ap.add_argument("--profile", default="all", choices=PROFILES + ("all",))
    ap.add_argument("--peak-to-average", type=float, default=4.0, help="peak / average traffic (4)")
    ap.add_argument("--packet-bytes", type=float, default=800.0, help="average packet size (800)")
    ap.add_argument("--out-share", type=float, default=0.5,
                    help="share of the processed bytes sent to the internet, for data transfer out (0.5)")
    ap.add_argument("--connections", type=float, default=100_000,
                    help="concurrent connections per AZ, for the memory check (100000)")
    ap.add_argument("--allow-burst", action="store_true",
                    help="size the peak on burst bandwidth (average on baseline) instead of baseline")
    ap.add_argument("--pps-per-core", type=float, help="eipgate packets/s per worker core")
    ap.add_argument("--kernel-pps-per-core", type=float,
                    help="iptables packets/s per core (fck-nat, alterNAT)")
    ap.add_argument("--nat-compare", help="forwarding result to take per-core rates from: "
                    "bench/nat_xdp.sh's .csv or an old nat_compare.sh .md (default: the newest "
                    "under bench/results)")
    g = ap.add_argument_group("eipgate deployment")
    g.add_argument("--management-access", default="Ipv6", choices=MANAGEMENT_ACCESS,
                   help="how the instances reach the AWS APIs: Ipv6 (template default: dual-stack "
                   "endpoints over an egress-only internet gateway), PublicIp (an EIP per instance), "
                   "VpcEndpoints (interface endpoints per AZ)")
    g.add_argument("--service-eips", type=int, default=None,
                   help="service EIPs per pair, the templates' ServiceAddressCount "
                   "(default: the prices file's, 1, the templates' default)")
    g.add_argument("--cloudwatch", default="none", choices=CLOUDWATCH_SETS,
                   help="custom metrics published per pair: none, default (5 + 5 alarms), full "
                   "(NAT Gateway's names + HA, + 5 alarms)")
    g.add_argument("--logs-gb", type=float, default=0.0,
                   help="translation logs eipgate-control ships to CloudWatch Logs "
                   "(cloudwatch_logs:), GB/month, all AZs: the bytes of status "
                   "cloudwatch_logs.bytes_sent (each JSON line + 26); at most byte_budget per "
                   "instance (1 MiB/min = ~45 GB/month) (0)")
    g.add_argument("--cross-az-share", type=float, default=0.0,
                   help="share of the processed bytes the cross-AZ fallback carries (0)")
    g.add_argument("--ssm-endpoints", action="store_true",
                   help="VpcEndpoints: also the ssm, ssmmessages and ec2messages endpoints")
    g.add_argument("--detailed-monitoring", choices=("on", "off"), default=None,
                   help="EC2 detailed monitoring (default: off, as the template's launch template)")
    ap.add_argument("--json", action="store_true", help="JSON output")
    ap.add_argument("--table", action="store_true",
                    help="the grid: 0.1/1/10/100 TB/month x 2/3 AZs, every option, each itemised")
    ap.add_argument("--markdown", action="store_true",
                    help="the top-level README's cost tables (what --update-readme writes)")
    ap.add_argument("--update-readme", metavar="FILE",
                    help="replace the generated block in FILE (README.md) with --markdown's output")
    ap.add_argument("--series", action="store_true",
                    help="TSV of monthly cost per profile from 0.01 to 1000 TB/month (for plots)")
    a = ap.parse_args(argv)

    if a.azs < 1 or a.tb_per_month < 0 or a.peak_to_average < 1 or a.packet_bytes < 64:
        ap.error("need --azs >= 1, --tb-per-month >= 0, --peak-to-average >= 1, --packet-bytes >= 64")
    if a.service_eips is not None and a.service_eips < 1:
        ap.error("need --service-eips >= 1")
    if a.logs_gb < 0 or not 0 <= a.cross_az_share <= 1:
        ap.error("need --logs-gb >= 0 and 0 <= --cross-az-share <= 1")
    try:
        prices = load_prices(a.prices or default_prices_path(a.region))
    except (OSError, ValueError) as e:
        print(f"eipgate-cost: {e}", file=sys.stderr)
        return 2
    nc = a.nat_compare or latest_nat_compare()
    measured = measured_from_nat_compare(nc) if nc and os.path.exists(nc) else Measured()
    if a.pps_per_core:
        measured.eipgate_pps_per_core = a.pps_per_core
        measured.source = "flags" if measured.source == "none" else measured.source + " + flags"
    if a.kernel_pps_per_core:
        measured.kernel_pps_per_core = a.kernel_pps_per_core
        measured.source = "flags" if measured.source == "none" else measured.source + " + flags"
    wkw = dict(peak_to_average=a.peak_to_average, packet_bytes=a.packet_bytes,
               out_share=a.out_share, allow_burst=a.allow_burst, connections_per_az=a.connections)
    dep = Deployment(a.management_access, a.service_eips, a.cloudwatch, a.logs_gb, a.cross_az_share,
                     a.ssm_endpoints,
                     None if a.detailed_monitoring is None else a.detailed_monitoring == "on")
    meta = {"region": prices["region"], "prices_recorded": prices["recorded"],
            "prices_verified_online": prices.get("verified_online", False),
            "eipgate_pps_per_core": measured.eipgate_pps_per_core,
            "kernel_pps_per_core": measured.kernel_pps_per_core, "measured_from": measured.source,
            "eipgate_deployment": dep.label(), **wkw}

    try:
        if a.markdown or a.update_readme:
            block = readme_markdown(prices, measured, dep, **wkw)
            if a.update_readme:
                changed = update_readme(a.update_readme, block)
                print(f"{a.update_readme}: {'updated' if changed else 'already up to date'}",
                      file=sys.stderr)
            else:
                print(block)
            return 0
        if a.series:
            print(series_tsv(prices, measured, a.azs, deployment=dep, **wkw))
            return 0
        if a.table:
            rows = grid(prices, measured, deployment=dep, **wkw)
            if a.json:
                print(json.dumps({"meta": meta, "grid": rows}, indent=2))
                return 0
            print(grid_markdown(rows))
            print(f"\nMonthly USD, {prices_note(prices)}; peak {a.peak_to_average:g}x average, "
                  f"{a.packet_bytes:g} B packets, {a.connections:g} connections per AZ; per-core rates "
                  f"eipgate {fmt_pps(measured.eipgate_pps_per_core)}, kernel "
                  f"{fmt_pps(measured.kernel_pps_per_core)} from {measured.source}. "
                  f"Data transfer out ({a.out_share:g} of the bytes) is paid the same with every option.")
            for r in rows:
                w = Workload(r["tb_per_month"], r["azs"], **wkw)
                print(f"\n{r['tb_per_month']:g} TB/month over {r['azs']} AZs, every billed line "
                      f"(quantity in brackets):\n")
                print(itemised_markdown(variant_costs(prices, w, measured, dep)))
            return 0
        profiles = PROFILES if a.profile == "all" else (a.profile,)
        w = Workload(a.tb_per_month, a.azs, **wkw)
        costs = all_costs(prices, w, measured, profiles, a.instance_type, dep)
    except ValueError as e:
        print(f"eipgate-cost: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({"meta": meta, "tb_per_month": a.tb_per_month, "azs": a.azs,
                          "costs": {p: cost_json(c) for p, c in costs.items()},
                          "data_transfer_out_usd": round(data_transfer_out(prices, a.tb_per_month * a.out_share), 2)},
                         indent=2))
    else:
        print(describe(prices, w, costs, measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
