#!/usr/bin/python3
"""CloudWatch metrics of eipgate-control, end to end on loopback: the pair of
control_integration.py (two daemons, fake_aws.py, two fake dataplanes) with

  cloudwatch: {enabled: true, metrics: full, pair_name: use1-az1-0, interval: 1s}

and aws.endpoints.cloudwatch at the fake, which keeps every datum PutMetricData sent
(/_fake/metrics, with the instance whose role credentials signed it). Checks:
  - names, dimensions, units: the default set from both instances, the full NAT Gateway set from
    the active only;
  - values: the sum of A's datapoints of each counter equals what `eipgatectl stats` of its
    dataplane counted over the same time (from the daemon's baseline to the last sample), and
    ActiveConnectionCount is the level;
  - HA: A HaActive 1 / B HaActive 0, HaStandby 1 on B; a kill -9 of A makes B's FailoverCount 1
    and its HaActive flip to 1, while PutMetricData is slowed to 2 s a call (the takeover does
    not wait for CloudWatch);
  - throttling of PutMetricData is retried (no interval lost), and the counts are in status and
    on /metrics;
  - with every PutMetricData throttled and slow, SIGTERM still stops the daemon within the
    request timeout (the retry backoff is cut short).

  cloudwatch_integration.py EIPGATE_CONTROL EIPGATECTL
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import control_integration as ci  # noqa: E402
from control_integration import check, wait_for  # noqa: E402

PAIR = "use1-az1-0"
AZ = "us-east-1a"  # example_state.json's placement of both instances
DIMENSIONS = {"PairName": PAIR, "AvailabilityZone": AZ}
DEFAULT_SET = {"HaActive", "HaStandby", "FailoverCount", "ErrorPortAllocation", "PacketsDropCount"}
HA_SET = {"HaActive", "HaStandby", "FailoverCount"}


class CloudWatchHarness(ci.Harness):
    """The control_integration pair with a cloudwatch: section and the CloudWatch endpoint."""

    def config(self, k, extra_ha="", aws_override=None):
        path = super().config(k, extra_ha, aws_override)
        with open(path) as f:
            text = f.read()
        text = text.replace(f"    imds: {self.aws}/{ci.INSTANCES[k]['id']}\n",
                            f"    imds: {self.aws}/{ci.INSTANCES[k]['id']}\n"
                            f"    cloudwatch: {self.aws}\n")
        check(f"cloudwatch: {self.aws}" in text, "endpoint added to the test config")
        text += ("cloudwatch:\n  enabled: true\n  metrics: full\n"
                 f"  pair_name: {PAIR}\n  interval: 1s\n")
        with open(path, "w") as f:
            f.write(text)
        return path

    def metrics_of(self, k):
        """The datapoints instance k sent, oldest first."""
        with urllib.request.urlopen(self.aws + "/_fake/metrics", timeout=5) as r:
            everything = json.loads(r.read())
        return [d for d in everything if d["instance_id"] == ci.INSTANCES[k]["id"]]


def nat(h, k):
    """`eipgatectl --json stats` of instance k's dataplane: its NAT Gateway counters."""
    out = subprocess.run([h.ctl_bin, "--socket", os.path.join(h.dir, k, "dataplane.sock"),
                          "--json", "stats"], capture_output=True, text=True, timeout=10)
    check(out.returncode == 0, f"eipgatectl stats: {out.stdout}{out.stderr}")
    return json.loads(out.stdout)["nat_gateway"]


def by_name(points):
    out = {}
    for d in points:
        out.setdefault(d["metric_name"], []).append(d)
    return out


def intervals(points):
    """Datapoints grouped per interval (HaActive is in every one), oldest first."""
    return [d for d in points if d["metric_name"] == "HaActive"]


def run(h):
    h.pair_up(flows=300)
    t_paired = time.time()
    # Nothing touched A's counters since its daemon took its baseline sample at start.
    base = nat(h, "a")
    # Traffic while A is active: 200 more flows, port allocation errors and drops.
    h.dp("a", "test_emit", {"start": 5000, "count": 200})
    h.dp("a", "test_counters", {"add": {"ErrorPortAllocation": 7, "PacketsDropCount": 11,
                                        "BytesInFromSource": 4242}})
    # Two PutMetricData calls throttled: retried with backoff, nothing lost.
    h.aws_post("/_fake/faults", {"throttle_next": 2, "actions": ["PutMetricData"]})
    end = nat(h, "a")
    t_end = time.time()
    # Every interval up to this one is published: wait for two of A's intervals sampled after.
    wait_for(lambda: len([d for d in intervals(h.metrics_of("a"))
                          if d["received_at"] > t_end + 1.0]) >= 2, 20,
             "two of A's intervals after the changes")
    a_points = h.metrics_of("a")
    a = by_name(a_points)
    check(set(a) == DEFAULT_SET | set(end), f"A's metric names {sorted(a)}")
    for d in a_points:
        check(d["namespace"] == "eipgate", f"namespace {d['namespace']}")
        check(d["dimensions"] == DIMENSIONS, f"dimensions {d['dimensions']}")
        want_unit = "Bytes" if d["metric_name"].startswith("Bytes") else "Count"
        check(d["unit"] == want_unit, f"{d['metric_name']} unit {d['unit']}")
    for name, value in end.items():
        if name == "ActiveConnectionCount":
            continue
        got = sum(d["value"] for d in a[name])
        check(got == value - base.get(name, 0),
              f"{name}: A's datapoints sum to {got}, its dataplane counted "
              f"{value - base.get(name, 0)} ({base.get(name, 0)} -> {value}); datapoints "
              f"{[(d['timestamp'], d['value']) for d in a[name]]}")
    check(a["ActiveConnectionCount"][-1]["value"] == end["ActiveConnectionCount"] == 500,
          f"ActiveConnectionCount {a['ActiveConnectionCount'][-1]['value']}")
    check(sum(d["value"] for d in a["ErrorPortAllocation"]) == 7, "ErrorPortAllocation 7")
    check(all(d["value"] == 1 for d in intervals(a_points) if d["received_at"] > t_paired),
          "A: HaActive 1 in every interval since it is active")
    check(all(d["value"] == 0 for d in a["HaStandby"]), "A: HaStandby 0")

    b_points = h.metrics_of("b")
    b = by_name(b_points)
    check(set(b) == HA_SET, f"the standby sends only the HA metrics, got {sorted(b)}")
    check(all(d["value"] == 0 for d in b["HaActive"]), "B: HaActive 0 while standby")
    check(b["HaStandby"][-1]["value"] == 1, "B: HaStandby 1 (standby, in sync)")
    check(sum(d["value"] for d in b["FailoverCount"]) == 0, "B: no failover yet")
    check(all(d["dimensions"] == DIMENSIONS for d in b_points), "B's dimensions")
    sa, sb = h.status("a")["cloudwatch"], h.status("b")["cloudwatch"]
    check(sa["retries"] + sb["retries"] == 2, f"2 throttles retried: {sa['retries']} + {sb['retries']}")
    check(sa["intervals_failed"] == sb["intervals_failed"] == 0, "no interval failed")
    check(sa["intervals_dropped"] == 0, "no interval dropped")
    check(sa["availability_zone"] == AZ, "AZ from IMDS placement")

    # Takeover while CloudWatch answers in 2 s: the loop does not wait for it.
    h.aws_post("/_fake/faults", {"action_latency_ms": {"PutMetricData": 2000}})
    n_before = len(b_points)
    took = ci.kill_a_and_wait_takeover(h)
    check(took < 5.0, f"takeover took {took:.2f} s with a slow CloudWatch")
    h.aws_post("/_fake/faults", {"action_latency_ms": {}})
    b_flows = h.dp("b", "test_state")["flows"]

    def b_failover_seen():
        pts = h.metrics_of("b")[n_before:]
        got = by_name(pts)
        return got if sum(d["value"] for d in got.get("FailoverCount", [])) >= 1 and \
            any(d["value"] == 1 for d in got.get("HaActive", [])) and \
            "ActiveConnectionCount" in got else None

    after = wait_for(b_failover_seen, 20, "B's FailoverCount 1 and HaActive 1")
    time.sleep(2.5)  # further intervals: the failover is counted once
    b_all = by_name(h.metrics_of("b"))
    check(sum(d["value"] for d in b_all["FailoverCount"]) == 1,
          f"B: FailoverCount sums to {sum(d['value'] for d in b_all['FailoverCount'])}")
    flips = [d["value"] for d in b_all["HaActive"]]
    check(flips[0] == 0 and flips[-1] == 1 and flips == sorted(flips),
          f"B's HaActive flips 0 -> 1 once: {flips}")
    check(after["ActiveConnectionCount"][-1]["value"] == b_flows,
          f"B now sends the traffic metrics: ActiveConnectionCount "
          f"{after['ActiveConnectionCount'][-1]['value']} = {b_flows} flows")
    m = h.metrics("b")
    check(m.get('eipgate_cloudwatch_datapoints_total{result="sent"}', 0) > 0,
          "/metrics: eipgate_cloudwatch_datapoints_total")
    check('eipgate_cloudwatch_intervals_total{result="dropped"}' in m,
          "/metrics: eipgate_cloudwatch_intervals_total")
    sb = h.status("b")["cloudwatch"]
    # CloudWatch failing slowly (1 s a call, every call throttled): B keeps retrying with backoff;
    # SIGTERM still stops it at once (a backoff is cut short; a request in flight ends within
    # aws.timeouts.request, 3 s here).
    h.aws_post("/_fake/faults", {"throttle_next": 1000, "actions": ["PutMetricData"],
                                 "action_latency_ms": {"PutMetricData": 1000}})
    wait_for(lambda: h.status("b")["cloudwatch"]["retries"] > sb["retries"], 10,
             "B retrying a throttled PutMetricData")
    t_stop = time.monotonic()
    p = h.kill("ctl_b", signal.SIGTERM)
    stopped = time.monotonic() - t_stop
    check(p.returncode == 0, f"B exited {p.returncode} on SIGTERM")
    check(stopped < 4.0, f"B took {stopped:.1f} s to stop while CloudWatch was failing")
    print(f"CLOUDWATCH: A sent {len(a_points)} datapoints ({len(intervals(a_points))} intervals),"
          f" B {sb['datapoints_sent']} datapoints in {sb['requests_ok']} calls; takeover with "
          f"PutMetricData at 2 s/call: {took * 1000:.0f} ms; B FailoverCount 1, HaActive {flips};"
          f" SIGTERM during throttled retries: stopped in {stopped * 1000:.0f} ms")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    return ci.run_scenario("cloudwatch", run, CloudWatchHarness(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
