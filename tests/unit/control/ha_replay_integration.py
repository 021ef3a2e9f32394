#!/usr/bin/python3
"""Replayed heartbeat-link traffic against two real eipgate-control daemons, on
loopback with the harness of control_integration.py (fake EC2/IMDS, fake dataplanes):

  ha_replay_integration.py EIPGATE_CONTROL EIPGATECTL

A's datagrams to B pass through a tap (a UDP relay on 127.0.0.2 that forwards from 127.0.0.1, so
B still sees A's address). The tap records everything A sends, including the request of a
planned handover, which it withholds (A's handover times out; A stays active). B is then killed
and restarted; 11 s after the capture the recording is replayed into B. B must stay standby, A
active, the routes at A, and B must count the replayed datagrams as `unbound`. Last, a
3,000-byte datagram to B must show as a `too_long` drop in its status and /metrics.
"""

import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import control_integration as ci  # noqa: E402

HANDOVER_REQUEST = 5  # wire type byte (offset 5)


class Tap:
    """Relays A -> B, recording each datagram; can withhold handover requests."""

    def __init__(self, to_port):
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.bind((ci.INSTANCES["b"]["addr"], 0))
        self.listen.settimeout(0.1)
        self.port = self.listen.getsockname()[1]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.out.bind((ci.INSTANCES["a"]["addr"], 0))
        self.to = (ci.INSTANCES["b"]["addr"], to_port)
        self.recording = False
        self.withhold_handover = False
        self.captured = []
        self.withheld = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data, _ = self.listen.recvfrom(4096)
            except socket.timeout:
                continue
            if self.recording:
                self.captured.append(data)
            if self.withhold_handover and len(data) > 5 and data[5] == HANDOVER_REQUEST:
                self.withheld += 1
                continue
            self.out.sendto(data, self.to)

    def replay(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ci.INSTANCES["a"]["addr"], 0))  # the peer's address, as a forger on-path would
        for d in self.captured:
            s.sendto(d, self.to)
        s.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.listen.close()
        self.out.close()


class TappedHarness(ci.Harness):
    """A's peer is the tap; B's configuration is unchanged."""

    tap = None

    def config(self, k, extra_ha="", aws_override=None):
        path = super().config(k, extra_ha, aws_override)
        if k == "a" and self.tap is not None:
            text = open(path).read()
            peer = f"    - address: {ci.INSTANCES['b']['addr']}\n      port: {self.ports['b']}\n"
            ci.check(peer in text, "A's config names B as its peer")
            text = text.replace(peer, peer.replace(str(self.ports["b"]), str(self.tap.port)))
            with open(path, "w") as f:
                f.write(text)
        return path


def drops(h, k):
    return h.status(k)["heartbeats"]["drops"]


def scenario(h):
    h.tap = Tap(h.ports["b"])
    try:
        h.pair_up(flows=100)
        h.tap.recording = True
        h.tap.withhold_handover = True
        time.sleep(0.5)
        # eipgatectl waits for the handover and reports that it did not happen: expected here.
        subprocess.run([h.ctl_bin, "--control-socket", os.path.join(h.dir, "a", "control.sock"),
                        "failover"], capture_output=True, text=True, timeout=30)
        ci.wait_for(lambda: h.tap.withheld >= 1, 5, "the tap withheld the handover request")
        time.sleep(0.5)
        h.tap.recording = False
        h.tap.withhold_handover = False
        captured_at = time.monotonic()
        ci.check(h.role("a") == "active" and h.role("b") == "standby", "roles unchanged")
        # A's handover timed out (handover_timeout 3s) and A stayed active.
        ci.check(h.role("a") == "active", "A still active after its handover timed out")

        h.kill("ctl_b")
        h.start_control("b")
        ci.wait_for(lambda: h.role("b") == "standby", 10, "restarted B standby")
        time.sleep(max(0.0, 11.0 - (time.monotonic() - captured_at)))
        before = drops(h, "b").get("unbound", 0)
        n = len(h.tap.captured)
        print(f"replaying {n} captured datagrams (handover requests included) into the "
              f"restarted B, {time.monotonic() - captured_at:.1f} s after the capture")
        h.tap.replay()
        time.sleep(2.0)
        st = h.status("b")
        ci.check(st["role"] == "standby", f"B is {st['role']} after the replay")
        ci.check(st["takeovers"] == 0, "B made no takeover")
        ci.check(h.role("a") == "active", "A is still active")
        ci.check(h.owner_is("a"), "routes and service IP still at A")
        unbound = drops(h, "b").get("unbound", 0) - before
        ci.check(unbound >= n, f"B counted {unbound} unbound drops for {n} replayed datagrams")
        print(f"B: standby, no takeover; {unbound} datagrams dropped as unbound")

        # A datagram over 2,048 bytes is counted with the other drops (status and /metrics).
        too_long = drops(h, "b").get("too_long", 0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((ci.INSTANCES["a"]["addr"], 0))
        s.sendto(b"\x45" * 3000, h.tap.to)
        s.close()
        ci.wait_for(lambda: drops(h, "b").get("too_long", 0) == too_long + 1, 5,
                    "B counts the 3000-byte datagram as too_long")
        key = 'eipgate_ha_heartbeats_dropped_total{reason="too_long"}'
        ci.wait_for(lambda: h.metrics("b").get(key) == too_long + 1, 5, f"{key} in B's /metrics")
    finally:
        h.tap.close()


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    return ci.run_scenario("ha_replay", scenario, TappedHarness(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
