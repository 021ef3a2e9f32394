"""The value grammar of every eipgate config file, as common/yaml_schema.h implements it in C++
(the grammar: common/README.md). tests/data/config_grammar.json is the table both sides are
checked against (ami/tests/test_config_grammar.py here, tests/unit/config/grammar_test.cc there).

Each parser takes the text and returns the value, or None when the text is refused; `why_*`
gives the reason, worded as the C++ toolkit words it."""

import re

MAX_DURATION_MS = 365 * 86400 * 1000
_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
_GROUP = re.compile(r"([0-9]+)([^0-9]*)")


def _duration(text):
    """(milliseconds, None) or (None, reason)."""
    if not isinstance(text, str):
        return None, "%r is not a duration (e.g. 350s, 5m, 1h, 500ms)" % (text,)
    if text == "":
        return None, "empty duration"
    q = "'%s'" % text
    total, pos = 0, 0
    while pos < len(text):
        m = _GROUP.match(text, pos)
        if not m or len(m.group(1)) > 19:
            return None, "%s is not a duration (e.g. 350s, 5m, 1h, 500ms)" % q
        n, unit = int(m.group(1)), m.group(2)
        if unit == "":
            return None, "%s has no unit (use ms, s, m or h, e.g. %ss)" % (q, text)
        if unit not in _UNITS:
            return None, "%s: unknown unit '%s' (use ms, s, m or h)" % (q, unit)
        total += n * _UNITS[unit]
        if total > MAX_DURATION_MS:
            return None, "%s is too long" % q
        pos = m.end()
    return total, None


def parse_duration_ms(text):
    return _duration(text)[0]


def why_duration(text):
    return _duration(text)[1]


def parse_bool(value):
    """true/yes/on, false/no/off in any letter case; a JSON boolean (user data) as itself."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    v = value.lower()
    if v in ("true", "yes", "on"):
        return True
    if v in ("false", "no", "off"):
        return False
    return None


def why_bool(value):
    return "'%s' is not a boolean (true or false)" % (value,)


_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")


def parse_ipv4(text):
    """Dotted quad, decimal, no leading zeros, no spaces: the address as an int, or None."""
    if not isinstance(text, str):
        return None
    parts = text.split(".")
    if len(parts) != 4:
        return None
    addr = 0
    for p in parts:
        if not _OCTET.fullmatch(p) or int(p) > 255:
            return None
        addr = addr << 8 | int(p)
    return addr


def why_ipv4(text):
    return "'%s' is not an IPv4 address" % (text,)


def format_ipv4(addr):
    return ".".join(str(addr >> s & 255) for s in (24, 16, 8, 0))


_LENGTH = re.compile(r"[0-9]|[12][0-9]|3[0-2]")


def _cidr(text, network):
    if not isinstance(text, str):
        return None, "%r is not an IPv4 prefix" % (text,)
    q = "'%s'" % text
    if "/" not in text:
        return None, "%s has no prefix length (write it as address/length)" % q
    addr_text, length = text.split("/", 1)
    addr = parse_ipv4(addr_text)
    if addr is None:
        return None, "%s is not an IPv4 prefix" % q
    if not _LENGTH.fullmatch(length):
        return None, "%s: prefix length must be 0..32" % q
    n = int(length)
    mask = 0 if n == 0 else (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
    if network and addr & mask != addr:
        return None, "%s has host bits set (the network would be %s/%d)" % (q, format_ipv4(addr & mask), n)
    return (addr, n), None


def parse_cidr(text):
    """address/length, host bits allowed: (address int, length) or None."""
    return _cidr(text, False)[0]


def parse_network(text):
    """address/length with no host bits set: (address int, length) or None."""
    return _cidr(text, True)[0]


def why_network(text):
    return _cidr(text, True)[1]


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            up = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1]))
            diag = up
    return row[len(b)]


def closest(name, candidates):
    """The first candidate within two edits of name, the closest one; None if none is."""
    best, best_d = None, 3
    for c in candidates:
        d = edit_distance(name, c)
        if d < best_d:
            best, best_d = c, d
    return best


def did_you_mean(name, candidates):
    """" (did you mean 'x'?)" or ""."""
    c = closest(name, candidates)
    return " (did you mean '%s'?)" % c if c else ""
