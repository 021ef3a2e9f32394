#!/usr/bin/python3
"""Translation logs to CloudWatch Logs, end to end on loopback: eipgate-control (instance A of
control_integration.py, alone) with

  cloudwatch_logs: {enabled: true, log_group: /eipgate/translations, path: <dir>/a/tx.jsonl,
                    interval: 1s, byte_budget: 64K}

and aws.endpoints.logs at fake_aws.py, which keeps every event PutLogEvents sent (/_fake/logs).
The test writes the JSON-lines file as the dataplane does (whole lines, rotation by rename and a
new file) and checks:
  - lines already in the file when the daemon starts are not sent (it starts at the end);
  - the events in the stream (named after the instance id) are the file's lines, in order, with
    the time of each record's "t", across two throttled PutLogEvents (retried) and a rotation
    (the lines written to the old file just before the rename included);
  - a restart resumes at the end of the file: lines written while the daemon was down are not
    sent, the ones after are, and the existing stream is reused;
  - a burst over the byte budget: the lines over it are dropped and counted, sent + dropped =
    read, what arrived is the start of the burst in order, the counts in status and /metrics.

  cloudwatch_logs_integration.py EIPGATE_CONTROL EIPGATECTL
"""

import datetime
import json
import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import control_integration as ci  # noqa: E402
from control_integration import check, wait_for  # noqa: E402

GROUP = "/eipgate/translations"
STREAM = ci.INSTANCES["a"]["id"]  # the default stream: the instance id
BUDGET = 65536


class LogsHarness(ci.Harness):
    def tx_path(self, k):
        return os.path.join(self.dir, k, "tx.jsonl")

    def config(self, k, extra_ha="", aws_override=None):
        path = super().config(k, extra_ha, aws_override)
        with open(path) as f:
            text = f.read()
        text = text.replace(f"    imds: {self.aws}/{ci.INSTANCES[k]['id']}\n",
                            f"    imds: {self.aws}/{ci.INSTANCES[k]['id']}\n"
                            f"    logs: {self.aws}\n")
        check(f"logs: {self.aws}" in text, "endpoint added to the test config")
        text += (f"cloudwatch_logs:\n  enabled: true\n  log_group: {GROUP}\n"
                 f"  path: {self.tx_path(k)}\n  interval: 1s\n  byte_budget: {BUDGET}\n")
        with open(path, "w") as f:
            f.write(text)
        return path

    def events(self):
        with urllib.request.urlopen(self.aws + "/_fake/logs", timeout=5) as r:
            return json.loads(r.read()).get(GROUP, {}).get(STREAM, [])

    def logs_status(self):
        return self.status("a")["cloudwatch_logs"]


class Writer:
    """Writes translation-log lines as the dataplane does: whole lines, "t" increasing."""

    def __init__(self, path):
        self.path = path
        self.t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        self.n = 0

    def line(self):
        self.t += datetime.timedelta(milliseconds=7)
        self.n += 1
        port = 1024 + self.n % 60000
        return json.dumps({
            "t": self.t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.t.microsecond // 1000:03d}Z",
            "ev": "open", "proto": "tcp", "in": f"10.0.1.10:{40000 + self.n % 20000}",
            "out": f"203.0.113.1:{port}", "remote": "198.51.100.7:443", "rule": None,
            "n": self.n}, separators=(",", ":"))

    def write(self, count):
        lines = [self.line() for _ in range(count)]
        with open(self.path, "a") as f:
            f.write("".join(line + "\n" for line in lines))
        return lines


def epoch_ms(line):
    t = json.loads(line)["t"]
    d = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1000 + 0.5)


def wait_events(h, n, what, timeout=20):
    return wait_for(lambda: h.events() if len(h.events()) >= n else None, timeout, what)


def run(h):
    h.start_aws()
    h.aws_post("/_fake/logs", {"create_group": GROUP})
    h.start_dataplane("a")
    w = Writer(h.tx_path("a"))
    w.write(25)  # before the daemon starts: not sent
    h.start_control("a")
    wait_for(lambda: "events_sent" in h.logs_status(), 10, "the shipper started")
    s = h.logs_status()
    check(s["log_stream"] == STREAM and s["path"] == h.tx_path("a"), f"status {s}")

    # Lines, two throttled PutLogEvents on the way (retried: nothing lost).
    h.aws_post("/_fake/faults", {"throttle_next": 2, "actions": ["PutLogEvents"]})
    sent = w.write(100)
    got = wait_events(h, 100, "the first 100 lines")
    check([e["message"] for e in got] == sent, "events = the file's lines, in order")
    check([e["timestamp"] for e in got] == [epoch_ms(x) for x in sent], "timestamps from 't'")
    check(h.logs_status()["retries"] == 2, f"2 retries: {h.logs_status()['retries']}")

    # Rotation as the dataplane does it: path -> path.1, a new path. The old file's last lines are
    # written just before the rename, after the shipper's last read.
    sent += w.write(20)
    os.rename(h.tx_path("a"), h.tx_path("a") + ".1")
    sent += w.write(30)
    got = wait_events(h, len(sent), "the lines of both files")
    check([e["message"] for e in got] == sent, "events = both files' lines, in order")
    wait_for(lambda: h.logs_status()["rotations"] == 1, 10, "one rotation followed")

    # Restart: resumes at the end of the file (lines written while it is down are not sent).
    p = h.kill("ctl_a", signal.SIGTERM)
    check(p.returncode == 0, f"A exited {p.returncode} on SIGTERM")
    missed = w.write(10)
    t_restart = time.monotonic()
    h.start_control("a")
    wait_for(lambda: "events_sent" in h.logs_status(), 10, "the shipper started again")
    sent += w.write(10)
    got = wait_events(h, len(sent), "the lines after the restart")
    check([e["message"] for e in got] == sent,
          f"after a restart only the new lines: {len(got)} events")
    check(not set(missed) & {e["message"] for e in got}, "lines written while down not sent")

    # A burst far over the byte budget (64 KiB a minute, partly spent): drops counted.
    before = len(got)
    burst = w.write(2000)
    wait_for(lambda: h.logs_status()["lines_read"] == 10 + 2000 and
             h.logs_status()["queued_events"] == 0 and
             h.logs_status()["events_sent"] + h.logs_status()["events_dropped_budget"] ==
             10 + 2000, 20, "the burst read, sent or dropped")
    elapsed = time.monotonic() - t_restart
    s = h.logs_status()
    got = h.events()
    arrived = [e["message"] for e in got[before:]]
    check(s["events_dropped_budget"] > 1000, f"most of the burst dropped: {s}")
    check(len(arrived) == s["events_sent"] - 10, f"{len(arrived)} events arrived, status {s}")
    check(arrived == burst[:len(arrived)], "what arrived is the burst's start, in order")
    sent_bytes = sum(len(x.encode()) + 26 for x in sent[-10:] + arrived)
    # A full bucket at start, refilled at BUDGET a minute since: never more than that.
    check(sent_bytes <= BUDGET + BUDGET * elapsed / 60,
          f"{sent_bytes} bytes sent in the {elapsed:.1f} s since the restart: over the budget")
    check(s["bytes_dropped"] == sum(len(x.encode()) + 26 for x in burst[len(arrived):]),
          f"bytes_dropped {s['bytes_dropped']}")
    check(s["events_failed"] == 0 and s["events_dropped_queue"] == 0, f"no other loss: {s}")
    # /metrics is refreshed from the status on the daemon's metrics period: wait for it.
    # Drops are counted when a line is read, sends when its batch is answered: a scrape can fall
    # between the two, so wait until both counters have caught up.
    m = wait_for(lambda: (lambda m: m if m.get(
        'eipgate_cloudwatch_logs_events_total{result="dropped_budget"}') ==
        s["events_dropped_budget"] and m.get(
        'eipgate_cloudwatch_logs_events_total{result="sent"}') == s["events_sent"]
        else None)(h.metrics("a")), 10, "/metrics: dropped_budget and sent")
    check(m.get('eipgate_cloudwatch_logs_events_total{result="sent"}') == s["events_sent"],
          "/metrics: sent")
    check(m.get('eipgate_cloudwatch_logs_bytes_total{result="dropped"}') == s["bytes_dropped"],
          "/metrics: bytes dropped")
    check(m.get('eipgate_cloudwatch_logs_requests_total{result="ok"}', 0) >= 2,
          "/metrics: requests")
    print(f"CLOUDWATCH_LOGS: {len(got)} events in {GROUP}/{STREAM}; rotation followed; restart "
          f"resumed at the end; burst of 2000: {len(arrived)} sent, "
          f"{s['events_dropped_budget']} dropped over the budget")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    return ci.run_scenario("cloudwatch_logs", run, LogsHarness(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
