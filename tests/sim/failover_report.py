#!/usr/bin/python3
"""Summarises one failover run of failover_run (vpc_lib.sh): the traffic gap seen by a stream of
new short connections, what the long-lived download saw, the egress IPs, the EC2 changes.

  failover_report.py OUTDIR EXPECTED_IP [CHANGES_JSONL]   -> JSON on stdout

gap_s: the longest interval between the starts of two consecutive successful probes (a probe
succeeds when its new TCP connection answers within 0.4 s; one starts every 50 ms), so it is an
upper bound of the outage for new connections, to ~50 ms. probes_failed: not answered within
0.4 s; probes_not_completed: not answered at all within 3 s (lost, not merely delayed).
"""
import json
import sys


def main(out, expected_ip, changes=None):
    probes = [json.loads(line) for line in open(f"{out}/probe.jsonl", encoding="utf-8")]
    t_fault = float(open(f"{out}/t_fault", encoding="utf-8").read())
    ok = [p for p in probes if p["ok"]]
    starts = [p["start"] for p in ok]
    gap, gap_at = 0.0, None
    for a, b in zip(starts, starts[1:]):
        if b - a > gap:
            gap, gap_at = b - a, a
    # No success after the fault at all: the gap lasts at least to the end of the probing.
    last_start = max(p["start"] for p in probes)
    gap_open = not starts or starts[-1] < t_fault
    if gap_open:
        from_t = starts[-1] if starts else t_fault
        gap, gap_at = last_start - from_t, from_t
    try:
        fetch = json.load(open(f"{out}/fetch.json", encoding="utf-8"))
    except (OSError, ValueError):
        fetch = {"intact": False, "bytes": 0, "error": "no result"}
    res = {
        "gap_s": round(gap, 3),
        "gap_open": gap_open,
        "gap_starts_after_fault_s": round(gap_at - t_fault, 3) if gap_at else None,
        "probes": len(probes),
        "probes_failed": len(probes) - len(ok),
        "probes_not_completed": sum(1 for p in probes if not p.get("completed")),
        "probes_failed_before_fault": sum(1 for p in probes if not p["ok"] and p["start"] < t_fault - 0.5),
        "egress_ips": sorted({p["ip"] for p in ok}),
        "same_ip": bool(ok) and all(p["ip"] == expected_ip for p in probes if p.get("completed")),
        "transfer_intact": bool(fetch.get("intact")),
        "transfer_bytes": fetch.get("bytes"),
        "transfer_longest_silence_s": fetch.get("longest_silence_s"),
        "transfer_error": fetch.get("error"),
        "connections": fetch.get("connections", 1),
        "connections_kept": fetch.get("connections_intact", 1 if fetch.get("intact") else 0),
    }
    if changes:
        try:
            ch = [json.loads(line) for line in open(changes, encoding="utf-8")]
            after = [c for c in ch if c["t"] >= t_fault]
            if after:
                res["first_ec2_change_after_fault_s"] = round(after[0]["t"] - t_fault, 3)
                res["ec2_changes"] = [c["action"] for c in after]
        except OSError:
            pass
    print(json.dumps(res))


if __name__ == "__main__":
    main(*sys.argv[1:])
