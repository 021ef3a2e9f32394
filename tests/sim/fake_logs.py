"""The fake CloudWatch Logs of fake_aws.py: CreateLogStream and PutLogEvents over the JSON 1.1
protocol (X-Amz-Target Logs_20140328.<Operation>, Content-Type application/x-amz-json-1.1, SigV4
service "logs"), validated as CloudWatch Logs does for the fields eipgate sends, events kept per
group and stream. fake_aws.py does the HTTP and SigV4 parts; tests read the events back through
/_fake/logs (tests/sim/README.md).
"""

import json
import threading
import time
import uuid

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_EVENTS = 10000
MAX_BATCH_BYTES = 1_048_576  # sum of UTF-8 message bytes + 26 per event
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 1_048_576 - EVENT_OVERHEAD
MAX_SPAN_MS = 24 * 3600 * 1000
TOO_OLD_MS = 14 * 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000


class LogsError(Exception):
    """A CloudWatch Logs error: answered as {"__type": code, "message": ...} with status."""

    def __init__(self, code, message, status=400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self):
        return json.dumps({"__type": self.code, "message": self.message})


def _name(params, key):
    v = params.get(key)
    if not isinstance(v, str) or not v:
        raise LogsError("InvalidParameterException", f"{key} is required")
    if len(v) > 512:
        raise LogsError("InvalidParameterException", f"{key} is longer than 512 characters")
    return v


class LogsStore:
    """Groups → streams → events ({timestamp, message, ingestion_time, instance_id}), oldest
    first. Groups exist only when created through the control endpoint (as an operator or the
    CloudFormation template would), so a missing group is ResourceNotFoundException."""

    def __init__(self):
        self.lock = threading.Lock()
        self.groups = {}  # name -> {stream name -> [event]}

    def create_group(self, name):
        with self.lock:
            self.groups.setdefault(name, {})

    def clear(self):
        with self.lock:
            for streams in self.groups.values():
                for events in streams.values():
                    events.clear()

    def to_json(self):
        with self.lock:
            return {g: {s: list(ev) for s, ev in streams.items()}
                    for g, streams in self.groups.items()}

    def handle(self, operation, body, instance_id=None, now_ms=None):
        """One JSON 1.1 call: returns the answer dict or raises LogsError."""
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise LogsError("SerializationException", "the body is not JSON")
        if not isinstance(params, dict):
            raise LogsError("SerializationException", "the body is not a JSON object")
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        if operation == "CreateLogStream":
            return self._create_stream(params)
        if operation == "PutLogEvents":
            return self._put(params, instance_id, now_ms)
        raise LogsError("UnknownOperationException",
                        f"{operation}: this fake serves CreateLogStream and PutLogEvents only")

    def _group(self, params):
        group = _name(params, "logGroupName")
        if group not in self.groups:
            raise LogsError("ResourceNotFoundException", "The specified log group does not exist.")
        return self.groups[group]

    def _create_stream(self, params):
        stream = _name(params, "logStreamName")
        if ":" in stream or "*" in stream:
            raise LogsError("InvalidParameterException", "logStreamName has ':' or '*'")
        with self.lock:
            streams = self._group(params)
            if stream in streams:
                raise LogsError("ResourceAlreadyExistsException",
                                "The specified log stream already exists")
            streams[stream] = []
        return {}

    def _put(self, params, instance_id, now_ms):
        stream = _name(params, "logStreamName")
        events = params.get("logEvents")
        if not isinstance(events, list) or not events:
            raise LogsError("InvalidParameterException", "logEvents must hold 1 or more events")
        if len(events) > MAX_EVENTS:
            raise LogsError("InvalidParameterException",
                            f"logEvents holds {len(events)} events, more than {MAX_EVENTS}")
        size = 0
        for i, e in enumerate(events):
            if not isinstance(e, dict) or set(e) != {"timestamp", "message"}:
                raise LogsError("InvalidParameterException",
                                f"logEvents[{i}] must have timestamp and message only")
            if not isinstance(e["timestamp"], int) or isinstance(e["timestamp"], bool) or \
                    e["timestamp"] < 0:
                raise LogsError("InvalidParameterException", f"logEvents[{i}].timestamp")
            if not isinstance(e["message"], str) or not e["message"]:
                raise LogsError("InvalidParameterException", f"logEvents[{i}].message is empty")
            n = len(e["message"].encode("utf-8"))
            if n > MAX_EVENT_BYTES:
                raise LogsError("InvalidParameterException", f"logEvents[{i}] is too large")
            size += n + EVENT_OVERHEAD
            if i and e["timestamp"] < events[i - 1]["timestamp"]:
                raise LogsError("InvalidParameterException",
                                "Log events in a single PutLogEvents request must be in "
                                "chronological order.")
        if size > MAX_BATCH_BYTES:
            raise LogsError("InvalidParameterException",
                            f"the batch is {size} bytes, more than {MAX_BATCH_BYTES}")
        if events[-1]["timestamp"] - events[0]["timestamp"] > MAX_SPAN_MS:
            raise LogsError("InvalidParameterException",
                            "A batch of log events in a single request cannot span more than "
                            "24 hours.")
        answer = {"nextSequenceToken": uuid.uuid4().hex}
        too_old_end, too_new_start = 0, None
        for i, e in enumerate(events):
            if e["timestamp"] < now_ms - TOO_OLD_MS:
                too_old_end = i + 1
            elif e["timestamp"] > now_ms + TOO_NEW_MS and too_new_start is None:
                too_new_start = i
        info = {}
        if too_old_end:
            info["tooOldLogEventEndIndex"] = too_old_end
        if too_new_start is not None:
            info["tooNewLogEventStartIndex"] = too_new_start
        if info:
            answer["rejectedLogEventsInfo"] = info
        end = too_new_start if too_new_start is not None else len(events)
        with self.lock:
            streams = self._group(params)
            if stream not in streams:
                raise LogsError("ResourceNotFoundException",
                                "The specified log stream does not exist.")
            for e in events[too_old_end:end]:
                streams[stream].append({"timestamp": e["timestamp"], "message": e["message"],
                                        "ingestion_time": now_ms, "instance_id": instance_id})
            del streams[stream][:-200000]
        return answer
