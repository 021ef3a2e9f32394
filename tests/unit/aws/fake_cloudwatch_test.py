#!/usr/bin/python3
"""The fake CloudWatch in tests/sim/fake_aws.py, driven by botocore (Debian's python3-botocore:
AWS's own request serializer, SigV4 signer and response/error parser), so the fake speaks the
protocol the real service does: PutMetricData accepted and kept (read back from /_fake/metrics),
invalid requests refused with CloudWatch's error codes, throttling answered as CloudWatch does,
unsigned or EC2-scoped requests rejected.

  /usr/bin/python3 tests/unit/aws/fake_cloudwatch_test.py
"""

import datetime
import json
import os
import sys
import unittest
import urllib.request

import botocore.config
import botocore.exceptions
import botocore.session

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import fake_aws  # noqa: E402

STATE = os.path.join(ROOT, "tests", "sim", "example_state.json")


class FakeCloudWatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = fake_aws.FakeAws(fake_aws.State(fake_aws.load_state_file(STATE))).start()
        cls.url = f"http://127.0.0.1:{cls.fake.port}"

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.control("metrics", {"clear": True})
        self.control("faults", {"throttle_next": 0, "fail_next": 0, "actions": []})

    def client(self, key="AKIDEXAMPLE", secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
               service="cloudwatch", attempts=1):
        s = botocore.session.get_session()
        return s.create_client(service, region_name="us-east-1", endpoint_url=self.url,
                               aws_access_key_id=key, aws_secret_access_key=secret,
                               config=botocore.config.Config(retries={"max_attempts": attempts,
                                                                      "mode": "standard"}))

    def control(self, what, body=None):
        req = urllib.request.Request(self.url + "/_fake/" + what,
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def put(self, data, namespace="eipgate", **kw):
        return self.client(**kw).put_metric_data(Namespace=namespace, MetricData=data)

    def error_code(self, data, namespace="eipgate"):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.put(data, namespace)
        return cm.exception.response["Error"]["Code"], \
            cm.exception.response["ResponseMetadata"]["HTTPStatusCode"]

    def test_accepted_and_read_back(self):
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        dims = [{"Name": "PairName", "Value": "use1-az1-0"},
                {"Name": "AvailabilityZone", "Value": "us-east-1a"}]
        self.put([{"MetricName": "HaActive", "Dimensions": dims, "Value": 1, "Unit": "Count",
                   "Timestamp": now},
                  {"MetricName": "BytesOutToDestination", "Dimensions": dims, "Value": 12345.5,
                   "Unit": "Bytes"}])
        got = self.control("metrics")
        self.assertEqual([d["metric_name"] for d in got], ["HaActive", "BytesOutToDestination"])
        self.assertEqual(got[0]["dimensions"],
                         {"PairName": "use1-az1-0", "AvailabilityZone": "us-east-1a"})
        self.assertEqual(got[0]["value"], 1.0)
        self.assertEqual(got[0]["unit"], "Count")
        self.assertEqual(got[0]["timestamp"], now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.assertEqual(got[1]["value"], 12345.5)
        self.assertEqual(got[1]["unit"], "Bytes")
        self.assertEqual(got[0]["namespace"], "eipgate")
        self.assertEqual(got[0]["access_key_id"], "AKIDEXAMPLE")

    def test_limits_and_fields(self):
        one = {"MetricName": "X", "Value": 1}
        self.put([dict(one) for _ in range(1000)])
        self.assertEqual(len(self.control("metrics")), 1000)
        self.assertEqual(self.error_code([dict(one) for _ in range(1001)]),
                         ("InvalidParameterValue", 400))
        self.assertEqual(self.error_code([one], namespace="AWS/NATGateway"),
                         ("InvalidParameterValue", 400))
        self.assertEqual(self.error_code([{"MetricName": "X", "Value": 1, "Unit": "Parsecs"}]),
                         ("InvalidParameterValue", 400))
        dims = [{"Name": f"d{i}", "Value": "v"} for i in range(31)]
        self.assertEqual(self.error_code([{"MetricName": "X", "Value": 1, "Dimensions": dims}]),
                         ("InvalidParameterValue", 400))
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=15)
        self.assertEqual(self.error_code([{"MetricName": "X", "Value": 1, "Timestamp": old}]),
                         ("InvalidParameterValue", 400))
        self.assertEqual(self.error_code([{"MetricName": "X"}]), ("MissingParameter", 400))
        self.assertEqual(len(self.control("metrics")), 1000, "nothing kept from refused calls")

    def test_throttled_like_cloudwatch(self):
        self.control("faults", {"throttle_next": 10, "actions": ["PutMetricData"]})
        code = self.error_code([{"MetricName": "X", "Value": 1}])
        self.assertEqual(code, ("Throttling", 400))
        self.control("faults", {"throttle_next": 0})
        # botocore's own retry treats CloudWatch's Throttling as retryable.
        self.control("faults", {"throttle_next": 2, "actions": ["PutMetricData"]})
        self.put([{"MetricName": "X", "Value": 2}], attempts=5)
        self.assertEqual([d["value"] for d in self.control("metrics")], [2.0])

    def test_signature_checked(self):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.put([{"MetricName": "X", "Value": 1}], secret="wrong")
        self.assertEqual(cm.exception.response["Error"]["Code"], "AuthFailure")
        with self.assertRaises(botocore.exceptions.ClientError):
            self.put([{"MetricName": "X", "Value": 1}], key="AKIDUNKNOWN")
        self.assertEqual(self.control("metrics"), [])

    def test_ec2_still_served_beside_it(self):
        tables = self.client(service="ec2").describe_route_tables()["RouteTables"]
        self.assertTrue(tables)


if __name__ == "__main__":
    unittest.main(verbosity=2)
