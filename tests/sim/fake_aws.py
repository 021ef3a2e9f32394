#!/usr/bin/python3
"""Fake EC2 Query API + IMDSv2 on loopback, for eipgate's tests and (later) the VPC simulator.

Standard library + botocore only (run with /usr/bin/python3). One HTTP port serves:
  POST /                      the EC2 Query API subset eipgate uses (SigV4 checked with botocore),
                              and CloudWatch's PutMetricData (Version 2010-08-01, SigV4 service
                              "monitoring"): validated, answered in CloudWatch's XML, kept;
                              CloudWatch Logs' CreateLogStream/PutLogEvents (JSON 1.1,
                              X-Amz-Target Logs_20140328.*, SigV4 service "logs"; fake_logs.py)
  PUT|GET /latest/...         IMDSv2 for the default instance (see instance selection below)
  PUT|GET /<i-id>/latest/...  IMDSv2 for instance <i-id>
  /_fake/...                  control endpoint: faults, state, recorded calls, received metrics
                              and log events
                              (unsigned, tests only)
The model (VPCs, subnets, instances, ENIs with private IPs, route tables, Elastic IPs) is loaded
from a JSON (or YAML) state file; every mutation is reported to on_change hooks so a simulator can
apply it to network namespaces. Usage and state format: tests/sim/README.md.
"""

import argparse
import copy
import datetime
import ipaddress
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_logs  # noqa: E402

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
API_VERSION = "2016-11-15"
MAX_SKEW = datetime.timedelta(minutes=15)


class Ec2Error(Exception):
    """An EC2 error response: code as AWS spells it, message, HTTP status."""

    def __init__(self, code, message, status=400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status



# ---------------------------------------------------------------------------------------------
# Model


class State:
    """The simulated region. Plain dicts keyed by id so a simulator can read and extend them."""

    def __init__(self, data):
        self.lock = threading.RLock()
        self.region = data.get("region", "us-east-1")
        self.account_id = str(data.get("account_id", "123456789012"))
        # access key id -> {"secret_access_key": ..., "session_token": ... or None}
        self.credentials = {}
        for c in data.get("credentials", []):
            self.credentials[c["access_key_id"]] = {
                "secret_access_key": c["secret_access_key"],
                "session_token": c.get("session_token"),
            }
        # access key id -> the error code EC2 answers for it (rotated instance-role keys)
        self.expired_keys = {}
        self.vpcs = {v["id"]: dict(v) for v in data.get("vpcs", [])}
        self.subnets = {s["id"]: dict(s) for s in data.get("subnets", [])}
        self.instances = {}
        for i in data.get("instances", []):
            inst = {"state": "running", "status": "ok", "system_status": "ok", "role": None,
                    "credentials_ttl": 21600, "imds_source_ips": []}
            inst.update(i)
            self.instances[inst["id"]] = inst
        self.enis = {}
        for e in data.get("network_interfaces", []):
            eni = {"instance_id": None, "device_index": 0, "source_dest_check": True, "tags": {},
                   "description": "", "status": None}
            eni.update(e)
            eni["private_ips"] = list(eni.get("private_ips", []))
            if not eni["status"]:
                eni["status"] = "in-use" if eni["instance_id"] else "available"
            self.enis[eni["id"]] = eni
        self.route_tables = {}
        for r in data.get("route_tables", []):
            rt = {"subnets": [], "main": False, "tags": {}}
            rt.update(r)
            rt["routes"] = [dict(x) for x in rt.get("routes", [])]
            self.route_tables[rt["id"]] = rt
        # NAT Gateways a route may name (the cross-AZ fallback's other target); state
        # "available" unless given. ReplaceRoute refuses unknown ids, as EC2 does.
        self.nat_gateways = {}
        for g in data.get("nat_gateways", []):
            gw = {"state": "available", "subnet_id": None}
            gw.update(g)
            self.nat_gateways[gw["id"]] = gw
        self.addresses = {}
        for a in data.get("addresses", []):
            addr = {"network_interface_id": None, "private_ip": None, "association_id": None,
                    "tags": {}}
            addr.update(a)
            if addr["network_interface_id"] and not addr["association_id"]:
                addr["association_id"] = new_id("eipassoc")
            self.addresses[addr["allocation_id"]] = addr
        self._check()

    def _check(self):
        for eni in self.enis.values():
            if eni["subnet_id"] not in self.subnets:
                raise ValueError(f"ENI {eni['id']}: unknown subnet {eni['subnet_id']}")
            if not eni["private_ips"]:
                raise ValueError(f"ENI {eni['id']}: needs at least its primary private IP")
        for a in self.addresses.values():
            if a["network_interface_id"] and a["network_interface_id"] not in self.enis:
                raise ValueError(f"address {a['allocation_id']}: unknown ENI")

    def to_json(self):
        with self.lock:
            return {
                "region": self.region,
                "account_id": self.account_id,
                "credentials": [{"access_key_id": k, **v} for k, v in self.credentials.items()],
                "vpcs": list(self.vpcs.values()),
                "subnets": list(self.subnets.values()),
                "instances": copy.deepcopy(list(self.instances.values())),
                "network_interfaces": copy.deepcopy(list(self.enis.values())),
                "route_tables": copy.deepcopy(list(self.route_tables.values())),
                "addresses": copy.deepcopy(list(self.addresses.values())),
                "nat_gateways": copy.deepcopy(list(self.nat_gateways.values())),
            }

    def route_state(self, r):
        """EC2's route State: blackhole when the target cannot forward: an ENI that is gone or
        whose instance is not running, a NAT Gateway that is not available."""
        if r.get("state"):
            return r["state"]
        if r.get("network_interface_id"):
            eni = self.enis.get(r["network_interface_id"])
            if eni is None:
                return "blackhole"
            inst = self.instances.get(eni["instance_id"]) if eni["instance_id"] else None
            return "active" if inst is not None and inst["state"] == "running" else "blackhole"
        if r.get("instance_id"):
            inst = self.instances.get(r["instance_id"])
            return "active" if inst is not None and inst["state"] == "running" else "blackhole"
        if r.get("nat_gateway_id"):
            gw = self.nat_gateways.get(r["nat_gateway_id"])
            return "active" if gw is not None and gw["state"] == "available" else "blackhole"
        return "active"

    # lookups used by both APIs
    def subnet_of(self, eni):
        return self.subnets[eni["subnet_id"]]

    def eni_owning(self, ip):
        for eni in self.enis.values():
            if ip in eni["private_ips"]:
                return eni
        return None

    def address_for(self, eni_id, ip):
        for a in self.addresses.values():
            if a["network_interface_id"] == eni_id and a["private_ip"] == ip:
                return a
        return None


def new_id(prefix):
    return f"{prefix}-{secrets.token_hex(8)}"


def load_state_file(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        import yaml  # PyYAML ships with Debian's awscli; JSON needs nothing extra

        return yaml.safe_load(text)
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# Query API parameters and XML


def collect_list(params, prefix):
    """Prefix.1, Prefix.2, ... in numeric order."""
    out = []
    pat = re.compile(re.escape(prefix) + r"\.(\d+)$")
    for k, v in params.items():
        m = pat.match(k)
        if m:
            out.append((int(m.group(1)), v))
    return [v for _, v in sorted(out)]


def collect_filters(params):
    """Filter.N.Name / Filter.N.Value.M -> [(name, [values])]."""
    names = {}
    pat = re.compile(r"Filter\.(\d+)\.Name$")
    for k, v in params.items():
        m = pat.match(k)
        if m:
            names[int(m.group(1))] = v
    return [(names[n], collect_list(params, f"Filter.{n}.Value")) for n in sorted(names)]


def boolean_param(params, name):
    return params.get(name, "false").lower() == "true"


def xml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return escape(str(v))


def el(tag, value):
    return f"<{tag}>{xml_value(value)}</{tag}>" if value is not None else ""


def tag_set(tags):
    items = "".join(f"<item><key>{escape(k)}</key><value>{escape(str(v))}</value></item>"
                    for k, v in sorted(tags.items()))
    return f"<tagSet>{items}</tagSet>"


def response(action, request_id, body):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
            f"<requestId>{request_id}</requestId>{body}</{action}Response>")


def error_response(code, message, request_id):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{escape(code)}'
            f"</Code><Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>")


def matches_filters(filters, getter):
    """AND across filters, OR across a filter's values; '*' and '?' wildcards as EC2 does."""
    for name, values in filters:
        have = getter(name)
        if have is None:
            raise Ec2Error("InvalidParameterValue", f"The filter '{name}' is invalid")
        pats = [re.compile("^" + re.escape(v).replace(r"\*", ".*").replace(r"\?", ".") + "$")
                for v in values]
        if not any(p.match(str(h)) for p in pats for h in have):
            return False
    return True


def tag_filter(tags, name):
    if name.startswith("tag:"):
        key = name[4:]
        return [tags[key]] if key in tags else []
    if name == "tag-key":
        return list(tags)
    if name == "tag-value":
        return list(tags.values())
    return None


# ---------------------------------------------------------------------------------------------
# EC2


class Ec2Api:
    """The EC2 actions. handle() returns (status, xml); mutations call the on_change hooks."""

    def __init__(self, state, on_change=None):
        self.state = state
        self.on_change = list(on_change or [])
        self.actions = {
            "DescribeRouteTables": self.describe_route_tables,
            "ReplaceRoute": self.replace_route,
            "DescribeAddresses": self.describe_addresses,
            "AssociateAddress": self.associate_address,
            "DisassociateAddress": self.disassociate_address,
            "AssignPrivateIpAddresses": self.assign_private_ip_addresses,
            "UnassignPrivateIpAddresses": self.unassign_private_ip_addresses,
            "DescribeNetworkInterfaces": self.describe_network_interfaces,
            "DescribeInstanceStatus": self.describe_instance_status,
            "CreateTags": self.create_tags,
        }

    def handle(self, params):
        request_id = str(uuid.uuid4())
        action = params.get("Action")
        try:
            if not action:
                raise Ec2Error("MissingAction", "The request must contain the parameter Action")
            fn = self.actions.get(action)
            if fn is None:
                raise Ec2Error("InvalidAction",
                               f"The action {action} is not valid for this web service.")
            if params.get("Version") != API_VERSION:
                raise Ec2Error("InvalidParameterValue",
                               f"Unsupported API version {params.get('Version')}")
            changes = []
            with self.state.lock:
                body = fn(params, changes)
            for change in changes:
                for hook in self.on_change:
                    hook(change)
            return 200, response(action, request_id, body), None
        except Ec2Error as e:
            return e.status, error_response(e.code, e.message, request_id), e.code

    # --- tags
    def create_tags(self, params, _changes):
        # Route tables, ENIs and EIPs carry tags here. Not a change for the namespaces: the
        # liveness lease rewrites a tag every few seconds and must not reprogram the VPC.
        ids = collect_list(params, "ResourceId")
        if not ids:
            raise Ec2Error("MissingParameter", "The request must contain the parameter resourceIdSet")
        tags = {}
        n = 1
        while f"Tag.{n}.Key" in params:
            key = params[f"Tag.{n}.Key"]
            if not key or len(key) > 128 or key.startswith("aws:"):
                raise Ec2Error("InvalidParameterValue", f"Tag key '{key}' is invalid")
            value = params.get(f"Tag.{n}.Value", "")
            if len(value) > 256:
                raise Ec2Error("InvalidParameterValue", "Tag value exceeds 256 characters")
            tags[key] = value
            n += 1
        if not tags:
            raise Ec2Error("MissingParameter", "The request must contain the parameter tagSet")
        targets = []
        for i in ids:
            if i.startswith("rtb-") and i in self.state.route_tables:
                targets.append(self.state.route_tables[i]["tags"])
            elif i.startswith("eni-") and i in self.state.enis:
                targets.append(self.state.enis[i]["tags"])
            elif i.startswith("eipalloc-") and i in self.state.addresses:
                targets.append(self.state.addresses[i]["tags"])
            else:
                raise Ec2Error("InvalidID", f"The ID '{i}' is not valid")
        for t in targets:  # all or nothing, as EC2 validates every id first
            t.update(tags)
        return "<return>true</return>"

    # --- route tables
    def _route_xml(self, r):
        target = "".join(el(t, r.get(k)) for t, k in (
            ("gatewayId", "gateway_id"), ("instanceId", "instance_id"),
            ("networkInterfaceId", "network_interface_id"), ("natGatewayId", "nat_gateway_id"),
            ("transitGatewayId", "transit_gateway_id")))
        if r.get("instance_id"):
            target += el("instanceOwnerId", self.state.account_id)
        origin = "CreateRouteTable" if r.get("gateway_id") == "local" else "CreateRoute"
        return (f"<item>{el('destinationCidrBlock', r['destination'])}{target}"
                f"{el('state', self.state.route_state(r))}{el('origin', r.get('origin', origin))}</item>")

    def _route_table_xml(self, rt):
        routes = "".join(self._route_xml(r) for r in rt["routes"])
        assoc = ""
        if rt["main"]:
            assoc += (f"<item>{el('routeTableAssociationId', 'rtbassoc-main' + rt['id'][4:])}"
                      f"{el('routeTableId', rt['id'])}<main>true</main>"
                      "<associationState><state>associated</state></associationState></item>")
        for s in rt["subnets"]:
            assoc += (f"<item>{el('routeTableAssociationId', 'rtbassoc-' + s[7:])}"
                      f"{el('routeTableId', rt['id'])}{el('subnetId', s)}<main>false</main>"
                      "<associationState><state>associated</state></associationState></item>")
        return (f"<item>{el('routeTableId', rt['id'])}{el('vpcId', rt['vpc_id'])}"
                f"{el('ownerId', self.state.account_id)}<routeSet>{routes}</routeSet>"
                f"<associationSet>{assoc}</associationSet><propagatingVgwSet/>"
                f"{tag_set(rt['tags'])}</item>")

    def describe_route_tables(self, params, _changes):
        ids = collect_list(params, "RouteTableId")
        for i in ids:
            if i not in self.state.route_tables:
                raise Ec2Error("InvalidRouteTableID.NotFound",
                               f"The routeTable ID '{i}' does not exist")
        filters = collect_filters(params)
        out = []
        for rt in self.state.route_tables.values():
            if ids and rt["id"] not in ids:
                continue

            def get(name, rt=rt):
                simple = {
                    "route-table-id": [rt["id"]], "vpc-id": [rt["vpc_id"]],
                    "association.subnet-id": rt["subnets"],
                    "association.main": ["true" if rt["main"] else "false"],
                    "route.destination-cidr-block": [r["destination"] for r in rt["routes"]],
                    "route.network-interface-id":
                        [r["network_interface_id"] for r in rt["routes"]
                         if r.get("network_interface_id")],
                    "route.instance-id":
                        [r["instance_id"] for r in rt["routes"] if r.get("instance_id")],
                    "route.gateway-id":
                        [r["gateway_id"] for r in rt["routes"] if r.get("gateway_id")],
                    "owner-id": [self.state.account_id],
                }
                return simple.get(name, tag_filter(rt["tags"], name))

            if matches_filters(filters, get):
                out.append(self._route_table_xml(rt))
        return f"<routeTableSet>{''.join(out)}</routeTableSet>"

    def replace_route(self, params, changes):
        rtb = required(params, "RouteTableId")
        dest = required(params, "DestinationCidrBlock")
        rt = self.state.route_tables.get(rtb)
        if rt is None:
            raise Ec2Error("InvalidRouteTableID.NotFound",
                           f"The routeTable ID '{rtb}' does not exist")
        try:
            dest = str(ipaddress.ip_network(dest, strict=True))
        except ValueError:
            raise Ec2Error("InvalidParameterValue",
                           f"Value ({dest}) for parameter destinationCidrBlock is invalid. "
                           "This is not a valid CIDR block.")
        route = next((r for r in rt["routes"] if r["destination"] == dest), None)
        if route is None:
            raise Ec2Error("InvalidRoute.NotFound",
                           f"no route with destination-cidr-block {dest} in route table {rtb}")
        if route.get("gateway_id") == "local":
            raise Ec2Error("InvalidParameterValue",
                           f"Cannot replace local route {dest} in route table {rtb}")
        new = {"destination": dest}
        if "NetworkInterfaceId" in params:
            eni_id = params["NetworkInterfaceId"]
            eni = self.state.enis.get(eni_id)
            if eni is None:
                raise Ec2Error("InvalidNetworkInterfaceID.NotFound",
                               f"The networkInterface ID '{eni_id}' does not exist")
            if self.state.subnet_of(eni)["vpc_id"] != rt["vpc_id"]:
                raise Ec2Error("InvalidParameterValue",
                               f"route table {rtb} and network interface {eni_id} belong to "
                               "different networks")
            new["network_interface_id"] = eni_id
            if eni["instance_id"]:
                new["instance_id"] = eni["instance_id"]
        elif "InstanceId" in params:
            inst = self.state.instances.get(params["InstanceId"])
            if inst is None:
                raise Ec2Error("InvalidInstanceID.NotFound",
                               f"The instance ID '{params['InstanceId']}' does not exist")
            enis = [e for e in self.state.enis.values()
                    if e["instance_id"] == inst["id"]]
            if len(enis) != 1:
                raise Ec2Error("InvalidInstanceID",
                               "There are multiple interfaces attached to instance "
                               f"'{inst['id']}'. Please specify an interface ID for the operation "
                               "instead.")
            new["instance_id"] = inst["id"]
            new["network_interface_id"] = enis[0]["id"]
        elif "GatewayId" in params:
            new["gateway_id"] = params["GatewayId"]
        elif "NatGatewayId" in params:
            if params["NatGatewayId"] not in self.state.nat_gateways:
                raise Ec2Error("InvalidNatGatewayID.NotFound",
                               f"The natGateway ID '{params['NatGatewayId']}' does not exist")
            new["nat_gateway_id"] = params["NatGatewayId"]
        else:
            raise Ec2Error("MissingParameter",
                           "The request must contain exactly one of gatewayId, natGatewayId, "
                           "networkInterfaceId or instanceId")
        old = dict(route)
        route.clear()
        route.update(new)
        changes.append({"action": "ReplaceRoute", "route_table_id": rtb, "destination": dest,
                        "old": old, "new": dict(new), "subnets": list(rt["subnets"]),
                        "vpc_id": rt["vpc_id"]})
        return "<return>true</return>"

    # --- addresses
    def _address_xml(self, a):
        eni = self.state.enis.get(a["network_interface_id"]) if a["network_interface_id"] else None
        assoc = ""
        if eni is not None:
            assoc = (el("associationId", a["association_id"])
                     + el("instanceId", eni["instance_id"])
                     + el("networkInterfaceId", eni["id"])
                     + el("networkInterfaceOwnerId", self.state.account_id)
                     + el("privateIpAddress", a["private_ip"]))
        return (f"<item>{el('publicIp', a['public_ip'])}{el('allocationId', a['allocation_id'])}"
                f"<domain>vpc</domain>{assoc}<publicIpv4Pool>amazon</publicIpv4Pool>"
                f"{el('networkBorderGroup', self.state.region)}{tag_set(a['tags'])}</item>")

    def describe_addresses(self, params, _changes):
        ids = collect_list(params, "AllocationId")
        ips = collect_list(params, "PublicIp")
        for i in ids:
            if i not in self.state.addresses:
                raise Ec2Error("InvalidAllocationID.NotFound",
                               f"The allocation ID '{i}' does not exist")
        known_ips = {a["public_ip"] for a in self.state.addresses.values()}
        for ip in ips:
            if ip not in known_ips:
                raise Ec2Error("InvalidAddress.NotFound", f"Address '{ip}' not found.")
        filters = collect_filters(params)
        out = []
        for a in self.state.addresses.values():
            if ids and a["allocation_id"] not in ids:
                continue
            if ips and a["public_ip"] not in ips:
                continue
            eni = self.state.enis.get(a["network_interface_id"] or "")

            def get(name, a=a, eni=eni):
                simple = {
                    "allocation-id": [a["allocation_id"]], "public-ip": [a["public_ip"]],
                    "domain": ["vpc"],
                    "association-id": [a["association_id"]] if a["association_id"] else [],
                    "network-interface-id": [eni["id"]] if eni else [],
                    "instance-id": [eni["instance_id"]] if eni and eni["instance_id"] else [],
                    "private-ip-address": [a["private_ip"]] if a["private_ip"] else [],
                }
                return simple.get(name, tag_filter(a["tags"], name))

            if matches_filters(filters, get):
                out.append(self._address_xml(a))
        return f"<addressesSet>{''.join(out)}</addressesSet>"

    def associate_address(self, params, changes):
        alloc = params.get("AllocationId")
        if not alloc:
            if "PublicIp" in params:
                raise Ec2Error("InvalidParameterCombination",
                               "The parameter PublicIp is only valid for EC2-Classic; "
                               "use AllocationId")
            raise Ec2Error("MissingParameter",
                           "The request must contain the parameter AllocationId")
        a = self.state.addresses.get(alloc)
        if a is None:
            raise Ec2Error("InvalidAllocationID.NotFound",
                           f"The allocation ID '{alloc}' does not exist")
        if "NetworkInterfaceId" in params:
            eni = self.state.enis.get(params["NetworkInterfaceId"])
            if eni is None:
                raise Ec2Error("InvalidNetworkInterfaceID.NotFound",
                               f"The networkInterface ID '{params['NetworkInterfaceId']}' "
                               "does not exist")
        elif "InstanceId" in params:
            inst = self.state.instances.get(params["InstanceId"])
            if inst is None:
                raise Ec2Error("InvalidInstanceID.NotFound",
                               f"The instance ID '{params['InstanceId']}' does not exist")
            enis = sorted((e for e in self.state.enis.values() if e["instance_id"] == inst["id"]),
                          key=lambda e: e["device_index"])
            if not enis:
                raise Ec2Error("InvalidInstanceID", f"Instance '{inst['id']}' has no interface")
            eni = enis[0]
        else:
            raise Ec2Error("MissingParameter",
                           "Either instance ID or network interface ID must be specified")
        private_ip = params.get("PrivateIpAddress", eni["private_ips"][0])
        if private_ip not in eni["private_ips"]:
            raise Ec2Error("InvalidParameterValue",
                           f"The specified private IP address {private_ip} is not assigned to "
                           f"network interface {eni['id']}")
        current = self.state.address_for(eni["id"], private_ip)
        if current is not None and current is not a and not boolean_param(params,
                                                                           "AllowReassociation"):
            raise Ec2Error("Resource.AlreadyAssociated",
                           f"Private IP {private_ip} of {eni['id']} is already associated with "
                           f"{current['public_ip']}")
        if a["network_interface_id"] and not boolean_param(params, "AllowReassociation") and (
                a["network_interface_id"] != eni["id"] or a["private_ip"] != private_ip):
            raise Ec2Error("Resource.AlreadyAssociated",
                           f"resource {alloc} is already associated with associate-id "
                           f"{a['association_id']}")
        if current is not None and current is not a:
            self._disassociate(current, changes)
        old = {"network_interface_id": a["network_interface_id"], "private_ip": a["private_ip"]}
        a["network_interface_id"] = eni["id"]
        a["private_ip"] = private_ip
        a["association_id"] = new_id("eipassoc")
        changes.append({"action": "AssociateAddress", "allocation_id": alloc,
                        "public_ip": a["public_ip"], "old": old,
                        "new": {"network_interface_id": eni["id"], "private_ip": private_ip}})
        return f"<return>true</return>{el('associationId', a['association_id'])}"

    def _disassociate(self, a, changes):
        old = {"network_interface_id": a["network_interface_id"], "private_ip": a["private_ip"]}
        a["network_interface_id"] = None
        a["private_ip"] = None
        a["association_id"] = None
        changes.append({"action": "DisassociateAddress", "allocation_id": a["allocation_id"],
                        "public_ip": a["public_ip"], "old": old, "new": None})

    def disassociate_address(self, params, changes):
        assoc = required(params, "AssociationId")
        a = next((x for x in self.state.addresses.values() if x["association_id"] == assoc), None)
        if a is None:
            raise Ec2Error("InvalidAssociationID.NotFound",
                           f"The association ID '{assoc}' does not exist")
        self._disassociate(a, changes)
        return "<return>true</return>"

    # --- private IPs
    def assign_private_ip_addresses(self, params, changes):
        eni_id = required(params, "NetworkInterfaceId")
        eni = self.state.enis.get(eni_id)
        if eni is None:
            raise Ec2Error("InvalidNetworkInterfaceID.NotFound",
                           f"The networkInterface ID '{eni_id}' does not exist")
        ips = collect_list(params, "PrivateIpAddress")
        if not ips and "SecondaryPrivateIpAddressCount" not in params:
            raise Ec2Error("MissingParameter",
                           "Either PrivateIpAddress or SecondaryPrivateIpAddressCount must be "
                           "specified")
        subnet = ipaddress.ip_network(self.state.subnet_of(eni)["cidr"])
        if not ips:
            count = int(params["SecondaryPrivateIpAddressCount"])
            used = {ip for e in self.state.enis.values() for ip in e["private_ips"]}
            for host in list(subnet.hosts())[4:]:  # AWS reserves .1-.3 (and .0, broadcast)
                if count == 0:
                    break
                if str(host) not in used:
                    ips.append(str(host))
                    count -= 1
        allow = boolean_param(params, "AllowReassignment")
        for ip in ips:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                raise Ec2Error("InvalidParameterValue",
                               f"Value ({ip}) for parameter privateIpAddress is invalid")
            if addr not in subnet:
                raise Ec2Error("InvalidParameterValue",
                               f"Address {ip} does not fall within the subnet's address range")
            owner = self.state.eni_owning(ip)
            if owner is not None and owner is not eni:
                if owner["private_ips"][0] == ip:
                    raise Ec2Error("InvalidParameterValue",
                                   f"Address {ip} is the primary private IP of {owner['id']}")
                if not allow:
                    raise Ec2Error("PrivateIpAddressInUse",
                                   f"Some of the specified addresses are already assigned to "
                                   f"other ENIs: {ip}")
        for ip in ips:
            owner = self.state.eni_owning(ip)
            if owner is eni:
                continue
            if owner is not None:
                owner["private_ips"].remove(ip)
            eni["private_ips"].append(ip)
            # The Elastic IP associated with a private IP follows it to its new ENI.
            eips = []
            for a in self.state.addresses.values():
                if owner is not None and a["network_interface_id"] == owner["id"] and \
                        a["private_ip"] == ip:
                    a["network_interface_id"] = eni["id"]
                    eips.append(a["allocation_id"])
            changes.append({"action": "AssignPrivateIpAddresses", "private_ip": ip,
                            "old": {"network_interface_id": owner["id"] if owner else None},
                            "new": {"network_interface_id": eni["id"]},
                            "addresses_moved": eips})
        items = "".join(f"<item>{el('privateIpAddress', ip)}</item>" for ip in ips)
        return (f"<networkInterfaceId>{escape(eni_id)}</networkInterfaceId>"
                f"<assignedPrivateIpAddressesSet>{items}</assignedPrivateIpAddressesSet>"
                "<assignedIpv4PrefixSet/><return>true</return>")

    def unassign_private_ip_addresses(self, params, changes):
        eni_id = required(params, "NetworkInterfaceId")
        eni = self.state.enis.get(eni_id)
        if eni is None:
            raise Ec2Error("InvalidNetworkInterfaceID.NotFound",
                           f"The networkInterface ID '{eni_id}' does not exist")
        for ip in collect_list(params, "PrivateIpAddress"):
            if ip not in eni["private_ips"][1:]:
                raise Ec2Error("InvalidParameterValue",
                               f"Some of the specified addresses are not assigned to interface "
                               f"{eni_id}")
            eni["private_ips"].remove(ip)
            a = self.state.address_for(eni_id, ip)
            if a is not None:
                self._disassociate(a, changes)
            changes.append({"action": "UnassignPrivateIpAddresses", "private_ip": ip,
                            "old": {"network_interface_id": eni_id}, "new": None})
        return "<return>true</return>"

    # --- network interfaces
    def _association_xml(self, eni, ip):
        a = self.state.address_for(eni["id"], ip)
        if a is None:
            return ""
        return (f"<association>{el('publicIp', a['public_ip'])}<publicDnsName/>"
                f"{el('ipOwnerId', 'amazon')}{el('allocationId', a['allocation_id'])}"
                f"{el('associationId', a['association_id'])}</association>")

    def _eni_xml(self, eni):
        subnet = self.state.subnet_of(eni)
        attach = ""
        if eni["instance_id"]:
            attach = (f"<attachment>{el('attachmentId', 'eni-attach-' + eni['id'][4:])}"
                      f"{el('instanceId', eni['instance_id'])}"
                      f"{el('instanceOwnerId', self.state.account_id)}"
                      f"{el('deviceIndex', eni['device_index'])}<status>attached</status>"
                      "<attachTime>2024-01-01T00:00:00.000Z</attachTime>"
                      "<deleteOnTermination>false</deleteOnTermination></attachment>")
        primary = eni["private_ips"][0]
        ips = "".join(
            f"<item>{el('privateIpAddress', ip)}<primary>{xml_value(n == 0)}</primary>"
            f"{self._association_xml(eni, ip)}</item>"
            for n, ip in enumerate(eni["private_ips"]))
        return (f"<item>{el('networkInterfaceId', eni['id'])}{el('subnetId', subnet['id'])}"
                f"{el('vpcId', subnet['vpc_id'])}"
                f"{el('availabilityZone', subnet['availability_zone'])}"
                f"<description>{escape(eni['description'])}</description>"
                f"{el('ownerId', self.state.account_id)}<requesterManaged>false</requesterManaged>"
                f"{el('status', eni['status'])}{el('macAddress', eni.get('mac'))}"
                f"{el('privateIpAddress', primary)}"
                f"<sourceDestCheck>{xml_value(eni['source_dest_check'])}</sourceDestCheck>"
                f"<groupSet/>{attach}{self._association_xml(eni, primary)}{tag_set(eni['tags'])}"
                f"<privateIpAddressesSet>{ips}</privateIpAddressesSet><ipv6AddressesSet/>"
                "<interfaceType>interface</interfaceType></item>")

    def describe_network_interfaces(self, params, _changes):
        ids = collect_list(params, "NetworkInterfaceId")
        for i in ids:
            if i not in self.state.enis:
                raise Ec2Error("InvalidNetworkInterfaceID.NotFound",
                               f"The networkInterface ID '{i}' does not exist")
        filters = collect_filters(params)
        out = []
        for eni in self.state.enis.values():
            if ids and eni["id"] not in ids:
                continue
            subnet = self.state.subnet_of(eni)

            def get(name, eni=eni, subnet=subnet):
                publics = [a["public_ip"] for a in self.state.addresses.values()
                           if a["network_interface_id"] == eni["id"]]
                simple = {
                    "network-interface-id": [eni["id"]], "subnet-id": [subnet["id"]],
                    "description": [eni["description"]],
                    "vpc-id": [subnet["vpc_id"]],
                    "availability-zone": [subnet["availability_zone"]],
                    "attachment.instance-id": [eni["instance_id"]] if eni["instance_id"] else [],
                    "attachment.device-index": [eni["device_index"]],
                    "mac-address": [eni.get("mac", "")], "status": [eni["status"]],
                    "private-ip-address": eni["private_ips"],
                    "addresses.private-ip-address": eni["private_ips"],
                    "association.public-ip": publics,
                    "source-dest-check": ["true" if eni["source_dest_check"] else "false"],
                }
                return simple.get(name, tag_filter(eni["tags"], name))

            if matches_filters(filters, get):
                out.append(self._eni_xml(eni))
        return f"<networkInterfaceSet>{''.join(out)}</networkInterfaceSet>"

    # --- instances
    def describe_instance_status(self, params, _changes):
        ids = collect_list(params, "InstanceId")
        for i in ids:
            if i not in self.state.instances:
                raise Ec2Error("InvalidInstanceID.NotFound",
                               f"The instance ID '{i}' does not exist")
        include_all = boolean_param(params, "IncludeAllInstances")
        codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
                 "stopping": 64, "stopped": 80}
        out = []
        for inst in self.state.instances.values():
            if ids and inst["id"] not in ids:
                continue
            if inst["state"] != "running" and not include_all:
                continue

            def check(status):
                detail = "passed" if status == "ok" else (
                    "failed" if status == "impaired" else "initializing")
                return (f"<status>{escape(status)}</status><details><item><name>reachability"
                        f"</name><status>{detail}</status></item></details>")

            running = inst["state"] == "running"
            out.append(
                f"<item>{el('instanceId', inst['id'])}"
                f"{el('availabilityZone', inst['availability_zone'])}"
                f"<instanceState><code>{codes.get(inst['state'], 16)}</code>"
                f"<name>{escape(inst['state'])}</name></instanceState>"
                f"<systemStatus>{check(inst['system_status'] if running else 'not-applicable')}"
                f"</systemStatus><instanceStatus>"
                f"{check(inst['status'] if running else 'not-applicable')}</instanceStatus>"
                "</item>")
        return f"<instanceStatusSet>{''.join(out)}</instanceStatusSet>"


def required(params, name):
    v = params.get(name)
    if not v:
        raise Ec2Error("MissingParameter", f"The request must contain the parameter {name}")
    return v


# ---------------------------------------------------------------------------------------------
# SigV4 (botocore computes; we only pick the pieces out of the request)

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;\-]+), ?"
    r"Signature=(?P<sig>[0-9a-f]{64})$")


def botocore_authorization(method, url, headers, body, access_key_id, secret, token,
                           region, service, amz_date):
    """The Authorization header botocore's SigV4Auth computes for this request, signing exactly
    the given headers (name -> value) at the given X-Amz-Date."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=url, data=body)
    for name, value in headers.items():
        req.headers[name] = value
    req.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(access_key_id, secret, token), service, region)
    canonical = auth.canonical_request(req)
    string_to_sign = auth.string_to_sign(req, canonical)
    signature = auth.signature(string_to_sign, req)
    scope = f"{access_key_id}/{amz_date[:8]}/{region}/{service}/aws4_request"
    signed = auth.signed_headers(auth.headers_to_sign(req))
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"


def verify_sigv4(state, method, url, headers, body, now=None, service="ec2"):
    """Raises Ec2Error(AuthFailure, 401) unless the request is signed by a known key for the
    service ("ec2", or "monitoring" for CloudWatch). Returns the access key id."""
    auth = headers.get("authorization")
    if not auth:
        raise Ec2Error("AuthFailure", "AWS was not able to validate the provided access "
                       "credentials (missing Authorization header)", 401)
    m = AUTH_RE.match(auth.strip())
    if not m:
        raise Ec2Error("AuthFailure", "Authorization header is not AWS4-HMAC-SHA256", 401)
    expired = state.expired_keys.get(m["akid"])
    if expired:
        raise Ec2Error(expired, "The security token included in the request is expired", 400)
    cred = state.credentials.get(m["akid"])
    if cred is None:
        raise Ec2Error("AuthFailure", "AWS was not able to validate the provided access "
                       "credentials", 401)
    if m["region"] != state.region or m["service"] != service:
        raise Ec2Error("AuthFailure", f"Credential should be scoped to a valid region "
                       f"({state.region}) and service ({service})", 401)
    amz_date = headers.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Ec2Error("AuthFailure", "missing or malformed X-Amz-Date", 401)
    if m["date"] != amz_date[:8]:
        raise Ec2Error("AuthFailure", "credential scope date differs from X-Amz-Date", 401)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs(now - when) > MAX_SKEW:
        raise Ec2Error("AuthFailure", "Signature expired: request time is more than 15 minutes "
                       "from the server time", 401)
    if cred["session_token"] and headers.get("x-amz-security-token") != cred["session_token"]:
        raise Ec2Error("AuthFailure", "The security token included in the request is invalid",
                       401)
    signed = m["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        raise Ec2Error("AuthFailure", "SignedHeaders must include host and x-amz-date", 401)
    to_sign = {}
    for name in signed:
        if name not in headers:
            raise Ec2Error("AuthFailure", f"signed header {name} is missing", 401)
        to_sign[name] = headers[name]
    expected = botocore_authorization(method, url, to_sign, body, m["akid"],
                                      cred["secret_access_key"], cred["session_token"],
                                      m["region"], m["service"], amz_date)
    if expected.split("Signature=")[1] != m["sig"]:
        raise Ec2Error("AuthFailure", "The request signature we calculated does not match the "
                       "signature you provided", 401)
    return m["akid"]


# ---------------------------------------------------------------------------------------------
# CloudWatch PutMetricData (awsQuery protocol, Version 2010-08-01)

CW_NS = "http://monitoring.amazonaws.com/doc/2010-08-01/"
CW_VERSION = "2010-08-01"
CW_MAX_DATUMS = 1000
CW_MAX_BODY = 1_000_000  # bytes of request body
CW_MAX_DIMENSIONS = 30
CW_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None"}
CW_DATUM_RE = re.compile(r"^MetricData\.member\.(\d+)\.(.+)$")
CW_DIM_RE = re.compile(r"^Dimensions\.member\.(\d+)\.(Name|Value)$")


def cw_response(request_id):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<PutMetricDataResponse xmlns="{CW_NS}">'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            f"</PutMetricDataResponse>")


def cw_error_response(code, message, request_id, status):
    kind = "Receiver" if status >= 500 else "Sender"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{CW_NS}"><Error>'
            f"<Type>{kind}</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")


def cw_name(value, what, max_length=255):
    """Names (namespace, metric, dimension): 1..255 characters; dimension values 1..1024."""
    if not value or len(value) > max_length or any(not 0x20 <= ord(c) <= 0x7e for c in value):
        raise Ec2Error("InvalidParameterValue", f"{what} must be 1 to {max_length} printable "
                       f"ASCII characters, got {value[:40]!r}")
    return value


def cw_timestamp(text, now):
    """ISO 8601 as the Query API takes it (2026-12-05T12:03:00Z, optional fraction/offset)."""
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Ec2Error("InvalidParameterValue", f"Timestamp {text!r} is not ISO 8601")
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    if t < now - datetime.timedelta(days=14) or t > now + datetime.timedelta(hours=2):
        raise Ec2Error("InvalidParameterValue", f"Timestamp {text} is more than two weeks in "
                       "the past or two hours in the future")
    return t


def parse_put_metric_data(params, now=None):
    """Validates a PutMetricData request as CloudWatch does (the subset of fields eipgate and the
    AWS CLI send: MetricName, Dimensions, Value, Unit, Timestamp, StorageResolution) and returns
    (namespace, [datum dict]). Raises Ec2Error(InvalidParameterValue/MissingParameter, 400)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    namespace = params.get("Namespace")
    if not namespace:
        raise Ec2Error("MissingParameter", "The parameter Namespace is required.")
    cw_name(namespace, "Namespace")
    if namespace.startswith("AWS/"):
        raise Ec2Error("InvalidParameterValue", "The value AWS/ for parameter Namespace is "
                       "invalid: the AWS/ prefix is reserved")
    members = {}
    for key, value in params.items():
        if key in ("Action", "Version", "Namespace"):
            continue
        m = CW_DATUM_RE.match(key)
        if not m:
            raise Ec2Error("InvalidParameterValue", f"unknown parameter {key}")
        members.setdefault(int(m.group(1)), {})[m.group(2)] = value
    if not members:
        raise Ec2Error("MissingParameter", "The parameter MetricData is required.")
    if sorted(members) != list(range(1, len(members) + 1)):
        raise Ec2Error("InvalidParameterValue", "MetricData members must be numbered 1..N")
    if len(members) > CW_MAX_DATUMS:
        raise Ec2Error("InvalidParameterValue", f"The collection MetricData must not have more "
                       f"than {CW_MAX_DATUMS} records")
    out = []
    for n in range(1, len(members) + 1):
        fields = members[n]
        where = f"MetricData.member.{n}"
        datum = {"namespace": namespace, "dimensions": {}}
        dims = {}
        for k, v in fields.items():
            dm = CW_DIM_RE.match(k)
            if dm:
                dims.setdefault(int(dm.group(1)), {})[dm.group(2)] = v
            elif k == "MetricName":
                datum["metric_name"] = cw_name(v, f"{where}.MetricName")
            elif k == "Value":
                try:
                    value = float(v)
                except ValueError:
                    raise Ec2Error("InvalidParameterValue", f"{where}.Value {v!r} is not a number")
                if value != value or value in (float("inf"), float("-inf")):
                    raise Ec2Error("InvalidParameterValue", f"{where}.Value must be finite")
                if value != 0 and not 8.515920e-109 <= abs(value) <= 1.174271e+108:
                    raise Ec2Error("InvalidParameterValue", f"{where}.Value {v} is out of range")
                datum["value"] = value
            elif k == "Unit":
                if v not in CW_UNITS:
                    raise Ec2Error("InvalidParameterValue", f"{where}.Unit {v!r} is not a "
                                   "StandardUnit")
                datum["unit"] = v
            elif k == "Timestamp":
                datum["timestamp"] = cw_timestamp(v, now).strftime("%Y-%m-%dT%H:%M:%SZ")
            elif k == "StorageResolution":
                if v not in ("1", "60"):
                    raise Ec2Error("InvalidParameterValue", f"{where}.StorageResolution must be "
                                   "1 or 60")
                datum["storage_resolution"] = int(v)
            else:
                raise Ec2Error("InvalidParameterValue", f"{where}: unsupported field {k}")
        if "metric_name" not in datum:
            raise Ec2Error("MissingParameter", f"The parameter {where}.MetricName is required.")
        if "value" not in datum:
            raise Ec2Error("MissingParameter", f"The parameter {where}.Value is required.")
        if len(dims) > CW_MAX_DIMENSIONS:
            raise Ec2Error("InvalidParameterValue", f"{where}: more than {CW_MAX_DIMENSIONS} "
                           "dimensions")
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise Ec2Error("InvalidParameterValue", f"{where}.Dimensions members must be "
                           "numbered 1..N")
        for i in range(1, len(dims) + 1):
            d = dims[i]
            if "Name" not in d or "Value" not in d:
                raise Ec2Error("MissingParameter", f"{where}.Dimensions.member.{i} needs Name "
                               "and Value")
            name = cw_name(d["Name"], f"{where}.Dimensions.member.{i}.Name")
            if name in datum["dimensions"]:
                raise Ec2Error("InvalidParameterValue", f"{where}: dimension {name} twice")
            datum["dimensions"][name] = cw_name(d["Value"], f"{where}.Dimensions.member.{i}.Value",
                                                1024)
        datum.setdefault("unit", "None")
        out.append(datum)
    return namespace, out


# ---------------------------------------------------------------------------------------------
# IMDSv2


class Imds:
    """Instance metadata. Tokens are per instance; credentials are minted per instance role and
    registered in the state so EC2 calls signed with them verify."""

    def __init__(self, state):
        self.state = state
        self.tokens = {}  # token -> (instance id, expiry monotonic)
        self.role_credentials = {}  # instance id -> dict
        self.credential_fetches = 0  # GETs of security-credentials/<role>
        self.lock = threading.Lock()

    def put_token(self, instance_id, headers):
        if "x-forwarded-for" in headers:
            return 403, "text/plain", "Forbidden"
        ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds")
        try:
            ttl = int(ttl)
        except (TypeError, ValueError):
            return 400, "text/plain", "Bad Request"
        if not 1 <= ttl <= 21600:
            return 400, "text/plain", "Bad Request"
        token = "AQAEA" + secrets.token_urlsafe(40)
        with self.lock:
            self.tokens[token] = (instance_id, time.monotonic() + ttl)
        return 200, "text/plain", token, {"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)}

    def get(self, instance_id, path, headers):
        token = headers.get("x-aws-ec2-metadata-token")
        with self.lock:
            entry = self.tokens.get(token or "")
        if entry is None or entry[0] != instance_id or entry[1] < time.monotonic():
            return 401, "text/plain", "Unauthorized"
        tree = self._tree(instance_id)
        node = tree
        parts = [p for p in path.split("/") if p]
        if parts[:3] == ["meta-data", "iam", "security-credentials"] and len(parts) == 4:
            with self.lock:
                self.credential_fetches += 1
        for p in parts:
            if not isinstance(node, dict) or p not in node:
                return 404, "text/html", "<html><body><h1>404 - Not Found</h1></body></html>"
            node = node[p]
        if isinstance(node, dict):
            body = "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items())
            return 200, "text/plain", body
        return 200, ("application/json" if node.startswith("{") else "text/plain"), node

    def rotate(self, instance_id=None, code="ExpiredToken"):
        """New role credentials now; EC2 answers `code` to the old keys (as for an expired
        session token). Returns the old key ids."""
        old = []
        with self.lock:
            for iid, c in list(self.role_credentials.items()):
                if instance_id and iid != instance_id:
                    continue
                old.append(c["access_key_id"])
                del self.role_credentials[iid]
        with self.state.lock:
            for k in old:
                self.state.credentials.pop(k, None)
                self.state.expired_keys[k] = code
        return old

    def credentials_for(self, inst):
        with self.lock:
            c = self.role_credentials.get(inst["id"])
            now = datetime.datetime.now(datetime.timezone.utc)
            if c is None or c["expiration"] - now < datetime.timedelta(seconds=60):
                c = {"access_key_id": "ASIA" + secrets.token_hex(8).upper(),
                     "secret_access_key": secrets.token_urlsafe(30),
                     "session_token": "IQoJ" + secrets.token_urlsafe(60),
                     "expiration": now + datetime.timedelta(seconds=int(inst["credentials_ttl"])),
                     "last_updated": now}
                self.role_credentials[inst["id"]] = c
                with self.state.lock:
                    self.state.credentials[c["access_key_id"]] = {
                        "secret_access_key": c["secret_access_key"],
                        "session_token": c["session_token"]}
            return c

    def _tree(self, instance_id):
        st = self.state
        with st.lock:
            inst = st.instances[instance_id]
            enis = sorted((e for e in st.enis.values() if e["instance_id"] == instance_id),
                          key=lambda e: e["device_index"])
            macs = {}
            for e in enis:
                subnet = st.subnet_of(e)
                macs[e["mac"]] = {
                    "device-number": str(e["device_index"]),
                    "interface-id": e["id"],
                    "local-ipv4s": "\n".join(e["private_ips"]),
                    "mac": e["mac"],
                    "owner-id": st.account_id,
                    "subnet-id": subnet["id"],
                    "subnet-ipv4-cidr-block": subnet["cidr"],
                    "vpc-id": subnet["vpc_id"],
                    "vpc-ipv4-cidr-block": st.vpcs.get(subnet["vpc_id"], {}).get("cidr", ""),
                }
            az = inst["availability_zone"]
            md = {
                "ami-id": inst.get("image_id", "ami-0123456789abcdef0"),
                "instance-id": instance_id,
                "instance-type": inst.get("instance_type", "t4g.small"),
                "local-ipv4": enis[0]["private_ips"][0] if enis else "",
                "mac": enis[0]["mac"] if enis else "",
                "network": {"interfaces": {"macs": macs}},
                "placement": {"availability-zone": az, "availability-zone-id":
                              inst.get("availability_zone_id", az), "region": st.region},
            }
        if inst.get("role"):
            c = self.credentials_for(inst)
            doc = {"Code": "Success",
                   "LastUpdated": c["last_updated"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "Type": "AWS-HMAC", "AccessKeyId": c["access_key_id"],
                   "SecretAccessKey": c["secret_access_key"], "Token": c["session_token"],
                   "Expiration": c["expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}
            md["iam"] = {
                "info": json.dumps({"Code": "Success", "InstanceProfileArn":
                                    f"arn:aws:iam::{st.account_id}:instance-profile/{inst['role']}",
                                    "InstanceProfileId": "AIPA" + instance_id[2:].upper()}),
                "security-credentials": {inst["role"]: json.dumps(doc, indent=2)},
            }
        identity = json.dumps({"accountId": st.account_id, "availabilityZone": az,
                               "instanceId": instance_id, "region": st.region,
                               "instanceType": md["instance-type"],
                               "privateIp": md["local-ipv4"]}, indent=2)
        return {"meta-data": md, "dynamic": {"instance-identity": {"document": identity}}}


# ---------------------------------------------------------------------------------------------
# Faults and call log


class Faults:
    """Injected by the control endpoint: latency for every EC2 call (and per action:
    action_latency_ms {"PutMetricData": 2000}), then the next N calls throttled
    (RequestLimitExceeded, 503; CloudWatch's Throttling, 400) or failed (5xx), optionally only
    for some actions."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency = 0.0
        self.action_latency = {}  # action -> seconds, on top of latency
        self.throttle_next = 0
        self.fail_next = 0
        self.fail_status = 503
        self.fail_code = "Unavailable"
        self.actions = None

    def update(self, spec):
        with self.lock:
            if "latency_ms" in spec:
                self.latency = float(spec["latency_ms"]) / 1000.0
            if "action_latency_ms" in spec:
                self.action_latency = {k: float(v) / 1000.0
                                       for k, v in (spec["action_latency_ms"] or {}).items()}
            if "throttle_next" in spec:
                self.throttle_next = int(spec["throttle_next"])
            if "fail_next" in spec:
                self.fail_next = int(spec["fail_next"])
            self.fail_status = int(spec.get("fail_status", self.fail_status))
            self.fail_code = spec.get("fail_code", self.fail_code)
            if "actions" in spec:
                self.actions = set(spec["actions"]) if spec["actions"] else None

    def take(self, action):
        """(latency, Ec2Error or None) for one call."""
        with self.lock:
            latency = self.latency + self.action_latency.get(action, 0.0)
            if self.actions is not None and action not in self.actions:
                return latency, None
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return latency, Ec2Error("RequestLimitExceeded", "Request limit exceeded.", 503)
            if self.fail_next > 0:
                self.fail_next -= 1
                return latency, Ec2Error(self.fail_code, "We encountered an internal error."
                                         " Please try again.", self.fail_status)
            return latency, None

    def to_json(self):
        with self.lock:
            return {"latency_ms": self.latency * 1000,
                    "action_latency_ms": {k: v * 1000 for k, v in self.action_latency.items()},
                    "throttle_next": self.throttle_next,
                    "fail_next": self.fail_next, "fail_status": self.fail_status,
                    "fail_code": self.fail_code,
                    "actions": sorted(self.actions) if self.actions else None}


# ---------------------------------------------------------------------------------------------
# HTTP


class FakeAws:
    """The whole service, usable from Python (the simulator) or as a process (main())."""

    def __init__(self, state, host="127.0.0.1", port=0, on_change=None, quiet=True):
        self.state = state
        self.ec2 = Ec2Api(state, on_change)
        self.imds = Imds(state)
        self.faults = Faults()
        self.calls = []  # every EC2 request: action, params, status, code, raw request
        self.metrics = []  # every datum CloudWatch accepted (parse_put_metric_data + received_at)
        self.logs = fake_logs.LogsStore()  # CloudWatch Logs: groups, streams, events
        self.calls_lock = threading.Lock()
        self.quiet = quiet
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = None
        self.extra_httpds = []

    def listen_also(self, host, port=None):
        """Serve the same model on another address too (an IPv6 one: the dual-stack endpoint)."""
        cls = ThreadingHTTPServer
        if ":" in host:
            cls = type("Http6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        httpd = cls((host, self.port if port is None else port), self.httpd.RequestHandlerClass)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.extra_httpds.append(httpd)
        return httpd

    def add_on_change(self, hook):
        self.ec2.on_change.append(hook)

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        for httpd in [self.httpd, *self.extra_httpds]:
            httpd.shutdown()
            httpd.server_close()

    def record(self, entry):
        with self.calls_lock:
            self.calls.append(entry)
            del self.calls[:-1000]

    def instance_of_key(self, access_key_id):
        """The instance whose role credentials hold this key (None: static keys)."""
        with self.imds.lock:
            return next((i for i, c in self.imds.role_credentials.items()
                         if c["access_key_id"] == access_key_id), None)

    def add_metrics(self, data, access_key_id):
        at = time.time()
        instance = self.instance_of_key(access_key_id)
        with self.calls_lock:
            for d in data:
                self.metrics.append(dict(d, received_at=at, access_key_id=access_key_id,
                                         instance_id=instance))
            del self.metrics[:-100000]

    def instance_for(self, path_instance, headers, client_ip):
        """IMDS instance selection: path prefix /<i-id>/, then X-Fake-Instance-Id, then the
        instance whose imds_source_ips holds the client address, then the only instance."""
        st = self.state
        if path_instance:
            return path_instance if path_instance in st.instances else None
        hdr = headers.get("x-fake-instance-id")
        if hdr:
            return hdr if hdr in st.instances else None
        for inst in st.instances.values():
            if client_ip in inst.get("imds_source_ips", []):
                return inst["id"]
        return next(iter(st.instances)) if len(st.instances) == 1 else None


class _Handler(BaseHTTPRequestHandler):
    fake = None  # set per server
    protocol_version = "HTTP/1.1"
    server_version = "AmazonEC2"
    sys_version = ""

    def log_message(self, fmt, *args):
        if not self.fake.quiet:
            sys.stderr.write("fake_aws: " + (fmt % args) + "\n")

    def _headers_lower(self):
        h = {}
        for k, v in self.headers.items():
            lk = k.lower()
            h[lk] = h[lk] + "," + v if lk in h else v
        return h

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, ctype, body, extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        body = self._body()
        headers = self._headers_lower()
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path.startswith("/_fake/"):
                return self._control(method, path[len("/_fake/"):], body)
            m = re.match(r"^(?:/(i-[0-9a-zA-Z]+))?/latest/(.*)$", path)
            if m:
                return self._imds(method, m.group(1), m.group(2), headers)
            if path == "/" and method == "POST" and \
                    headers.get("x-amz-target", "").startswith(fake_logs.TARGET_PREFIX):
                return self._logs(body, headers)
            if path == "/" and method in ("POST", "GET"):
                if self._is_cloudwatch(method, body, headers):
                    return self._cloudwatch(method, body, headers)
                return self._ec2(method, body, headers)
            self._send(404, "text/plain", "not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _imds(self, method, path_instance, path, headers):
        inst = self.fake.instance_for(path_instance, headers, self.client_address[0])
        if inst is None:
            return self._send(404, "text/plain", "no such instance")
        if path == "api/token":
            if method != "PUT":
                return self._send(405, "text/plain", "Method Not Allowed")
            r = self.fake.imds.put_token(inst, headers)
        elif method == "GET":
            r = self.fake.imds.get(inst, path, headers)
        else:
            return self._send(405, "text/plain", "Method Not Allowed")
        self._send(r[0], r[1], r[2], r[3] if len(r) > 3 else None)

    def _ec2(self, method, body, headers):
        query = urllib.parse.urlsplit(self.path).query
        form = body.decode("utf-8", "replace") if method == "POST" else query
        params = dict(urllib.parse.parse_qsl(form, keep_blank_values=True))
        action = params.get("Action", "")
        raw = {"method": method, "path": self.path, "headers": headers,
               "body": body.decode("utf-8", "replace")}
        url = f"http://{headers.get('host', '127.0.0.1')}{self.path}"
        latency, fault = self.fake.faults.take(action)
        if latency:
            time.sleep(latency)
        request_id = str(uuid.uuid4())
        try:
            verify_sigv4(self.fake.state, method, url, headers, body)
            if fault is not None:
                raise fault
            status, xml, code = self.fake.ec2.handle(params)
        except Ec2Error as e:
            status, xml, code = e.status, error_response(e.code, e.message, request_id), e.code
        self.fake.record({"action": action, "params": params, "status": status, "code": code,
                          "request": raw, "client": self.client_address[0]})
        self._send(status, "text/xml;charset=UTF-8", xml)

    def _is_cloudwatch(self, method, body, headers):
        """CloudWatch and EC2 share this endpoint: the credential scope's service says which
        (as the host name would in AWS), else the API version."""
        m = AUTH_RE.match((headers.get("authorization") or "").strip())
        if m:
            return m["service"] == "monitoring"
        form = body.decode("utf-8", "replace") if method == "POST" else \
            urllib.parse.urlsplit(self.path).query
        return dict(urllib.parse.parse_qsl(form)).get("Version") == CW_VERSION

    def _cloudwatch(self, method, body, headers):
        query = urllib.parse.urlsplit(self.path).query
        form = body.decode("utf-8", "replace") if method == "POST" else query
        params = dict(urllib.parse.parse_qsl(form, keep_blank_values=True))
        action = params.get("Action", "")
        raw = {"method": method, "path": self.path, "headers": headers,
               "body": body.decode("utf-8", "replace")}
        url = f"http://{headers.get('host', '127.0.0.1')}{self.path}"
        latency, fault = self.fake.faults.take(action)
        if latency:
            time.sleep(latency)
        request_id = str(uuid.uuid4())
        status, code = 200, None
        try:
            akid = verify_sigv4(self.fake.state, method, url, headers, body, service="monitoring")
            if fault is not None:
                if fault.code == "RequestLimitExceeded":  # CloudWatch's spelling of it
                    fault = Ec2Error("Throttling", "Rate exceeded", 400)
                raise fault
            if method != "POST":
                raise Ec2Error("InvalidAction", "PutMetricData takes POST", 400)
            if len(body) > CW_MAX_BODY:
                raise Ec2Error("RequestEntityTooLarge", f"Request size {len(body)} exceeded "
                               f"{CW_MAX_BODY} bytes", 413)
            if params.get("Version") != CW_VERSION:
                raise Ec2Error("InvalidAction", f"Version must be {CW_VERSION}", 400)
            if action != "PutMetricData":
                raise Ec2Error("InvalidAction", f"The action {action} is not valid for this "
                               "web service (this fake serves PutMetricData only)", 400)
            _, data = parse_put_metric_data(params)
            self.fake.add_metrics(data, akid)
            xml = cw_response(request_id)
        except Ec2Error as e:
            status, code = e.status, e.code
            xml = cw_error_response(e.code, e.message, request_id, e.status)
        self.fake.record({"action": action, "service": "monitoring", "params": params,
                          "status": status, "code": code, "request": raw,
                          "client": self.client_address[0]})
        self._send(status, "text/xml", xml)

    def _logs(self, body, headers):
        """CloudWatch Logs (JSON 1.1): the operation from X-Amz-Target, SigV4 service "logs"."""
        operation = headers["x-amz-target"][len(fake_logs.TARGET_PREFIX):]
        raw = {"method": "POST", "path": self.path, "headers": headers,
               "body": body.decode("utf-8", "replace")}
        url = f"http://{headers.get('host', '127.0.0.1')}{self.path}"
        latency, fault = self.fake.faults.take(operation)
        if latency:
            time.sleep(latency)
        status, code, answer = 200, None, "{}"
        try:
            try:
                akid = verify_sigv4(self.fake.state, "POST", url, headers, body, service="logs")
            except Ec2Error as e:  # the JSON protocol's spellings
                raise fake_logs.LogsError(
                    "UnrecognizedClientException" if e.status == 401 else e.code, e.message,
                    400 if e.status == 401 else e.status)
            if fault is not None:
                if fault.code == "RequestLimitExceeded":
                    raise fake_logs.LogsError("ThrottlingException", "Rate exceeded", 400)
                raise fake_logs.LogsError("ServiceUnavailableException", fault.message,
                                          fault.status)
            ctype = headers.get("content-type", "").split(";")[0].strip()
            if ctype != fake_logs.CONTENT_TYPE:
                raise fake_logs.LogsError("SerializationException",
                                          f"Content-Type {ctype!r} is not "
                                          f"{fake_logs.CONTENT_TYPE}")
            answer = json.dumps(self.fake.logs.handle(operation, body,
                                                      self.fake.instance_of_key(akid)))
        except fake_logs.LogsError as e:
            status, code, answer = e.status, e.code, e.body()
        self.fake.record({"action": operation, "service": "logs", "status": status,
                          "code": code, "request": raw})
        self._send(status, fake_logs.CONTENT_TYPE, answer,
                   {"x-amzn-RequestId": str(uuid.uuid4())})

    def _control(self, method, what, body):
        fake = self.fake
        spec = json.loads(body or b"{}") if method in ("POST", "PUT") else {}
        if what == "health":
            return self._send(200, "text/plain", "ok")
        if what == "state" and method == "GET":
            return self._send(200, "application/json", json.dumps(fake.state.to_json()))
        if what == "faults":
            if method != "GET":
                fake.faults.update(spec)
            return self._send(200, "application/json", json.dumps(fake.faults.to_json()))
        if what == "calls":
            with fake.calls_lock:
                calls = list(fake.calls)
                if method == "POST" and spec.get("clear"):
                    fake.calls.clear()
            return self._send(200, "application/json", json.dumps(calls))
        if what == "metrics":
            # GET: every datum PutMetricData accepted, oldest first: {namespace, metric_name,
            # dimensions {name: value}, value, unit, timestamp, received_at, access_key_id,
            # instance_id (the instance whose role credentials signed it, else null)};
            # POST {"clear": true} empties the list (and answers what it held).
            with fake.calls_lock:
                metrics = list(fake.metrics)
                if method == "POST" and spec.get("clear"):
                    fake.metrics.clear()
            return self._send(200, "application/json", json.dumps(metrics))
        if what == "logs":
            # GET: {group: {stream: [{timestamp, message, ingestion_time, instance_id}]}}, events
            # oldest first as accepted. POST {"create_group": "name"} creates a log group (the
            # fake has none at start); {"clear": true} empties every stream.
            if method == "POST":
                if spec.get("create_group"):
                    fake.logs.create_group(spec["create_group"])
                if spec.get("clear"):
                    fake.logs.clear()
            return self._send(200, "application/json", json.dumps(fake.logs.to_json()))
        if what == "imds" and method == "GET":
            with fake.imds.lock:
                out = {"credential_fetches": fake.imds.credential_fetches}
            return self._send(200, "application/json", json.dumps(out))
        if what == "imds" and method == "POST":
            # {"revoke_tokens": true}: every IMDS token becomes invalid (as after an IMDS restart)
            if spec.get("revoke_tokens"):
                with fake.imds.lock:
                    fake.imds.tokens.clear()
            out = {}
            # {"rotate_credentials": true, "instance": "i-..." (default all),
            #  "code": "ExpiredToken"}: the role's keys are replaced; EC2 rejects the old ones
            if spec.get("rotate_credentials"):
                out["rotated"] = fake.imds.rotate(spec.get("instance"),
                                                  spec.get("code", "ExpiredToken"))
            # {"expire_key": "AKID...", "code": "RequestExpired"}: EC2 rejects that key from now
            # on, whatever IMDS serves (a key that IMDS has not rotated yet, or a static one)
            if spec.get("expire_key"):
                with fake.state.lock:
                    fake.state.expired_keys[spec["expire_key"]] = spec.get("code", "ExpiredToken")
            return self._send(200, "application/json", json.dumps(out))
        if what == "instance" and method == "POST":
            # {"id": "i-...", "state": "stopped", "status": "impaired", "system_status": ...}
            # The simulator calls this when it stops or restarts an instance; hooks run like
            # after an API mutation (routes at a stopped instance's ENI become blackholes).
            with fake.state.lock:
                inst = fake.state.instances.get(spec.get("id"))
                if inst is None:
                    return self._send(404, "text/plain", "no such instance")
                old = {k: inst[k] for k in ("state", "status", "system_status")}
                for k in ("state", "status", "system_status"):
                    if k in spec:
                        inst[k] = spec[k]
                new = {k: inst[k] for k in ("state", "status", "system_status")}
                answer = json.dumps(inst)
            if old != new:
                change = {"action": "InstanceStateChange", "instance_id": inst["id"],
                          "old": old, "new": new}
                for hook in fake.ec2.on_change:
                    hook(change)
            return self._send(200, "application/json", answer)
        if what == "tags" and method == "POST":
            # {"resource": "rtb-...", "tags": {"k": "v"}}: as CreateTags by someone else (another
            # AZ's pair renewing its lease in a test that has no such pair running).
            with fake.state.lock:
                rid = spec.get("resource", "")
                target = (fake.state.route_tables.get(rid) or fake.state.enis.get(rid)
                          or fake.state.addresses.get(rid))
                if target is None:
                    return self._send(404, "text/plain", "no such resource")
                target["tags"].update(spec.get("tags", {}))
                answer = json.dumps(target["tags"])
            return self._send(200, "application/json", answer)
        self._send(404, "text/plain", "unknown control path")


def command_hook(command):
    """on_change hook that runs a shell command with the change as JSON on stdin (and in
    $FAKE_AWS_CHANGE), synchronously: the API call returns after the network follows."""

    def hook(change):
        text = json.dumps(change)
        r = subprocess.run(command, shell=True, input=text, text=True, timeout=30,
                           env={**os.environ, "FAKE_AWS_CHANGE": text})
        if r.returncode != 0:
            sys.stderr.write(f"fake_aws: on-change command exited {r.returncode}\n")

    return hook


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake EC2 Query API + IMDSv2 (tests/sim/README.md)")
    ap.add_argument("--state", required=True, help="state file (JSON, or YAML by extension)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the bound port here once serving (readiness)")
    ap.add_argument("--on-change", help="shell command run per change, JSON on stdin")
    ap.add_argument("--changes-log", help="append each change as one JSON line to this file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    hooks = []
    if args.on_change:
        hooks.append(command_hook(args.on_change))
    if args.changes_log:
        lock = threading.Lock()

        def log_change(change):
            with lock, open(args.changes_log, "a", encoding="utf-8") as f:
                f.write(json.dumps(change) + "\n")

        hooks.append(log_change)
    fake = FakeAws(State(load_state_file(args.state)), args.host, args.port, hooks,
                   quiet=not args.verbose)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{fake.port}\n")
        os.replace(tmp, args.port_file)  # readers never see a half-written file
    print(f"fake_aws listening on {args.host}:{fake.port}", flush=True)
    try:
        fake.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
