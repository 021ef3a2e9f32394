#!/usr/bin/python3
"""Stands in for eipgate-control on the dataplane's sync socket (dataplane/dpdk, control/ha).

  sync_peer.py snapshot SOCK              prints the flows of a snapshot, one per line
  sync_peer.py watch SOCK SECONDS         prints the events received during SECONDS
  sync_peer.py install SOCK in:port remote:port out:port proto lifetime_s
                                          sends one Create event (the standby's side)
  sync_peer.py role ADMIN_SOCK active|standby EPOCH

Packet: u8 type, u8 version 1, u16 count (big endian), u32 0, then count 28-byte records
(network order): inside, outside, remote addresses; inside, outside, remote ports; protocol,
tcp state, lifetime (u32), kind, flags, worker hint (u16).
"""
import ipaddress
import json
import socket
import struct
import sys
import time

REC = struct.Struct("!IIIHHHBBIBBH")
KINDS = {1: "create", 2: "refresh", 3: "delete"}


def fmt(rec):
    ins, out, rem, ip_, op, rp, proto, tcp, life, kind, flags, worker = rec
    a = lambda v: str(ipaddress.IPv4Address(v))
    return f"{KINDS.get(kind, kind)} proto={proto} {a(ins)}:{ip_} -> {a(rem)}:{rp} via {a(out)}:{op} tcp={tcp} life={life}"


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s


def records(pkt):
    n = struct.unpack("!H", pkt[2:4])[0]
    return [REC.unpack_from(pkt, 8 + i * 28) for i in range(n)]


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
        s.send(struct.pack("!BBHI", 2, 1, 0, 0))
        s.settimeout(10)
        begun = False
        while True:
            pkt = s.recv(4096)
            if pkt[0] == 3:
                begun = True
            elif pkt[0] == 4:
                print("END")
                return
            elif pkt[0] == 1 and begun:
                for r in records(pkt):
                    print(fmt(r))
    elif cmd == "watch":
        s.settimeout(0.2)
        end = time.time() + float(sys.argv[3])
        while time.time() < end:
            try:
                pkt = s.recv(4096)
            except socket.timeout:
                continue
            if pkt and pkt[0] == 1:
                for r in records(pkt):
                    print(fmt(r), flush=True)
    elif cmd == "install":
        ins, iport = sys.argv[3].split(":")
        rem, rport = sys.argv[4].split(":")
        out, oport = sys.argv[5].split(":")
        proto, life = int(sys.argv[6]), int(sys.argv[7])
        rec = REC.pack(int(ipaddress.IPv4Address(ins)), int(ipaddress.IPv4Address(out)),
                       int(ipaddress.IPv4Address(rem)), int(iport), int(oport), int(rport),
                       proto, 0, life, 1, 0, 0)
        s.send(struct.pack("!BBHI", 1, 1, 1, 0) + rec)
        time.sleep(0.3)  # let the dataplane read it before the socket closes
    else:
        sys.exit(f"unknown command {cmd}")


main()
