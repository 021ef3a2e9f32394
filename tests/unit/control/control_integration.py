#!/usr/bin/python3
"""Integration tests of eipgate-control on loopback: two daemons (A priority 200 on 127.0.0.1,
B priority 100 on 127.0.0.2), one fake EC2/IMDS (tests/sim/fake_aws.py) and two fake dataplanes
(fake_dataplane.py). One scenario per run:

  control_integration.py EIPGATE_CONTROL EIPGATECTL SCENARIO
Scenarios: startup, takeover, rejoin, failover, partition, throttle, throttle_burst, bad_config, throughput,
metrics, egress,
fallback, fallback_nat (cross-AZ fallback: the pair rescues a third table owned by another pair,
i-0ccc...1/2, added to a copy of example_state.json).

partition re-runs itself in a network namespace of its own (unshare --net; root) and cuts the
heartbeat link with an nftables rule there, from outside the daemons.
"""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FAKE_AWS = os.path.join(ROOT, "tests", "sim", "fake_aws.py")
STATE = os.path.join(ROOT, "tests", "sim", "example_state.json")
FAKE_DP = os.path.join(HERE, "fake_dataplane.py")
PY = "/usr/bin/python3"

INSTANCES = {
    "a": {"id": "i-0aaaaaaaaaaaaaaa1", "mac": "0e:00:00:00:0a:02", "eni": "eni-0aaaaaaaaaaaaaad1",
          "addr": "127.0.0.1", "priority": 200},
    "b": {"id": "i-0bbbbbbbbbbbbbbb2", "mac": "0e:00:00:00:0b:02", "eni": "eni-0bbbbbbbbbbbbbbd2",
          "addr": "127.0.0.2", "priority": 100},
}
TABLES = ["rtb-0aa00000000000001", "rtb-0aa00000000000002"]
SERVICE_IP = "10.0.0.100"


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def wait_for(pred, timeout, what, step=0.02):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = pred()
            if last:
                return last
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(step)
    raise Fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_tcp_port(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_udp_port(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def jsonl_call(path, cmd, args=None, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall((json.dumps({"cmd": cmd, "args": args or {}}) + "\n").encode())
    buf = b""
    while b"\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    resp = json.loads(buf.split(b"\n")[0])
    if not resp.get("ok"):
        raise ValueError(resp.get("error"))
    return resp["result"]


class Harness:
    def __init__(self, control_bin, ctl_bin):
        self.control_bin = control_bin
        self.ctl_bin = ctl_bin
        self.dir = tempfile.mkdtemp(prefix="eipgate-control-test-")
        self.procs = {}
        self.logs = {}
        self.ports = {k: free_udp_port(v["addr"]) for k, v in INSTANCES.items()}
        # Each daemon's /metrics on its own address (the default 127.0.0.1:9410 would collide).
        self.metrics_ports = {k: free_tcp_port(v["addr"]) for k, v in INSTANCES.items()}
        os.chmod(self.dir, 0o700)
        self.secret = os.path.join(self.dir, "ha.key")
        with open(self.secret, "w") as f:
            f.write("0123456789abcdef0123456789abcdef\n")
        os.chmod(self.secret, 0o600)

    # -- processes ---------------------------------------------------------------------------
    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        self.logs[name] = log.name
        e = dict(os.environ)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            e.pop(k, None)
        e.update(env or {})
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=e,
                                            start_new_session=True)
        return self.procs[name]

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p

    def stop_controls_cleanly(self):
        """SIGTERM (the clean stop path: exit 0) and no sanitizer report in any daemon log."""
        for name in [n for n in self.procs if n.startswith("ctl_")]:
            p = self.kill(name, signal.SIGTERM)
            check(p.returncode == 0, f"{name} exited {p.returncode} on SIGTERM")
        for name, path in self.logs.items():
            if name.startswith("ctl_"):
                text = open(path, errors="replace").read()
                for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                    check(bad not in text, f"{name}: {bad} in its log")

    def teardown(self, keep=False):
        for name in list(self.procs):
            self.kill(name)
        if keep:
            print(f"logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_aws(self, state=STATE):
        port_file = os.path.join(self.dir, "aws.port")
        self.spawn("aws", [PY, FAKE_AWS, "--state", state, "--port", "0", "--port-file", port_file])
        port = wait_for(lambda: open(port_file).read().strip(), 10, "fake_aws port")
        self.aws = f"http://127.0.0.1:{port}"

    def start_dataplane(self, k):
        sock = os.path.join(self.dir, k, "dataplane.sock")
        os.makedirs(os.path.dirname(sock), mode=0o700, exist_ok=True)
        self.spawn("dp_" + k, [PY, FAKE_DP, "--admin-socket", sock])
        wait_for(lambda: os.path.exists(os.path.join(self.dir, k, "sync.sock")) and
                 self.dp(k, "test_state") is not None, 10, f"fake dataplane {k}")

    def config(self, k, extra_ha="", aws_override=None):
        me = INSTANCES[k]
        other = "b" if k == "a" else "a"
        aws = aws_override or f"""aws:
  route_tables:
    ids: [{TABLES[0]}, {TABLES[1]}]
  service_address: {{mode: secondary-ip, private_ip: {SERVICE_IP}}}
  endpoints:
    ec2: {self.aws}
    imds: {self.aws}/{me['id']}
  retry: {{max_attempts: 10, base_delay: 50ms, max_delay: 400ms}}
  timeouts: {{connect: 1s, request: 3s}}
"""
        text = f"""# eipgate-control test config ({k})
mode: one-armed
admin:
  socket: {self.dir}/{k}/dataplane.sock
{aws}ha:
  priority: {me['priority']}
  peers:
    - address: {INSTANCES[other]['addr']}
      port: {self.ports[other]}
  bind_address: {me['addr']}
  port: {self.ports[k]}
  secret_file: {self.secret}
  heartbeat_interval: 100ms
  miss_count: 4
  hold_down: 1s
  route_check_interval: 1s
  takeover_timeout: 10s
  handover_timeout: 3s
  sync: {{flush_interval: 5ms, resync_retry: 500ms}}
  control_socket: {self.dir}/{k}/control.sock
  data_mac: "{me['mac']}"
  peer_eni: {INSTANCES[other]['eni']}
  metrics_listen: {me['addr']}:{self.metrics_ports[k]}
{extra_ha}"""
        path = os.path.join(self.dir, f"{k}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_control(self, k):
        self.spawn("ctl_" + k, [self.control_bin, "--config",
                                self.config(k, getattr(self, "extra_ha", ""))])
        wait_for(lambda: self.status(k), 10, f"control {k} socket")

    # -- queries -----------------------------------------------------------------------------
    def dp(self, k, cmd, args=None):
        return jsonl_call(os.path.join(self.dir, k, "dataplane.sock"), cmd, args)

    def status(self, k):
        return jsonl_call(os.path.join(self.dir, k, "control.sock"), "status")

    def control(self, k, cmd, args=None):
        return jsonl_call(os.path.join(self.dir, k, "control.sock"), cmd, args)

    def role(self, k):
        try:
            return self.status(k)["role"]
        except (OSError, ValueError):
            return None

    def metrics(self, k):
        """GET /metrics → {'name{labels}': value}."""
        url = f"http://{INSTANCES[k]['addr']}:{self.metrics_ports[k]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            check(r.status == 200, f"/metrics answered {r.status}")
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def aws_state(self):
        with urllib.request.urlopen(self.aws + "/_fake/state", timeout=5) as r:
            return json.loads(r.read())

    def aws_post(self, path, body):
        req = urllib.request.Request(self.aws + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"{}")

    def route_targets(self, state=None):
        state = state or self.aws_state()
        out = []
        for rt in state["route_tables"]:
            if rt["id"] in TABLES:
                for r in rt["routes"]:
                    if r["destination"] == "0.0.0.0/0":
                        out.append(r.get("network_interface_id"))
        return out

    def service_ip_eni(self, state=None):
        state = state or self.aws_state()
        for eni in state["network_interfaces"]:
            if SERVICE_IP in eni["private_ips"]:
                return eni["id"]
        return None

    def owner_is(self, k):
        s = self.aws_state()
        eni = INSTANCES[k]["eni"]
        return self.route_targets(s) == [eni, eni] and self.service_ip_eni(s) == eni

    def tables_equal(self, a="a", b="b"):
        ta, tb = self.dp(a, "test_table"), self.dp(b, "test_table")
        return ta["count"] == tb["count"] and ta["digest"] == tb["digest"], ta, tb

    # -- common setup ------------------------------------------------------------------------
    def pair_up(self, flows=500, state=STATE, extra_ha=""):
        self.extra_ha = extra_ha
        self.start_aws(state)
        self.start_dataplane("a")
        self.start_dataplane("b")
        if flows:
            self.dp("a", "test_emit", {"start": 0, "count": flows})  # A's table before start
        self.start_control("a")
        # Active is reported from the takeover decision on; a planned handover is refused until
        # the takeover (EC2 + GARP) is done, which a loaded machine can stretch past pair_up.
        wait_for(lambda: self.status("a")["role"] == "active" and
                 not self.status("a")["takeover_in_progress"], 10, "A active, takeover done")
        self.start_control("b")
        wait_for(lambda: self.role("b") == "standby", 10, "B standby")
        wait_for(lambda: self.tables_equal()[0], 10, "B holds A's flows")


# ----- scenarios -------------------------------------------------------------------------------

def scenario_startup(h):
    h.pair_up(flows=500)
    check(h.owner_is("a"), "routes and service IP still at A")
    check(h.dp("b", "test_table")["count"] == 500, "B got the 500 flows of the snapshot")
    check(h.dp("a", "test_state")["role"] == "active", "A's dataplane told it is active")
    check(h.dp("b", "test_state")["role"] == "standby", "B's dataplane told it is standby")
    # Live stream: new flows and deletes on A reach B.
    h.dp("a", "test_emit", {"start": 1000, "count": 300})
    h.dp("a", "test_emit", {"start": 0, "count": 100, "kind": 3})
    wait_for(lambda: h.tables_equal()[0], 5, "live events applied on B")
    check(h.dp("b", "test_table")["count"] == 700, "700 flows after 300 creates, 100 deletes")
    sa, sb = h.status("a"), h.status("b")
    check(sa["sync"]["sent"] >= 400 and sb["sync"]["applied"] >= 900, f"counters {sa['sync']} {sb['sync']}")
    check(sb["peer"]["state"] == "active" and sa["peer"]["state"] == "standby", "peer states")
    check(any("active" in d["decision"] for d in sa["decisions"]), "A logged its decision")
    # eipgatectl ha-status, table and JSON.
    out = subprocess.run([h.ctl_bin, "--control-socket", os.path.join(h.dir, "a", "control.sock"),
                          "ha-status"], capture_output=True, text=True, timeout=10)
    check(out.returncode == 0 and "active" in out.stdout and "sync:" in out.stdout, out.stdout + out.stderr)
    out = subprocess.run([h.ctl_bin, "--control-socket", os.path.join(h.dir, "b", "control.sock"),
                          "--json", "ha-status"], capture_output=True, text=True, timeout=10)
    check(out.returncode == 0 and json.loads(out.stdout)["role"] == "standby", out.stdout)


def kill_a_and_wait_takeover(h, timeout=8):
    t0 = time.monotonic()
    h.kill("ctl_a")
    wait_for(lambda: h.owner_is("b"), timeout, "routes + service IP at B")
    took = time.monotonic() - t0
    wait_for(lambda: h.role("b") == "active", 5, "B active")
    return took


def scenario_takeover(h):
    h.pair_up(flows=200)
    took = kill_a_and_wait_takeover(h)
    st = h.status("b")
    print(f"TAKEOVER kill -9 A -> both routes + {SERVICE_IP} on B: {took * 1000:.0f} ms "
          f"(dead interval 400 ms; B's own takeover {st['last_takeover_ms']} ms: {st['last_takeover']})")
    check(h.dp("b", "test_state")["announces"] >= 1, "B's dataplane announced (GARP)")
    check(h.dp("b", "test_state")["role"] == "active", "B's dataplane is active")
    check(h.dp("b", "test_table")["count"] == 200, "B kept the synced flows")
    # Only a hang fails here: the gap itself is measured by bench/failover.sh, not asserted.
    check(took < 30.0, f"takeover took {took:.2f}s")


def scenario_rejoin(h):
    h.pair_up(flows=200)
    kill_a_and_wait_takeover(h)
    # While A's control is down: B gets new flows, A's dataplane has a flow B never saw.
    h.dp("b", "test_emit", {"start": 5000, "count": 150})
    h.dp("a", "test_emit", {"start": 9000, "count": 20})
    h.start_control("a")
    wait_for(lambda: h.role("a") == "standby", 10, "A rejoins as standby")
    wait_for(lambda: h.tables_equal()[0], 10, "A receives B's full table (stale flows swept)")
    check(h.dp("a", "test_table")["count"] == 350, "A holds B's 350 flows")
    time.sleep(1.0)  # no preemption by default
    check(h.role("b") == "active" and h.role("a") == "standby", "B stays active")
    check(h.owner_is("b"), "routes stay at B")
    check(h.status("a")["sync"]["swept"] == 20, "A removed its 20 stale flows")


def scenario_failover(h):
    h.pair_up(flows=1000)
    h.dp("a", "test_emit", {"start": 20000, "count": 2000})
    before = h.dp("a", "test_table")
    out = subprocess.run([h.ctl_bin, "--control-socket", os.path.join(h.dir, "a", "control.sock"),
                          "failover"], capture_output=True, text=True, timeout=20)
    check(out.returncode == 0, f"eipgatectl failover: {out.returncode} {out.stdout} {out.stderr}")
    print("eipgatectl failover:", out.stdout.strip())
    wait_for(lambda: h.role("b") == "active" and h.role("a") == "standby", 5, "roles swapped")
    wait_for(lambda: h.owner_is("b"), 5, "routes + service IP at B")
    after_b = h.dp("b", "test_table")
    check(after_b["count"] == before["count"] and after_b["digest"] == before["digest"],
          f"zero loss: B {after_b['count']} flows vs A before {before['count']}")
    # The new active streams back to A.
    h.dp("b", "test_emit", {"start": 40000, "count": 100})
    wait_for(lambda: h.tables_equal()[0], 5, "A receives from the new active")
    check(h.dp("b", "test_state")["announces"] >= 1, "B announced")


PARTITION_TABLE = "eipgate_partition"


def partition(h, cut):
    """Cuts (or heals) the heartbeat link from outside the daemons, as the VPC simulator does: an
    nftables rule in this test's own network namespace (main() runs the partition scenario in one)
    drops every HA datagram to either daemon's HA port."""
    if cut:
        rules = (f"table inet {PARTITION_TABLE} {{\n"
                 f"  chain input {{\n"
                 f"    type filter hook input priority 0; policy accept;\n"
                 f"    udp dport {{ {h.ports['a']}, {h.ports['b']} }} counter drop\n"
                 f"  }}\n}}\n")
        subprocess.run(["nft", "-f", "-"], input=rules.encode(), check=True)
    else:
        subprocess.run(["nft", "delete", "table", "inet", PARTITION_TABLE], check=True)


def partition_dropped():
    out = subprocess.run(["nft", "list", "table", "inet", PARTITION_TABLE], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "counter packets" in line:
            return int(line.split("counter packets")[1].split()[0])
    return 0


def scenario_partition(h):
    h.pair_up(flows=50)
    partition(h, True)
    t0 = time.monotonic()
    samples = []
    while time.monotonic() - t0 < 6.0:
        s = h.aws_state()
        samples.append((time.monotonic() - t0, tuple(h.route_targets(s)), h.role("a"), h.role("b")))
        time.sleep(0.1)
    # After settling (B took over, A fenced at its next route check <= 1 s), nothing moves.
    settled = [x for x in samples if x[0] >= 2.0]
    owners = {x[1] for x in settled}
    check(len(owners) == 1, f"route owner changed during the partition: {owners}")
    owner_eni = next(iter(owners))
    check(len(set(owner_eni)) == 1, f"tables disagree: {owner_eni}")
    owner = "a" if owner_eni[0] == INSTANCES["a"]["eni"] else "b"
    other = "b" if owner == "a" else "a"
    for t, _, ra, rb in settled:
        roles = {"a": ra, "b": rb}
        check(roles[owner] == "active", f"t={t:.1f}s the route owner {owner} is {roles[owner]}")
        check(roles[other] != "active", f"t={t:.1f}s {other} also active")
    # A takeover rewrites the tables one ReplaceRoute at a time, so a sample may catch them
    # mid-way (one at B, one still at A): count changes of the agreed owner, and require the
    # mixed states to be brief.
    agreed = [x[1] for x in samples if len(set(x[1])) == 1]
    flips = sum(1 for i in range(1, len(agreed)) if agreed[i] != agreed[i - 1])
    mixed = sum(1 for x in samples if len(set(x[1])) != 1)
    check(mixed <= 5, f"route tables disagreed in {mixed} samples (0.1 s apart)")
    print(f"PARTITION: route owner {owner}, {flips} route change(s) in 6 s, other side "
          f"{h.status(other)['role']} (fenced={h.status(other)['fenced']})")
    check(flips <= 1, f"{flips} route changes")
    check(partition_dropped() > 0, "the partition rule dropped no HA datagram")
    # Heal: one active remains, the other rejoins as standby and gets the table.
    partition(h, False)
    wait_for(lambda: h.role(other) == "standby" and h.role(owner) == "active", 5, "healed")
    time.sleep(1.0)
    check(h.owner_is(owner), "routes unchanged after healing")


def throttled_takeover(h, throttles, label):
    """Kills A with the next `throttles` AssignPrivateIpAddresses/ReplaceRoute calls answered
    RequestLimitExceeded; B must converge, having retried each one. Returns B's status."""
    h.pair_up(flows=10)
    h.aws_post("/_fake/faults", {"throttle_next": throttles,
                                 "actions": ["AssignPrivateIpAddresses", "ReplaceRoute"]})
    took = kill_a_and_wait_takeover(h, timeout=15)
    st = h.status("b")
    with urllib.request.urlopen(h.aws + "/_fake/calls", timeout=5) as r:
        calls = json.loads(r.read())
    calls = calls.get("calls", calls) if isinstance(calls, dict) else calls
    throttled = sum(1 for c in calls if c.get("code") == "RequestLimitExceeded")
    print(f"{label}: {throttled} RequestLimitExceeded answers, B retried "
          f"{st['aws']['retries']} times, converged in {took * 1000:.0f} ms")
    check(throttled == throttles, f"{throttled} throttled calls")
    check(st["aws"]["retries"] >= throttles, f"retries {st['aws']['retries']}")
    return st


def scenario_throttle(h):
    throttled_takeover(h, 4, "THROTTLE")


def scenario_throttle_burst(h):
    """Twelve RequestLimitExceeded answers in a row during the takeover (the drill that once gave a
    2.5 s gap): the takeover's short backoff outlasts them and B converges; the address and the
    routes are issued side by side (takeover_test.cc asserts the schedule)."""
    st = throttled_takeover(h, 12, "THROTTLE BURST")
    check(st["takeover_failures"] == 0, f"takeover failures {st['takeover_failures']}")


def scenario_bad_config(h):
    h.start_aws()
    h.start_dataplane("a")
    path = h.config("a", extra_ha="  heartbeat_intervall: 100ms\n")
    r = subprocess.run([h.control_bin, "--config", path], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0, "bad ha: key accepted")
    check(f"{path}:" in r.stderr and "heartbeat_intervall" in r.stderr, r.stderr)
    lineno = [i + 1 for i, l in enumerate(open(path)) if "heartbeat_intervall" in l][0]
    check(f"{path}:{lineno}:" in r.stderr, f"line {lineno} not named: {r.stderr}")
    print("bad ha:", r.stderr.strip())
    bad_aws = """aws:
  route_tables: {ids: [rtb-nothex]}
  service_address: {mode: secondary-ip}
"""
    path = h.config("a", aws_override=bad_aws)
    r = subprocess.run([h.control_bin, "--config", path], capture_output=True, text=True, timeout=10)
    check(r.returncode != 0 and f"{path}:" in r.stderr, r.stderr)
    print("bad aws:", r.stderr.strip())
    # A secret file with group/other bits is refused with the fix named.
    os.chmod(h.secret, 0o644)
    r = subprocess.run([h.control_bin, "--config", h.config("a")], capture_output=True, text=True,
                       timeout=10)
    os.chmod(h.secret, 0o600)
    check(r.returncode != 0 and "chmod" in r.stderr and "0123456789" not in r.stderr, r.stderr)


def scenario_throughput(h):
    n = 100_000
    h.pair_up(flows=0)
    base = h.dp("b", "test_table")["applied"]
    t0 = time.monotonic()
    h.dp("a", "test_emit", {"start": 100_000, "count": n})
    t_emitted = time.monotonic()
    wait_for(lambda: h.dp("b", "test_table")["applied"] - base >= n, 60, "B applied every event",
             step=0.01)
    t1 = time.monotonic()
    ok, ta, tb = h.tables_equal()
    check(ok, f"tables differ: A {ta['count']} B {tb['count']}")
    st = h.status("b")
    rate = n / (t1 - t0)
    print(f"THROUGHPUT: {n} Create events dataplane A -> control A -> UDP -> control B -> "
          f"dataplane B in {(t1 - t0) * 1000:.0f} ms = {rate:,.0f} flows/s; emit took "
          f"{(t_emitted - t0) * 1000:.0f} ms, lag after the last emit {(t1 - t_emitted) * 1000:.0f} ms; "
          f"gaps {st['sync']['gaps']}, resyncs {st['sync']['resync_requests']}")


def scenario_egress(h):
    probes = ('  probes: {interval: 200ms, timeout: 100ms, fail_threshold: 3, '
              'targets: ["203.0.113.9:443"]}\n')
    h.pair_up(flows=50, extra_ha=probes)
    wait_for(lambda: h.status("a")["egress_probes"]["ok"] >= 2, 5, "A's probes answered")
    check(h.status("b")["egress_probes"]["ok"] == 0, "the standby does not probe")
    h.dp("a", "test_egress", {"ok": False})
    t0 = time.monotonic()
    wait_for(lambda: h.role("b") == "active", 5, "B takes over after A's probes fail")
    wait_for(lambda: h.owner_is("b"), 5, "routes + service IP at B")
    print(f"EGRESS: B active {time.monotonic() - t0:.2f} s after A's egress broke "
          "(3 probes x 200 ms)")
    sa = h.status("a")
    check(sa["role"] == "failed", f"A is failed, not {sa['role']}")
    check(any("egress probes failed" in d["decision"] for d in sa["decisions"]),
          "A's decision names the probes")
    check(sa["egress_probes"]["failing"] and "forgiven_in_ms" in sa["egress_probes"],
          f"A owes a backoff before it is eligible again: {sa['egress_probes']}")
    wait_for(lambda: h.metrics("a").get("eipgate_egress_probes_failing") == 1, 5,
             "A's /metrics: eipgate_egress_probes_failing 1")
    time.sleep(1.5)  # longer than hold_down (1 s): A must not come back while in doubt
    check(h.role("a") == "failed" and h.role("b") == "active", "no flapping back to A")
    wait_for(lambda: h.status("b")["egress_probes"]["ok"] >= 2, 5, "B's probes answered")
    # B dies: A's doubt is forgiven at once (a NAT with doubtful egress beats none).
    h.kill("ctl_b")
    wait_for(lambda: h.role("a") == "active", 5, "A takes over when B is gone")
    wait_for(lambda: h.owner_is("a"), 5, "routes + service IP back at A")


def scenario_metrics(h):
    h.pair_up(flows=120)
    role_active = 'eipgate_ha_role{role="active"}'
    # Published once a second by the daemon: poll until the first snapshot is there.
    ma = wait_for(lambda: (m := h.metrics("a")).get(role_active) == 1 and
                  "eipgate_natgw_active_connection_count" in m and m, 5, "A's /metrics")
    flows = h.dp("a", "test_state")["flows"]
    check(ma["eipgate_natgw_active_connection_count"] == flows,
          f"ActiveConnectionCount {ma['eipgate_natgw_active_connection_count']} != {flows} flows")
    check(ma['eipgate_ha_role{role="standby"}'] == 0, "A is not standby")
    check(ma["eipgate_dataplane_up"] == 1, "dataplane_up")
    check(ma["eipgate_natgw_bytes_out_to_destination"] == 1000 * flows, "BytesOutToDestination")
    check(ma['eipgate_dataplane_drops_total{reason="no_flow_outside"}'] == 4, "drop reasons")
    check(ma['eipgate_ena_pps_allowance_exceeded{port="outside"}'] == 7, "ENA allowance")
    check(not any('port="inside"' in k for k in ma), "no ENA series for a non-ENA port")
    # B: the standby's sync figures.
    mb = wait_for(lambda: (m := h.metrics("b")).get(
        'eipgate_ha_sync_events_total{direction="applied"}', 0) >= 120 and m, 5, "B's sync figures")
    check(mb['eipgate_ha_role{role="standby"}'] == 1, "B standby")
    check(mb['eipgate_ha_sync_events_total{direction="received"}'] >= 120, "received")
    check("eipgate_ha_sync_lag_events" in mb, "sync lag")
    check(mb["eipgate_ha_heartbeats_received_total"] > 0, "heartbeats received")
    check(mb["eipgate_ha_peer_up"] == 1, "peer up")
    failovers = mb["eipgate_ha_failovers_total"]
    kill_a_and_wait_takeover(h)
    mb = wait_for(lambda: (m := h.metrics("b")).get("eipgate_ha_failovers_total") == failovers + 1
                  and m.get(role_active) == 1 and m, 5, "B's failovers_total + 1")
    check(mb.get("eipgate_ha_last_takeover_seconds", 0) > 0, "last takeover duration")
    print(f"METRICS: A {len(ma)} series, B {len(mb)} series; B failovers_total "
          f"{failovers:.0f} -> {mb['eipgate_ha_failovers_total']:.0f}")


# -- cross-AZ fallback: another AZ's pair (c1, c2) owns OTHER_TABLE; our pair rescues it.
OTHER = ["i-0ccccccccccccccc1", "i-0ccccccccccccccc2"]
OTHER_ENI = "eni-0cccccccccccccd01"
OTHER_TABLE = "rtb-0cc00000000000001"
NAT = "nat-0aa00000000000001"


def fallback_state(h):
    st = json.load(open(STATE))
    st["subnets"] += [
        {"id": "subnet-public-c", "vpc_id": "vpc-0a1b2c3d", "cidr": "10.0.16.0/24", "availability_zone": "us-east-1c"},
        {"id": "subnet-private-c", "vpc_id": "vpc-0a1b2c3d", "cidr": "10.0.160.0/20", "availability_zone": "us-east-1c"}]
    for k, iid in enumerate(OTHER, 1):
        st["instances"].append({"id": iid, "availability_zone": "us-east-1c"})
        st["network_interfaces"].append(
            {"id": f"eni-0cccccccccccccd0{k}", "subnet_id": "subnet-public-c", "mac": f"0e:00:00:00:0c:0{k}",
             "instance_id": iid, "device_index": 1, "private_ips": [f"10.0.16.{k}"], "source_dest_check": False})
    st["route_tables"].append(
        {"id": OTHER_TABLE, "vpc_id": "vpc-0a1b2c3d", "subnets": ["subnet-private-c"],
         "routes": [{"destination": "10.0.0.0/16", "gateway_id": "local"},
                    {"destination": "0.0.0.0/0", "network_interface_id": OTHER_ENI, "instance_id": OTHER[0]}]})
    path = os.path.join(h.dir, "state.json")
    with open(path, "w") as f:
        json.dump(st, f)
    return path


def other_route(h):
    for rt in h.aws_state()["route_tables"]:
        if rt["id"] == OTHER_TABLE:
            return next(r for r in rt["routes"] if r["destination"] == "0.0.0.0/0")
    return None


def other_replaces(h):
    with urllib.request.urlopen(h.aws + "/_fake/calls", timeout=5) as r:
        calls = json.loads(r.read())
    return [c for c in calls if c["action"] == "ReplaceRoute" and c["params"].get("RouteTableId") == OTHER_TABLE]


def fallback_up(h, target):
    rule = (f"  fallback_for:\n    - route_tables: [{OTHER_TABLE}]\n"
            f"      instances: [{OTHER[0]}, {OTHER[1]}]\n      target: {target}\n"
            f"      after: 1s\n      check_interval: 500ms\n")
    h.pair_up(flows=0, state=fallback_state(h), extra_ha=rule)
    # One instance of the other pair down: its peer's business, not ours.
    h.aws_post("/_fake/instance", {"id": OTHER[0], "state": "stopped"})
    time.sleep(2.5)  # > after + two checks
    check(not other_replaces(h), "no ReplaceRoute of the other AZ's table with one instance up")
    check(h.status("a")["fallback"][0]["phase"] == "watching", f"A watching: {h.status('a')['fallback']}")
    # Both down.
    t0 = time.monotonic()
    h.aws_post("/_fake/instance", {"id": OTHER[1], "state": "stopped"})
    return t0


def scenario_fallback(h):
    t0 = fallback_up(h, "self")
    wait_for(lambda: other_route(h).get("network_interface_id") == INSTANCES["a"]["eni"], 10,
             "the other AZ's table at A's ENI")
    print(f"FALLBACK both other instances stopped -> table at A's ENI: {(time.monotonic() - t0) * 1000:.0f} ms "
          f"(after 1 s, checks every 500 ms)")
    wait_for(lambda: h.status("a")["fallback"][0]["phase"] == "rescuing", 5, "A rescuing")
    check(h.status("b")["fallback"][0]["replacements"] == 0, "standby B replaced nothing")
    check(h.owner_is("a"), "our own tables untouched: still at A")
    out = subprocess.run([h.ctl_bin, "--control-socket", os.path.join(h.dir, "a", "control.sock"),
                          "ha-status"], capture_output=True, text=True, timeout=10)
    check("cross-AZ fallback" in out.stdout and "rescuing" in out.stdout, out.stdout)
    # Our active dies: B takes our tables over and, now active, the rescued table too (it was at
    # its peer's ENI).
    kill_a_and_wait_takeover(h)
    wait_for(lambda: other_route(h).get("network_interface_id") == INSTANCES["b"]["eni"], 10,
             "the other AZ's table follows to B")
    check(h.role("b") == "active", "B active (its fencing ignores the rescued table)")
    # The owners come back: hands off, even though the table still points at B.
    n = len(other_replaces(h))
    h.aws_post("/_fake/instance", {"id": OTHER[0], "state": "running"})
    wait_for(lambda: h.status("b")["fallback"][0]["phase"] == "owners_back", 5, "B sees the owners back")
    time.sleep(2.0)
    check(len(other_replaces(h)) == n, "no ReplaceRoute of the other AZ's table once its owner runs")
    check(other_route(h).get("network_interface_id") == INSTANCES["b"]["eni"], "left as it was")


def scenario_fallback_nat(h):
    t0 = fallback_up(h, NAT)
    wait_for(lambda: other_route(h).get("nat_gateway_id") == NAT, 10, "the other AZ's table at the NAT Gateway")
    print(f"FALLBACK (NAT Gateway) both stopped -> table at {NAT}: {(time.monotonic() - t0) * 1000:.0f} ms")
    check(all(c["params"].get("NatGatewayId") == NAT for c in other_replaces(h)), "ReplaceRoute with NatGatewayId")
    check(h.status("b")["fallback"][0]["replacements"] == 0, "standby B replaced nothing")
    wait_for(lambda: h.status("a")["fallback"][0]["phase"] == "rescuing", 5, "A rescuing")
    time.sleep(1.5)
    check(len(other_replaces(h)) == 1, "one ReplaceRoute, not repeated")


def our_lease(h):
    for rt in h.aws_state()["route_tables"]:
        if rt["id"] != OTHER_TABLE and rt["tags"].get("eipgate:lease"):
            return rt["tags"]["eipgate:lease"]
    return None


def scenario_fallback_lease(h):
    """The other AZ's processes die while EC2 still reports its instances running: only its
    lease stops. A renewing pair is never taken; a silent one is, within a few intervals."""
    rule = (f"  lease_interval: 500ms\n"
            f"  fallback_for:\n    - route_tables: [{OTHER_TABLE}]\n"
            f"      instances: [{OTHER[0]}, {OTHER[1]}]\n      target: self\n"
            f"      after: 1s\n      check_interval: 500ms\n")
    h.pair_up(flows=0, state=fallback_state(h), extra_ha=rule)
    # Our own active renews the lease on our tables; the standby never does.
    first = None
    wait_for(lambda: our_lease(h) is not None, 5, "A's lease on our tables")
    first = our_lease(h)
    check(first.startswith(INSTANCES["a"]["id"] + " ") and first.endswith(" 500"), f"lease {first}")
    wait_for(lambda: our_lease(h) != first, 3, "A's lease renewed")
    check(h.status("a")["lease"]["renewals"] >= 2, f"A lease {h.status('a')['lease']}")
    check(h.status("b")["lease"]["renewals"] == 0, f"B lease {h.status('b')['lease']}")

    stop = threading.Event()

    def renew():  # the other pair's active, alive
        n = 0
        while not stop.is_set():
            n += 1
            h.aws_post("/_fake/tags", {"resource": OTHER_TABLE,
                                       "tags": {"eipgate:lease": f"{OTHER[0]} {n} 500"}})
            stop.wait(0.4)

    t = threading.Thread(target=renew, daemon=True)
    t.start()
    time.sleep(4.0)  # 8 lease intervals, 16 checks: a live pair is left alone
    check(not other_replaces(h), "no ReplaceRoute while the other pair renews its lease")
    fb = h.status("a")["fallback"][0]
    check(fb["phase"] == "watching" and fb["lease_ttl_ms"] == 1500, f"A: {fb}")
    # Its processes die: no more renewals; EC2 still says both instances run.
    stop.set()
    t.join()
    t0 = time.monotonic()
    wait_for(lambda: other_route(h).get("network_interface_id") == INSTANCES["a"]["eni"], 10,
             "the other AZ's table at A's ENI after its lease ran out")
    print(f"FALLBACK lease stopped (instances running) -> table at A's ENI: "
          f"{(time.monotonic() - t0) * 1000:.0f} ms (lease 500 ms x 3, after 1 s, checks every 500 ms)")
    check(time.monotonic() - t0 >= 1.0, "not before the lease ran out")
    wait_for(lambda: h.status("a")["fallback"][0]["phase"] == "rescuing", 5, "A rescuing")
    states = {i["id"]: i["state"] for i in h.aws_state()["instances"]}
    check(all(states[i] == "running" for i in OTHER), f"EC2 still reports them running: {states}")
    check(h.status("b")["fallback"][0]["replacements"] == 0, "standby B replaced nothing")
    # The processes come back and renew: owners back, hands off.
    n = len(other_replaces(h))
    stop.clear()
    t = threading.Thread(target=renew, daemon=True)
    t.start()
    try:
        wait_for(lambda: h.status("a")["fallback"][0]["phase"] == "owners_back", 5, "A sees the owners back")
        time.sleep(2.0)
        check(len(other_replaces(h)) == n, "no ReplaceRoute once the owners renew again")
    finally:
        stop.set()
        t.join()


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items()
             if name.startswith("scenario_")}


# Scenarios that change the network (nftables) run in a network namespace of their own, created
# here and gone when the scenario's process exits, so they never touch the host's rules.
OWN_NETNS = {"partition"}
NETNS_MARK = "EIPGATE_CONTROL_TEST_IN_NETNS"


def in_own_netns():
    """Re-runs this script in a new network namespace (loopback up). Returns its exit code."""
    if os.geteuid() != 0:
        print("FAIL: this scenario creates a network namespace and nftables rules: run it as root "
              "(CI does); it needs util-linux (unshare), iproute2 (ip) and nftables (nft)")
        return 1
    for tool in ("unshare", "ip", "nft"):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} not found (packages util-linux, iproute2, nftables)")
            return 1
    env = dict(os.environ, **{NETNS_MARK: "1"})
    cmd = f"ip link set lo up && exec {PY} {' '.join(map(shlex.quote, sys.argv))}"
    return subprocess.run(["unshare", "--net", "--", "sh", "-c", cmd], env=env).returncode


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in SCENARIOS:
        print(__doc__)
        return 2
    if sys.argv[3] in OWN_NETNS and os.environ.get(NETNS_MARK) != "1":
        return in_own_netns()
    return run_scenario(sys.argv[3], SCENARIOS[sys.argv[3]], Harness(sys.argv[1], sys.argv[2]))


def run_scenario(name, scenario, h):
    """Runs one scenario on harness h: PASS/FAIL line, the daemons' log tails on failure, and the
    teardown (KEEP_LOGS=1 keeps a failed run's files). Returns the exit code."""
    ok = False
    t0 = time.monotonic()
    try:
        scenario(h)
        h.stop_controls_cleanly()
        ok = True
        print(f"PASS {name} in {time.monotonic() - t0:.1f} s")
    except Fail as e:
        print(f"FAIL {name}: {e}")
        for log_name, path in h.logs.items():
            if log_name.startswith("ctl_"):
                print(f"--- {log_name} log (tail) ---")
                print("".join(open(path, errors="replace").readlines()[-40:]))
    finally:
        h.teardown(keep=not ok and os.environ.get("KEEP_LOGS") == "1")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
