"""The sync contract of proto/sync.h for Python test peers (tests/e2e/sync_peer.py,
tests/unit/control/fake_dataplane.py): the same record, framing and error names as the C++
codec, checked against the same vectors (proto/testdata/sync_vectors.json). Standard library only.
"""
import struct
from typing import NamedTuple

RECORD_SIZE = 28
HEADER_SIZE = 8
VERSION = 1
MAX_RECORDS_PER_PACKET = 64
MAX_PACKET_SIZE = HEADER_SIZE + MAX_RECORDS_PER_PACKET * RECORD_SIZE
MAX_LIFETIME_S = 4_000_000
FLAG_ENDPOINT_INDEPENDENT = 0x01

# Packet types and record kinds (proto::PacketType, proto::SyncKind).
EVENTS, SNAPSHOT_REQUEST, SNAPSHOT_BEGIN, SNAPSHOT_END = 1, 2, 3, 4
PACKET_TYPES = {"events": EVENTS, "snapshot_request": SNAPSHOT_REQUEST,
                "snapshot_begin": SNAPSHOT_BEGIN, "snapshot_end": SNAPSHOT_END}
CREATE, REFRESH, DELETE = 1, 2, 3
KINDS = {"create": CREATE, "refresh": REFRESH, "delete": DELETE}

_RECORD = struct.Struct("!IIIHHHBBIBBH")
_HEADER = struct.Struct("!BBHI")
assert _RECORD.size == RECORD_SIZE and _HEADER.size == HEADER_SIZE


class SyncRecord(NamedTuple):
    """proto::SyncRecord: addresses and ports as integers in host order."""
    inside_ip: int = 0
    outside_ip: int = 0
    remote_ip: int = 0
    inside_port: int = 0
    outside_port: int = 0
    remote_port: int = 0
    proto: int = 0
    tcp_bits: int = 0
    remaining_ms: int = 0
    kind: int = CREATE
    endpoint_independent: bool = False
    worker_hint: int = 0

    def key(self):
        """The flow's identity (proto::FlowKey): addresses, ports, protocol."""
        return self[:7]


class SyncError(ValueError):
    """A refused packet or record; `reason` is proto::SyncError's name (e.g. "bad_version")."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def encode_record(r):
    lifetime_s = -(-r.remaining_ms // 1000)  # rounded up, as the C++ codec does
    return _RECORD.pack(r.inside_ip, r.outside_ip, r.remote_ip, r.inside_port, r.outside_port,
                        r.remote_port, r.proto, r.tcp_bits, lifetime_s, r.kind,
                        FLAG_ENDPOINT_INDEPENDENT if r.endpoint_independent else 0,
                        r.worker_hint)


def decode_record(data, offset=0):
    (ins, out, rem, iport, oport, rport, proto, tcp, life, kind, flags,
     worker) = _RECORD.unpack_from(data, offset)
    if kind not in (CREATE, REFRESH, DELETE):
        raise SyncError("bad_kind")
    return SyncRecord(ins, out, rem, iport, oport, rport, proto, tcp,
                      min(life, MAX_LIFETIME_S) * 1000, kind,
                      bool(flags & FLAG_ENDPOINT_INDEPENDENT), worker)


def encode_packet(ptype, records=()):
    if len(records) > MAX_RECORDS_PER_PACKET:
        raise ValueError(f"{len(records)} records in one packet (at most {MAX_RECORDS_PER_PACKET})")
    return _HEADER.pack(ptype, VERSION, len(records), 0) + b"".join(map(encode_record, records))


def decode_header(data):
    """Checks the header; returns (type, count) or raises SyncError."""
    if len(data) < HEADER_SIZE:
        raise SyncError("truncated")
    ptype, version, count, _ = _HEADER.unpack_from(data)
    if version != VERSION:
        raise SyncError("bad_version")
    if ptype not in PACKET_TYPES.values():
        raise SyncError("bad_type")
    if count > MAX_RECORDS_PER_PACKET:
        raise SyncError("too_many_records")
    if len(data) != HEADER_SIZE + count * RECORD_SIZE:
        raise SyncError("length_mismatch")
    return ptype, count


def decode_packet(data):
    """The whole packet, all or nothing: (type, [SyncRecord]) or SyncError."""
    ptype, count = decode_header(data)
    return ptype, [decode_record(data, HEADER_SIZE + i * RECORD_SIZE) for i in range(count)]
