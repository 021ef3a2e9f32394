"""Turns the outputs of bench/report.sh into report.md with gnuplot PNGs (bench/README.md, "Report").

Usage: /usr/bin/python3 bench/report.py REPORT_DIR
Reads REPORT_DIR/{machine.json, engine.json, nat_xdp.{md,csv,json} (or an older report's
nat_compare.md), idle_latency.md, failover.md, cost-grid.json, cost-2az.tsv, cost-3az.tsv} (any may be missing: its section says why) and writes
REPORT_DIR/report.md and the plots next to it. Standard library + gnuplot only.
"""
import json
import math
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools", "cost"))
sys.path.insert(0, HERE)
import eipgate_cost  # noqa: E402
import nat_xdp_report  # noqa: E402

D = sys.argv[1] if len(sys.argv) > 1 else "."
MACHINE = json.load(open(os.path.join(D, "machine.json"), encoding="utf-8"))
MACHINE_LINE = MACHINE["short"]


def path(name):
    return os.path.join(D, name)


def read(name):
    try:
        with open(path(name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def gnuplot(png, script, width=900, height=520):
    full = (f'set terminal pngcairo size {width},{height} font "DejaVu Sans,10" noenhanced\n'
            f'set output "{path(png)}"\n' + script)
    r = subprocess.run(["gnuplot"], input=full, text=True, capture_output=True)
    if r.returncode != 0:
        print(f"report: gnuplot failed for {png}: {r.stderr}", file=sys.stderr)
        return False
    return True


def machine_title(what):
    return f'set title "{what}\\n{MACHINE_LINE}"\n'


# --- engine benchmark ----------------------------------------------------------------------------

def engine_results():
    text = read("engine.json")
    if not text:
        return None
    data = json.loads(text)
    runs = {}
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") != "median":
                continue
            runs[name] = b            # the median wins over single iterations
        elif name not in runs or runs[name].get("run_type") != "aggregate":
            runs[name] = b
    res = {"fast": [], "newconn": None, "memory": []}
    for name, b in runs.items():
        m = re.match(r"BM_EstablishedFastPath/(\d+)", name)
        if m:
            res["fast"].append((int(m.group(1)), b["Mpps"], b["ns_per_pkt"], b.get("bytes_per_flow"),
                                b.get("not_forwarded", 0)))
        elif name.startswith("BM_NewConnections"):
            res["newconn"] = (b["Mconn_per_s"], b.get("not_created", 0))
        m = re.match(r"BM_MemoryPerConnection/(\d+)", name)
        if m:
            res["memory"].append((int(m.group(1)), b["bytes_per_flow"], b["total_MiB"]))
    res["fast"].sort()
    res["memory"].sort()
    res["reps"] = data.get("context", {}).get("library_build_type", "")
    return res


def flows_label(n):
    return f"{n // (1 << 20)}M" if n >= 1 << 20 else f"{n // 1000}k" if n >= 1000 else str(n)


def engine_section(out, summary):
    e = engine_results()
    out.append("## Engine, one core (`engine_bench`)\n")
    if not e or not e["fast"]:
        out.append("Not run (no `engine.json`; see `report.log`).\n")
        return
    with open(path("engine_mpps.dat"), "w", encoding="utf-8") as f:
        for flows, mpps, ns, _, _ in e["fast"]:
            f.write(f"{flows} {mpps:.3f} {ns:.1f} {flows_label(flows)}\n")
    ok = gnuplot("engine_mpps.png", machine_title("Engine fast path, one core: Mpps vs active flows") + f"""
set logscale x 2
set xtics ("1k" 1000, "16k" 16384, "256k" 262144, "1M" 1048576, "4M" 4194304, "16M" 16777216)
set xlabel "active flows (established TCP)"
set ylabel "Mpps (60-byte frames, bursts of 32)"
set yrange [0:{max(25.0, 1.25 * max(x[1] for x in e["fast"])):.0f}]
set grid
set key top right
set xrange [500:40000000]
plot "{path('engine_mpps.dat')}" using 1:2 with linespoints lw 2 pt 7 title "measured", \\
     "" using 1:2:(sprintf("%.1f Mpps\\n%.0f ns/pkt", $2, $3)) with labels offset 0,2 notitle, \\
     20 with lines dt 2 lc rgb "red" title "target at 1M flows (DESIGN.md): 20 Mpps"
""")
    out.append("| active flows | Mpps | ns/packet | not forwarded |\n|---:|---:|---:|---:|")
    for flows, mpps, ns, _, bad in e["fast"]:
        out.append(f"| {flows_label(flows)} | **{mpps:.1f}** | {ns:.0f} | {bad:.0f} |")
    out.append("")
    if e["newconn"]:
        out.append(f"New connections (SYN → flow created → translated): **{e['newconn'][0]:.2f} M/s** "
                   f"(target ≥ 3 M/s; not created: {e['newconn'][1]:.0f}).")
    for flows, b, mib in e["memory"]:
        out.append(f"Memory per connection at {flows_label(flows)} flows: **{b:.0f} B** ({mib:.0f} MiB in all; "
                   f"target ≤ 128 B).")
    out.append("")
    if ok:
        out.append("![Mpps vs active flows](engine_mpps.png)\n")
    at = {flows: mpps for flows, mpps, *_ in e["fast"]}
    if 1 << 20 in at:
        summary.append(("established fast path, 1M flows, one core", f"{at[1 << 20]:.1f} Mpps", "≥ 20 Mpps"))
    if e["newconn"]:
        summary.append(("new connections, one core", f"{e['newconn'][0]:.2f} M/s", "≥ 3 M/s"))
    if e["memory"]:
        summary.append(("memory per connection", f"{e['memory'][-1][1]:.0f} B", "≤ 128 B"))


# --- forwarding vs netfilter ---------------------------------------------------------------------

MODE_TITLES = {"iptables": "iptables MASQUERADE\\n(fck-nat)", "nftables": "nftables\\nmasquerade",
               "eipgate-af_xdp": "eipgate\\naf_xdp", "eipgate-af_packet": "eipgate\\naf_packet",
               "linux-forward": "Linux forward,\\nno NAT (ref.)"}


def nat_compare_section(out, summary):
    out.append("## Forwarding versus iptables / nftables masquerade (`nat_compare.sh`, same run)\n")
    text = read("nat_compare.md")
    if not text:
        out.append("Not run (see `report.log`: needs root, iptables, nftables, netsniff-ng).\n")
        return
    peaks = eipgate_cost.parse_nat_compare(path("nat_compare.md"))
    base = peaks.get("iptables")
    order = [m for m in MODE_TITLES if m in peaks]
    with open(path("nat_compare.dat"), "w", encoding="utf-8") as f:
        for i, m in enumerate(order):
            ratio = f"{peaks[m] / base:.2f}x" if base else ""
            f.write(f'{i} {peaks[m] / 1e3:.1f} "{MODE_TITLES[m]}" "{peaks[m] / 1e3:.0f} k\\n{ratio} iptables"\n')
    ok = gnuplot("nat_compare.png", machine_title(
        "Forwarding over veth, NAT on one core: peak received packets/s (median of rounds)") + f"""
set style fill solid 0.7 border -1
set boxwidth 0.6
set ylabel "kpps (64-byte frames, 4096 UDP flows)"
set yrange [0:{1.2 * max(peaks.values()) / 1e3:.0f}]
set xrange [-0.6:{len(order) - 0.4}]
set bmargin 5
set grid ytics
unset key
plot "{path('nat_compare.dat')}" using 1:2:xtic(3) with boxes lc rgb "#4472c4", \\
     "" using 1:2:4 with labels offset 0,2
""", height=560)
    # The script's own summary table, as it wrote it.
    lines = text.splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith("|"))
    out.extend(l for l in lines[1:first] if l.strip())
    out.append("")
    out.extend(l for l in lines[first:] if l.startswith("|"))
    out.append("")
    if ok:
        out.append("![eipgate vs iptables/nftables](nat_compare.png)\n")
    out.append("On veth the kernel's copies for AF_XDP / af_packet dominate eipgate's per-packet cost and "
               "the generator limits the kernel NATs; bench/README.md explains why this harness cannot "
               "judge the ≥ 5× goal. Full samples: [nat_compare.md](nat_compare.md).\n")
    for m in ("eipgate-af_xdp", "eipgate-af_packet"):
        if m in peaks and base:
            summary.append((f"forwarding vs iptables, {m} (veth)", f"{peaks[m] / base:.2f}×", "≥ 5×"))


def nat_xdp_section(out, summary):
    out.append("## Forwarding versus iptables / nftables (`nat_xdp.sh`, XDP generator and sink, same run)\n")
    if not (read("nat_xdp.csv") and read("nat_xdp.json")):
        out.append("Not run (see `report.log`: needs root, iptables, nftables and the xdpgen tools).\n")
        return
    rows = nat_xdp_report.load(path("nat_xdp.csv"))
    meta = json.loads(read("nat_xdp.json"))
    s = nat_xdp_report.summarize(rows)
    order = [m for m in nat_xdp_report.MODE_ORDER if any(k[1] == m and "peak" in v for k, v in s.items())]
    flows = sorted({k[0] for k, v in s.items() if "peak" in v})
    ok = False
    if order and flows:
        with open(path("nat_xdp.dat"), "w", encoding="utf-8") as f:
            for i, m in enumerate(order):
                cells = [f"{s[(fl, m)]['peak'] / 1e3:.1f}" if "peak" in s.get((fl, m), {}) else "0" for fl in flows]
                f.write(f'{i} "{nat_xdp_report.MODE_TEXT.get(m, m)}" ' + " ".join(cells) + "\n")
        top = max(v["peak"] for v in s.values() if "peak" in v)
        cols = ", \\\n     ".join(
            f'"{path("nat_xdp.dat")}" using {j + 3}:xtic(2) title "{fl:,} flows"' for j, fl in enumerate(flows))
        ok = gnuplot("nat_xdp.png", machine_title(
            "Forwarding over veth, NAT on one core, established flows: peak forwarded packets/s") + f"""
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set ylabel "kpps (64-byte frames)"
set yrange [0:{1.25 * top / 1e3:.0f}]
set xtics rotate by -20
set bmargin 6
set grid ytics
set key top right
plot {cols}
""", height=560)
    text = nat_xdp_report.markdown(rows, meta)
    body = text.split("## Every step")[0].splitlines()[2:]  # its summary, without its title
    out.extend("#" + l if l.startswith("## ") else l for l in body)
    if ok:
        out.append("![eipgate vs iptables/nftables](nat_xdp.png)\n")
    out.append("Every step with offered and forwarded rates: [nat_xdp.md](nat_xdp.md); raw: `nat_xdp.csv`, "
               "`nat_xdp.json`. What the modes are and how to read the figures: bench/README.md, "
               "\"Forwarding benchmark\".\n")
    base_flows = min(flows, key=lambda fl: abs(fl - eipgate_cost.NAT_XDP_FLOWS)) if flows else None
    for m in ("eipgate-fastpath", "eipgate-af_xdp", "eipgate-af_packet"):
        v, b = s.get((base_flows, m), {}), s.get((base_flows, "iptables"), {})
        if "peak" in v and b.get("peak"):
            summary.append((f"forwarding vs iptables, {m}, {base_flows:,} flows (veth)",
                            f"{v['peak'] / b['peak']:.2f}× (peak {v['peak'] / 1e3:.0f} k at "
                            f"{v['peak_offered'] / 1e3:.0f} k offered)", "≥ 5×"))
        if "peak" in v:
            summary.append((f"no collapse under overload, {m}, {base_flows:,} flows",
                            f"{math.floor(100 * v['top_share'])}% of the peak at the maximum offered load", "≥ 90%"))


# --- failover ------------------------------------------------------------------------------------

def failover_section(out, summary):
    out.append("## Failover gap and connections kept (`failover.sh`)\n")
    text = read("failover.md")
    if text is None:
        out.append("**Not run**: `bench/failover.sh` is not in this checkout (or not executable) or "
                   "wrote no result; see `report.log`.\n")
        summary.append(("failover gap / connections kept", "not run", "≤ 2 s / 100%"))
        return
    # Best effort on failover.sh's Markdown table: the first column names the setup, a column whose
    # header mentions "gap" (several "/"-separated statistics: the median is taken) and one that
    # mentions "kept".
    rows, cols = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cols is None:
            gap = next((i for i, c in enumerate(cells) if "gap" in c.lower()), None)
            kept = next((i for i, c in enumerate(cells) if "kept" in c.lower()), None)
            if gap is None:
                continue
            stats = [x.strip() for x in re.sub(r"\(.*?\)", "", cells[gap]).split("/")]
            pick = next((i for i, x in enumerate(stats) if "median" in x.lower()), 0)
            cols = (gap, kept, pick, 1e-3 if "(ms)" in cells[gap].lower() else 1.0)
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        gap, kept, pick, unit = cols
        nums = re.findall(r"[\d.]+", cells[gap]) if gap < len(cells) else []
        if len(nums) > pick:
            label = re.sub(r"[*`]", "", cells[0])
            kept_txt = cells[kept] if kept is not None and kept < len(cells) else ""
            rows.append((label, float(nums[pick]) * unit, kept_txt))
    if rows:
        with open(path("failover.dat"), "w", encoding="utf-8") as f:
            for i, (label, gap, kept) in enumerate(rows):
                short = label.split(":")[0].replace("(", "\\n(", 1)
                f.write(f'{i} {gap:.3f} "{short}" "{gap:.2f} s\\n{kept} kept"\n')
        if gnuplot("failover.png", machine_title(
                "Failover in the simulated VPC: traffic gap for new connections (median of runs)") + f"""
set style fill solid 0.7 border -1
set boxwidth 0.5
set ylabel "gap (s)"
set yrange [0:{max(1.0, 1.4 * max(r[1] for r in rows)):.2f}]
set xrange [-0.6:{len(rows) - 0.4}]
set bmargin 5
set grid ytics
unset key
plot "{path('failover.dat')}" using 1:2:xtic(3) with boxes lc rgb "#ed7d31", \\
     "" using 1:2:4 with labels offset 0,2
""", height=480):
            out.append("![failover gap](failover.png)\n")
        for label, gap, kept in rows:
            summary.append((f"failover: {label.split(':')[0]}", f"gap {gap:.2f} s, {kept} connections kept",
                            "≤ 2 s / 100%" if label.lower().startswith("eipgate") else "(baseline)"))
    for line in text.strip().splitlines():
        if line.startswith("# "):
            continue  # its title: this section has one
        out.append("#" * 2 + line if line.startswith("#") else line)
    out.append("")


# --- idle CPU ------------------------------------------------------------------------------------

def idle_section(out, summary):
    out.append("## Idle CPU and first-packet latency (`idle_latency.sh`)\n")
    text = read("idle_latency.md")
    if not text:
        out.append("Not run (see `report.log`).\n")
        return
    lines = [l for l in text.splitlines() if l.startswith(("|", "Machine", "Port mode", "samples"))]
    table = [l for l in lines if l.startswith("|")]
    out.extend(l for l in lines if not l.startswith("|"))
    out.append("")
    out.extend(table)
    out.append("")
    for l in table:
        cells = [c.strip() for c in l.strip("|").split("|")]
        if cells and cells[0] == "adaptive" and len(cells) > 1:
            summary.append(("idle CPU, adaptive polling", f"{cells[1]}% of a core", "≈ 0"))


# --- cost ----------------------------------------------------------------------------------------

def cost_section(out, summary):
    out.append("## Cost: NAT Gateway against eipgate, fck-nat and alterNAT (`eipgate-cost`)\n")
    g = read("cost-grid.json")
    if not g:
        out.append("Not run (see `report.log`).\n")
        return
    data = json.loads(g)
    meta = data["meta"]
    src_machine = MACHINE_LINE
    src = meta["measured_from"].split(" (")[0]  # nat_xdp sources end in " (<flows> flows)"
    src_path = src if os.path.isabs(src) else os.path.join(os.path.dirname(HERE), src)
    if src_path.endswith(".csv"):
        src_path = src_path[:-4] + ".md"  # nat_xdp.sh's Markdown beside its CSV names the machine
    try:
        with open(src_path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("Machine:"):
                    src_machine = line[len("Machine:"):].strip().rstrip(".")
                    break
    except OSError:
        pass
    out.append(eipgate_cost.grid_markdown(data["grid"]))
    out.append("")
    out.append(f"Monthly USD, {meta['region']} list prices recorded {meta['prices_recorded']}"
               f"{'' if meta['prices_verified_online'] else ' (**not verified online**: check tools/cost/prices-us-east-1.json)'}. "
               f"TB/month processed by the NAT (both directions), spread evenly over the AZs; instance "
               f"sized for a peak {meta['peak_to_average']:g}× the average on AWS's baseline bandwidth, for "
               f"{meta['connections_per_az']:g} concurrent connections per AZ in memory, and "
               f"on per-core packet rates ({meta['eipgate_pps_per_core'] or 0:.0f} pps eipgate, "
               f"{meta['kernel_pps_per_core'] or 0:.0f} pps iptables, {meta['packet_bytes']:g}-byte packets) "
               f"from `{meta['measured_from']}` (the newest full forwarding run, on {src_machine}; a "
               f"QUICK run's one short round is not used for sizing). Data transfer out to the internet is paid the same with every "
               f"option and is not in the totals. Model: [tools/cost/README.md](../../../tools/cost/README.md).\n")
    plots = []
    for azs in (2, 3):
        tsv = path(f"cost-{azs}az.tsv")
        if os.path.exists(tsv):
            plots.append((azs, tsv))
    if plots:
        panels = []
        for azs, tsv in plots:
            panels.append(f"""
set title "{azs} AZs"
plot "{tsv}" using 1:2 with lines lw 2 lc rgb "#c00000" title "NAT Gateway", \\
     "" using 1:3 with lines lw 2 lc rgb "#2f75b5" title "eipgate (HA pair per AZ)", \\
     "" using 1:4 with lines lw 2 dt 2 lc rgb "#70ad47" title "fck-nat (1 per AZ, no HA)", \\
     "" using 1:5 with lines lw 2 dt 4 lc rgb "#7f6000" title "alterNAT (1 per AZ + idle NAT GW)", \\
     "" using 1:6 with lines lw 1 dt 3 lc rgb "gray40" title "data transfer out (all options)"
""")
        ok = gnuplot("cost.png", f"""
set multiplot layout 1,{len(plots)} title "Monthly cost vs traffic, {meta['region']} list prices of {meta['prices_recorded']} (not verified online)\\ninstances sized on per-core packet rates measured on: {src_machine}"
set logscale xy
set xlabel "TB/month through the NAT (all AZs)"
set ylabel "USD/month (data transfer out excluded)"
set format y "$%g"
set grid mxtics mytics xtics ytics
set key top left font ",9"
set xrange [0.01:1000]
""" + "".join(panels) + "unset multiplot\n", width=1300, height=560)
        if ok:
            out.append("![cost vs TB/month](cost.png)\n")
    prices = eipgate_cost.load_prices(eipgate_cost.default_prices_path(meta["region"]))
    measured = eipgate_cost.Measured(meta["eipgate_pps_per_core"], meta["kernel_pps_per_core"],
                                     meta["measured_from"])
    wkw = {k: meta[k] for k in ("peak_to_average", "packet_bytes", "out_share", "allow_burst",
                                "connections_per_az")}
    for azs in (2, 3):
        for other in ("nat-gateway", "alternat", "fck-nat"):
            r = eipgate_cost.cheaper_ranges(prices, azs, "eipgate", other, measured, **wkw)
            out.append(f"- {azs} AZs: eipgate costs less than {eipgate_cost.PROFILE_TITLES[other]} "
                       f"{eipgate_cost.describe_ranges(r)}.")
    out.append("\nfck-nat runs one instance per AZ and no standby: an instance failure drops every "
               "connection and the AZ's egress until the auto-scaling group replaces it. Where eipgate's "
               "curve steps above the others at high volume, the binding constraint is its per-core packet "
               "rate measured on veth (`eipgate-cost --tb-per-month N --azs A` prints it), a pessimistic "
               "figure for ENA; `--pps-per-core` overrides it.\n")
    for r in data["grid"]:
        if r["tb_per_month"] == 10 and r["azs"] == 2:
            c = r["costs"]
            summary.append(("cost at 10 TB/month, 2 AZs: NAT Gateway / eipgate",
                            f"${c['nat-gateway']['monthly_usd']:,.0f} / ${c['eipgate']['monthly_usd']:,.0f}", ""))


def main():
    summary = []
    sections = []
    # An older report directory has nat_compare.md (trafgen, generator-bound) instead of nat_xdp.*.
    nat = nat_compare_section if read("nat_compare.md") and not read("nat_xdp.csv") else nat_xdp_section
    for fn in (engine_section, nat, failover_section, idle_section, cost_section):
        part = []
        fn(part, summary)
        sections.append("\n".join(part))
    m = MACHINE
    head = [f"# eipgate benchmark report — {m['date']}", "",
            f"Produced by `{m['command']}` ({'QUICK: shortened runs, 1 repetition' if m['quick'] else 'full runs'}) "
            f"at commit `{m['commit']}`.", "",
            f"**Machine** (every figure below was measured here): {m['long']}.",
            f"Load average before / after: {m['load_before']} / {m.get('load_after', '?')} "
            f"(a shared machine: other engineers' builds and tests compete for the same cores, so "
            f"timings are noisy; bench/README.md has quiet-machine figures).", "",
            "| figure | measured | target (DESIGN.md) |", "|---|---|---|"]
    head += [f"| {a} | **{b}** | {c} |" for a, b, c in summary]
    head.append("")
    with open(path("report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(head) + "\n" + "\n".join(sections) + "\n## Files\n\n"
                "Raw outputs next to this file: `engine.json` (Google Benchmark), `nat_xdp.md` / `.csv` / `.json`, "
                "`idle_latency.md`, `failover.md` (when run), `cost-grid.json`, `cost-*az.tsv`, `report.log`.\n")


if __name__ == "__main__":
    main()
