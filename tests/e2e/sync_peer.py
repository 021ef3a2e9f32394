#!/usr/bin/python3
"""Stands in for eipgate-control on the dataplane's sync socket (dataplane/dpdk, control/ha).

  sync_peer.py snapshot SOCK              prints the flows of a snapshot, one per line
  sync_peer.py watch SOCK SECONDS         prints the events received during SECONDS
  sync_peer.py install SOCK in:port remote:port out:port proto lifetime_s
                                          sends one Create event (the standby's side)
  sync_peer.py role ADMIN_SOCK active|standby EPOCH

The packets are proto/'s sync contract, encoded and decoded by proto/sync_codec.py.
"""
import ipaddress
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto"))
import sync_codec as sc  # noqa: E402

KIND_NAMES = {v: k for k, v in sc.KINDS.items()}


def fmt(r):
    a = lambda v: str(ipaddress.IPv4Address(v))
    return (f"{KIND_NAMES[r.kind]} proto={r.proto} {a(r.inside_ip)}:{r.inside_port} -> "
            f"{a(r.remote_ip)}:{r.remote_port} via {a(r.outside_ip)}:{r.outside_port} "
            f"tcp={r.tcp_bits} life={r.remaining_ms // 1000}")


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s


def main():
    cmd = sys.argv[1]
    if cmd == "role":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sys.argv[2])
        req = {"cmd": "ha_role", "args": {"role": sys.argv[3], "epoch": int(sys.argv[4])}}
        s.sendall((json.dumps(req) + "\n").encode())
        reply = json.loads(s.makefile().readline())
        print(reply)
        sys.exit(0 if reply.get("ok") else 1)
    s = connect(sys.argv[2])
    if cmd == "snapshot":
        s.send(sc.encode_packet(sc.SNAPSHOT_REQUEST))
        s.settimeout(10)
        begun = False
        while True:
            ptype, records = sc.decode_packet(s.recv(sc.MAX_PACKET_SIZE))
            if ptype == sc.SNAPSHOT_BEGIN:
                begun = True
            elif ptype == sc.SNAPSHOT_END:
                print("END")
                return
            elif ptype == sc.EVENTS and begun:
                for r in records:
                    print(fmt(r))
    elif cmd == "watch":
        s.settimeout(0.2)
        end = time.time() + float(sys.argv[3])
        while time.time() < end:
            try:
                pkt = s.recv(sc.MAX_PACKET_SIZE)
            except socket.timeout:
                continue
            if not pkt:
                continue
            ptype, records = sc.decode_packet(pkt)
            if ptype == sc.EVENTS:
                for r in records:
                    print(fmt(r), flush=True)
    elif cmd == "install":
        ins, iport = sys.argv[3].split(":")
        rem, rport = sys.argv[4].split(":")
        out, oport = sys.argv[5].split(":")
        proto, life = int(sys.argv[6]), int(sys.argv[7])
        a = lambda v: int(ipaddress.IPv4Address(v))
        rec = sc.SyncRecord(inside_ip=a(ins), outside_ip=a(out), remote_ip=a(rem),
                            inside_port=int(iport), outside_port=int(oport),
                            remote_port=int(rport), proto=proto, remaining_ms=life * 1000,
                            kind=sc.CREATE)
        s.send(sc.encode_packet(sc.EVENTS, [rec]))
        time.sleep(0.3)  # let the dataplane read it before the socket closes
    else:
        sys.exit(f"unknown command {cmd}")


main()
