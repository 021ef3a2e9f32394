#!/usr/bin/python3
"""The shared table of valid and invalid values (tests/data/config_grammar.json) against the
Python renderer: its grammar module and the spec validation that uses it. The C++ toolkit is
checked against the same table (tests/unit/config/grammar_test.cc), so a value the renderer
accepts is one the daemons accept. Run by ctest as ami_config_grammar."""

import json
import os
import sys
import unittest

try:
    import yaml  # noqa: F401  (the renderer's rendering module needs it)
except ImportError:
    sys.exit("test_config_grammar: PyYAML is missing: apt-get install python3-yaml")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from eipgate_render import grammar, validation  # noqa: E402

with open(os.path.join(HERE, "..", "..", "tests", "data", "config_grammar.json")) as f:
    TABLE = json.load(f)

# A spec that validates; each case changes one key.
SPEC = {"pair": "p", "peer_address": "10.0.0.16", "service_ips": ["10.0.0.100"],
        "inside_prefixes": ["10.0.128.0/20"]}


def errors_of(**changes):
    try:
        validation.validate(dict(SPEC, **changes))
    except validation.ConfigError as e:
        return e.errors
    return []


class GrammarTable(unittest.TestCase):
    def test_table_is_not_empty(self):
        for kind in ("durations_ms", "booleans", "ipv4", "cidrs", "networks", "keys"):
            self.assertGreaterEqual(len(TABLE[kind]), 4, kind)

    def test_durations(self):
        for text, want in TABLE["durations_ms"]:
            with self.subTest(text=text):
                self.assertEqual(grammar.parse_duration_ms(text), want)
                self.assertEqual(grammar.why_duration(text) is None, want is not None)
                # the renderer's checks use it: ha heartbeat_interval (grammar only)
                self.assertEqual(not errors_of(heartbeat_interval=text), want is not None)

    def test_booleans(self):
        for text, want in TABLE["booleans"]:
            with self.subTest(text=text):
                self.assertEqual(grammar.parse_bool(text), want)
                self.assertEqual(not errors_of(preempt=text), want is not None)

    def test_addresses(self):
        for text, want in TABLE["ipv4"]:
            with self.subTest(text=text):
                a = grammar.parse_ipv4(text)
                self.assertEqual(None if a is None else grammar.format_ipv4(a), want)
                self.assertEqual(not errors_of(peer_address=text), want is not None)

    def test_cidrs(self):
        for text, want in TABLE["cidrs"]:
            with self.subTest(text=text):
                c = grammar.parse_cidr(text)
                self.assertEqual(None if c is None else "%s/%d" % (grammar.format_ipv4(c[0]), c[1]), want)

    def test_networks(self):
        for text, want in TABLE["networks"]:
            with self.subTest(text=text):
                c = grammar.parse_network(text)
                self.assertEqual(None if c is None else "%s/%d" % (grammar.format_ipv4(c[0]), c[1]), want)
                self.assertEqual(not errors_of(inside_prefixes=[text]), want is not None)

    def test_did_you_mean(self):
        for name, candidates, want in TABLE["keys"]:
            with self.subTest(name=name):
                self.assertEqual(grammar.closest(name, candidates), want)
                self.assertEqual(grammar.did_you_mean(name, candidates),
                                 "" if want is None else " (did you mean '%s'?)" % want)

    def test_messages_match_the_cxx_toolkit(self):
        # The same words as common/yaml_schema.cc (grammar_test.cc MessagesQuoteTheValue).
        self.assertEqual(grammar.why_duration("350"), "'350' has no unit (use ms, s, m or h, e.g. 350s)")
        self.assertEqual(grammar.why_duration("2d"), "'2d': unknown unit 'd' (use ms, s, m or h)")
        self.assertEqual(grammar.why_duration("8761h"), "'8761h' is too long")
        self.assertEqual(grammar.why_network("10.1.2.3/16"),
                         "'10.1.2.3/16' has host bits set (the network would be 10.1.0.0/16)")
        self.assertEqual(grammar.why_network("10.0.0.0"),
                         "'10.0.0.0' has no prefix length (write it as address/length)")
        self.assertEqual(grammar.why_bool("maybe"), "'maybe' is not a boolean (true or false)")
        self.assertEqual(grammar.why_ipv4("10.0.0.256"), "'10.0.0.256' is not an IPv4 address")


if __name__ == "__main__":
    unittest.main(verbosity=2)
