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
class Cost:
    profile: str
    monthly: float                 # per month, all AZs, data transfer out excluded
    per_az: float
    items: dict = field(default_factory=dict)   # component -> monthly USD, all AZs
    sizing: Sizing | None = None


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


def instance_fits(inst: dict, w: Workload, pps_per_core: float | None,
                  memory: dict | None = None) -> tuple[bool, str]:
    peak_bps, avg_bps = w.peak_bps_per_az(), w.avg_bps_per_az()
    if memory_need_mib(memory, inst, w.connections_per_az) > inst["memory_gib"] * 1024:
        return False, "memory"
    if w.allow_burst:
        if avg_bps > inst["baseline_gbps"] * 1e9:
            return False, "baseline bandwidth (average)"
        if peak_bps > inst["burst_gbps"] * 1e9:
            return False, "burst bandwidth (peak)"
    elif peak_bps > inst["baseline_gbps"] * 1e9:
        return False, "baseline bandwidth (peak)"
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
    """The cheapest instance that carries the AZ's peak (bandwidth and packets/s)."""
    insts = prices["instances"]
    peak_bps, avg_bps = w.peak_bps_per_az(), w.avg_bps_per_az()
    peak_pps, avg_pps = peak_bps / 8 / w.packet_bytes, avg_bps / 8 / w.packet_bytes
    cores = peak_pps / pps_per_core if pps_per_core else None
    if forced:
        if forced not in insts:
            raise ValueError(f"unknown instance type {forced} (not in the prices file)")
        ok, why = instance_fits(insts[forced], w, pps_per_core, memory)
        return Sizing(forced, ok, why, peak_bps, avg_bps, peak_pps, avg_pps, cores)
    binding = ""
    for name in sorted(insts, key=lambda n: (insts[n]["hourly"], n)):
        ok, why = instance_fits(insts[name], w, pps_per_core, memory)
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


def profile_cost(prices: dict, profile: str, w: Workload, measured: Measured,
                 instance: str | None = None) -> Cost:
    h = prices["hours_per_month"]
    p = prices["profiles"][profile]
    items: dict[str, float] = {}
    n_gw = p.get("nat_gateways_per_az", 0)
    if n_gw:
        items["nat_gateway_hours"] = n_gw * prices["nat_gateway"]["hourly"] * h * w.azs
        if not p.get("nat_gateway_idle", False):
            items["nat_gateway_processing"] = (w.tb_per_month * GB_PER_TB
                                               * prices["nat_gateway"]["per_gb_processed"])
    items["public_ipv4"] = p["public_ipv4_per_az"] * prices["public_ipv4"]["hourly"] * h * w.azs
    sizing = None
    n_inst = p.get("instances_per_az", 0)
    if n_inst:
        pps = (measured.eipgate_pps_per_core if p.get("nat_engine") == "eipgate"
               else measured.kernel_pps_per_core)
        sizing = size_instance(prices, w, pps, instance, p.get("memory"))
        inst = prices["instances"][sizing.instance]
        items["instances"] = n_inst * w.azs * inst["hourly"] * h
        items["ebs_root"] = (n_inst * w.azs * prices["ebs_root"]["gb_per_instance"]
                             * prices["ebs_root"]["per_gb_month"])
    total = sum(items.values())
    return Cost(profile, total, total / w.azs, items, sizing)


def all_costs(prices: dict, w: Workload, measured: Measured, profiles=PROFILES,
              instance: str | None = None) -> dict[str, Cost]:
    return {p: profile_cost(prices, p, w, measured, instance if p != "nat-gateway" else None)
            for p in profiles}


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


def cost_json(c: Cost) -> dict:
    d = {"profile": c.profile, "monthly_usd": round(c.monthly, 2), "per_az_usd": round(c.per_az, 2),
         "items_usd": {k: round(v, 2) for k, v in c.items.items()}}
    if c.sizing:
        s = c.sizing
        d["instance"] = {"type": s.instance, "fits": s.fits, "binding_constraint": s.binding,
                         "peak_mbps_per_az": round(s.peak_bps / 1e6, 3),
                         "avg_mbps_per_az": round(s.avg_bps / 1e6, 3),
                         "peak_kpps_per_az": round(s.peak_pps / 1e3, 3),
                         "cores_needed_at_peak": (round(s.cores_needed_peak, 4)
                                                  if s.cores_needed_peak is not None else None)}
    return d


def grid(prices: dict, measured: Measured, tbs=GRID_TB, azss=GRID_AZS, **wkw) -> list[dict]:
    rows = []
    for azs in azss:
        for tb in tbs:
            w = Workload(tb, azs, **wkw)
            costs = all_costs(prices, w, measured)
            rows.append({"tb_per_month": tb, "azs": azs,
                         "costs": {p: cost_json(c) for p, c in costs.items()},
                         "data_transfer_out_usd": round(data_transfer_out(prices, tb * w.out_share), 2)})
    return rows


def grid_markdown(rows: list[dict]) -> str:
    out = ["| TB/month | AZs | NAT Gateway | eipgate (HA pair/AZ) | fck-nat (1/AZ, no HA) "
           "| alterNAT (1/AZ + idle NAT GW) | eipgate vs NAT Gateway | data transfer out (all options) |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["costs"]
        cell = {}
        for p in PROFILES:
            v = money(c[p]["monthly_usd"])
            if "instance" in c[p]:
                inst = c[p]["instance"]
                v += f" ({inst['type']}{'' if inst['fits'] else ', TOO SMALL'})"
            cell[p] = v
        ratio = c["nat-gateway"]["monthly_usd"] / c["eipgate"]["monthly_usd"]
        out.append(f"| {r['tb_per_month']:g} | {r['azs']} | {cell['nat-gateway']} | {cell['eipgate']} "
                   f"| {cell['fck-nat']} | {cell['alternat']} | {ratio:.1f}× cheaper "
                   f"| {money(r['data_transfer_out_usd'])} |")
    return "\n".join(out)


def series_tsv(prices: dict, measured: Measured, azs: int, lo=0.01, hi=1000.0, points=121,
               **wkw) -> str:
    lines = ["# tb_per_month\t" + "\t".join(PROFILES) + "\tdata_transfer_out"]
    for i in range(points):
        tb = lo * (hi / lo) ** (i / (points - 1))
        w = Workload(tb, azs, **wkw)
        costs = all_costs(prices, w, measured)
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
        if c.sizing:
            s = c.sizing
            if s.fits:
                line += f"  instance {s.instance}" + (f", next cheaper ruled out by {s.binding}"
                                                     if s.binding not in ("", "none") else "")
            else:
                line += f"  instance {s.instance} TOO SMALL ({s.binding})"
        out.append(line)
        out.append("    " + ", ".join(f"{k} {money(v)}" for k, v in c.items.items()))
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
    ap.add_argument("--json", action="store_true", help="JSON output")
    ap.add_argument("--table", action="store_true",
                    help="the grid: 0.1/1/10/100 TB/month x 2/3 AZs, every profile")
    ap.add_argument("--series", action="store_true",
                    help="TSV of monthly cost per profile from 0.01 to 1000 TB/month (for plots)")
    a = ap.parse_args(argv)

    if a.azs < 1 or a.tb_per_month < 0 or a.peak_to_average < 1 or a.packet_bytes < 64:
        ap.error("need --azs >= 1, --tb-per-month >= 0, --peak-to-average >= 1, --packet-bytes >= 64")
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
    meta = {"region": prices["region"], "prices_recorded": prices["recorded"],
            "prices_verified_online": prices.get("verified_online", False),
            "eipgate_pps_per_core": measured.eipgate_pps_per_core,
            "kernel_pps_per_core": measured.kernel_pps_per_core, "measured_from": measured.source, **wkw}

    if a.series:
        print(series_tsv(prices, measured, a.azs, **wkw))
        return 0
    if a.table:
        rows = grid(prices, measured, **wkw)
        if a.json:
            print(json.dumps({"meta": meta, "grid": rows}, indent=2))
        else:
            print(grid_markdown(rows))
            print(f"\nMonthly USD, {prices['region']} list prices recorded {prices['recorded']}"
                  f"{'' if meta['prices_verified_online'] else ' (not verified online)'}; "
                  f"peak {a.peak_to_average:g}x average, {a.packet_bytes:g} B packets, "
                  f"{a.connections:g} connections per AZ; per-core rates "
                  f"eipgate {fmt_pps(measured.eipgate_pps_per_core)}, kernel "
                  f"{fmt_pps(measured.kernel_pps_per_core)} from {measured.source}. "
                  f"Data transfer out ({a.out_share:g} of the bytes) is paid the same with every option.")
        return 0
    profiles = PROFILES if a.profile == "all" else (a.profile,)
    w = Workload(a.tb_per_month, a.azs, **wkw)
    try:
        costs = all_costs(prices, w, measured, profiles, a.instance_type)
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
