"""The spec: what an operator writes in user data, instance tags or the local file (schema:
ami/README.md, "Configuration from user data and tags"), and how those sources become one dict."""

import json
import re

SCHEMA_VERSION = 1
TAG_PREFIX = "eipgate:"
DEFAULT_IMDS = "http://169.254.169.254"
DEFAULT_PORT = 7410

# Tag name -> (spec key, converter). Lists in tags are comma-separated (tag values: 256 chars).
def _csv(v):
    return [x.strip() for x in v.split(",") if x.strip()]


TAGS = {
    "eipgate:pair": ("pair", str),
    "eipgate:priority": ("priority", int),
    "eipgate:peer-address": ("peer_address", str),
    "eipgate:service-ip": ("service_ips", _csv),
    "eipgate:allocation-id": ("allocation_id", str),
    "eipgate:allocation-ids": ("allocation_ids", _csv),
    "eipgate:service-mode": ("service_mode", str),
    "eipgate:inside-prefixes": ("inside_prefixes", _csv),
    "eipgate:route-tables": ("route_table_ids", _csv),
    "eipgate:data-path": ("data_path", str),
    "eipgate:workers": ("workers", str),
    "eipgate:max-flows": ("max_flows", str),
    "eipgate:ha-secret-ssm": ("ha_secret_ssm", str),
    "eipgate:ha-secret-arn": ("ha_secret_arn", str),
    # CloudWatch metric set published by eipgate-control: off | default | full (the templates'
    # CloudWatchMetrics parameter; an instance tag so that changing it replaces no instance).
    "eipgate:cloudwatch": ("cloudwatch", str),
    # How the instance reaches the AWS APIs (the templates' ManagementAccess): Ipv6 | PublicIp |
    # VpcEndpoints. Ipv6 renders aws.ip_family: ipv6 and aws.endpoints.dual_stack: true.
    "eipgate:management": ("management", str),
    # Translation logs shipped to CloudWatch Logs (the templates' TranslationLogGroup): the name of
    # an existing log group; absent or empty = off. Renders translation_log.enabled and the
    # cloudwatch_logs: section (control/daemon/README.md, "CloudWatch Logs").
    "eipgate:translation-log-group": ("translation_log_group", str),
}

# Tags of the cross-AZ fallback: together they give ONE rule of `fallback_for` (user data can give
# several). Tag name -> (rule key, converter).
FALLBACK_TAGS = {
    "eipgate:fallback-for-route-tables": ("route_tables", _csv),
    "eipgate:fallback-for-instances": ("instances", _csv),
    "eipgate:fallback-for-inside-prefixes": ("inside_prefixes", _csv),
    "eipgate:fallback-target": ("target", str),
    "eipgate:fallback-after": ("after", str),
    "eipgate:fallback-check-interval": ("check_interval", str),
}

# Every key the spec may hold, with its type check. Unknown keys are errors (typos must not
# silently leave a default in place, as in the dataplane's own config).
KEYS = {
    "version", "pair", "priority", "peer_address", "peer_eni", "service_ips", "service_mode",
    "allocation_id", "allocation_ids", "inside_prefixes", "route_table_ids", "route_table_tags", "data_path",
    "data_mac", "workers", "max_flows", "hugepages", "mtu", "tcp_mss_clamp", "log_level",
    "log_json", "ha_secret_ssm", "ha_secret_arn", "ha_secret_file", "ha_secret", "preempt",
    "heartbeat_interval", "miss_count", "hold_down", "probe_targets", "policy", "endpoints",
    "overrides", "az", "fallback_for", "cloudwatch", "management", "translation_log_group",
}
MANAGEMENT = ("Ipv6", "PublicIp", "VpcEndpoints")
# One fallback_for rule: what control/ha/config.cc reads, plus inside_prefixes (the rescued AZ's
# private subnets, added to nat.inside_prefixes here; not part of the ha: rule).
FALLBACK_KEYS = ("route_tables", "instances", "target", "after", "check_interval", "inside_prefixes")
# AWS resource ids: <kind>-<8 to 17 hex digits>.
ID_RE = {k: re.compile(k + r"-[0-9a-f]{8,17}") for k in ("rtb", "i", "nat", "eipalloc")}
DATA_PATHS = ("auto", "vfio", "af_xdp")
MODES = ("secondary-ip", "eip")
# Service addresses one pair may move (eipgate-control's aws.service_address.private_ips limit).
MAX_SERVICE_IPS = 8
# IPv4 addresses per network interface (AWS EC2 user guide, "IP addresses per network interface
# per instance type") for the common NAT types. The data ENI keeps its primary IP, so it carries
# at most (limit - 1) service IPs. Unknown types are not checked.
IPV4_PER_INTERFACE = {
    "t4g.nano": 2, "t4g.micro": 2, "t4g.small": 4, "t4g.medium": 6,
    "c6gn.medium": 4, "c6gn.large": 10, "c7gn.medium": 4, "c7gn.large": 10,
    "c6in.large": 10, "m6i.large": 10,
}
# CloudWatch metrics (control/daemon/README.md): off, the alarm-oriented default set, or the full
# NAT Gateway set.
CLOUDWATCH = ("off", "default", "full")
# A CloudWatch Logs group name, as eipgate-control's cloudwatch_logs.log_group accepts it.
LOG_GROUP_RE = re.compile(r"[A-Za-z0-9._/#-]{1,512}")


class ConfigError(Exception):
    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = errors

def spec_from_tags(tags):
    """tags: {key: value} of the instance. Returns the spec part they give."""
    spec = {}
    errors = []
    rule = {}
    for key, value in sorted(tags.items()):
        if not key.startswith(TAG_PREFIX):
            continue
        if key == "eipgate:az":  # set by the templates for the IAM condition; informational here
            spec["az"] = value
            continue
        if key == "eipgate:role":
            continue
        if key in FALLBACK_TAGS:
            name, conv = FALLBACK_TAGS[key]
            rule[name] = conv(value)
            continue
        if key not in TAGS:
            errors.append("tag %s: unknown eipgate tag (known: %s)"
                          % (key, ", ".join(sorted(list(TAGS) + list(FALLBACK_TAGS)))))
            continue
        name, conv = TAGS[key]
        try:
            spec[name] = conv(value)
        except ValueError:
            errors.append("tag %s: bad value %r" % (key, value))
    if rule:
        if not rule.get("route_tables") or not rule.get("instances"):
            errors.append("tags eipgate:fallback-*: eipgate:fallback-for-route-tables and "
                          "eipgate:fallback-for-instances are both required to enable the fallback")
        else:
            spec["fallback_for"] = [rule]
    if errors:
        raise ConfigError(errors)
    return spec


def spec_from_user_data(text, origin):
    """The eipgate part of a user-data document, or None when it is not ours (a shell script,
    cloud-config...). A JSON object without an "eipgate" key is not ours either."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        doc = json.loads(stripped)
    except json.JSONDecodeError as e:
        raise ConfigError(["%s:%d: not valid JSON: column %d: %s" % (origin, e.lineno, e.colno, e.msg)])
    if not isinstance(doc, dict) or "eipgate" not in doc:
        return None
    spec = doc["eipgate"]
    if not isinstance(spec, dict):
        raise ConfigError(["%s: 'eipgate' must be an object" % origin])
    return spec
