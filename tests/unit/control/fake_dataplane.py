#!/usr/bin/python3
"""A stand-in for eipgate-dataplane in eipgate-control's tests: the admin socket (JSON lines:
health, stats, announce, ha_role, plus test_* commands) and the sync socket (SOCK_SEQPACKET,
proto/'s contract, through proto/sync_codec.py) over an in-memory flow table. No DPDK.

  fake_dataplane.py --admin-socket /tmp/x/dataplane.sock   (sync socket: /tmp/x/sync.sock)
"""

import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "proto"))
import sync_codec as sc  # noqa: E402

CREATE, DELETE = sc.CREATE, sc.DELETE


class Dataplane:
    def __init__(self, admin_path):
        self.admin_path = admin_path
        self.sync_path = os.path.join(os.path.dirname(admin_path), "sync.sock")
        self.lock = threading.RLock()
        self.flows = {}  # flow key -> sc.SyncRecord (kind Create)
        self.role = "standby"
        self.epoch = 0
        self.role_history = []
        self.announces = 0
        self.health_status = "ok"
        self.loops = 0
        self.sync_conn = None
        self.send_lock = threading.Lock()
        self.applied = 0
        self.last_apply_time = 0.0
        self.bad_packets = 0
        self.snapshot_requests = 0
        self.egress_ok = True  # test_egress: whether probes get answered
        self.counter_extra = {}  # test_counters: added to the NAT Gateway counters of stats
        self.probe_last = None  # (id, address, port, started monotonic, answered)
        self.probe_id = 0

    # -- sync socket -------------------------------------------------------------------------
    def send_packet(self, ptype, events=()):
        conn = self.sync_conn
        if conn is None:
            return False
        data = sc.encode_packet(ptype, events)
        try:
            with self.send_lock:
                conn.send(data)
            return True
        except OSError:
            return False

    def send_events(self, events, ptype=sc.EVENTS):
        for i in range(0, len(events), sc.MAX_RECORDS_PER_PACKET):
            if not self.send_packet(ptype, events[i:i + sc.MAX_RECORDS_PER_PACKET]):
                return False
        return True

    def snapshot(self):
        with self.lock:
            flows = [v._replace(kind=CREATE) for v in self.flows.values()]
        with self.send_lock:  # begin..end is one unit: no live events inside it
            conn = self.sync_conn
            if conn is None:
                return
            try:
                conn.send(sc.encode_packet(sc.SNAPSHOT_BEGIN))
                for i in range(0, len(flows), sc.MAX_RECORDS_PER_PACKET):
                    conn.send(sc.encode_packet(sc.EVENTS, flows[i:i + sc.MAX_RECORDS_PER_PACKET]))
                conn.send(sc.encode_packet(sc.SNAPSHOT_END))
            except OSError:
                pass

    def apply(self, events):
        with self.lock:
            for ev in events:
                if ev.kind == DELETE:
                    self.flows.pop(ev.key(), None)
                else:
                    self.flows[ev.key()] = ev._replace(kind=CREATE)
            self.applied += len(events)
            self.last_apply_time = time.monotonic()

    def serve_sync(self):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if os.path.exists(self.sync_path):
            os.unlink(self.sync_path)
        srv.bind(self.sync_path)
        os.chmod(self.sync_path, 0o600)
        srv.listen(1)
        while True:
            conn, _ = srv.accept()
            self.sync_conn = conn
            try:
                while True:
                    data = conn.recv(sc.MAX_PACKET_SIZE + 16)
                    if not data:
                        break
                    try:
                        ptype, records = sc.decode_packet(data)
                    except sc.SyncError:
                        self.bad_packets += 1
                        continue
                    if ptype == sc.EVENTS:
                        self.apply(records)
                    elif ptype == sc.SNAPSHOT_REQUEST:
                        self.snapshot_requests += 1
                        threading.Thread(target=self.snapshot, daemon=True).start()
                    else:
                        self.bad_packets += 1
            except OSError:
                pass
            finally:
                self.sync_conn = None
                conn.close()

    # -- flows made by "traffic" ---------------------------------------------------------------
    def make_flows(self, start, count, kind=CREATE):
        evs = []
        for i in range(start, start + count):
            evs.append(sc.SyncRecord(
                inside_ip=0x0A008000 + (i >> 16), outside_ip=0x0A000064,
                remote_ip=0xC6336400 + (i % 251), inside_port=1024 + (i & 0xFFFF) % 64000,
                outside_port=1024 + (i * 7) % 64000, remote_port=443, proto=6, tcp_bits=3,
                remaining_ms=350_000, kind=kind, worker_hint=i % 2))
        return evs

    def emit(self, start, count, kind=CREATE):
        """New flows in our table; streamed to control while our role is active."""
        evs = self.make_flows(start, count, kind)
        with self.lock:
            for ev in evs:
                if kind == DELETE:
                    self.flows.pop(ev.key(), None)
                else:
                    self.flows[ev.key()] = ev
        sent = False
        if self.role == "active":
            sent = self.send_events(evs)
        return sent

    # -- admin socket ------------------------------------------------------------------------
    def stats(self):
        """The real dataplane's `stats` shape (dataplane/admin/README.md), one worker, with an
        ENA port's allowance counters (ports[i].allowance) and a non-ENA port without them."""
        with self.lock:
            n = len(self.flows)
            extra = dict(self.counter_extra)
        counters = {"ConnectionAttemptCount": n + 3, "ConnectionEstablishedCount": n,
                    "ErrorPortAllocation": 0, "IdleTimeoutCount": 1, "PacketsDropCount": 5,
                    "BytesOutToDestination": 1000 * n, "BytesInFromDestination": 4000 * n,
                    "flows_created": n}
        drops = {"no_flow_outside": 4, "ttl_expired": 1, "port_allocation": 0}
        block = {"active_flows": n, "max_flows": 100000, "memory_bytes": 12800000,
                 "counters": counters, "drops": drops}
        for k, v in extra.items():
            counters[k] = counters.get(k, 0) + v
        nat_gateway = {"ActiveConnectionCount": n}
        nat_gateway.update({k: v for k, v in counters.items() if k[0].isupper()})
        return {"workers": [dict(block, worker=0)], "totals": block, "nat_gateway": nat_gateway,
                "drops": drops,
                "ports": [{"name": "outside", "allowance": {
                    "bw_in_allowance_exceeded": 0, "bw_out_allowance_exceeded": 0,
                    "pps_allowance_exceeded": 7, "conntrack_allowance_exceeded": 0,
                    "linklocal_allowance_exceeded": 0,
                    "conntrack_allowance_available": 123456}},
                    {"name": "inside"}]}

    def handle(self, req):
        cmd = req.get("cmd")
        args = req.get("args") or {}
        if cmd == "health":
            self.loops += 1
            ok = self.health_status == "ok"
            return {"status": self.health_status,
                    "workers": [{"worker": 0, "progressing": ok, "loops": self.loops * 1000}]}
        if cmd == "stats":
            return self.stats()
        if cmd == "announce":
            self.announces += 1
            return {"garps": 1}
        if cmd == "ha_role":
            if args.get("role") not in ("active", "standby") or not isinstance(args.get("epoch"), int):
                raise ValueError("ha_role: role active|standby and integer epoch")
            self.role = args["role"]
            self.epoch = args["epoch"]
            self.role_history.append([self.role, self.epoch])
            return {"role": self.role, "epoch": self.epoch}
        if cmd == "version":
            return {"version": "fake", "protocol": 1}
        if cmd == "test_emit":
            sent = self.emit(int(args.get("start", 0)), int(args.get("count", 1)),
                             int(args.get("kind", CREATE)))
            return {"sent": sent, "flows": len(self.flows)}
        if cmd == "test_table":
            with self.lock:
                keys = sorted(self.flows.keys())
            digest = hashlib.sha256(repr(keys).encode()).hexdigest()
            return {"count": len(keys), "digest": digest, "applied": self.applied,
                    "last_apply_time": self.last_apply_time}
        if cmd == "test_state":
            return {"role": self.role, "epoch": self.epoch, "announces": self.announces,
                    "role_history": self.role_history, "applied": self.applied,
                    "sync_connected": self.sync_conn is not None, "bad_packets": self.bad_packets,
                    "snapshot_requests": self.snapshot_requests, "flows": len(self.flows)}
        if cmd == "probe":  # the real one's shape (dataplane/admin/README.md)
            out = {}
            if self.probe_last:
                pid, addr, port, t0, answered = self.probe_last
                last = {"id": pid, "address": addr, "port": port, "source": "10.0.128.3",
                        "age_ms": int((time.monotonic() - t0) * 1000)}
                if answered:
                    last.update(state="syn-ack", rtt_us=800)
                else:
                    last["state"] = "pending"
                out["last"] = last
            if "address" in args:
                self.probe_id += 1
                self.probe_last = (self.probe_id, args["address"], int(args["port"]),
                                   time.monotonic(), self.egress_ok)
                out["started"] = {"id": self.probe_id, "address": args["address"],
                                  "port": int(args["port"]), "source": "10.0.128.3"}
            return out
        if cmd == "test_counters":
            # {"add": {"ErrorPortAllocation": 3, ...}}: the counters of stats move by that much
            with self.lock:
                for k, v in (args.get("add") or {}).items():
                    self.counter_extra[k] = self.counter_extra.get(k, 0) + int(v)
                return dict(self.counter_extra)
        if cmd == "test_egress":
            self.egress_ok = bool(args.get("ok", True))
            return {"ok": self.egress_ok}
        if cmd == "test_health":
            self.health_status = args.get("status", "ok")
            return {"status": self.health_status}
        raise ValueError(f"unknown command '{cmd}'")

    def serve_admin_client(self, conn):
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        resp = {"ok": True, "result": self.handle(json.loads(line))}
                    except Exception as e:  # noqa: BLE001 - every failure is an answer
                        resp = {"ok": False, "error": str(e)}
                    conn.sendall((json.dumps(resp) + "\n").encode())

    def serve_admin(self):
        if os.path.exists(self.admin_path):
            os.unlink(self.admin_path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.admin_path)
        os.chmod(self.admin_path, 0o600)
        srv.listen(16)
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=self.serve_admin_client, args=(conn,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin-socket", required=True)
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.admin_socket), mode=0o700, exist_ok=True)
    dp = Dataplane(a.admin_socket)
    threading.Thread(target=dp.serve_sync, daemon=True).start()
    dp.serve_admin()


if __name__ == "__main__":
    sys.exit(main())
