#!/usr/bin/python3
"""Tests of the CloudFormation wiring in ami/cloudformation (stdlib unittest + python3-yaml; run by
ctest as ami_cfn_templates).

validate.py checks structure; these tests evaluate what the templates compute for given
parameters with a small interpreter of the intrinsics they use (Ref, Fn::Join, Fn::If, Fn::Equals,
Fn::Not, Fn::And, Fn::Or, Fn::Sub, Fn::Select, Fn::GetAtt (sample values or "<Res.Attr>"),
Condition, and the rule functions Fn::EachMemberEquals/Fn::Equals/Fn::Contains):
which slot of eipgate-vpc.yaml rescues which (CrossAzFallback), the parameters it passes to
eipgate-pair.yaml, that those satisfy the pair template's Rules, and what the pair template then
tags its instances with. Also: each check validate.py gained for the fallback wiring reports a
deliberately broken copy of the templates."""

import copy
import importlib.machinery
import importlib.util
import os
import re
import shutil
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CFN = os.path.join(HERE, "..", "cloudformation")


def _load(name, path):
    loader = importlib.machinery.SourceFileLoader(name, path)
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(mod)
    return mod


validate = _load("validate", os.path.join(CFN, "validate.py"))
render = validate.load_renderer()


def load_template(name):
    with open(os.path.join(CFN, name)) as f:
        return yaml.load(f, Loader=validate.Loader)


NOVALUE = object()


class Stack:
    """A template with parameter values: evaluates conditions, rules and property values."""

    def __init__(self, template, values, attrs=None):
        self.t = template
        self.attrs = attrs or {}  # "Res.Attr" -> the value AWS would give (else "<Res.Attr>")
        self.params = {}
        for name, p in template.get("Parameters", {}).items():
            v = values.get(name, p.get("Default"))
            if v is None:
                raise KeyError("parameter %s has no value" % name)
            if isinstance(v, list):
                v = ",".join(v)
            # CloudFormation: a CommaDelimitedList "" is [""]
            self.params[name] = v.split(",") if p["Type"] == "CommaDelimitedList" else v
        self.conds = {}

    def cond(self, name):
        if name not in self.conds:
            self.conds[name] = bool(self.ev(self.t["Conditions"][name]))
        return self.conds[name]

    def ev(self, node):
        if isinstance(node, list):
            return [x for x in (self.ev(v) for v in node) if x is not NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: v for k, v in ((k, self.ev(v)) for k, v in node.items()) if v is not NOVALUE}
        (k, v), = node.items()
        if k == "Ref":
            if v == "AWS::NoValue":
                return NOVALUE
            if v in self.params:
                return self.params[v]
            return "<%s>" % v   # a resource or pseudo parameter
        if k == "Condition":
            return self.cond(v)
        if k == "Fn::If":
            return self.ev(v[1] if self.cond(v[0]) else v[2])
        if k == "Fn::Join":
            return v[0].join(self.ev(v[1]))
        if k == "Fn::Equals":
            return self.ev(v[0]) == self.ev(v[1])
        if k == "Fn::Not":
            return not self.ev(v[0])
        if k == "Fn::And":
            return all(self.ev(x) for x in v)
        if k == "Fn::Or":
            return any(self.ev(x) for x in v)
        if k == "Fn::EachMemberEquals":
            return all(x == self.ev(v[1]) for x in self.ev(v[0]))
        if k == "Fn::Contains":
            return self.ev(v[1]) in self.ev(v[0])
        if k == "Fn::Select":
            return self.ev(v[1])[int(v[0])]
        if k == "Fn::Sub":
            text, variables = (v, {}) if isinstance(v, str) else (v[0], self.ev(v[1]))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(
                variables[m.group(1)] if m.group(1) in variables else self.ev({"Ref": m.group(1)})), text)
        if k == "Fn::Base64":
            return self.ev(v)
        if k == "Fn::GetAtt":
            return self.attrs.get(".".join(v), "<%s>" % ".".join(v))
        return {k: self.ev(v)}

    def failed_rules(self):
        """AssertDescriptions of the Rules that do not hold."""
        out = []
        for rule in self.t.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.ev(rule["RuleCondition"]):
                continue
            out.extend(a["AssertDescription"] for a in rule["Assertions"] if not self.ev(a["Assert"]))
        return out


SLOTS = {  # slot -> (name, tables, prefixes, instance ids)
    1: ("use1-az1-0", "rtb-0a000000000000001,rtb-0a000000000000002", "10.0.128.0/20,10.0.144.0/20",
        "i-0a000000000000001,i-0a000000000000002"),
    2: ("use1-az2-0", "rtb-0b000000000000001", "10.0.160.0/20", "i-0b000000000000001,i-0b000000000000002"),
    3: ("use1-az3-0", "rtb-0c000000000000001", "10.0.176.0/20", "i-0c000000000000001,i-0c000000000000002"),
}


def vpc_values(slots, cross_az="true", ids=True):
    v = {"VpcId": "vpc-0123456789abcdef0", "ImageId": "ami-0123456789abcdef0", "CrossAzFallback": cross_az}
    for n in slots:
        name, tables, prefixes, instances = SLOTS[n]
        v.update({"Pair%dName" % n: name, "Pair%dPublicSubnet" % n: "subnet-0%d" % n,
                  "Pair%dRouteTables" % n: tables, "Pair%dInsidePrefixes" % n: prefixes})
        if ids:
            v["Pair%dInstanceIds" % n] = instances
    return v


# The facts eipgate-render-config reads from IMDS and sysfs, for a pair with the sample addresses.
RENDER_FACTS = {
    "region": "us-east-1", "az": "us-east-1a", "instance_id": "i-0aaaaaaaaaaaaaaa1", "instance_type": "c6in.large",
    "enis": [{"mac": "0e:00:00:00:0a:01", "device_number": 0, "ips": ["10.0.0.15"], "subnet_cidr": "10.0.0.0/24"},
             {"mac": "0e:00:00:00:0a:02", "device_number": 1, "ips": ["10.0.0.5"] + ["10.0.0.%d" % (100 + i) for i in range(8)],
              "subnet_cidr": "10.0.0.0/24"}],
    "nics": {"0e:00:00:00:0a:02": {"ifname": "ens6", "pci": "0000:00:06.0"}},
    "cpus": 2, "mem_mib": 2048, "vfio_ok": True,
}


class VpcRingTest(unittest.TestCase):
    def nested(self, values):
        """slot -> the parameters eipgate-vpc.yaml passes to its eipgate-pair.yaml stack."""
        vpc = Stack(load_template("eipgate-vpc.yaml"), values)
        self.assertEqual(vpc.failed_rules(), [])
        out = {}
        for name, r in vpc.t["Resources"].items():
            if r["Type"] == "AWS::CloudFormation::Stack" and vpc.cond(r["Condition"]):
                out[int(name[-1])] = vpc.ev(r["Properties"]["Parameters"])
        return out

    def rescued(self, params):
        return (params["FallbackForRouteTableIds"], params["FallbackForInstanceIds"],
                params["FallbackForInsidePrefixes"])

    def test_two_slots_rescue_each_other(self):
        p = self.nested(vpc_values([1, 2]))
        self.assertEqual(self.rescued(p[1]), SLOTS[2][1:2] + SLOTS[2][3:4] + SLOTS[2][2:3])
        self.assertEqual(self.rescued(p[2]), SLOTS[1][1:2] + SLOTS[1][3:4] + SLOTS[1][2:3])
        self.assertEqual(p[1]["FallbackAfter"], "3s")

    def test_three_slots_ring(self):
        p = self.nested(vpc_values([1, 2, 3]))
        self.assertEqual([p[n]["FallbackForRouteTableIds"] for n in (1, 2, 3)],
                         [SLOTS[2][1], SLOTS[3][1], SLOTS[1][1]])
        self.assertEqual([p[n]["FallbackForInstanceIds"] for n in (1, 2, 3)],
                         [SLOTS[2][3], SLOTS[3][3], SLOTS[1][3]])

    def test_off_or_ids_unknown_passes_nothing(self):
        for values in (vpc_values([1, 2, 3], cross_az="false"), vpc_values([1, 2, 3], ids=False)):
            for params in self.nested(values).values():
                self.assertEqual(self.rescued(params), ("", "", ""))
        values = vpc_values([1, 2, 3])
        del values["Pair3InstanceIds"]   # slot 3 not known yet: its rescuer (2) waits
        p = self.nested(values)
        self.assertEqual(self.rescued(p[2]), ("", "", ""))
        self.assertEqual(p[3]["FallbackForRouteTableIds"], SLOTS[1][1])

    def test_slot_rules(self):
        vpc = Stack(load_template("eipgate-vpc.yaml"), vpc_values([1, 3]))
        self.assertIn("CrossAzFallback needs at least two slots (Pair2Name)", vpc.failed_rules())
        self.assertIn("CrossAzFallback needs the used slots without gaps (slot 3 used, slot 2 not)",
                      vpc.failed_rules())
        self.assertEqual(Stack(load_template("eipgate-vpc.yaml"),
                               vpc_values([1, 3], cross_az="false")).failed_rules(), [])

    def test_nested_parameters_satisfy_the_pair_template(self):
        pair = load_template("eipgate-pair.yaml")
        for slots in ([1, 2], [1, 2, 3]):
            for n, params in self.nested(vpc_values(slots)).items():
                s = Stack(pair, params)
                self.assertEqual(s.failed_rules(), [], (slots, n))
                self.assertTrue(s.cond("HasFallback"))


class PairTemplateTest(unittest.TestCase):
    BASE = {"PairName": "use1-az1-0", "VpcId": "vpc-0123456789abcdef0", "PublicSubnetId": "subnet-01",
            "PrivateRouteTableIds": "rtb-0a000000000000001", "InsidePrefixes": "10.0.128.0/20",
            "ImageId": "ami-0123456789abcdef0"}
    FALLBACK = {"FallbackForRouteTableIds": "rtb-0b000000000000001,rtb-0b000000000000002",
                "FallbackForInstanceIds": "i-0b000000000000001,i-0b000000000000002",
                "FallbackForInsidePrefixes": "10.0.160.0/20"}

    def stack(self, **extra):
        return Stack(load_template("eipgate-pair.yaml"), dict(self.BASE, **extra))

    def tags(self, s, instance):
        return {t["Key"]: t["Value"] for t in s.ev(s.t["Resources"][instance]["Properties"]["Tags"])}

    def statements(self, s):
        return s.ev(s.t["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"])

    def test_off_by_default(self):
        s = self.stack()
        self.assertFalse(s.cond("HasFallback"))
        self.assertEqual(s.failed_rules(), [])
        self.assertEqual(self.tags(s, "InstanceA"), {"Name": "eipgate-use1-az1-0-a", "eipgate:cloudwatch": "default",
                                                     "eipgate:management": "Ipv6",
                                                     "eipgate:allocation-ids": "<ServiceEip.AllocationId>"})
        self.assertNotIn("ReplaceRoutesOfTablesThisPairRescues", [st["Sid"] for st in self.statements(s)])

    def test_on_tags_iam_and_render(self):
        s = self.stack(**self.FALLBACK)
        self.assertEqual(s.failed_rules(), [])
        for instance in ("InstanceA", "InstanceB"):
            tags = self.tags(s, instance)
            self.assertEqual(tags["eipgate:fallback-for-route-tables"], self.FALLBACK["FallbackForRouteTableIds"])
            self.assertEqual(tags["eipgate:fallback-after"], "3s")
            spec = render.spec_from_tags(tags)
            self.assertEqual(spec["fallback_for"], [{
                "route_tables": ["rtb-0b000000000000001", "rtb-0b000000000000002"],
                "instances": ["i-0b000000000000001", "i-0b000000000000002"],
                "inside_prefixes": ["10.0.160.0/20"], "target": "self", "after": "3s"}])
        st = [x for x in self.statements(s) if x["Sid"] == "ReplaceRoutesOfTablesThisPairRescues"]
        self.assertEqual(st[0]["Condition"], {"StringEquals": {"ec2:ResourceTag/eipgate:fallback-by": "use1-az1-0"}})

    # name -> (metric, statistic, period, evaluation periods, operator, threshold, missing data)
    ALARMS = {
        "PortAllocationErrorsAlarm": ("ErrorPortAllocation", "Sum", 60, 1, "GreaterThanThreshold", "0", "notBreaching"),
        "DropsAlarm": ("PacketsDropCount", "Sum", 300, 1, "GreaterThanThreshold", "1000", "notBreaching"),
        "NoActiveAlarm": ("HaActive", "Maximum", 60, 2, "LessThanThreshold", "1", "breaching"),
        "NoStandbyAlarm": ("HaStandby", "Maximum", 60, 5, "LessThanThreshold", "1", "breaching"),
        "FailoverAlarm": ("FailoverCount", "Sum", 60, 1, "GreaterThanOrEqualToThreshold", "1", "notBreaching"),
    }

    def alarms(self, s):
        """The eipgate-namespace alarms the stack creates, evaluated."""
        return {n: s.ev(r["Properties"]) for n, r in s.t["Resources"].items()
                if isinstance(r, dict) and r["Type"] == "AWS::CloudWatch::Alarm"
                and r["Properties"].get("Namespace") == "eipgate"
                and s.cond(r["Condition"])}

    def test_cloudwatch_default(self):
        s = self.stack()
        alarms = self.alarms(s)
        self.assertEqual(set(alarms), set(self.ALARMS))
        for name, (metric, stat, period, evals, op, thr, missing) in self.ALARMS.items():
            a = alarms[name]
            self.assertEqual((a["MetricName"], a["Statistic"], a["Period"], a["EvaluationPeriods"],
                              a["DatapointsToAlarm"], a["ComparisonOperator"], str(a["Threshold"]),
                              a["TreatMissingData"]), (metric, stat, period, evals, evals, op, thr, missing), name)
            self.assertEqual(a["Dimensions"], [{"Name": "PairName", "Value": "use1-az1-0"},
                                               {"Name": "AvailabilityZone", "Value": "<InstanceA.AvailabilityZone>"}])
            self.assertNotIn("AlarmActions", a)   # no topic: alarms without actions
        st = [x for x in self.statements(s) if x["Sid"] == "PutMetricDataEipgateNamespace"]
        self.assertEqual(st, [{"Sid": "PutMetricDataEipgateNamespace", "Effect": "Allow",
                               "Action": "cloudwatch:PutMetricData", "Resource": "*",
                               "Condition": {"StringEquals": {"cloudwatch:namespace": "eipgate"}}}])
        for instance in ("InstanceA", "InstanceB"):
            tags = self.tags(s, instance)
            self.assertEqual(tags["eipgate:cloudwatch"], "default")
            self.assertEqual(render.spec_from_tags(tags)["cloudwatch"], "default")

    def test_cloudwatch_topic_threshold_and_full(self):
        topic = "arn:aws:sns:us-east-1:123456789012:ops"
        s = self.stack(AlarmTopicArn=topic, DropAlarmThreshold="50", CloudWatchMetrics="full")
        alarms = self.alarms(s)
        self.assertEqual(len(alarms), 5)
        for a in alarms.values():
            self.assertEqual(a["AlarmActions"], [topic])
        self.assertEqual(alarms["DropsAlarm"]["Threshold"], "50")
        self.assertEqual(self.tags(s, "InstanceB")["eipgate:cloudwatch"], "full")
        pattern = s.t["Parameters"]["AlarmTopicArn"]["AllowedPattern"]
        self.assertTrue(re.fullmatch(pattern, topic))
        self.assertTrue(re.fullmatch(pattern, ""))
        self.assertFalse(re.fullmatch(pattern, "arn:aws:sqs:us-east-1:123456789012:q"))

    def test_cloudwatch_off(self):
        s = self.stack(CloudWatchMetrics="off", AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:ops")
        self.assertEqual(self.alarms(s), {})
        self.assertNotIn("PutMetricDataEipgateNamespace", [st["Sid"] for st in self.statements(s)])
        self.assertEqual(self.tags(s, "InstanceA")["eipgate:cloudwatch"], "off")
        with self.assertRaises(render.ConfigError):
            render.validate(dict(render.spec_from_tags({"eipgate:cloudwatch": "verbose"}),
                                 inside_prefixes=["10.0.128.0/20"], service_ips=["10.0.0.100"],
                                 peer_address="10.0.0.16"))

    def test_vpc_passes_cloudwatch_parameters(self):
        vals = dict(vpc_values([1, 2]), CloudWatchMetrics="full", AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:ops",
                    DropAlarmThreshold="7")
        vpc = Stack(load_template("eipgate-vpc.yaml"), vals)
        for name in ("Pair1", "Pair2"):
            p = vpc.ev(vpc.t["Resources"][name]["Properties"]["Parameters"])
            self.assertEqual((p["CloudWatchMetrics"], p["AlarmTopicArn"], p["DropAlarmThreshold"]),
                             ("full", "arn:aws:sns:us-east-1:123456789012:ops", "7"))

    # What AWS would give for the service addresses (DataEniA's secondary IPs, the EIPs' ids).
    IPS = ["10.0.0.%d" % (100 + i) for i in range(8)]
    ALLOCS = {"ServiceEip%s.AllocationId" % ("" if n == 1 else n): "eipalloc-0%016x" % n for n in range(1, 9)}

    def stack_with_addresses(self, count, **extra):
        attrs = dict(self.ALLOCS, **{"DataEniA.SecondaryPrivateIpAddresses": self.IPS[:count],
                                     "MgmtEniA.PrimaryPrivateIpAddress": "10.0.0.15",
                                     "MgmtEniB.PrimaryPrivateIpAddress": "10.0.0.16"})
        return Stack(load_template("eipgate-pair.yaml"), dict(self.BASE, ServiceAddressCount=str(count), **extra),
                     attrs)

    def spec(self, s, instance):
        """What eipgate-render-config merges from the instance's tags and user data."""
        spec = render.spec_from_tags(self.tags(s, instance))
        ud = s.ev(s.t["Resources"][instance]["Properties"]["UserData"])
        spec.update(render.spec_from_user_data(ud, instance))
        render.validate(spec)
        return spec

    def test_service_addresses(self):
        """ServiceAddressCount N: N secondary IPs on DataEniA, N EIPs each associated with its IP
        (Select i), user data's service_ips the whole list and the allocation-ids tag the EIPs in
        the same order: eipgate-render-config pairs them by index."""
        for count in (1, 3, 8):
            s = self.stack_with_addresses(count)
            self.assertEqual(s.failed_rules(), [], count)
            r = self.resources(s)
            self.assertEqual(r["DataEniA"]["SecondaryPrivateIpAddressCount"], str(count))
            self.assertNotIn("SecondaryPrivateIpAddressCount", r["DataEniB"])
            eips = ["ServiceEip"] + ["ServiceEip%d" % n for n in range(2, count + 1)]
            self.assertEqual(sorted(n for n in r if s.t["Resources"][n]["Type"] == "AWS::EC2::EIP"), sorted(eips))
            assocs = {n: p for n, p in r.items() if s.t["Resources"][n]["Type"] == "AWS::EC2::EIPAssociation"}
            self.assertEqual(sorted(assocs), sorted(e + "Association" for e in eips))
            for i, eip in enumerate(eips):
                a = assocs[eip + "Association"]
                self.assertEqual((a["AllocationId"], a["NetworkInterfaceId"], a["PrivateIpAddress"]),
                                 (self.ALLOCS[eip + ".AllocationId"], "<DataEniA>", self.IPS[i]))
            for instance in ("InstanceA", "InstanceB"):
                spec = self.spec(s, instance)
                self.assertEqual(spec["service_ips"], self.IPS[:count])
                self.assertEqual(spec["allocation_ids"], [self.ALLOCS[e + ".AllocationId"] for e in eips])
                self.assertLessEqual(len(self.tags(s, instance)["eipgate:allocation-ids"]), 256)
            out = s.t["Outputs"]
            self.assertEqual(s.ev(out["ElasticIps"]["Value"]), ",".join("<%s>" % e for e in eips))
            self.assertEqual(s.ev(out["ServicePrivateIps"]["Value"]), ",".join(self.IPS[:count]))
            self.assertEqual(s.ev(out["ElasticIp"]["Value"]), "<ServiceEip>")
        # the one-address user data is what the template gave before ServiceAddressCount
        ud = self.stack_with_addresses(1).ev(load_template("eipgate-pair.yaml")["Resources"]["InstanceA"]
                                              ["Properties"]["UserData"])
        self.assertIn('"service_ips": ["10.0.0.100"]', ud)
        self.assertEqual(self.stack().params["ServiceAddressCount"], 1)

    def test_service_addresses_fit_the_instance_type(self):
        """The Rules refuse more service addresses than the data ENI holds besides its primary IP,
        for the types of eipgate-render-config's table."""
        limits = dict((t, n - 1) for t, n in render.spec.IPV4_PER_INTERFACE.items())
        for itype, most in sorted(limits.items()):
            for count in range(1, 9):
                failed = self.stack_with_addresses(count, InstanceType=itype).failed_rules()
                self.assertEqual(bool(failed), count > most, (itype, count, failed))
        self.assertEqual(self.stack_with_addresses(8, InstanceType="c7gn.xlarge").failed_rules(), [])
        self.assertEqual(self.stack_with_addresses(4, InstanceType="c6gn.medium").failed_rules(),
                         ["This instance type holds 4 IPv4 addresses per interface - ServiceAddressCount 3 at most."])
        self.assertEqual(load_template("eipgate-pair.yaml")["Parameters"]["ServiceAddressCount"]["AllowedValues"],
                         list(range(1, render.spec.MAX_SERVICE_IPS + 1)))

    def test_translation_logs(self):
        s = self.stack()
        self.assertNotIn("eipgate:translation-log-group", self.tags(s, "InstanceA"))
        self.assertNotIn("ShipTranslationLogs", [st["Sid"] for st in self.statements(s)])
        self.assertNotIn("cloudwatch_logs", render.render(self.spec(self.stack_with_addresses(1), "InstanceA"),
                                                          RENDER_FACTS)[0])
        s = self.stack_with_addresses(1, TranslationLogGroup="/eipgate/translations")
        st = [x for x in self.statements(s) if x["Sid"] == "ShipTranslationLogs"]
        arn = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/eipgate/translations"
        self.assertEqual(st, [{"Sid": "ShipTranslationLogs", "Effect": "Allow",
                               "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                               "Resource": [arn, arn + ":log-stream:*"]}])
        for instance in ("InstanceA", "InstanceB"):
            self.assertEqual(self.tags(s, instance)["eipgate:translation-log-group"], "/eipgate/translations")
            cfg = render.render(self.spec(s, instance), RENDER_FACTS)[0]
            self.assertEqual(cfg["cloudwatch_logs"], {"enabled": True, "log_group": "/eipgate/translations"})
            self.assertEqual(cfg["translation_log"], {"enabled": True})
        pattern = s.t["Parameters"]["TranslationLogGroup"]["AllowedPattern"]
        for ok in ("", "/eipgate/translations", "a#b.c_d-e"):
            self.assertTrue(re.fullmatch(pattern, ok), ok)
        for bad in ("a:b", "a b", "x" * 513):
            self.assertFalse(re.fullmatch(pattern, bad), bad)
            self.assertFalse(render.spec.LOG_GROUP_RE.fullmatch(bad), bad)

    def test_vpc_passes_addresses_and_logs(self):
        vals = dict(vpc_values([1, 2]), ServiceAddressCount="3", TranslationLogGroup="/eipgate/t")
        vpc = Stack(load_template("eipgate-vpc.yaml"), vals)
        for name in ("Pair1", "Pair2"):
            p = vpc.ev(vpc.t["Resources"][name]["Properties"]["Parameters"])
            self.assertEqual((p["ServiceAddressCount"], p["TranslationLogGroup"]), ("3", "/eipgate/t"))
            self.assertEqual(Stack(load_template("eipgate-pair.yaml"), p).failed_rules(), [])
        vpc = Stack(load_template("eipgate-vpc.yaml"), vpc_values([1]))
        p = vpc.ev(vpc.t["Resources"]["Pair1"]["Properties"]["Parameters"])
        self.assertEqual((p["ServiceAddressCount"], p["TranslationLogGroup"]), (1, ""))
        self.assertEqual(vpc.ev(vpc.t["Outputs"]["Pair1ElasticIps"]["Value"]), "<Pair1.Outputs.ElasticIps>")

    def resources(self, s):
        """Logical name -> evaluated properties of the resources the stack creates."""
        return {n: s.ev(r.get("Properties", {})) for n, r in s.t["Resources"].items()
                if isinstance(r, dict) and ("Condition" not in r or s.cond(r["Condition"]))}

    def test_ipv6_management_by_default(self):
        s = self.stack()
        r = self.resources(s)
        self.assertFalse([n for n in r if n.startswith("MgmtEip")])   # no public IPv4 but the service EIP
        self.assertEqual([n for n, p in r.items() if s.t["Resources"][n]["Type"] == "AWS::EC2::EIP"], ["ServiceEip"])
        for eni in ("MgmtEniA", "MgmtEniB"):
            self.assertEqual(r[eni]["Ipv6AddressCount"], 1)
        for eni in ("DataEniA", "DataEniB"):
            self.assertNotIn("Ipv6AddressCount", r[eni])
        v6 = [e for e in r["MgmtSg"]["SecurityGroupEgress"] if "CidrIpv6" in e]
        self.assertEqual(sorted((e["FromPort"], e["CidrIpv6"]) for e in v6), [(80, "::/0"), (443, "::/0")])
        self.assertNotIn("BpaExclusionPublicSubnet", r)
        for instance in ("InstanceA", "InstanceB"):
            spec = render.spec_from_tags(self.tags(s, instance))
            self.assertEqual(spec["management"], "Ipv6")

    def test_public_ip_and_vpc_endpoints_management(self):
        s = self.stack(ManagementAccess="PublicIp")
        r = self.resources(s)
        self.assertIn("MgmtEipA", r)
        self.assertIn("MgmtEipBAssociation", r)
        self.assertNotIn("Ipv6AddressCount", r["MgmtEniA"])
        self.assertFalse([e for e in r["MgmtSg"]["SecurityGroupEgress"] if "CidrIpv6" in e])
        self.assertEqual(self.tags(s, "InstanceA")["eipgate:management"], "PublicIp")
        s = self.stack(ManagementAccess="VpcEndpoints")
        r = self.resources(s)
        self.assertFalse([n for n in r if n.startswith("MgmtEip")])
        self.assertNotIn("Ipv6AddressCount", r["MgmtEniB"])

    def test_block_public_access_exclusion(self):
        for mode in ("allow-egress", "allow-bidirectional"):
            r = self.resources(self.stack(BlockPublicAccessExclusion=mode))
            self.assertEqual(r["BpaExclusionPublicSubnet"]["SubnetId"], "subnet-01")
            self.assertEqual(r["BpaExclusionPublicSubnet"]["InternetGatewayExclusionMode"], mode)

    def test_vpc_ipv6_route_and_one_exclusion_per_subnet(self):
        vpc_t = load_template("eipgate-vpc.yaml")
        vals = dict(vpc_values([1, 2, 3]), Ipv6RouteTableId="rtb-0f000000000000001",
                    BlockPublicAccessExclusion="allow-egress", Pair3PublicSubnet="subnet-01")
        vpc = Stack(vpc_t, vals)
        self.assertTrue(vpc.cond("CreateIpv6Route"))
        route = vpc.ev(vpc.t["Resources"]["Ipv6DefaultRoute"]["Properties"])
        self.assertEqual(route, {"RouteTableId": "rtb-0f000000000000001", "DestinationIpv6CidrBlock": "::/0",
                                 "EgressOnlyInternetGatewayId": "<EgressOnlyIgw>"})
        p = {n: vpc.ev(vpc.t["Resources"]["Pair%d" % n]["Properties"]["Parameters"]) for n in (1, 2, 3)}
        self.assertEqual([p[n]["ManagementAccess"] for n in (1, 2, 3)], ["Ipv6"] * 3)
        # slot 3 shares slot 1's subnet: only slot 1 creates the subnet's exclusion
        self.assertEqual([p[n]["BlockPublicAccessExclusion"] for n in (1, 2, 3)],
                         ["allow-egress", "allow-egress", "none"])
        for n in (1, 2, 3):
            self.assertEqual(Stack(load_template("eipgate-pair.yaml"), p[n]).failed_rules(), [])
        self.assertFalse(Stack(vpc_t, vpc_values([1, 2])).cond("CreateIpv6Route"))
        self.assertFalse(Stack(vpc_t, dict(vals, ManagementAccess="PublicIp")).cond("CreateIpv6Route"))

    def test_incomplete_fallback_refused(self):
        for missing in self.FALLBACK:
            extra = dict(self.FALLBACK)
            del extra[missing]
            self.assertEqual(len(self.stack(**extra).failed_rules()), 1, missing)


class ValidateChecksTest(unittest.TestCase):
    """Each new validate.py check reports a broken copy of the pair template."""

    def problems(self, edit):
        d = tempfile.mkdtemp(prefix="cfn-test-")
        self.addCleanup(shutil.rmtree, d)
        with open(os.path.join(CFN, "eipgate-pair.yaml")) as f:
            text = f.read()
        broken = edit(text)
        self.assertNotEqual(broken, text, "the edit did not apply")
        path = os.path.join(d, "eipgate-pair.yaml")
        with open(path, "w") as f:
            f.write(broken)
        return "\n".join(validate.check_template(path))

    def test_unmodified_passes(self):
        self.assertEqual(self.problems(lambda t: t + "\n"), "")

    def test_half_a_rule_in_tags(self):
        text = self.problems(lambda t: t.replace(
            '        - !If [HasFallback, {Key: "eipgate:fallback-for-instances", Value: !Join [",", !Ref FallbackForInstanceIds]}, !Ref AWS::NoValue]\n',
            "", 1))
        self.assertIn("InstanceA: user data + tags (with conditional tags): tags eipgate:fallback-*", text)

    def test_allocation_ids_not_paired_with_service_ips(self):
        # the tag of InstanceA without the 8th EIP: 7 ids for the 8 service IPs of a full pair
        text = self.problems(lambda t: t.replace(
            ', !If [HasAddr8, !GetAtt ServiceEip8.AllocationId, !Ref AWS::NoValue]]]}', ']]}', 1))
        self.assertIn("InstanceA: user data + tags (with conditional tags): allocation_ids: 7 for 8 "
                      "service_ips", text)
        self.assertNotIn("InstanceB", text)

    def test_bad_translation_log_group_sample(self):
        text = self.problems(lambda t: t.replace(
            '{Key: "eipgate:translation-log-group", Value: !Ref TranslationLogGroup}',
            '{Key: "eipgate:translation-log-group", Value: !Sub "${TranslationLogGroup}:x"}', 1))
        self.assertIn("InstanceA: user data + tags (with conditional tags): translation_log_group: "
                      "'/eipgate/translations:x' is not a CloudWatch Logs group name", text)

    def test_iam_statement_differs_from_policy_document(self):
        text = self.problems(lambda t: t.replace('"ec2:ResourceTag/eipgate:fallback-by"', '"ec2:ResourceTag/eipgate:pair"'))
        self.assertIn("statement ReplaceRoutesOfTablesThisPairRescues: condition keys", text)

    def test_rule_with_a_non_rule_function(self):
        text = self.problems(lambda t: t.replace(
            "- Fn::Not: [{Fn::EachMemberEquals: [{Ref: FallbackForInsidePrefixes}, \"\"]}]",
            "- Fn::Not: [{Fn::Equals: [{Fn::Join: [\"\", {Ref: FallbackForInsidePrefixes}]}, \"\"]}]"))
        self.assertIn("rule FallbackComplete: Fn::Join is not a rule function", text)

    def test_unused_parameter_and_unknown_condition(self):
        text = self.problems(lambda t: t.replace(
            "  FallbackAfter:\n    Type: String\n", "  FallbackAftr:\n    Type: String\n", 1))
        self.assertIn("reference to unknown FallbackAfter", text)
        self.assertIn("parameter FallbackAftr is never used", text)
        text = self.problems(lambda t: t.replace("- !If [HasFallback, {Key: \"eipgate:fallback-target\"",
                                                 "- !If [HasFallbak, {Key: \"eipgate:fallback-target\"", 1))
        self.assertIn("Fn::If of unknown condition HasFallbak", text)

    def test_bad_fallback_value_in_tags(self):
        text = self.problems(lambda t: t.replace(
            '{Key: "eipgate:fallback-for-instances", Value: !Join [",", !Ref FallbackForInstanceIds]}',
            '{Key: "eipgate:fallback-for-instances", Value: !Join [",", !Ref FallbackForRouteTableIds]}', 1))
        self.assertIn("fallback_for[0].instances: 'rtb-0fedcba9876543210' is not an i-<hex> id", text)


    def test_alarm_checks(self):
        first = "      MetricName: ErrorPortAllocation\n"
        text = self.problems(lambda t: t.replace(first, "      MetricName: ActiveConnectionCount\n", 1))
        self.assertIn("alarm PortAllocationErrorsAlarm: metric ActiveConnectionCount is not in the default set", text)
        text = self.problems(lambda t: t.replace(
            "        - {Name: AvailabilityZone, Value: !GetAtt InstanceA.AvailabilityZone}\n", "", 1))
        self.assertIn("alarm PortAllocationErrorsAlarm: dimensions ['PairName'], eipgate-control publishes", text)
        text = self.problems(lambda t: t.replace(
            "    Type: AWS::CloudWatch::Alarm\n    Condition: Metrics\n", "    Type: AWS::CloudWatch::Alarm\n", 1))
        self.assertIn("alarm PortAllocationErrorsAlarm: needs a Condition on CloudWatchMetrics", text)
        text = self.problems(lambda t: t.replace(
            "AlarmActions: !If [AlarmsNotify, [!Ref AlarmTopicArn], !Ref AWS::NoValue]",
            "AlarmActions: [!Ref AlarmTopicArn]", 1))
        self.assertIn("alarm PortAllocationErrorsAlarm: AlarmActions refers to a parameter outside Fn::If", text)
        text = self.problems(lambda t: t.replace("      TreatMissingData: breaching\n", "", 1))
        self.assertIn("alarm NoActiveAlarm: TreatMissingData must be set", text)

    def test_put_metric_data_needs_namespace(self):
        text = self.problems(lambda t: t.replace('StringEquals: {"cloudwatch:namespace": eipgate}',
                                                 'StringEquals: {"cloudwatch:namespace": other}'))
        self.assertIn("statement PutMetricDataEipgateNamespace: cloudwatch:PutMetricData without Condition", text)
        d = tempfile.mkdtemp(prefix="cfn-test-")
        self.addCleanup(shutil.rmtree, d)
        pol = os.path.join(d, "p.json")
        with open(pol, "w") as f:
            f.write('{"Version": "2012-10-17", "Statement": [{"Sid": "M", "Effect": "Allow", '
                    '"Action": "cloudwatch:PutMetricData", "Resource": "*"}]}')
        self.assertEqual(len(validate.check_policy(pol)), 1)
        with open(pol, "w") as f:
            f.write('{"Version": "2012-10-17", "Statement": [{"Sid": "M", "Effect": "Allow", '
                    '"Action": "cloudwatch:PutMetricData", "Resource": "*", '
                    '"Condition": {"StringEquals": {"cloudwatch:namespace": "eipgate"}}}]}')
        self.assertEqual(validate.check_policy(pol), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
