#!/usr/bin/python3
"""Tests of ami/scripts/eipgate-render-config and its package eipgate_render (unittest; run by
ctest as ami_render_config).

EIPGATE_DATAPLANE / EIPGATE_CONTROL name the built binaries (ctest sets them): the rendered file is
also checked with `eipgate-dataplane --check` and `eipgate-control --check` (the real parsers).
Without them the tests fail; not as root (eipgate-control --check wants a root-owned secret), the
control checks are skipped and the run exits 77, which ctest shows as skipped, not passed."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import yaml
except ImportError:
    sys.exit("test_render_config: PyYAML is missing: apt-get install python3-yaml")

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "scripts", "eipgate-render-config")
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import eipgate_render as render  # noqa: E402

SKIP_RETURN_CODE = 77  # tests/CMakeLists.txt: ami_render_config SKIP_RETURN_CODE


def binary(env):
    """The built binary named by $env; a missing one fails the test (ctest always sets them)."""
    path = os.environ.get(env)
    if not path or not os.path.exists(path):
        raise AssertionError("%s is not set to a built binary (ctest sets it; build eipgate-dataplane "
                             "and eipgate-control first)" % env)
    return path


def can_check_control(test):
    """eipgate-control --check needs the secret owned by root: skip (exit 77) when not root."""
    if os.geteuid() != 0:
        test.skipTest("not root: eipgate-control --check needs a root-owned secret file")

FACTS = {
    "region": "us-east-1", "az": "us-east-1a", "az_id": "use1-az1", "instance_id": "i-0aaaaaaaaaaaaaaa1",
    "enis": [
        {"mac": "0e:00:00:00:0a:01", "id": "eni-0aaaaaaaaaaaaaaa1", "device_number": 0,
         "ips": ["10.0.0.15"], "subnet_cidr": "10.0.0.0/24"},
        {"mac": "0e:00:00:00:0a:02", "id": "eni-0aaaaaaaaaaaaaad1", "device_number": 1,
         "ips": ["10.0.0.5", "10.0.0.100"], "subnet_cidr": "10.0.0.0/24"},
    ],
    "nics": {"0e:00:00:00:0a:01": {"ifname": "ens5", "pci": "0000:00:05.0"},
             "0e:00:00:00:0a:02": {"ifname": "ens6", "pci": "0000:00:06.0"}},
    "cpus": 2, "mem_mib": 2048, "vfio_ok": True,
}
SPEC = {"pair": "use1-az1-0", "peer_address": "10.0.0.16", "priority": 150,
        "service_ips": ["10.0.0.100"], "inside_prefixes": ["10.0.128.0/20", "10.0.144.0/20"],
        "ha_secret_ssm": "/eipgate/use1-az1-0/ha-key"}


class RenderTest(unittest.TestCase):
    def test_vfio_defaults(self):
        cfg, env = render.render(dict(SPEC), FACTS)
        self.assertEqual(cfg["mode"], "one-armed")
        self.assertEqual(cfg["ports"], [{"name": "data", "device": "0000:00:06.0", "mtu": 1500}])
        self.assertEqual(cfg["interface"]["address"], "10.0.0.5/24")
        self.assertEqual(cfg["next_hop"]["gateway"], "10.0.0.1")
        self.assertEqual(cfg["nat"]["outside_addresses"], ["10.0.0.100"])
        self.assertEqual(cfg["workers"]["lcores"], [1])          # 2 vCPUs: one worker
        self.assertEqual(cfg["aws"]["route_tables"], {"tags": {"eipgate:pair": "use1-az1-0"}})
        self.assertEqual(cfg["aws"]["service_address"], {"mode": "secondary-ip", "private_ips": ["10.0.0.100"]})
        self.assertEqual(cfg["ha"]["data_mac"], "0e:00:00:00:0a:02")
        self.assertEqual(cfg["ha"]["peers"], [{"address": "10.0.0.16", "port": 7410}])
        self.assertTrue(cfg["exception_path"]["enabled"])
        self.assertEqual(env["EIPGATE_DATA_PCI"], "0000:00:06.0")
        self.assertEqual(env["EIPGATE_DATA_PATH"], "vfio")
        # 2 GiB: flow table sized to about a quarter of RAM
        self.assertLessEqual(cfg["nat"]["max_flows"] * 128, 2048 * 1048576 // 4)
        self.assertGreater(int(env["EIPGATE_HUGEPAGES"]), 0)

    def test_auto_without_vfio_is_af_xdp(self):
        cfg, env = render.render(dict(SPEC), dict(FACTS, vfio_ok=False))
        self.assertEqual(env["EIPGATE_DATA_PATH"], "af_xdp")
        self.assertTrue(cfg["ports"][0]["device"].startswith("net_af_xdp0,iface=ens6,"))
        cfg, env = render.render(dict(SPEC, data_path="vfio"), dict(FACTS, vfio_ok=False))
        self.assertEqual(env["EIPGATE_DATA_PATH"], "vfio")  # explicit wins

    def test_af_xdp_single_eni(self):
        facts = dict(FACTS, enis=[dict(FACTS["enis"][1], device_number=0)], cpus=4)
        cfg, env = render.render(dict(SPEC, data_path="af_xdp", max_flows="256K"), facts)
        port = cfg["ports"][0]
        self.assertEqual(port["device"], "net_af_xdp0,iface=ens6,start_queue=0,queue_count=3")
        self.assertTrue(port["xdp_steering"])
        self.assertEqual(port["mtu"], 1500)
        self.assertFalse(cfg["exception_path"]["enabled"])
        self.assertEqual(cfg["workers"]["lcores"], [1, 2, 3])
        self.assertEqual(cfg["nat"]["max_flows"], 262144)

    def test_errors_are_all_reported(self):
        bad = dict(SPEC, inside_prefixes=["10.0.128.1/20"], priority=300, servce_ips=[], data_path="dpdk")
        with self.assertRaises(render.ConfigError) as cm:
            render.render(bad, FACTS)
        text = "\n".join(cm.exception.errors)
        self.assertIn("host bits set", text)
        self.assertIn("priority", text)
        self.assertIn("unknown key 'servce_ips'", text)
        self.assertIn("did you mean 'service_ips'", text)
        self.assertIn("data_path", text)
        self.assertIn("auto, vfio, af_xdp", text)

    def test_jumbo_mtu_rejected(self):
        # One 2 KiB buffer per packet: EC2's 9001 would be dropped, so it is refused at boot.
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC, mtu=9001), FACTS)
        self.assertIn("mtu: 9001: 576..2026", "\n".join(cm.exception.errors))
        cfg, _ = render.render(dict(SPEC, mtu=2026), FACTS)
        self.assertEqual(cfg["ports"][0]["mtu"], 2026)

    def test_vpc_cidr_as_inside_prefix_rejected(self):
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC, inside_prefixes=["10.0.0.0/16"]), FACTS)
        self.assertIn("not the VPC CIDR", cm.exception.errors[0])

    def test_service_ip_outside_subnet(self):
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC, service_ips=["10.0.1.100"]), FACTS)
        self.assertIn("not in the data ENI's subnet", "\n".join(cm.exception.errors))

    def test_several_service_ips(self):
        facts = json.loads(json.dumps(FACTS))
        facts["enis"][1]["ips"] = ["10.0.0.5", "10.0.0.100", "10.0.0.101", "10.0.0.102"]
        ips = ["10.0.0.100", "10.0.0.101", "10.0.0.102"]
        cfg, _ = render.render(dict(SPEC, service_ips=ips), facts)
        self.assertEqual(cfg["interface"]["address"], "10.0.0.5/24")  # the primary, not a service IP
        self.assertEqual(cfg["nat"]["outside_addresses"], ips)
        self.assertEqual(cfg["aws"]["service_address"], {"mode": "secondary-ip", "private_ips": ips})

    def test_eip_mode_pairs_allocation_ids(self):
        allocs = ["eipalloc-0aa00000000000001", "eipalloc-0aa00000000000002"]
        cfg, _ = render.render(dict(SPEC, service_ips=["10.0.0.100", "10.0.0.101"], service_mode="eip",
                                    allocation_ids=allocs), FACTS)
        self.assertEqual(cfg["aws"]["service_address"],
                         {"mode": "eip", "private_ips": ["10.0.0.100", "10.0.0.101"], "allocation_ids": allocs})
        # allocation_id: the one-element shorthand
        cfg, _ = render.render(dict(SPEC, service_mode="eip", allocation_id=allocs[0]), FACTS)
        self.assertEqual(cfg["aws"]["service_address"]["allocation_ids"], allocs[:1])
        # and from tags: eipgate:allocation-ids, comma-separated
        self.assertEqual(render.spec_from_tags({"eipgate:allocation-ids": ",".join(allocs)})["allocation_ids"],
                         allocs)

    def test_service_ip_and_allocation_mistakes(self):
        cases = [
            (dict(service_ips=["10.0.0.100", "10.0.0.100"]), "service_ips: 10.0.0.100 is listed twice"),
            (dict(service_ips=["10.0.0.%d" % (100 + i) for i in range(9)]), "service_ips: 9 addresses; at most 8 per pair"),
            (dict(service_mode="eip"), "allocation_ids: required with service_mode eip"),
            (dict(service_ips=["10.0.0.100", "10.0.0.101"], service_mode="eip",
                  allocation_ids=["eipalloc-0aa00000000000001"]), "allocation_ids: 1 for 2 service_ips"),
            (dict(allocation_id="eipalloc-0aa00000000000001", allocation_ids=["eipalloc-0aa00000000000001"]),
             "give allocation_id or allocation_ids, not both"),
            (dict(allocation_ids=["eipalloc-0aa00000000000001", "eipalloc-0aa00000000000001"],
                  service_ips=["10.0.0.100", "10.0.0.101"]), "allocation_ids: eipalloc-0aa00000000000001 is listed twice"),
            (dict(allocation_ids=["eip-1"]), "allocation_ids: 'eip-1' is not an eipalloc-<hex> id"),
        ]
        for extra, want in cases:
            with self.assertRaises(render.ConfigError, msg=want) as cm:
                render.render(dict(SPEC, **extra), FACTS)
            self.assertTrue(any(want in e for e in cm.exception.errors), (want, cm.exception.errors))

    def test_instance_type_limits_service_ips(self):
        """The data ENI holds its primary and (IPv4 addresses per interface - 1) service IPs."""
        ips = ["10.0.0.100", "10.0.0.101", "10.0.0.102"]
        for itype, count, ok in [("t4g.nano", 1, True), ("t4g.nano", 2, False), ("t4g.micro", 2, False),
                                 ("t4g.small", 3, True), ("t4g.medium", 3, True), ("c6gn.medium", 3, True),
                                 ("c7gn.large", 3, True), ("x9.unknown", 3, True)]:
            facts = dict(FACTS, instance_type=itype)
            spec = dict(SPEC, service_ips=ips[:count])
            if ok:
                render.render(spec, facts)
                continue
            with self.assertRaises(render.ConfigError) as cm:
                render.render(spec, facts)
            self.assertIn("service_ips: %d addresses, but a %s's data ENI holds 2 IPv4 addresses: its primary "
                          "and at most 1 service IP (ami/OPERATOR.md" % (count, itype), cm.exception.errors[0])
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC, service_ips=["10.0.0.%d" % (100 + i) for i in range(4)]),
                          dict(FACTS, instance_type="t4g.small"))
        self.assertIn("holds 4 IPv4 addresses: its primary and at most 3 service IPs", cm.exception.errors[0])
        self.assertEqual(render.IPV4_PER_INTERFACE["m6i.large"], 10)
        self.assertEqual(render.IPV4_PER_INTERFACE["c6in.large"], 10)

    def test_no_data_eni(self):
        facts = dict(FACTS, enis=FACTS["enis"][:1])
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC), facts)
        self.assertIn("no data ENI", cm.exception.errors[0])

    def test_tags_then_user_data(self):
        tags = {"eipgate:pair": "use1-az1-1", "eipgate:service-ip": "10.0.0.101",
                "eipgate:inside-prefixes": "10.0.160.0/20, 10.0.176.0/20", "eipgate:priority": "120",
                "eipgate:az": "use1-az1", "Name": "x"}
        spec = render.spec_from_tags(tags)
        self.assertEqual(spec["inside_prefixes"], ["10.0.160.0/20", "10.0.176.0/20"])
        self.assertEqual(spec["priority"], 120)
        spec.update(render.spec_from_user_data(json.dumps({"eipgate": {"priority": 90}}), "ud"))
        self.assertEqual(spec["priority"], 90)
        with self.assertRaises(render.ConfigError):
            render.spec_from_tags({"eipgate:prio": "1"})

    def test_user_data_not_ours(self):
        self.assertIsNone(render.spec_from_user_data("#!/bin/sh\necho hi\n", "ud"))
        self.assertIsNone(render.spec_from_user_data('{"other": 1}', "ud"))
        with self.assertRaises(render.ConfigError) as cm:
            render.spec_from_user_data('{"eipgate": {', "ud")
        self.assertIn("not valid JSON", cm.exception.errors[0])

    def test_overrides_and_policy(self):
        policy = {"groups": [{"name": "p", "sources": ["10.0.128.0/20"]}], "rules": [{"from": "p", "ports": 443}]}
        cfg, _ = render.render(dict(SPEC, policy=policy, overrides={"timeouts": {"udp": "120s"},
                                                                     "nat": {"tcp_mss_clamp": 1400}}), FACTS)
        self.assertEqual(cfg["policy"], policy)
        self.assertEqual(cfg["timeouts"], {"udp": "120s"})
        self.assertEqual(cfg["nat"]["tcp_mss_clamp"], 1400)
        self.assertEqual(cfg["nat"]["inside_prefixes"], SPEC["inside_prefixes"])

    def test_local_facts_pci_behind_virtio(self):
        d = tempfile.mkdtemp(prefix="render-sysfs-")
        for name, dev, mac in (("ens5", "devices/pci0000:00/0000:00:05.0", "0e:00:00:00:0a:01"),
                               ("ens4", "devices/pci0000:00/0000:00:04.0/virtio1", "0e:00:00:00:0a:02"),
                               ("lo", None, "00:00:00:00:00:00")):
            os.makedirs(os.path.join(d, "class/net", name))
            with open(os.path.join(d, "class/net", name, "address"), "w") as f:
                f.write(mac + "\n")
            if dev:
                os.makedirs(os.path.join(d, dev))
                os.symlink(os.path.join(d, dev), os.path.join(d, "class/net", name, "device"))
        nics = render.local_facts(d)["nics"]
        self.assertEqual(nics["0e:00:00:00:0a:01"], {"ifname": "ens5", "pci": "0000:00:05.0"})  # ENA
        self.assertEqual(nics["0e:00:00:00:0a:02"], {"ifname": "ens4", "pci": "0000:00:04.0"})  # virtio
        self.assertIsNone(nics["00:00:00:00:00:00"]["pci"])

    def test_yaml_round_trip(self):
        """PyYAML writes it; what reads back is what was written, strings that look like other
        types included (yaml-cpp sees the same scalars)."""
        value = {"a": [{"name": "x", "b": [1, 2]}, "s"], "t": {"eipgate:pair": "p"}, "e": [], "f": True,
                 "strings": ["yes", "no", "on", "1.0", "0x10", "null", "", "0e:00:00:00:0a:02", "10:30",
                             "5s", "#x", "a: b", "- x", "1e3"], "n": None, "order": {"z": 1, "a": 2}}
        text = render.to_yaml(value)
        self.assertEqual(yaml.safe_load(text), value)
        self.assertEqual(list(yaml.safe_load(text)["order"]), ["z", "a"])  # the dict's order
        self.assertFalse(text.endswith("\n"))


RESCUED = {"route_tables": ["rtb-0aa00000000000001", "rtb-0aa00000000000002"],
           "instances": ["i-0bbbbbbbbbbbbbbb1", "i-0bbbbbbbbbbbbbbb2"]}


class ManagementTest(unittest.TestCase):
    """management (tag eipgate:management, the templates' ManagementAccess)."""

    def test_ipv6_renders_the_dual_stack_endpoint(self):
        cfg, _ = render.render(dict(SPEC, **render.spec_from_tags({"eipgate:management": "Ipv6"})), FACTS)
        self.assertEqual(cfg["aws"]["ip_family"], "ipv6")
        self.assertEqual(cfg["aws"]["endpoints"], {"dual_stack": True})

    def test_ipv6_keeps_explicit_endpoints(self):
        spec = dict(SPEC, management="Ipv6", endpoints={"ec2": "https://ec2.us-east-1.api.aws"})
        cfg, _ = render.render(spec, FACTS)
        self.assertEqual(cfg["aws"]["endpoints"], {"ec2": "https://ec2.us-east-1.api.aws", "dual_stack": True})
        self.assertEqual(spec["endpoints"], {"ec2": "https://ec2.us-east-1.api.aws"})  # not mutated

    def test_public_ip_and_vpc_endpoints_change_nothing(self):
        base, _ = render.render(dict(SPEC), FACTS)
        for m in ("PublicIp", "VpcEndpoints"):
            cfg, _ = render.render(dict(SPEC, management=m), FACTS)
            self.assertEqual(cfg, base, m)
        self.assertNotIn("ip_family", base["aws"])

    def test_ipv6_fetches_the_secret_from_the_dual_stack_endpoint(self):
        import botocore.session
        made = []

        class Client:
            def __init__(self, service, region_name, config):
                self.endpoint = botocore.session.Session().create_client(
                    service, region_name=region_name, config=config, aws_access_key_id="AKIDEXAMPLE",
                    aws_secret_access_key="secret").meta.endpoint_url
                made.append(self)

            def get_secret_value(self, SecretId):
                return {"SecretString": "k3y\n"}

        class Session:
            def create_client(self, service, region_name=None, config=None):
                return Client(service, region_name, config)

        real = botocore.session.get_session
        botocore.session.get_session = Session
        try:
            arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:eipgate/k-AbCdEf"
            self.assertEqual(render.fetch_secret({"ha_secret_arn": arn, "management": "Ipv6"}, "eu-west-1"), b"k3y")
            render.fetch_secret({"ha_secret_arn": arn, "management": "PublicIp"}, "eu-west-1")
        finally:
            botocore.session.get_session = real
        self.assertEqual([c.endpoint for c in made], ["https://secretsmanager.eu-west-1.api.aws",
                                                      "https://secretsmanager.eu-west-1.amazonaws.com"])

    def test_unknown_value_rejected(self):
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC, management="ipv6"), FACTS)
        self.assertIn("management: 'ipv6' is not one of Ipv6, PublicIp, VpcEndpoints",
                      "\n".join(cm.exception.errors))


class FallbackTest(unittest.TestCase):
    """fallback_for (cross-AZ fallback, control/ha/README.md) from user data and tags."""

    def errors_of(self, spec, facts=FACTS):
        with self.assertRaises(render.ConfigError) as cm:
            render.render(spec, facts)
        return "\n".join(cm.exception.errors)

    def test_rendered_in_control_schema(self):
        rule = dict(RESCUED, target="nat-0123456789abcdef0", after="5s", check_interval="1s",
                    inside_prefixes=["10.1.128.0/20", "10.1.144.0/20"])
        cfg, _ = render.render(dict(SPEC, route_table_ids=["rtb-0123456789abcdef0"],
                                    fallback_for=[rule, {"route_tables": ["rtb-0cc00000000000001"],
                                                         "instances": ["i-0ddddddddddddddd1"]}]), FACTS)
        self.assertEqual(cfg["ha"]["fallback_for"], [
            {"route_tables": ["rtb-0aa00000000000001", "rtb-0aa00000000000002"],
             "instances": ["i-0bbbbbbbbbbbbbbb1", "i-0bbbbbbbbbbbbbbb2"],
             "target": "nat-0123456789abcdef0", "after": "5s", "check_interval": "1s"},
            {"route_tables": ["rtb-0cc00000000000001"], "instances": ["i-0ddddddddddddddd1"]}])
        # the rescued subnets are served too (else the dataplane drops their traffic)
        self.assertEqual(cfg["nat"]["inside_prefixes"],
                         ["10.0.128.0/20", "10.0.144.0/20", "10.1.128.0/20", "10.1.144.0/20"])
        self.assertEqual(cfg["aws"]["route_tables"], {"ids": ["rtb-0123456789abcdef0"]})
        self.assertEqual(yaml.safe_load(render.to_yaml(cfg["ha"]))["fallback_for"], cfg["ha"]["fallback_for"])

    def test_absent_or_empty_changes_nothing(self):
        base, _ = render.render(dict(SPEC), FACTS)
        self.assertNotIn("fallback_for", base["ha"])
        cfg, _ = render.render(dict(SPEC, fallback_for=[]), FACTS)
        self.assertEqual(cfg, base)

    def test_bad_ids_and_values_rejected(self):
        text = self.errors_of(dict(SPEC, route_table_ids=["rtb-0123456789abcdef0"], fallback_for=[
            {"route_tables": ["rtb-0123456789abcdef0", "rtb-0aa00000000000001", "subnet-0123456789abcdef0"],
             "instances": ["i-0bbbbbbbbbbbbbbb1", "eni-0bbbbbbbbbbbbbbb1", "i-0bbbbbbbbbbbbbbb1"],
             "target": "igw-0123456789abcdef0", "after": "3", "check_interval": "100ms",
             "inside_prefix": ["10.1.0.0/20"]},
            {"route_tables": ["rtb-0aa00000000000001"], "instances": [], "after": "2h",
             "inside_prefixes": ["10.0.128.0/20", "10.1.0.1/20"]},
            "rtb-0aa00000000000009"]))
        for want in (
                "fallback_for[0].route_tables: 'subnet-0123456789abcdef0' is not an rtb-<hex> id",
                "fallback_for[0].route_tables: 'rtb-0123456789abcdef0' is one of this pair's own route_table_ids",
                "fallback_for[0].instances: 'eni-0bbbbbbbbbbbbbbb1' is not an i-<hex> id",
                "fallback_for[0].instances: 'i-0bbbbbbbbbbbbbbb1' is listed twice",
                "fallback_for[0].target: 'igw-0123456789abcdef0': self (this pair's data ENI) or a NAT Gateway id",
                "fallback_for[0].after: '3' has no unit",
                "fallback_for[0].check_interval: '100ms' is out of range 500ms..1m",
                "fallback_for[0]: unknown key 'inside_prefix' (did you mean 'inside_prefixes'?)",
                "fallback_for[1].instances: required, a non-empty list",
                "fallback_for[1].route_tables: 'rtb-0aa00000000000001' is already in fallback_for[0]: two rules would fight over it",
                "fallback_for[1].after: '2h' is out of range 0s..60m",
                "fallback_for[1].inside_prefixes: 10.0.128.0/20 is already one of inside_prefixes",
                "fallback_for[1].inside_prefixes: '10.1.0.1/20' has host bits set",
                "fallback_for[2]: must be an object"):
            self.assertIn(want, text)
        self.assertIn("fallback_for: a list of rules",
                      self.errors_of(dict(SPEC, fallback_for=RESCUED)))

    def test_durations_at_the_limits(self):
        for after, ok in (("0s", True), ("60m", True), ("3600000ms", True), ("61m", False), ("1.5s", False)):
            spec = dict(SPEC, fallback_for=[dict(RESCUED, after=after)])
            self.assertEqual(not render.validate_fallback(spec), ok, after)

    def test_own_instance_and_own_address(self):
        text = self.errors_of(dict(SPEC, fallback_for=[dict(RESCUED, instances=[FACTS["instance_id"]],
                                                            inside_prefixes=["10.0.0.0/24"])]))
        self.assertIn("fallback_for[0].instances: i-0aaaaaaaaaaaaaaa1 is this instance", text)
        self.assertIn("inside_prefixes: 10.0.0.0/24 holds the NAT's own address", text)

    def test_tags_give_one_rule(self):
        tags = {"eipgate:pair": "use1-az1-0",
                "eipgate:fallback-for-route-tables": "rtb-0aa00000000000001, rtb-0aa00000000000002",
                "eipgate:fallback-for-instances": "i-0bbbbbbbbbbbbbbb1,i-0bbbbbbbbbbbbbbb2",
                "eipgate:fallback-for-inside-prefixes": "10.1.128.0/20",
                "eipgate:fallback-target": "self", "eipgate:fallback-after": "10s"}
        spec = render.spec_from_tags(tags)
        self.assertEqual(spec["fallback_for"], [dict(RESCUED, inside_prefixes=["10.1.128.0/20"],
                                                     target="self", after="10s")])
        merged = dict(SPEC, **spec)
        cfg, _ = render.render(merged, FACTS)
        self.assertEqual(cfg["ha"]["fallback_for"], [dict(RESCUED, target="self", after="10s")])
        # user data's fallback_for replaces the tags' rule as a whole
        merged.update(render.spec_from_user_data(json.dumps({"eipgate": {"fallback_for": []}}), "ud"))
        cfg, _ = render.render(merged, FACTS)
        self.assertNotIn("fallback_for", cfg["ha"])
        self.assertEqual(cfg["nat"]["inside_prefixes"], SPEC["inside_prefixes"])
        # half a rule is an error naming both tags
        with self.assertRaises(render.ConfigError) as cm:
            render.spec_from_tags({"eipgate:fallback-for-route-tables": "rtb-0aa00000000000001"})
        self.assertIn("eipgate:fallback-for-instances are both required", cm.exception.errors[0])
        with self.assertRaises(render.ConfigError) as cm:
            render.spec_from_tags({"eipgate:fallback-for-tables": "rtb-0aa00000000000001"})
        self.assertIn("eipgate:fallback-for-route-tables", cm.exception.errors[0])  # in the known list


class MainTest(unittest.TestCase):
    """The command: files, modes, exit codes; and the real parsers, when built."""

    def assert_both_checks_pass(self, cfg_path, text):
        """eipgate-dataplane --check and eipgate-control --check both accept the rendered file."""
        for env in ("EIPGATE_DATAPLANE", "EIPGATE_CONTROL"):
            path = binary(env)
            if env == "EIPGATE_CONTROL":
                can_check_control(self)
            c = subprocess.run([path, "--config", cfg_path, "--check"], capture_output=True, text=True)
            self.assertEqual(c.returncode, 0, "%s --check:\n%s%s\n%s" % (path, c.stdout, c.stderr, text))

    def run_main(self, spec, local=None):
        d = tempfile.mkdtemp(prefix="render-test-")
        facts = dict(FACTS, user_data=json.dumps({"eipgate": spec}) if spec is not None else None)
        with open(os.path.join(d, "facts.json"), "w") as f:
            json.dump(facts, f)
        args = ["--facts", os.path.join(d, "facts.json"), "--output", os.path.join(d, "eipgate.yaml"),
                "--secret-file", os.path.join(d, "ha.key"), "--env-file", os.path.join(d, "setup.env"),
                "--local-user-data", os.path.join(d, "user-data.json")]
        if local is not None:
            with open(os.path.join(d, "user-data.json"), "w") as f:
                json.dump(local, f)
        p = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True)
        return d, p

    def test_writes_files(self):
        spec = dict(SPEC)
        del spec["ha_secret_ssm"]
        spec["ha_secret"] = "0123456789abcdef0123456789abcdef"
        d, p = self.run_main(spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.stat(os.path.join(d, "ha.key")).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.join(d, "eipgate.yaml")).st_mode & 0o777, 0o644)
        with open(os.path.join(d, "setup.env")) as f:
            self.assertIn("EIPGATE_DATA_PCI=0000:00:06.0\n", f.read())
        cfg_path = os.path.join(d, "eipgate.yaml")
        with open(cfg_path) as f:
            text = f.read()
        self.assertEqual(yaml.safe_load(text)["ha"]["secret_file"], os.path.join(d, "ha.key"))
        self.assertTrue(text.startswith(render.HEADER))
        self.assert_both_checks_pass(cfg_path, text)

    def test_several_service_ips_pass_both_checks(self):
        """private_ips/allocation_ids as eipgate-control parses them, outside_addresses as the
        dataplane does."""
        spec = dict(SPEC, service_ips=["10.0.0.100", "10.0.0.101", "10.0.0.102"],
                    allocation_ids=["eipalloc-0aa00000000000001", "eipalloc-0aa00000000000002",
                                    "eipalloc-0aa00000000000003"])
        del spec["ha_secret_ssm"]
        spec["ha_secret"] = "0123456789abcdef0123456789abcdef"
        d, p = self.run_main(spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg_path = os.path.join(d, "eipgate.yaml")
        with open(cfg_path) as f:
            text = f.read()
        self.assertEqual(yaml.safe_load(text)["aws"]["service_address"]["private_ips"],
                         spec["service_ips"])
        self.assert_both_checks_pass(cfg_path, text)

    def test_example_user_data_passes_the_parsers(self):
        with open(os.path.join(HERE, "..", "examples", "user-data.example.json")) as f:
            spec = json.load(f)["eipgate"]
        del spec["ha_secret_arn"]
        spec["ha_secret"] = "0123456789abcdef0123456789abcdef"
        d, p = self.run_main(spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        c = subprocess.run([binary("EIPGATE_DATAPLANE"), "--config", os.path.join(d, "eipgate.yaml"),
                            "--check"], capture_output=True, text=True)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)

    def test_fallback_passes_control_check(self):
        """The rendered ha.fallback_for is what control/ha/config.cc parses (unknown keys, bad
        durations or a table in both aws.route_tables.ids and fallback_for fail --check)."""
        spec = dict(SPEC, route_table_ids=["rtb-0123456789abcdef0"],
                    fallback_for=[dict(RESCUED, target="nat-0123456789abcdef0", after="5s",
                                       check_interval="1s", inside_prefixes=["10.1.128.0/20"]),
                                  {"route_tables": ["rtb-0cc00000000000001"], "instances": ["i-0ddddddddddddddd1"]}])
        del spec["ha_secret_ssm"]
        spec["ha_secret"] = "0123456789abcdef0123456789abcdef"
        d, p = self.run_main(spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg_path = os.path.join(d, "eipgate.yaml")
        with open(cfg_path) as f:
            text = f.read()
        rule = yaml.safe_load(text)["ha"]["fallback_for"][0]
        self.assertEqual((rule["target"], rule["after"], rule["check_interval"]),
                         ("nat-0123456789abcdef0", "5s", "1s"))
        self.assert_both_checks_pass(cfg_path, text)

    def test_cloudwatch_from_user_data_and_tags(self):
        """"cloudwatch": off | default | full (user data) or tag eipgate:cloudwatch: the
        cloudwatch: section of control/daemon/README.md, pair and AZ filled in."""
        cfg, _ = render.render(dict(SPEC), FACTS)
        self.assertNotIn("cloudwatch", cfg)  # off unless asked (custom metrics cost money)
        cfg, _ = render.render(dict(SPEC, cloudwatch="off"), FACTS)
        self.assertNotIn("cloudwatch", cfg)
        cfg, _ = render.render(dict(SPEC, cloudwatch="default"), FACTS)
        self.assertEqual(cfg["cloudwatch"], {"enabled": True, "metrics": "default",
                                             "pair_name": "use1-az1-0",
                                             "availability_zone": "us-east-1a"})
        no_az = {k: v for k, v in FACTS.items() if k != "az"}
        cfg, _ = render.render(dict(SPEC, cloudwatch="full"), no_az)
        self.assertEqual(cfg["cloudwatch"], {"enabled": True, "metrics": "full",
                                             "pair_name": "use1-az1-0"})  # control asks IMDS
        # overrides reach the section like any other (e.g. another namespace)
        cfg, _ = render.render(dict(SPEC, cloudwatch="default",
                                    overrides={"cloudwatch": {"namespace": "corp/nat"}}), FACTS)
        self.assertEqual(cfg["cloudwatch"]["namespace"], "corp/nat")
        self.assertEqual(cfg["cloudwatch"]["metrics"], "default")
        # the tag, and user data winning over it (the renderer's order: tags, then user data)
        spec = render.spec_from_tags({"eipgate:cloudwatch": "full", "eipgate:pair": "p1"})
        self.assertEqual(spec, {"cloudwatch": "full", "pair": "p1"})
        spec.update(render.spec_from_user_data(json.dumps({"eipgate": {"cloudwatch": "off"}}), "ud"))
        self.assertEqual(spec["cloudwatch"], "off")

    def test_cloudwatch_bad_values(self):
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC, cloudwatch="ful"), FACTS)
        self.assertEqual(cm.exception.errors,
                         ["cloudwatch: 'ful': one of off, default, full (did you mean 'full'?)"])
        spec = dict(SPEC, cloudwatch="default", route_table_ids=["rtb-0123456789abcdef0"])
        del spec["pair"]
        with self.assertRaises(render.ConfigError) as cm:
            render.render(spec, FACTS)
        self.assertIn("cloudwatch: default needs pair", cm.exception.errors[0])
        d, p = self.run_main(dict(SPEC, cloudwatch=True))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("cloudwatch: True: one of off, default, full", p.stderr)

    def test_translation_logs_from_user_data_and_tags(self):
        """"translation_log_group" (user data) or tag eipgate:translation-log-group: the name of an
        existing log group; absent or empty = off."""
        cfg, _ = render.render(SPEC, FACTS)
        self.assertNotIn("cloudwatch_logs", cfg)
        self.assertNotIn("translation_log", cfg)  # the dataplane's default: off
        cfg, _ = render.render(dict(SPEC, translation_log_group=""), FACTS)
        self.assertNotIn("cloudwatch_logs", cfg)
        cfg, _ = render.render(dict(SPEC, translation_log_group="/eipgate/use1"), FACTS)
        self.assertEqual(cfg["translation_log"], {"enabled": True})
        self.assertEqual(cfg["cloudwatch_logs"], {"enabled": True, "log_group": "/eipgate/use1"})
        # overrides reach the rest of the section (byte_budget, log_stream...)
        cfg, _ = render.render(dict(SPEC, translation_log_group="g1",
                                    overrides={"cloudwatch_logs": {"byte_budget": "4M"}}), FACTS)
        self.assertEqual(cfg["cloudwatch_logs"], {"enabled": True, "log_group": "g1", "byte_budget": "4M"})
        spec = render.spec_from_tags({"eipgate:translation-log-group": "/eipgate/x", "eipgate:pair": "p1"})
        self.assertEqual(spec, {"translation_log_group": "/eipgate/x", "pair": "p1"})
        spec = render.spec_from_tags({"eipgate:translation-log-group": ""})
        cfg, _ = render.render(dict(SPEC, **spec), FACTS)
        self.assertNotIn("cloudwatch_logs", cfg)

    def test_translation_log_group_bad_values(self):
        for bad in ("a:b", "x" * 513, "with space", 7):
            with self.assertRaises(render.ConfigError) as cm:
                render.render(dict(SPEC, translation_log_group=bad), FACTS)
            self.assertEqual(len(cm.exception.errors), 1, cm.exception.errors)
            self.assertTrue(cm.exception.errors[0].startswith("translation_log_group: %r is not a CloudWatch Logs group name"
                                                              % (bad,)), cm.exception.errors)
        with self.assertRaises(render.ConfigError) as cm:
            render.render(dict(SPEC, translation_log_groups="g"), FACTS)
        self.assertIn("did you mean 'translation_log_group'?", cm.exception.errors[0])

    def test_ipv6_management_passes_control_check(self):
        """management: Ipv6 (the templates' default) renders aws.ip_family: ipv6 and the
        dual-stack endpoint, which eipgate-control's aws: schema accepts."""
        spec = dict(SPEC, management="Ipv6")
        del spec["ha_secret_ssm"]
        spec["ha_secret"] = "0123456789abcdef0123456789abcdef"
        d, p = self.run_main(spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg_path = os.path.join(d, "eipgate.yaml")
        with open(cfg_path) as f:
            aws = yaml.safe_load(f)["aws"]
        self.assertEqual(aws["ip_family"], "ipv6")
        self.assertEqual(aws["endpoints"], {"dual_stack": True})
        can_check_control(self)
        c = subprocess.run([binary("EIPGATE_CONTROL"), "--config", cfg_path, "--check"],
                           capture_output=True, text=True)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)

    def test_cloudwatch_passes_both_checks(self):
        """The rendered cloudwatch: section is read by eipgate-control (control/daemon) and left
        alone by the dataplane, which shares the file."""
        spec = dict(SPEC, cloudwatch="full")
        del spec["ha_secret_ssm"]
        spec["ha_secret"] = "0123456789abcdef0123456789abcdef"
        d, p = self.run_main(spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg_path = os.path.join(d, "eipgate.yaml")
        with open(cfg_path) as f:
            text = f.read()
        self.assertEqual(yaml.safe_load(text)["cloudwatch"]["metrics"], "full")
        self.assert_both_checks_pass(cfg_path, text)

    def test_translation_logs_passes_both_checks(self):
        """translation_log_group: the dataplane's translation_log turned on and the cloudwatch_logs:
        section, which eipgate-control accepts (and the dataplane, sharing the file, too)."""
        spec = dict(SPEC, translation_log_group="/eipgate/translations")
        del spec["ha_secret_ssm"]
        spec["ha_secret"] = "0123456789abcdef0123456789abcdef"
        d, p = self.run_main(spec)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg_path = os.path.join(d, "eipgate.yaml")
        with open(cfg_path) as f:
            text = f.read()
        cfg = yaml.safe_load(text)
        self.assertEqual(cfg["translation_log"], {"enabled": True})
        self.assertEqual(cfg["cloudwatch_logs"], {"enabled": True, "log_group": "/eipgate/translations"})
        self.assert_both_checks_pass(cfg_path, text)

    def test_fallback_bad_id_exit_2(self):
        _, p = self.run_main(dict(SPEC, fallback_for=[dict(RESCUED, instances=["i-xyz"])]))
        self.assertEqual(p.returncode, 2)
        self.assertIn("eipgate-render-config: fallback_for[0].instances: 'i-xyz' is not an i-<hex> id", p.stderr)

    def test_local_file_overrides(self):
        spec = dict(SPEC)
        del spec["ha_secret_ssm"]
        d, p = self.run_main(spec, local={"eipgate": {"priority": 42}})
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(d, "eipgate.yaml")) as f:
            self.assertIn("priority: 42\n", f.read())
        self.assertFalse(os.path.exists(os.path.join(d, "ha.key")))  # no source: left alone

    def test_nothing_to_render(self):
        _, p = self.run_main(None)
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_invalid_exit_2(self):
        _, p = self.run_main(dict(SPEC, priority=0))
        self.assertEqual(p.returncode, 2)
        self.assertIn("priority", p.stderr)


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(SKIP_RETURN_CODE if result.skipped else 0)
