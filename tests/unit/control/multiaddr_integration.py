#!/usr/bin/python3
"""Several service addresses per pair, end to end on loopback: the pair of control_integration.py
(two daemons, fake_aws.py, two fake dataplanes) with

  aws.service_address: {mode: secondary-ip, private_ips: [3 IPs], allocation_ids: [3 EIPs]}

on a copy of example_state.json where A's data ENI holds the three secondary IPs, each with its
EIP. Checks:
  - status (and `eipgatectl ha-status`) lists the three addresses;
  - a planned handover (`eipgatectl failover` on A) moves all three to B in ONE
    AssignPrivateIpAddresses call (the EIPs follow; B's post-move check says so);
  - a kill -9 of B's daemon: A takes over and moves all three back, again in one call.

  multiaddr_integration.py EIPGATE_CONTROL EIPGATECTL
"""

import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import control_integration as ci  # noqa: E402
from control_integration import check, wait_for  # noqa: E402

SERVICE_IPS = ["10.0.0.100", "10.0.0.101", "10.0.0.102"]
ALLOCS = ["eipalloc-0aa00000000000001", "eipalloc-0aa00000000000011", "eipalloc-0aa00000000000012"]


def write_state(directory):
    with open(ci.STATE) as f:
        state = json.load(f)
    for eni in state["network_interfaces"]:
        if eni["id"] == ci.INSTANCES["a"]["eni"]:
            eni["private_ips"] = ["10.0.0.5"] + SERVICE_IPS
    for i in (1, 2):
        state["addresses"].append({"allocation_id": ALLOCS[i], "public_ip": f"203.0.113.{20 + i}",
                                   "network_interface_id": ci.INSTANCES["a"]["eni"],
                                   "private_ip": SERVICE_IPS[i]})
    path = os.path.join(directory, "state.json")
    with open(path, "w") as f:
        json.dump(state, f)
    return path


class MultiHarness(ci.Harness):
    def config(self, k, extra_ha="", aws_override=None):
        path = super().config(k, extra_ha, aws_override)
        with open(path) as f:
            text = f.read()
        one = f"  service_address: {{mode: secondary-ip, private_ip: {ci.SERVICE_IP}}}\n"
        check(one in text, "the one-address line of the base config")
        text = text.replace(one, "  service_address:\n    mode: secondary-ip\n"
                                 f"    private_ips: [{', '.join(SERVICE_IPS)}]\n"
                                 f"    allocation_ids: [{', '.join(ALLOCS)}]\n")
        with open(path, "w") as f:
            f.write(text)
        return path

    def owner_is(self, k):
        s = self.aws_state()
        eni = ci.INSTANCES[k]["eni"]
        if self.route_targets(s) != [eni, eni]:
            return False
        held = next(e["private_ips"] for e in s["network_interfaces"] if e["id"] == eni)
        eips = {a["allocation_id"]: (a["network_interface_id"], a["private_ip"])
                for a in s["addresses"]}
        return all(ip in held for ip in SERVICE_IPS) and \
            all(eips[a] == (eni, ip) for a, ip in zip(ALLOCS, SERVICE_IPS))

    def calls(self, clear=False):
        req = urllib.request.Request(self.aws + "/_fake/calls", method="POST" if clear else "GET",
                                     data=json.dumps({"clear": True}).encode() if clear else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def assigns_to(self, k):
        return [c["params"] for c in self.calls() if c["action"] == "AssignPrivateIpAddresses"
                and c["params"].get("NetworkInterfaceId") == ci.INSTANCES[k]["eni"]]


def check_one_call_for_all(h, k):
    calls = h.assigns_to(k)
    check(len(calls) == 1, f"{k}: one AssignPrivateIpAddresses for all the addresses, got {calls}")
    ips = [calls[0].get(f"PrivateIpAddress.{i + 1}") for i in range(len(SERVICE_IPS) + 1)]
    check(ips == SERVICE_IPS + [None], f"{k}: the call lists the three IPs in order: {ips}")
    check(calls[0].get("AllowReassignment") == "true", f"{k}: AllowReassignment")


def check_status_lists_all(h, k, moved):
    sa = h.status(k)["service_address"]
    check(sa["mode"] == "secondary-ip" and sa["count"] == 3, f"{k}: status service_address {sa}")
    got = [(a["private_ip"], a["allocation_id"]) for a in sa["addresses"]]
    check(got == list(zip(SERVICE_IPS, ALLOCS)), f"{k}: status lists every address: {got}")
    if moved:
        check(all(a["moved"] and a["detail"] == "moved" for a in sa["addresses"]),
              f"{k}: every address moved: {sa['addresses']}")


def scenario(h):
    h.pair_up(flows=100, state=write_state(h.dir))
    check(h.owner_is("a"), "A holds the routes and the three addresses")
    check_status_lists_all(h, "a", moved=True)
    out = subprocess.run([h.ctl_bin, "--control-socket", os.path.join(h.dir, "a", "control.sock"),
                          "ha-status"], capture_output=True, text=True, timeout=20)
    check(out.returncode == 0, f"eipgatectl ha-status: {out.returncode} {out.stderr}")
    for ip, alloc in zip(SERVICE_IPS, ALLOCS):
        check(f"{ip} EIP {alloc} (secondary-ip): moved" in out.stdout,
              f"ha-status shows {ip}:\n{out.stdout}")
    check_status_lists_all(h, "b", moved=False)

    # Planned handover A -> B.
    h.calls(clear=True)
    out = subprocess.run([h.ctl_bin, "--control-socket", os.path.join(h.dir, "a", "control.sock"),
                          "failover"], capture_output=True, text=True, timeout=20)
    check(out.returncode == 0, f"eipgatectl failover: {out.returncode} {out.stdout} {out.stderr}")
    wait_for(lambda: h.role("b") == "active" and h.role("a") == "standby", 5, "roles swapped")
    wait_for(lambda: h.owner_is("b"), 5, "routes + three addresses at B")
    wait_for(lambda: not h.status("b")["takeover_in_progress"], 5, "B's takeover done")
    check_one_call_for_all(h, "b")
    check_status_lists_all(h, "b", moved=True)
    check("EIPs followed" in h.status("b")["last_takeover"], h.status("b")["last_takeover"])

    # Unplanned: B's daemon dies, A takes everything back.
    h.calls(clear=True)
    h.kill("ctl_b")
    wait_for(lambda: h.owner_is("a"), 8, "routes + three addresses back at A")
    wait_for(lambda: h.role("a") == "active" and not h.status("a")["takeover_in_progress"], 5,
             "A active, takeover done")
    check_one_call_for_all(h, "a")
    check_status_lists_all(h, "a", moved=True)
    print(f"A's takeover: {h.status('a')['last_takeover']}")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    return ci.run_scenario("multiaddr", scenario, MultiHarness(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
