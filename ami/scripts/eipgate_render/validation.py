"""Validation of the merged spec (pure): every problem found, one ConfigError. Durations,
booleans, addresses and prefixes follow the one grammar of every config file (grammar.py)."""

import re

from . import grammar
from .spec import (CLOUDWATCH, DATA_PATHS, FALLBACK_KEYS, ID_RE, IPV4_PER_INTERFACE, KEYS,
                   LOG_GROUP_RE, MANAGEMENT, MAX_SERVICE_IPS, MODES, SCHEMA_VERSION, ConfigError)


def _is_ipv4(s):
    return grammar.parse_ipv4(s) is not None


def _count(v):
    """'1M' / '256K' / 1000 -> int."""
    if isinstance(v, int):
        return v
    m = re.fullmatch(r"([0-9]+)([KkM]?)", str(v).strip())
    if not m:
        raise ValueError(v)
    return int(m.group(1)) * {"": 1, "K": 1024, "k": 1024, "M": 1048576}[m.group(2)]


def _network_errors(where, p):
    """[] when p is a network prefix (grammar.py), else the error."""
    why = grammar.why_network(p)
    return [] if why is None else ["%s: %s" % (where, why)]


def validate_fallback(spec):
    """Errors of `fallback_for` (cross-AZ fallback, control/ha/README.md), [] when valid or absent."""
    rules = spec.get("fallback_for")
    if rules is None:
        return []
    if not isinstance(rules, list):
        return ["fallback_for: a list of rules {route_tables, instances, target, after, "
                "check_interval, inside_prefixes}"]
    errors = []
    own_tables = spec.get("route_table_ids") if isinstance(spec.get("route_table_ids"), list) else []
    own_prefixes = spec.get("inside_prefixes") if isinstance(spec.get("inside_prefixes"), list) else []
    seen_tables = {}   # table -> index of the rule that has it
    seen_prefixes = {}
    for i, rule in enumerate(rules):
        where = "fallback_for[%d]" % i
        if not isinstance(rule, dict):
            errors.append("%s: must be an object {route_tables, instances, ...}" % where)
            continue
        for k in sorted(rule):
            if k not in FALLBACK_KEYS:
                errors.append("%s: unknown key '%s'%s" % (where, k, grammar.did_you_mean(k, FALLBACK_KEYS)))
        for key, kind, what in (("route_tables", "rtb", "the other AZ's private route table ids"),
                                ("instances", "i", "the instance ids of the pair that owns them")):
            ids = rule.get(key)
            if not ids or not isinstance(ids, list):
                errors.append("%s.%s: required, a non-empty list of %s (%s-...)" % (where, key, what, kind))
                continue
            listed = set()
            for x in ids:
                if not isinstance(x, str) or not ID_RE[kind].fullmatch(x):
                    errors.append("%s.%s: %r is not an %s-<hex> id" % (where, key, x, kind))
                elif x in listed:
                    errors.append("%s.%s: %r is listed twice" % (where, key, x))
                else:
                    listed.add(x)
            if key == "route_tables":
                for t in sorted(listed):
                    if t in own_tables:
                        errors.append("%s.route_tables: %r is one of this pair's own route_table_ids"
                                      % (where, t))
                    if t in seen_tables:
                        errors.append("%s.route_tables: %r is already in fallback_for[%d]: two rules "
                                      "would fight over it" % (where, t, seen_tables[t]))
                    seen_tables.setdefault(t, i)
        target = rule.get("target", "self")
        if target != "self" and not (isinstance(target, str) and ID_RE["nat"].fullmatch(target)):
            errors.append("%s.target: %r: self (this pair's data ENI) or a NAT Gateway id (nat-<hex>)"
                          % (where, target))
        for key, lo, hi, text in (("after", 0, 3600000, "0s..60m"), ("check_interval", 500, 60000, "500ms..1m")):
            if key in rule:
                ms = grammar.parse_duration_ms(rule[key])
                if ms is None:
                    errors.append("%s.%s: %s" % (where, key, grammar.why_duration(rule[key])))
                elif not lo <= ms <= hi:
                    errors.append("%s.%s: %r is out of range %s" % (where, key, rule[key], text))
        if "inside_prefixes" in rule:
            prefixes = rule["inside_prefixes"]
            if not isinstance(prefixes, list):
                errors.append("%s.inside_prefixes: a list of the rescued AZ's private subnets" % where)
                continue
            for p in prefixes:
                bad = _network_errors("%s.inside_prefixes" % where, p)
                if bad:
                    errors.extend(bad)
                    continue
                if p in own_prefixes:
                    errors.append("%s.inside_prefixes: %s is already one of inside_prefixes" % (where, p))
                elif p in seen_prefixes:
                    errors.append("%s.inside_prefixes: %s is listed twice" % (where, p) if seen_prefixes[p] == i
                                  else "%s.inside_prefixes: %s is already in fallback_for[%d]"
                                  % (where, p, seen_prefixes[p]))
                seen_prefixes.setdefault(p, i)
    return errors


def allocation_ids(spec):
    """The EIP allocation ids, paired with service_ips by index (allocation_id: one)."""
    if spec.get("allocation_id"):
        return [spec["allocation_id"]]
    return spec.get("allocation_ids") or []


def service_ip_limit_error(instance_type, count):
    """An error when the instance type's data ENI cannot hold `count` service IPs besides its
    primary (IPV4_PER_INTERFACE); None when it can or the type is not in the table."""
    per_eni = IPV4_PER_INTERFACE.get(instance_type or "")
    if per_eni is None or count <= per_eni - 1:
        return None
    return ("service_ips: %d addresses, but a %s's data ENI holds %d IPv4 addresses: its primary "
            "and at most %d service IP%s (ami/OPERATOR.md, service IP limits)"
            % (count, instance_type, per_eni, per_eni - 1, "" if per_eni == 2 else "s"))


def validate(spec):
    """Checks the merged spec; raises ConfigError with every problem found."""
    errors = []
    for k in sorted(spec):
        if k not in KEYS:
            errors.append("unknown key '%s'%s" % (k, grammar.did_you_mean(k, sorted(KEYS))))
    if spec.get("management", "PublicIp") not in MANAGEMENT:
        errors.append("management: %r is not one of %s" % (spec.get("management"), ", ".join(MANAGEMENT)))
    if spec.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        errors.append("version: %r is not supported (this renderer reads %d)" % (spec.get("version"), SCHEMA_VERSION))
    prefixes = spec.get("inside_prefixes")
    if not prefixes or not isinstance(prefixes, list):
        errors.append("inside_prefixes: required, a list of the private subnets served")
    else:
        for p in prefixes:
            errors.extend(_network_errors("inside_prefixes", p))
    ips = spec.get("service_ips")
    if not ips or not isinstance(ips, list):
        errors.append("service_ips: required, the secondary private IP(s) that carry the EIP(s)")
        ips = []
    else:
        if len(ips) > MAX_SERVICE_IPS:
            errors.append("service_ips: %d addresses; at most %d per pair"
                          % (len(ips), MAX_SERVICE_IPS))
        for i, ip in enumerate(ips):
            if not _is_ipv4(ip):
                errors.append("service_ips: %r is not an IPv4 address" % ip)
            elif ip in ips[:i]:
                errors.append("service_ips: %s is listed twice" % ip)
    mode = spec.get("service_mode", "secondary-ip")
    if mode not in MODES:
        errors.append("service_mode: %r: one of %s" % (mode, ", ".join(MODES)))
    if "allocation_id" in spec and "allocation_ids" in spec:
        errors.append("allocation_ids: give allocation_id or allocation_ids, not both")
    allocs = allocation_ids(spec)
    if not isinstance(allocs, list):
        errors.append("allocation_ids: expected a list of eipalloc-<hex> ids")
        allocs = []
    if mode == "eip" and not allocs:
        errors.append("allocation_ids: required with service_mode eip (one per service IP)")
    for i, a in enumerate(allocs):
        if not ID_RE["eipalloc"].fullmatch(str(a)):
            errors.append("allocation_ids: %r is not an eipalloc-<hex> id" % (a,))
        elif a in allocs[:i]:
            errors.append("allocation_ids: %s is listed twice" % a)
    if allocs and ips and len(allocs) != len(ips):
        errors.append("allocation_ids: %d for %d service_ips (paired by index: one each)"
                      % (len(allocs), len(ips)))
    peer = spec.get("peer_address")
    if peer is None:
        errors.append("peer_address: required, the peer instance's primary private IP (HA heartbeats)")
    elif not _is_ipv4(peer):
        errors.append("peer_address: %r is not an IPv4 address" % peer)
    pri = spec.get("priority", 100)
    if not isinstance(pri, int) or not 1 <= pri <= 254:
        errors.append("priority: %r: an integer 1..254" % pri)
    rts = spec.get("route_table_ids", [])
    for rt in rts if isinstance(rts, list) else [rts]:
        if not ID_RE["rtb"].fullmatch(str(rt)):
            errors.append("route_table_ids: %r is not an rtb-<hex> id" % rt)
    if not rts and not spec.get("route_table_tags") and not spec.get("pair"):
        errors.append("route tables: give route_table_ids, route_table_tags or pair "
                      "(tables tagged eipgate:pair=<pair>)")
    if spec.get("data_path", "auto") not in DATA_PATHS:
        errors.append("data_path: %r: one of %s" % (spec.get("data_path"), ", ".join(DATA_PATHS)))
    w = spec.get("workers", "auto")
    if w != "auto":
        try:
            if int(w) < 1:
                raise ValueError
        except (TypeError, ValueError):
            errors.append("workers: %r: 'auto' or a positive integer" % w)
    if "mtu" in spec:
        # The dataplane takes one 2 KiB mbuf per packet (dataplane_config.h kMaxPortMtu): no
        # jumbo frames; the IGW's path is 1500 anyway and TCP's MSS is clamped.
        try:
            if not 576 <= int(spec["mtu"]) <= 2026:
                raise ValueError
        except (TypeError, ValueError):
            errors.append("mtu: %r: 576..2026 (one 2 KiB buffer per packet; no jumbo frames)" % spec["mtu"])
    if "max_flows" in spec:
        try:
            n = _count(spec["max_flows"])
            if not 1 <= n <= 16 * 1048576:
                raise ValueError
        except ValueError:
            errors.append("max_flows: %r: 1..16M (K = 1024, M = 1048576)" % spec["max_flows"])
    for k in ("preempt", "log_json"):
        if k in spec and grammar.parse_bool(spec[k]) is None:
            errors.append("%s: %s" % (k, grammar.why_bool(spec[k])))
    for k in ("heartbeat_interval", "hold_down"):
        if k in spec and grammar.parse_duration_ms(spec[k]) is None:
            errors.append("%s: %s" % (k, grammar.why_duration(spec[k])))
    if "miss_count" in spec and (isinstance(spec["miss_count"], bool)
                                 or not isinstance(spec["miss_count"], int)):
        errors.append("miss_count: %r: an integer 2..100" % (spec["miss_count"],))
    secrets = [k for k in ("ha_secret_ssm", "ha_secret_arn", "ha_secret_file", "ha_secret") if k in spec]
    if len(secrets) > 1:
        errors.append("HA secret: give one of %s" % ", ".join(secrets))
    for k in ("policy", "endpoints", "overrides"):
        if k in spec and not isinstance(spec[k], dict):
            errors.append("%s: must be an object" % k)
    errors.extend(validate_fallback(spec))
    cw = spec.get("cloudwatch", "off")
    if cw not in CLOUDWATCH:
        errors.append("cloudwatch: %r: one of %s%s" % (cw, ", ".join(CLOUDWATCH),
                                                      grammar.did_you_mean(str(cw), CLOUDWATCH)))
    elif cw != "off" and not spec.get("pair"):
        errors.append("cloudwatch: %s needs pair (the PairName dimension of every metric)" % cw)
    group = spec.get("translation_log_group", "")
    if not isinstance(group, str) or (group and not LOG_GROUP_RE.fullmatch(group)):
        errors.append("translation_log_group: %r is not a CloudWatch Logs group name (1 to 512 of "
                      "A-Z a-z 0-9 . _ - / #; empty = off)" % (group,))
    if errors:
        raise ConfigError(errors)
