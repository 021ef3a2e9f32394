#!/usr/bin/python3
"""The fake CloudWatch Logs in tests/sim/fake_aws.py (fake_logs.py), driven by botocore (Debian's
python3-botocore: AWS's own JSON 1.1 serializer, SigV4 signer and error parser), so the fake speaks
the protocol the real service does: CreateLogStream and PutLogEvents accepted and kept (read back
from /_fake/logs), the API's limits and error codes, throttling answered as CloudWatch Logs does,
a wrong signature rejected (UnrecognizedClientException).

  /usr/bin/python3 tests/unit/aws/fake_logs_test.py
"""

import json
import os
import sys
import time
import unittest
import urllib.request

import botocore.config
import botocore.exceptions
import botocore.session

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import fake_aws  # noqa: E402

STATE = os.path.join(ROOT, "tests", "sim", "example_state.json")
GROUP = "/eipgate/translations"


class FakeLogsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = fake_aws.FakeAws(fake_aws.State(fake_aws.load_state_file(STATE))).start()
        cls.url = f"http://127.0.0.1:{cls.fake.port}"
        cls.control("logs", {"create_group": GROUP})

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.control("logs", {"clear": True})
        self.control("faults", {"throttle_next": 0, "fail_next": 0, "actions": []})

    @classmethod
    def control(cls, what, body=None):
        req = urllib.request.Request(cls.url + "/_fake/" + what,
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def client(self, service="logs"):
        s = botocore.session.get_session()
        return s.create_client(service, region_name="us-east-1", endpoint_url=self.url,
                               aws_access_key_id="AKIDEXAMPLE",
                               aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                               config=botocore.config.Config(retries={"total_max_attempts": 1,
                                                                      "mode": "standard"}))

    def error(self, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        return cm.exception.response["Error"]["Code"]

    def test_events_accepted_and_read_back(self):
        c = self.client()
        try:
            c.create_log_stream(logGroupName=GROUP, logStreamName="i-1")
        except botocore.exceptions.ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "ResourceAlreadyExistsException")
        self.assertEqual(self.error(c.create_log_stream, logGroupName=GROUP,
                                    logStreamName="i-1"), "ResourceAlreadyExistsException")
        now = int(time.time() * 1000)
        r = c.put_log_events(logGroupName=GROUP, logStreamName="i-1",
                             logEvents=[{"timestamp": now - 1, "message": '{"t":"a"}'},
                                        {"timestamp": now, "message": "é two"}])
        self.assertNotIn("rejectedLogEventsInfo", r)
        got = self.control("logs")[GROUP]["i-1"]
        self.assertEqual([e["message"] for e in got], ['{"t":"a"}', "é two"])
        self.assertEqual(got[0]["timestamp"], now - 1)
        # Too new (more than 2 h ahead): accepted call, that event rejected.
        r = c.put_log_events(logGroupName=GROUP, logStreamName="i-1",
                             logEvents=[{"timestamp": now, "message": "ok"},
                                        {"timestamp": now + 3 * 3600 * 1000, "message": "new"}])
        self.assertEqual(r["rejectedLogEventsInfo"], {"tooNewLogEventStartIndex": 1})
        self.assertEqual(len(self.control("logs")[GROUP]["i-1"]), 3)

    def test_limits_and_errors(self):
        c = self.client()
        self.assertEqual(self.error(c.create_log_stream, logGroupName="/none",
                                    logStreamName="s"), "ResourceNotFoundException")
        try:
            c.create_log_stream(logGroupName=GROUP, logStreamName="lim")
        except botocore.exceptions.ClientError:
            pass
        now = int(time.time() * 1000)
        put = c.put_log_events
        self.assertEqual(self.error(put, logGroupName=GROUP, logStreamName="missing",
                                    logEvents=[{"timestamp": now, "message": "x"}]),
                         "ResourceNotFoundException")
        self.assertEqual(self.error(put, logGroupName=GROUP, logStreamName="lim",
                                    logEvents=[{"timestamp": now, "message": "b"},
                                               {"timestamp": now - 5, "message": "a"}]),
                         "InvalidParameterException")  # not chronological
        self.assertEqual(self.error(put, logGroupName=GROUP, logStreamName="lim",
                                    logEvents=[{"timestamp": now, "message": "x"}] * 10001),
                         "InvalidParameterException")
        big = "m" * (1_048_576 // 5)
        self.assertEqual(self.error(put, logGroupName=GROUP, logStreamName="lim",
                                    logEvents=[{"timestamp": now, "message": big}] * 5),
                         "InvalidParameterException")  # 5 x (size + 26) > 1 MiB
        day = 24 * 3600 * 1000
        self.assertEqual(self.error(put, logGroupName=GROUP, logStreamName="lim",
                                    logEvents=[{"timestamp": now - day - 1, "message": "a"},
                                               {"timestamp": now, "message": "b"}]),
                         "InvalidParameterException")  # spans more than 24 h
        self.assertEqual(self.control("logs")[GROUP]["lim"], [])
        self.control("faults", {"throttle_next": 1, "actions": ["PutLogEvents"]})
        self.assertEqual(self.error(put, logGroupName=GROUP, logStreamName="lim",
                                    logEvents=[{"timestamp": now, "message": "x"}]),
                         "ThrottlingException")

    def test_a_wrong_signature_is_refused(self):
        s = botocore.session.get_session()
        c = s.create_client("logs", region_name="us-east-1", endpoint_url=self.url,
                            aws_access_key_id="AKIDEXAMPLE",
                            aws_secret_access_key="not-the-secret",
                            config=botocore.config.Config(retries={"total_max_attempts": 1}))
        self.assertEqual(self.error(c.create_log_stream, logGroupName=GROUP, logStreamName="x"),
                         "UnrecognizedClientException")


if __name__ == "__main__":
    unittest.main()
