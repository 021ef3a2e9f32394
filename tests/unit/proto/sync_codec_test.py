#!/usr/bin/python3
"""proto/sync_codec.py (the Python test peers' codec) against every shared vector in
proto/testdata/sync_vectors.json, both ways; the C++ codec is checked against the same file."""
import ipaddress
import json
import os
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "proto"))
import sync_codec as sc  # noqa: E402

with open(os.path.join(ROOT, "proto", "testdata", "sync_vectors.json")) as f:
    VECTORS = json.load(f)


def record_of(j):
    a = lambda s: int(ipaddress.IPv4Address(s))
    return sc.SyncRecord(a(j["inside_ip"]), a(j["outside_ip"]), a(j["remote_ip"]),
                         j["inside_port"], j["outside_port"], j["remote_port"], j["proto"],
                         j["tcp_bits"], j["remaining_ms"], sc.KINDS[j["kind"]],
                         j["endpoint_independent"], j["worker_hint"])


class SyncVectors(unittest.TestCase):
    def test_records(self):
        self.assertGreaterEqual(len(VECTORS["records"]), 4)
        for c in VECTORS["records"]:
            with self.subTest(c["name"]):
                want, data = record_of(c["record"]), bytes.fromhex(c["hex"])
                if c["direction"] != "decode":
                    self.assertEqual(sc.encode_record(want).hex(), c["hex"])
                if c["direction"] != "encode":
                    self.assertEqual(sc.decode_record(data), want)

    def test_bad_records(self):
        self.assertTrue(VECTORS["bad_records"])
        for c in VECTORS["bad_records"]:
            with self.subTest(c["name"]):
                with self.assertRaises(sc.SyncError) as e:
                    sc.decode_record(bytes.fromhex(c["hex"]))
                self.assertEqual(e.exception.reason, c["error"])

    def test_packets(self):
        self.assertTrue(VECTORS["packets"])
        for c in VECTORS["packets"]:
            with self.subTest(c["name"]):
                ptype = sc.PACKET_TYPES[c["type"]]
                records = [record_of(r) for r in c["records"]]
                self.assertEqual(sc.encode_packet(ptype, records).hex(), c["hex"])
                self.assertEqual(sc.decode_packet(bytes.fromhex(c["hex"])), (ptype, records))

    def test_bad_packets(self):
        self.assertTrue(VECTORS["bad_packets"])
        for c in VECTORS["bad_packets"]:
            with self.subTest(c["name"]):
                with self.assertRaises(sc.SyncError) as e:
                    sc.decode_packet(bytes.fromhex(c["hex"]))
                self.assertEqual(e.exception.reason, c["error"])

    def test_encode_refuses_too_many(self):
        with self.assertRaises(ValueError):
            sc.encode_packet(sc.EVENTS, [sc.SyncRecord()] * (sc.MAX_RECORDS_PER_PACKET + 1))


if __name__ == "__main__":
    unittest.main()
