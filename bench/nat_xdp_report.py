"""The results of bench/nat_xdp.sh as Markdown: a summary per workload and mode, then every step.

Usage: /usr/bin/python3 bench/nat_xdp_report.py RESULTS.csv META.json > RESULTS.md
Also imported by bench/report.py and tools/cost/eipgate_cost.py (peaks()). Standard library only.
"""
import csv
import json
import math
import statistics
import sys

MODE_ORDER = ["iptables", "nftables", "nft-flowtable", "eipgate-fastpath", "eipgate-af_xdp",
              "eipgate-af_packet"]
MODE_TEXT = {
    "iptables": "iptables MASQUERADE (fck-nat)",
    "nftables": "nftables masquerade",
    "nft-flowtable": "nftables masquerade + flowtable",
    "eipgate-fastpath": "eipgate, af_xdp + XDP fast path",
    "eipgate-af_xdp": "eipgate, af_xdp (fast path off)",
    "eipgate-af_packet": "eipgate, af_packet",
}
NO_COLLAPSE_TARGET = 0.90  # forwarded at the generator's maximum / peak, every eipgate mode
# (shown rounded down, so that a share just under the target never reads as 90%)


def load(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def num(v, default=0.0):
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def median(values):
    return statistics.median(values) if values else None


def kpps(v):
    if v is None:
        return "–"
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.0f} k"


def summarize(rows):
    """{(flows, mode): {...}} with per-round figures reduced to medians (and min/max of peaks)."""
    out = {}
    keys = sorted({(int(r["flows"]), r["mode"]) for r in rows},
                  key=lambda k: (k[0], MODE_ORDER.index(k[1]) if k[1] in MODE_ORDER else 99))
    for flows, mode in keys:
        mine = [r for r in rows if int(r["flows"]) == flows and r["mode"] == mode]
        unavailable = [r for r in mine if r["step"] == "unavailable"]
        if unavailable:
            out[(flows, mode)] = {"unavailable": unavailable[0]["note"]}
            continue
        per_round = []
        for rnd in sorted({r["round"] for r in mine}, key=int):
            sweep = [r for r in mine if r["round"] == rnd and r["step"] == "sweep"]
            if not sweep:
                continue
            peak = max(sweep, key=lambda r: num(r["forwarded_pps"]))
            top = min(sweep, key=lambda r: int(r["keep"]))  # the generator's maximum offered load
            lat = [r for r in mine if r["round"] == rnd and r["step"] == "latency"]
            warm = [r for r in mine if r["round"] == rnd and r["step"] == "warmup"]
            per_round.append({
                "peak": num(peak["forwarded_pps"]), "peak_offered": num(peak["offered_pps"]),
                "peak_keep": int(peak["keep"]), "peak_busy": num(peak["nat_busy_pct"], None),
                "peak_threads": num(peak.get("nat_threads_pct"), None),
                "top": num(top["forwarded_pps"]), "top_offered": num(top["offered_pps"]),
                "lat": lat[0] if lat else None, "warm_passes": len(warm),
                "warm_note": warm[-1]["note"] if warm else "",
                "sink_loss": max(num(r["sink_side_drops"]) / max(1.0, num(r["received"])) for r in sweep),
                "wrong_src": sum(num(r["wrong_src"]) for r in sweep),
                "bad_csum": sum(num(r["bad_ip_csum"]) + num(r["bad_l4_csum"]) for r in sweep),
                "offloaded": next((r["note"] for r in sweep if "fast path" in r["note"] or "flows_offloaded" in r["note"]), ""),
                "peak_fp_share": (num(peak.get("fastpath_packets")) / num(peak["received"])
                                  if peak.get("fastpath_packets") and num(peak["received"]) else None),
            })
        if not per_round:
            continue
        peaks = [p["peak"] for p in per_round]
        lat = [p["lat"] for p in per_round if p["lat"]]
        out[(flows, mode)] = {
            "rounds": len(per_round),
            "peak": median(peaks), "peak_min": min(peaks), "peak_max": max(peaks),
            "peak_offered": median([p["peak_offered"] for p in per_round]),
            "peak_keep": median([p["peak_keep"] for p in per_round]),
            "peak_busy": median([p["peak_busy"] for p in per_round if p["peak_busy"] is not None]),
            "peak_threads": median([p["peak_threads"] for p in per_round if p["peak_threads"] is not None]),
            "top": median([p["top"] for p in per_round]),
            "top_offered": median([p["top_offered"] for p in per_round]),
            "top_share": median([p["top"] / p["peak"] if p["peak"] else 0 for p in per_round]),
            "lat_p50": median([num(r["lat_p50_ns"]) for r in lat if r["lat_p50_ns"]]),
            "lat_p99": median([num(r["lat_p99_ns"]) for r in lat if r["lat_p99_ns"]]),
            "lat_offered": median([num(r["offered_pps"]) for r in lat]),
            "lat_forwarded": median([num(r["forwarded_pps"]) for r in lat]),
            "warm_passes": max(p["warm_passes"] for p in per_round),
            "sink_loss": max(p["sink_loss"] for p in per_round),
            "wrong_src": sum(p["wrong_src"] for p in per_round),
            "bad_csum": sum(p["bad_csum"] for p in per_round),
            "offloaded": per_round[-1]["offloaded"],
            "peak_fp_share": median([p["peak_fp_share"] for p in per_round if p["peak_fp_share"] is not None]),
        }
    return out


def peaks(csv_path):
    """{(flows, mode): median peak forwarded pps}: for the cost model and the report's chart."""
    return {k: v["peak"] for k, v in summarize(load(csv_path)).items() if "peak" in v}


def machine_line(meta):
    load = meta.get("load_before", "")
    try:
        busy = float(load.split()[0]) > 0.5 or float(meta.get("load_after", "0").split()[0]) > 0.5
    except (ValueError, IndexError):
        busy = True
    state = "shared VM" if busy else "quiet"
    hyp = f" ({meta['hypervisor']} guest)" if meta.get("hypervisor") else (
        f" ({meta['virt']})" if meta.get("virt") else "")
    return (f"{meta.get('cpu_model', 'unknown CPU')}{hyp}, {meta.get('vcpus')} vCPUs, "
            f"{meta.get('mem_gib')} GiB, kernel {meta.get('kernel')}; **{state}**: load average "
            f"{load} before, {meta.get('load_after', '')} after")


def markdown(rows, meta):
    s = summarize(rows)
    flows_list = sorted({k[0] for k in s})
    lines = []
    label = meta.get("label") or ""
    lines.append(f"# NAT forwarding, XDP generator and sink (`bench/nat_xdp.sh`, {meta.get('date', '')})")
    lines.append("")
    if label:
        lines.append(f"**{label}.**")
        lines.append("")
    lines.append(f"Machine: {machine_line(meta)}. Commit {meta.get('commit', '?')}; "
                 f"{meta.get('seconds', '?')} s in all.")
    lines.append("")
    nat, gen = meta.get("nat_cpu", 1), meta.get("gen_cpu", 0)
    lines.append(
        f"Pinning: **all of the NAT's work on CPU {nat}**: the threaded NAPI kthreads of the NAT's two "
        f"veths (`echo 1 > /sys/class/net/<dev>/threaded`, `taskset`; SCHED_OTHER at nice "
        f"{meta.get('nice')}), which run the kernel NATs entirely and, for eipgate, the XDP "
        f"steering program and the copies into and out of AF_XDP / af_packet, and eipgate's worker "
        f"lcore. CPU {gen}: the generator (`eipgate-xdpgen`, live frames, batch 128), the sink's and "
        f"the client's NAPI kthreads (SCHED_FIFO, so that they drain their veth rings at once) and "
        f"eipgate's main lcore.")
    lines.append("")
    lines.append(
        f"Traffic: 60-byte UDP frames (64 on the wire); flow f from 10.0.0.1 + f / "
        f"{meta.get('ports_per_src')} port 1024 + f % {meta.get('ports_per_src')} to 198.51.100.1 + "
        f"f % ⌈flows / {meta.get('flows_per_dst')}⌉ port 9. Every flow established before measuring: "
        f"warm-up passes of one frame per flow (1 in {meta.get('warm_keep')}), reflected by the sink, "
        f"until the client side had seen a reply for every flow. Load steps: keep 1 in "
        f"{', '.join(str(k) for k in meta.get('keeps', []))} × {meta.get('duration_s')} s; "
        f"{meta.get('rounds')} round(s), modes interleaved, medians over rounds. Offered: the "
        f"generator's in-program rate; forwarded: what the sink counted over the generator's window. "
        f"Latency: 1 in {meta.get('lat_stamp')} frames stamped, at the keep that offers about half of "
        f"iptables' peak in the same round.")
    lines.append("")
    for flows in flows_list:
        base = s.get((flows, "iptables"), {}).get("peak")
        lines.append(f"## {flows:,} flows")
        lines.append("")
        lines.append("| mode | peak forwarded (min–max) | offered at the peak | NAT core busy at the peak: core / NAT threads | forwarded at max offered load (offered) | max load / peak | peak vs iptables | latency p50 / p99 at ≈ ½ iptables' peak (offered → forwarded) |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for (f, mode), v in s.items():
            if f != flows:
                continue
            name = MODE_TEXT.get(mode, mode)
            if "unavailable" in v:
                lines.append(f"| {name} | {v['unavailable']} | | | | | | |")
                continue
            share = v["top_share"]
            mark = ""
            if mode.startswith("eipgate-"):
                mark = " ✔" if share >= NO_COLLAPSE_TARGET else " ✘"
            ratio = f"{v['peak'] / base:.2f}×" if base else "–"
            lat = "–"
            if v["lat_p50"]:
                lat = (f"{v['lat_p50'] / 1e3:.0f} µs / {v['lat_p99'] / 1e3:.0f} µs "
                       f"({kpps(v['lat_offered'])} → {kpps(v['lat_forwarded'])})")
            busy = f"{v['peak_busy']:.0f}% / {v['peak_threads']:.0f}%" if v["peak_threads"] is not None else "–"
            extra = ""
            if mode == "eipgate-fastpath":
                fp = v.get("peak_fp_share")
                extra = f" ({v['offloaded'] or 'flows_offloaded not read'}" + (
                    f"; {100 * fp:.0f}% of the peak's packets translated in XDP)" if fp is not None else ")")
            lines.append(
                f"| {name}{extra} | **{kpps(v['peak'])}** ({kpps(v['peak_min'])}–{kpps(v['peak_max'])}) | "
                f"{kpps(v['peak_offered'])} (keep {v['peak_keep']:g}) | {busy} | {kpps(v['top'])} "
                f"({kpps(v['top_offered'])}) | {math.floor(100 * share)}%{mark} | {ratio} | {lat} |")
        lines.append("")
        notes = []
        for (f, mode), v in s.items():
            if f != flows or "unavailable" in v:
                continue
            if v["sink_loss"] > 0.01:
                notes.append(f"{mode}: up to {100 * v['sink_loss']:.1f}% of a step's frames were lost at "
                             f"the sink's veth ring (the sink's CPU, not the NAT): forwarded is short by that much")
            if v["wrong_src"] or v["bad_csum"]:
                notes.append(f"{mode}: {v['wrong_src']:.0f} frames with a wrong source, "
                             f"{v['bad_csum']:.0f} bad checksums")
            if v["warm_passes"] > 1:
                notes.append(f"{mode}: {v['warm_passes']} warm-up passes until every flow had its reply")
        if notes:
            lines.extend(f"- {n}" for n in notes)
            lines.append("")
    lines.append("✔ / ✘: eipgate's target, forwarded at the generator's maximum ≥ 90% of the peak (no "
                 "collapse under overload). \"NAT core\" is `/proc/stat` for that CPU, other tenants "
                 "included; \"NAT threads\" is the on-CPU time of the NAT's own threads (NAPI kthreads, "
                 "eipgate's worker) over the step.")
    lines.append("")
    lines.append("## Every step")
    lines.append("")
    lines.append("| round | flows | mode | step | keep | offered | forwarded | refused at the NAT's veth ring | lost at the sink's ring | NAT core / threads | latency p50 / p99 | note |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["step"] == "unavailable":
            continue
        lat = f"{num(r['lat_p50_ns']) / 1e3:.0f} / {num(r['lat_p99_ns']) / 1e3:.0f} µs" if r["lat_p50_ns"] else ""
        busy = f"{r['nat_busy_pct']}% / {r.get('nat_threads_pct', '')}%" if r["nat_busy_pct"] else ""
        lines.append(f"| {r['round']} | {r['flows']} | {r['mode']} | {r['step']} | {r['keep']} | "
                     f"{num(r['offered_pps']):,.0f} | {num(r['forwarded_pps']):,.0f} | {r['nat_ring_refused']} | "
                     f"{r['sink_side_drops']} | {busy} | {lat} | {r['note']} |")
    lines.append("")
    return "\n".join(lines)


def main():
    rows = load(sys.argv[1])
    meta = json.load(open(sys.argv[2], encoding="utf-8"))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
