#!/usr/bin/python3
"""Offline checks of the CloudFormation templates and IAM policies in ami/ (Debian 12 has no
cfn-lint package, and there is no network to pip-install it). Python 3 + PyYAML (python3-yaml).

Checked: the YAML parses with CloudFormation's short-form tags; top-level sections; parameter
types; every resource type is one we expect, with its required properties; Fn::ForEach
(AWS::LanguageExtensions) expands; every Ref, Fn::GetAtt (with the attribute names the resource
type has), Fn::Sub variable, Condition, Fn::If condition and DependsOn names something that
exists; Fn::If has three arguments, Fn::And/Fn::Or two to ten; every parameter and condition is
used; Rules use only rule functions and Ref parameters; the instances' user data and eipgate:*
tags, with sample values substituted (each Fn::If of the tags both ways: taken, a pair of 8
service addresses whose allocation ids must pair with its service IPs), are what
eipgate-render-config accepts; an inline IAM statement with the Sid of one in ami/iam/*.json has
its actions and condition keys; the IAM policy documents are well formed; the alarms on
eipgate-control's CloudWatch metrics (namespace eipgate) use a metric of the default set, the
dimensions PairName and AvailabilityZone, a condition on CloudWatchMetrics, an explicit
TreatMissingData, and actions only under Fn::If (an empty topic parameter is no ARN);
cloudwatch:PutMetricData (no resource-level permissions) only with a cloudwatch:namespace
condition. What it cannot check:
anything AWS decides at deploy time (quotas, whether an instance type exists in the AZ, IAM
condition key support per action, how Fn::ForEach treats an empty list: give such loops a
Condition).

Usage: validate.py [TEMPLATE|POLICY ...]   (default: everything in ami/cloudformation and ami/iam)
Exit 0 when every file passes, 1 otherwise; one line per problem.
"""

import copy
import glob
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
AMI = os.path.dirname(HERE)

SECTIONS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Mappings",
            "Conditions", "Transform", "Resources", "Outputs", "Rules"}
PARAM_TYPES = {"String", "Number", "CommaDelimitedList", "List<Number>", "AWS::EC2::VPC::Id",
               "AWS::EC2::Subnet::Id", "AWS::EC2::Image::Id", "AWS::EC2::KeyPair::KeyName",
               "AWS::EC2::SecurityGroup::Id", "List<AWS::EC2::Subnet::Id>",
               "AWS::SSM::Parameter::Value<String>"}
PSEUDO = {"AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::StackName", "AWS::StackId",
          "AWS::URLSuffix", "AWS::NoValue", "AWS::NotificationARNs"}
# type -> (required properties, GetAtt attributes)
TYPES = {
    "AWS::EC2::Instance": ({"NetworkInterfaces"}, {"PrivateIp", "PublicIp", "AvailabilityZone", "InstanceId"}),
    "AWS::EC2::LaunchTemplate": ({"LaunchTemplateData"}, {"LaunchTemplateId", "LatestVersionNumber", "DefaultVersionNumber"}),
    "AWS::EC2::NetworkInterface": ({"SubnetId"}, {"Id", "PrimaryPrivateIpAddress", "SecondaryPrivateIpAddresses"}),
    "AWS::EC2::EIP": (set(), {"AllocationId", "PublicIp"}),
    "AWS::EC2::EIPAssociation": (set(), {"Id"}),
    "AWS::EC2::SecurityGroup": ({"GroupDescription"}, {"GroupId", "VpcId"}),
    "AWS::EC2::SecurityGroupIngress": ({"IpProtocol", "GroupId"}, {"Id"}),
    "AWS::EC2::SecurityGroupEgress": ({"IpProtocol", "GroupId"}, {"Id"}),
    "AWS::EC2::Route": ({"RouteTableId"}, set()),
    "AWS::EC2::EgressOnlyInternetGateway": ({"VpcId"}, {"Id"}),
    "AWS::EC2::VPCBlockPublicAccessExclusion": ({"InternetGatewayExclusionMode"}, {"ExclusionId"}),
    "AWS::IAM::Role": ({"AssumeRolePolicyDocument"}, {"Arn", "RoleId"}),
    "AWS::IAM::InstanceProfile": ({"Roles"}, {"Arn"}),
    "AWS::SecretsManager::Secret": (set(), {"Id"}),
    "AWS::CloudWatch::Alarm": ({"ComparisonOperator", "EvaluationPeriods"}, {"Arn"}),
    "AWS::CloudFormation::Stack": ({"TemplateURL"}, set()),  # Outputs.X checked separately
}
TAGS = ["Ref", "Sub", "GetAtt", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
        "Base64", "GetAZs", "FindInMap", "ImportValue", "Condition", "Cidr"]


class Loader(yaml.SafeLoader):
    pass


def _construct(tag):
    fn = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else "Fn::" + tag)

    def build(loader, node):
        if isinstance(node, yaml.ScalarNode):
            v = loader.construct_scalar(node)
            if tag == "GetAtt":
                v = v.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            v = loader.construct_sequence(node, deep=True)
        else:
            v = loader.construct_mapping(node, deep=True)
        return {fn: v}
    return build


for _t in TAGS:
    Loader.add_constructor("!" + _t, _construct(_t))


def sample_for(list_param):
    """Sample list values for Fn::ForEach over a parameter."""
    if "Fallback" in list_param:
        return LIST_SAMPLES.get(list_param, ["10.1.128.0/20"])
    if "Route" in list_param:
        return ["rtb-0123456789abcdef0", "rtb-0123456789abcdef1"]
    return ["10.0.128.0/20", "10.0.144.0/20"]


# Sample values of list parameters (tags and ForEach); the rescued AZ's differ from our own.
LIST_SAMPLES = {
    "PrivateRouteTableIds": ["rtb-0123456789abcdef0", "rtb-0123456789abcdef1"],
    "InsidePrefixes": ["10.0.128.0/20", "10.0.144.0/20"],
    "FallbackForRouteTableIds": ["rtb-0fedcba9876543210", "rtb-0fedcba9876543211"],
    "FallbackForInstanceIds": ["i-0ccccccccccccccc1", "i-0ccccccccccccccc2"],
    "FallbackForInsidePrefixes": ["10.1.128.0/20", "10.1.144.0/20"],
}
STRING_SAMPLES = {"PairName": "use1-az1-0", "CloudWatchMetrics": "default", "FallbackTarget": "self", "FallbackAfter": "3s",
                  "ManagementAccess": "Ipv6", "TranslationLogGroup": "/eipgate/translations",
                  "DataPath": "vfio"}
# eipgate-control's CloudWatch contract (namespace eipgate, dimensions PairName and
# AvailabilityZone). The default set is what the alarms may use; the full set is opt-in
# (CloudWatchMetrics=full), so an alarm on it would be in ALARM or INSUFFICIENT_DATA by default.
CW_NAMESPACE = "eipgate"
CW_DIMENSIONS = ["PairName", "AvailabilityZone"]
CW_DEFAULT_METRICS = {"ErrorPortAllocation", "PacketsDropCount", "HaActive", "HaStandby", "FailoverCount"}
ALARM_STATISTICS = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"}
ALARM_OPERATORS = {"GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
                   "LessThanOrEqualToThreshold"}
ALARM_MISSING = {"breaching", "notBreaching", "ignore", "missing"}
RULE_FUNCTIONS = {"Fn::And", "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn",
                  "Fn::Equals", "Fn::Not", "Fn::Or", "Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll",
                  "Ref"}


def substitute(node, ident, value):
    if isinstance(node, dict):
        return {k.replace("&{%s}" % ident, re.sub(r"[^A-Za-z0-9]", "", value)).replace("${%s}" % ident, value):
                ({"__literal": value} if k == "Ref" and v == ident else substitute(v, ident, value))
                for k, v in node.items()} if not (len(node) == 1 and node.get("Ref") == ident) else value
    if isinstance(node, list):
        return [substitute(x, ident, value) for x in node]
    if isinstance(node, str):
        return node.replace("${%s}" % ident, value)
    return node


def expand_foreach(section, errors, where):
    out = {}
    for k, v in section.items():
        if k.startswith("Fn::ForEach::"):
            if not (isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and isinstance(v[2], dict)):
                errors.append("%s: %s: expected [Identifier, Collection, {OutputKey: ...}]" % (where, k))
                continue
            ident, coll, body = v
            if isinstance(coll, dict) and "Ref" in coll:
                values = sample_for(coll["Ref"])
            elif isinstance(coll, list):
                values = coll
            else:
                errors.append("%s: %s: collection must be a list or a Ref to a list parameter" % (where, k))
                continue
            for val in values:
                for ok, ov in body.items():
                    if "&{%s}" % ident not in ok and "${%s}" % ident not in ok:
                        errors.append("%s: %s: output key %s does not use the identifier" % (where, k, ok))
                    out.update(expand_foreach(substitute({ok: ov}, ident, val), errors, where))
        else:
            out[k] = v
    return out


def check_template(path):
    errors = []
    with open(path) as f:
        try:
            t = yaml.load(f, Loader=Loader)
        except yaml.YAMLError as e:
            return ["%s: YAML: %s" % (path, e)]
    for k in t:
        if k not in SECTIONS:
            errors.append("%s: unknown top-level section %s" % (path, k))
    uses_foreach = "Fn::ForEach" in json.dumps(t)
    if uses_foreach and t.get("Transform") != "AWS::LanguageExtensions":
        errors.append("%s: Fn::ForEach needs Transform: AWS::LanguageExtensions" % path)
    params = t.get("Parameters", {})
    for name, p in params.items():
        if p.get("Type") not in PARAM_TYPES:
            errors.append("%s: parameter %s: type %r" % (path, name, p.get("Type")))
        if "Default" in p and "AllowedValues" in p and p["Default"] not in p["AllowedValues"]:
            errors.append("%s: parameter %s: default not in AllowedValues" % (path, name))
    resources = expand_foreach(t.get("Resources", {}), errors, path)
    conditions = expand_foreach(t.get("Conditions", {}), errors, path)
    outputs = t.get("Outputs", {})
    if not resources:
        errors.append("%s: no resources" % path)

    used = set()  # parameters and conditions referenced anywhere

    def check_ref(name, ctx, sub_vars=()):
        base = name.split(".")[0]
        if name in sub_vars:
            return
        used.add(name)
        if name in params or name in resources or name in PSEUDO:
            return
        if "." in name and base in resources:  # ${Res.Attr} in Fn::Sub
            check_getatt([base, name.split(".", 1)[1]], ctx)
            return
        errors.append("%s: %s: reference to unknown %s" % (path, ctx, name))

    def check_getatt(v, ctx):
        if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str):
            res = resources.get(v[0])
            if res is None:
                errors.append("%s: %s: GetAtt of unknown resource %s" % (path, ctx, v[0]))
                return
            typ = res.get("Type")
            if typ == "AWS::CloudFormation::Stack":
                if not str(v[1]).startswith("Outputs."):
                    errors.append("%s: %s: stack attribute %s" % (path, ctx, v[1]))
                return
            attrs = TYPES.get(typ, (set(), set()))[1]
            if v[1] not in attrs:
                errors.append("%s: %s: %s has no attribute %s (known: %s)" % (path, ctx, typ, v[1], sorted(attrs)))
        else:
            errors.append("%s: %s: bad GetAtt %r" % (path, ctx, v))

    def walk(node, ctx, sub_vars=()):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "Ref":
                    if isinstance(v, str):
                        check_ref(v, ctx, sub_vars)
                elif k == "Fn::GetAtt":
                    check_getatt(v, ctx)
                elif k == "Fn::Sub":
                    text, vars_ = (v, {}) if isinstance(v, str) else (v[0], v[1])
                    for var in re.findall(r"\$\{([^}!]+)\}", text):
                        check_ref(var, ctx, tuple(vars_) + tuple(sub_vars))
                    walk(vars_, ctx, sub_vars)
                elif k == "Fn::If":
                    if not (isinstance(v, list) and len(v) == 3):
                        errors.append("%s: %s: Fn::If needs [condition, then, else]" % (path, ctx))
                        continue
                    used.add(v[0])
                    if v[0] not in conditions:
                        errors.append("%s: %s: Fn::If of unknown condition %s" % (path, ctx, v[0]))
                    walk(v[1:], ctx, sub_vars)
                elif k == "Condition" and isinstance(v, str):
                    used.add(v)
                    if v not in conditions:
                        errors.append("%s: %s: unknown condition %s" % (path, ctx, v))
                elif k in ("Fn::And", "Fn::Or"):
                    if not (isinstance(v, list) and 2 <= len(v) <= 10):
                        errors.append("%s: %s: %s takes 2 to 10 conditions" % (path, ctx, k))
                    walk(v, ctx, sub_vars)
                else:
                    walk(v, ctx, sub_vars)
        elif isinstance(node, list):
            for x in node:
                walk(x, ctx, sub_vars)

    for name, c in conditions.items():
        walk(c, "condition " + name)
    for name, rule in t.get("Rules", {}).items():
        errors.extend(check_rule(path, name, rule, params))
        used.update(re.findall(r"'Ref': '([^']+)'", repr(rule)))
    for name, r in resources.items():
        if not re.fullmatch(r"[A-Za-z0-9]+", name):
            errors.append("%s: resource name %s is not alphanumeric" % (path, name))
        typ = r.get("Type")
        if typ not in TYPES:
            errors.append("%s: resource %s: unexpected type %s" % (path, name, typ))
            continue
        props = r.get("Properties", {})
        for req in TYPES[typ][0]:
            if req not in props:
                errors.append("%s: resource %s: missing property %s" % (path, name, req))
        if "Condition" in r:
            used.add(r["Condition"])
        if "Condition" in r and r["Condition"] not in conditions:
            errors.append("%s: resource %s: unknown condition %s" % (path, name, r["Condition"]))
        deps = r.get("DependsOn", [])
        for d in [deps] if isinstance(deps, str) else deps:
            if d not in resources:
                errors.append("%s: resource %s: DependsOn unknown %s" % (path, name, d))
        walk(props, "resource " + name)
        if typ == "AWS::CloudFormation::Stack":
            nested = os.path.join(os.path.dirname(path), props["TemplateURL"])
            if not os.path.exists(nested):
                errors.append("%s: resource %s: nested template %s missing" % (path, name, nested))
            else:
                with open(nested) as f:
                    nt = yaml.load(f, Loader=Loader)
                np = nt.get("Parameters", {})
                for pn in props.get("Parameters", {}):
                    if pn not in np:
                        errors.append("%s: %s passes unknown parameter %s" % (path, name, pn))
                for pn, pv in np.items():
                    if "Default" not in pv and pn not in props.get("Parameters", {}):
                        errors.append("%s: %s does not pass required parameter %s" % (path, name, pn))
        if typ == "AWS::EC2::Instance":
            errors.extend(check_user_data(path, name, props.get("UserData"), props.get("Tags", [])))
        if typ == "AWS::IAM::Role":
            errors.extend(check_role_matches_iam_docs(path, name, props))
            errors.extend(check_put_metric_data(path, name, props))
        if typ == "AWS::CloudWatch::Alarm" and props.get("Namespace") == CW_NAMESPACE:
            errors.extend(check_alarm(path, name, r, params, conditions))
    for name, o in outputs.items():
        if "Condition" in o:
            used.add(o["Condition"])
            if o["Condition"] not in conditions:
                errors.append("%s: output %s: unknown condition %s" % (path, name, o["Condition"]))
        walk(o.get("Value"), "output " + name)
    for name in params:
        if name not in used:
            errors.append("%s: parameter %s is never used" % (path, name))
    for name in conditions:
        if name not in used:
            errors.append("%s: condition %s is never used" % (path, name))
    return errors


def check_rule(path, name, rule, params):
    """A Rules entry: {RuleCondition?, Assertions: [{Assert, AssertDescription?}]}, rule functions
    only, Ref only to parameters."""
    where = "%s: rule %s" % (path, name)
    errors = []
    if not isinstance(rule, dict) or set(rule) - {"RuleCondition", "Assertions"}:
        return ["%s: expected {RuleCondition, Assertions}" % where]
    asserts = rule.get("Assertions")
    if not isinstance(asserts, list) or not asserts:
        errors.append("%s: Assertions must be a non-empty list" % where)
        asserts = []
    nodes = [rule.get("RuleCondition")] if "RuleCondition" in rule else []
    for a in asserts:
        if not isinstance(a, dict) or "Assert" not in a or set(a) - {"Assert", "AssertDescription"}:
            errors.append("%s: each assertion is {Assert, AssertDescription}" % where)
            continue
        nodes.append(a["Assert"])

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k not in RULE_FUNCTIONS:
                    errors.append("%s: %s is not a rule function" % (where, k))
                elif k == "Ref":
                    if v not in params:
                        errors.append("%s: Ref %s is not a parameter" % (where, v))
                elif k in ("Fn::And", "Fn::Or") and not (isinstance(v, list) and 2 <= len(v) <= 10):
                    errors.append("%s: %s takes 2 to 10 conditions" % (where, k))
                else:
                    walk(v)
        elif isinstance(node, list):
            for x in node:
                walk(x)
    for n in nodes:
        walk(n)
    return errors


def check_role_matches_iam_docs(path, name, props):
    """Inline statements with the Sid of a statement in ami/iam/*.json: same actions and condition
    operators/keys (values are template expressions there, ${...} placeholders here)."""
    docs = {}
    for f in sorted(glob.glob(os.path.join(AMI, "iam", "*.json"))):
        with open(f) as fh:
            for st in json.load(fh).get("Statement", []):
                docs[st.get("Sid")] = (os.path.basename(f), st)
    errors = []

    def statements(node):
        if isinstance(node, dict):
            if "Fn::If" in node and isinstance(node["Fn::If"], list):
                for branch in node["Fn::If"][1:]:
                    yield from statements(branch)
            elif "Sid" in node:
                yield node
        elif isinstance(node, list):
            for x in node:
                yield from statements(x)

    def as_set(a):
        return {a} if isinstance(a, str) else set(a or [])

    for pol in props.get("Policies", []):
        for st in statements(pol.get("PolicyDocument", {}).get("Statement", [])):
            if st["Sid"] not in docs:
                continue
            fname, doc = docs[st["Sid"]]
            if as_set(st.get("Action")) != as_set(doc.get("Action")):
                errors.append("%s: %s statement %s: actions %s differ from ami/iam/%s (%s)"
                              % (path, name, st["Sid"], sorted(as_set(st.get("Action"))), fname,
                                 sorted(as_set(doc.get("Action")))))
            keys = {(op, k) for op, kv in (st.get("Condition") or {}).items() for k in kv}
            want = {(op, k) for op, kv in (doc.get("Condition") or {}).items() for k in kv}
            if keys != want:
                errors.append("%s: %s statement %s: condition keys %s differ from ami/iam/%s (%s)"
                              % (path, name, st["Sid"], sorted(keys), fname, sorted(want)))
    return errors


def _contains_param_ref_outside_if(node, params):
    """A Ref to a parameter reached without passing an Fn::If."""
    if isinstance(node, dict):
        if "Fn::If" in node:
            return False
        if node.get("Ref") in params:
            return True
        return any(_contains_param_ref_outside_if(v, params) for v in node.values())
    if isinstance(node, list):
        return any(_contains_param_ref_outside_if(v, params) for v in node)
    return False


def check_alarm(path, name, res, params, conditions):
    """An alarm on eipgate-control's metrics (see CW_* above)."""
    where = "%s: alarm %s" % (path, name)
    props = res.get("Properties", {})
    errors = []
    metric = props.get("MetricName")
    if metric not in CW_DEFAULT_METRICS:
        errors.append("%s: metric %s is not in the default set %s (the full set is opt-in)"
                      % (where, metric, sorted(CW_DEFAULT_METRICS)))
    dims = props.get("Dimensions") or []
    names = [d.get("Name") for d in dims if isinstance(d, dict)]
    if names != CW_DIMENSIONS:
        errors.append("%s: dimensions %s, eipgate-control publishes %s" % (where, names, CW_DIMENSIONS))
    for d in dims:
        if isinstance(d, dict) and d.get("Name") == "PairName" and d.get("Value") != {"Ref": "PairName"}:
            errors.append("%s: dimension PairName must be Ref PairName" % where)
    cond = res.get("Condition")
    if cond is None or "CloudWatchMetrics" not in json.dumps(_resolve_condition(cond, conditions)):
        errors.append("%s: needs a Condition on CloudWatchMetrics (no alarm when the metrics are off)"
                      % where)
    if props.get("Statistic") not in ALARM_STATISTICS:
        errors.append("%s: Statistic %r" % (where, props.get("Statistic")))
    if props.get("ComparisonOperator") not in ALARM_OPERATORS:
        errors.append("%s: ComparisonOperator %r" % (where, props.get("ComparisonOperator")))
    if props.get("TreatMissingData") not in ALARM_MISSING:
        errors.append("%s: TreatMissingData must be set (one of %s)" % (where, sorted(ALARM_MISSING)))
    period = props.get("Period")
    if not (isinstance(period, int) and (period in (10, 30) or (period > 0 and period % 60 == 0))):
        errors.append("%s: Period %r (10, 30 or a multiple of 60; eipgate publishes each minute)"
                      % (where, period))
    ev, dp = props.get("EvaluationPeriods"), props.get("DatapointsToAlarm", props.get("EvaluationPeriods"))
    if not (isinstance(ev, int) and isinstance(dp, int) and 1 <= dp <= ev):
        errors.append("%s: DatapointsToAlarm %r / EvaluationPeriods %r" % (where, dp, ev))
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        if _contains_param_ref_outside_if(props.get(key), params):
            errors.append("%s: %s refers to a parameter outside Fn::If (an empty one is no ARN)"
                          % (where, key))
    return errors


def _resolve_condition(cond, conditions, depth=0):
    """A condition with the conditions it names inlined (to see which parameters it reads)."""
    node = conditions.get(cond)
    if depth > 10 or node is None:
        return node

    def inline(n):
        if isinstance(n, dict):
            if set(n) == {"Condition"} and isinstance(n["Condition"], str):
                return _resolve_condition(n["Condition"], conditions, depth + 1)
            return {k: inline(v) for k, v in n.items()}
        if isinstance(n, list):
            return [inline(x) for x in n]
        return n
    return inline(node)


def _statement_errors_put_metric_data(where, st):
    actions = st.get("Action")
    actions = [actions] if isinstance(actions, str) else (actions or [])
    if "cloudwatch:PutMetricData" not in actions:
        return []
    ns = (st.get("Condition") or {}).get("StringEquals", {}).get("cloudwatch:namespace")
    if ns != CW_NAMESPACE:
        return ["%s: cloudwatch:PutMetricData without Condition StringEquals cloudwatch:namespace=%s"
                % (where, CW_NAMESPACE)]
    return []


def check_put_metric_data(path, name, props):
    """cloudwatch:PutMetricData in an inline policy is limited to the eipgate namespace."""
    errors = []

    def statements(node):
        if isinstance(node, dict):
            if "Fn::If" in node and isinstance(node["Fn::If"], list):
                for branch in node["Fn::If"][1:]:
                    yield from statements(branch)
            elif "Effect" in node:
                yield node
        elif isinstance(node, list):
            for x in node:
                yield from statements(x)
    for pol in props.get("Policies", []):
        for st in statements(pol.get("PolicyDocument", {}).get("Statement", [])):
            errors.extend(_statement_errors_put_metric_data(
                "%s: %s statement %s" % (path, name, st.get("Sid")), st))
    return errors


def load_renderer():
    """The eipgate_render package beside ami/scripts/eipgate-render-config (its entry point)."""
    scripts = os.path.join(AMI, "scripts")
    sys.dont_write_bytecode = True  # no __pycache__ beside the packaged modules
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    import eipgate_render  # noqa: E402 (path set just above)
    return eipgate_render


SAMPLES = {"PairName": "use1-az1-0", "PeerIp": "10.0.0.16", "ServiceIp": "10.0.0.100",
           "ServiceIps": "10.0.0.100",
           "Prefixes": '10.0.128.0/20", "10.0.144.0/20', "Tables": 'rtb-0123456789abcdef0", "rtb-0123456789abcdef1',
           "DataEniA": "eni-0aaaaaaaaaaaaaaa1", "DataEniB": "eni-0bbbbbbbbbbbbbbb2",
           "HaSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:eipgate/use1-az1-0/ha-key-AbCdEf",
           "DataPath": "vfio"}


# With every condition taken, the largest pair: 8 service addresses (ServiceAddressCount 8), so
# the user data's service_ips pair by index with the 8 allocation ids of the tags.
SAMPLES_ALL_CONDITIONS = dict(SAMPLES, ServiceIps='", "'.join("10.0.0.%d" % (100 + i) for i in range(8)))


class NoSample(Exception):
    pass


def sample_value(node, taken=True):
    """A tag value with sample parameters: Ref, Fn::Join, Fn::Sub (no variables list), Fn::If
    (taken or not) and AWS::NoValue in lists, Fn::GetAtt of a service EIP's AllocationId."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (k, v), = node.items()
        if k == "Fn::If" and isinstance(v, list) and len(v) == 3:
            return sample_value(v[1] if taken else v[2], taken)
        if k == "Fn::GetAtt" and isinstance(v, list) and v[1] == "AllocationId":
            m = re.fullmatch(r"ServiceEip([2-8]?)", v[0])
            if m:
                return "eipalloc-0%016x" % int(m.group(1) or 1)
        if k == "Ref" and v in STRING_SAMPLES:
            return STRING_SAMPLES[v]
        if k == "Ref" and v in LIST_SAMPLES:
            return LIST_SAMPLES[v]
        if k == "Fn::Join" and isinstance(v, list) and len(v) == 2:
            items = sample_value(v[1], taken)
            if not isinstance(items, list):
                return items
            values = [sample_value(x, taken) for x in items]
            return v[0].join(x for x in values if x != {"Ref": "AWS::NoValue"})
        if k == "Fn::Sub" and isinstance(v, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: sample_value({"Ref": m.group(1)}), v)
    if isinstance(node, dict) and node == {"Ref": "AWS::NoValue"}:
        return node
    if isinstance(node, list):
        return node
    raise NoSample(json.dumps(node))


def tag_variants(tags):
    """The instance's tags as {key: sample value}, once with every Fn::If taken and once with none
    (the template's conditions on and off). Only eipgate:* tags are evaluated."""
    out = []
    for taken in (True, False):
        d = {}
        for t in tags:
            if isinstance(t, dict) and "Fn::If" in t:
                t = t["Fn::If"][1 if taken else 2]
            if not isinstance(t, dict) or t == {"Ref": "AWS::NoValue"}:
                continue
            key = t.get("Key")
            if isinstance(key, str) and key.startswith("eipgate:"):
                d[key] = sample_value(t.get("Value"), taken)
        out.append(("with conditional tags" if taken else "without conditional tags", d))
    return out


def check_user_data(path, name, ud, tags=()):
    """The user data: Fn::Base64 of Fn::Sub [text, vars]; substitute samples, parse, and validate
    merged over the instance's eipgate:* tags (as eipgate-render-config merges them)."""
    try:
        sub = ud["Fn::Base64"]["Fn::Sub"]
        text = sub if isinstance(sub, str) else sub[0]
    except (TypeError, KeyError):
        return ["%s: %s: UserData is not Fn::Base64 of Fn::Sub" % (path, name)]
    missing = [v for v in re.findall(r"\$\{([^}]+)\}", text) if v not in SAMPLES]
    if missing:
        return ["%s: %s: user data variables without a sample: %s" % (path, name, missing)]
    texts = [re.sub(r"\$\{([^}]+)\}", lambda m: samples[m.group(1)], text)
             for samples in (SAMPLES_ALL_CONDITIONS, SAMPLES)]  # the order of tag_variants
    render = load_renderer()
    try:
        variants = tag_variants(tags)
    except NoSample as e:
        return ["%s: %s: tag value without a sample: %s" % (path, name, e)]
    errors = []
    for (label, tag_values), text in zip(variants, texts):
        for k, v in tag_values.items():
            if len(v) > 256:
                errors.append("%s: %s: tag %s: %d characters with samples (EC2 allows 256)"
                              % (path, name, k, len(v)))
        try:
            spec = render.spec_from_tags(tag_values)
            ud_spec = render.spec_from_user_data(text, "%s %s user data" % (path, name))
            if ud_spec is None:
                return ["%s: %s: user data is not an eipgate document" % (path, name)]
            spec.update(ud_spec)
            render.validate(spec)
        except render.ConfigError as e:
            errors.extend("%s: %s: user data + tags (%s): %s" % (path, name, label, err) for err in e.errors)
    return errors


NO_RESOURCE_TYPE = {"cloudwatch:PutMetricData"}


def check_policy(path):
    errors = []
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return ["%s: %s" % (path, e)]
    if doc.get("Version") != "2012-10-17":
        errors.append("%s: Version must be 2012-10-17" % path)
    sids = set()
    for i, st in enumerate(doc.get("Statement", [])):
        where = "%s: statement %d" % (path, i)
        if st.get("Sid") in sids:
            errors.append("%s: duplicate Sid" % where)
        sids.add(st.get("Sid"))
        if st.get("Effect") not in ("Allow", "Deny"):
            errors.append("%s: Effect" % where)
        actions = st.get("Action")
        for a in [actions] if isinstance(actions, str) else (actions or []):
            if not re.fullmatch(r"[a-z0-9-]+:[A-Za-z*]+", a):
                errors.append("%s: action %r" % (where, a))
            if a.endswith("*") or a == "*":
                errors.append("%s: wildcard action %r (least privilege)" % (where, a))
        res = st.get("Resource")
        if res is None:
            errors.append("%s: no Resource" % where)
        # PutMetricData has no resource-level permissions: Resource * with a namespace condition.
        mutating = [a for a in ([actions] if isinstance(actions, str) else actions)
                    if ":Describe" not in a and a != "cloudwatch:PutMetricData"]
        errors.extend(_statement_errors_put_metric_data(where, st))
        if res == "*" and mutating:
            errors.append("%s: %s on Resource * (least privilege)" % (where, mutating))
        for k in set(st) - {"Sid", "Effect", "Action", "Resource", "Condition"}:
            errors.append("%s: unexpected key %s" % (where, k))
    return errors


def main(argv):
    files = argv or (sorted(glob.glob(os.path.join(HERE, "*.yaml"))) +
                     sorted(glob.glob(os.path.join(AMI, "iam", "*.json"))))
    errors = []
    for f in files:
        errs = check_policy(f) if f.endswith(".json") else check_template(f)
        errors.extend(errs)
        print("%s: %s" % (os.path.relpath(f), "ok" if not errs else "%d problem(s)" % len(errs)))
    for e in errors:
        print("  " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
