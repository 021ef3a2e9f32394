#!/usr/bin/python3
"""Samples an AZ during a heartbeat-link partition: every STEP s, which instance the private route
table points at (fake EC2's model) and the role each control daemon reports. Run inside the
services namespace (fake EC2's address); the control sockets are files.

  partition_watch.py AWS_URL RTB SECONDS STEP OUT.jsonl NAME=INSTANCE_ID:CONTROL_SOCKET ...
"""
import json
import socket
import sys
import time
import urllib.request


def role(path):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(path)
        s.sendall(b'{"cmd":"status"}\n')
        buf = b""
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        s.close()
        r = json.loads(buf.split(b"\n")[0])["result"]
        return r.get("role"), r.get("fenced")
    except (OSError, ValueError, KeyError):
        return None, None


def target(url, rtb, enis):
    st = json.load(urllib.request.urlopen(url + "/_fake/state", timeout=1))
    for rt in st["route_tables"]:
        if rt["id"] == rtb:
            for r in rt["routes"]:
                if r["destination"] == "0.0.0.0/0":
                    return enis.get(r.get("network_interface_id"), {}).get("instance_id")
    return None


def main(url, rtb, seconds, step, out, *insts):
    names = {}
    for spec in insts:
        name, rest = spec.split("=", 1)
        iid, sock = rest.split(":", 1)
        names[iid] = (name, sock)
    st = json.load(urllib.request.urlopen(url + "/_fake/state", timeout=2))
    enis = {e["id"]: e for e in st["network_interfaces"]}
    end = time.time() + float(seconds)
    with open(out, "w", encoding="utf-8") as f:
        while time.time() < end:
            t = time.time()
            try:
                tgt = target(url, rtb, enis)
            except OSError:
                tgt = "error"
            rec = {"t": t, "target": names.get(tgt, (tgt,))[0], "roles": {}}
            for iid, (name, sock) in names.items():
                rec["roles"][name] = role(sock)
            f.write(json.dumps(rec) + "\n")
            time.sleep(max(0.0, t + float(step) - time.time()))


if __name__ == "__main__":
    main(*sys.argv[1:])
