#!/usr/bin/python3
"""The simulated VPC's AWS side: fake_aws.py (EC2 + IMDSv2) with an on-change hook that makes the
namespaces follow the EC2 model, so a ReplaceRoute or a secondary-IP move by eipgate-control
really moves traffic. Started by vpc.sh inside the services namespace.

  vpc_aws.py --state STATE.json --topology TOPO.json --host ADDR --port N --port-file F
             [--changes-log changes.jsonl]

TOPO.json (written by vpc.sh) says where each EC2 object lives in the namespaces:
  {"enis": {eni-id: {"router_ns", "router_dev", "mac"}},          data ENIs only
   "route_tables": {rtb-id: {"router_ns", "table"}},
   "igw": {"ns", "public_dev"},
   "cross": [{"from", "to", "dev", "via", "table"}]}   optional: router links between AZs
A table's default route at an ENI behind another router (the cross-AZ fallback) goes over the
"cross" link from its router to that one; the far router sends what arrives on the link through
its table "table" toward the ENI. A route whose EC2 state is blackhole (its instance is not
running) is a blackhole here too.

After every change the whole desired network state is recomputed from the EC2 model and applied
(idempotent): per router one `ip -batch` (the private table's default route toward the ENI the
route table names; a /32 route + permanent neighbour toward the owner of every secondary IP), and
the internet gateway's 1:1 EIP <-> private IP NAT as one atomic `nft -f` ruleset. The hook runs
before the API answers, like EC2's own propagation would have finished by the time the caller
looks.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_aws  # noqa: E402


class Network:
    def __init__(self, topo, log_path=None):
        self.topo = topo
        self.log_path = log_path
        self.lock = threading.Lock()

    def desired(self, state):
        routers = {}  # ns -> list of `ip` batch lines
        cross = {(c["from"], c["to"]): c for c in self.topo.get("cross", [])}
        transit = {}  # (far router ns, table) -> line; blackhole unless a route crosses
        for c in cross.values():
            transit[(c["to"], c["table"])] = f"route replace blackhole default table {c['table']}"
        with state.lock:
            for rtb_id, place in self.topo["route_tables"].items():
                rt = state.route_tables.get(rtb_id)
                if not rt:
                    continue
                for r in rt["routes"]:
                    if r.get("destination") != "0.0.0.0/0":
                        continue
                    eni = state.enis.get(r.get("network_interface_id") or "")
                    where = self.topo["enis"].get(eni["id"]) if eni else None
                    lines = routers.setdefault(place["router_ns"], [])
                    live = state.route_state(r) == "active"
                    link = cross.get((place["router_ns"], where["router_ns"])) if where else None
                    if live and where and where["router_ns"] == place["router_ns"]:
                        lines.append(f"route replace default via {eni['private_ips'][0]} "
                                     f"dev {where['router_dev']} onlink table {place['table']}")
                    elif live and link:
                        lines.append(f"route replace default via {link['via']} dev {link['dev']} "
                                     f"onlink table {place['table']}")
                        transit[(link["to"], link["table"])] = (
                            f"route replace default via {eni['private_ips'][0]} "
                            f"dev {where['router_dev']} onlink table {link['table']}")
                    else:  # not at one of our ENIs: a blackhole, as a VPC route to nowhere
                        lines.append(f"route replace blackhole default table {place['table']}")
            for eni_id, where in self.topo["enis"].items():
                eni = state.enis.get(eni_id)
                if not eni:
                    continue
                lines = routers.setdefault(where["router_ns"], [])
                for ip in eni["private_ips"]:
                    lines.append(f"route replace {ip}/32 dev {where['router_dev']}")
                    lines.append(f"neigh replace {ip} lladdr {where['mac']} "
                                 f"dev {where['router_dev']} nud permanent")
            for (ns, _), line in transit.items():
                routers.setdefault(ns, []).append(line)
            pairs = sorted((a["public_ip"], a["private_ip"]) for a in state.addresses.values()
                           if a.get("private_ip"))
        return routers, pairs

    def igw_ruleset(self, pairs):
        dev = self.topo["igw"]["public_dev"]
        pre = "".join(f"    ip daddr {pub} dnat to {priv}\n" for pub, priv in pairs)
        post = "".join(f"    ip saddr {priv} snat to {pub}\n" for pub, priv in pairs)
        mapped = ", ".join(priv for _, priv in pairs) or "127.255.255.255"
        # A private address without an EIP does not reach the internet (as in a VPC).
        return (f"table ip vpc_igw\ndelete table ip vpc_igw\ntable ip vpc_igw {{\n"
                f"  chain pre {{\n    type nat hook prerouting priority -100;\n{pre}  }}\n"
                f"  chain post {{\n    type nat hook postrouting priority 100;\n{post}  }}\n"
                f"  chain forward_filter {{\n    type filter hook forward priority 0;\n"
                f"    oifname \"{dev}\" ip saddr 10.0.0.0/8 ip saddr != {{ {mapped} }} drop\n"
                f"  }}\n}}\n")

    def apply(self, state, change=None):
        with self.lock:
            t0 = time.time()
            routers, pairs = self.desired(state)
            for ns, lines in routers.items():
                r = subprocess.run(["ip", "-n", ns, "-force", "-batch", "-"], text=True,
                                   input="\n".join(lines) + "\n", capture_output=True)
                if r.returncode != 0:
                    sys.stderr.write(f"vpc_aws: ip -n {ns}: {r.stderr}\n")
            r = subprocess.run(["ip", "netns", "exec", self.topo["igw"]["ns"], "nft", "-f", "-"],
                               text=True, input=self.igw_ruleset(pairs), capture_output=True)
            if r.returncode != 0:
                sys.stderr.write(f"vpc_aws: nft in {self.topo['igw']['ns']}: {r.stderr}\n")
            if self.log_path and change is not None:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"t": t0, "applied_s": round(time.time() - t0, 4),
                                        **change}) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--topology", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--changes-log")
    ap.add_argument("--host6", help="also serve EC2/IMDS on this IPv6 address (VPC_MGMT=ipv6)")
    args = ap.parse_args()

    with open(args.topology, encoding="utf-8") as f:
        net = Network(json.load(f), args.changes_log)
    state = fake_aws.State(fake_aws.load_state_file(args.state))
    fake = fake_aws.FakeAws(state, args.host, args.port)
    fake.add_on_change(lambda change: net.apply(state, change))
    net.apply(state)  # the initial network follows the initial model
    if args.host6:
        fake.listen_also(args.host6)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{fake.port}\n")
    os.replace(tmp, args.port_file)
    print(f"vpc_aws listening on {args.host}:{fake.port}"
          + (f" and [{args.host6}]:{fake.port}" if args.host6 else ""), flush=True)
    fake.httpd.serve_forever()


if __name__ == "__main__":
    main()
