#!/usr/bin/python3
"""Prints the Authorization header botocore's SigV4Auth.add_auth produces for a captured request.

Input (JSON file, argv[1]): method, url, headers (the ones the client signed, without
Authorization, X-Amz-Date and X-Amz-Security-Token, which botocore adds itself), body,
access_key_id, secret_access_key, session_token, region, service, amz_date (YYYYMMDDTHHMMSSZ).
botocore's clock is pinned to amz_date so its signature is for the same instant.
"""
import datetime
import json
import sys

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    pinned = datetime.datetime.strptime(spec["amz_date"], "%Y%m%dT%H%M%SZ")

    class PinnedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return pinned

        @classmethod
        def now(cls, tz=None):
            return pinned.replace(tzinfo=tz) if tz else pinned

    module = datetime

    class PinnedModule:  # stands in for the datetime module inside botocore.auth
        datetime = PinnedDatetime
        timezone = module.timezone
        timedelta = module.timedelta

    botocore.auth.datetime = PinnedModule
    req = AWSRequest(method=spec["method"], url=spec["url"], data=spec["body"].encode("utf-8"))
    for name, value in spec["headers"].items():
        req.headers[name] = value
    creds = Credentials(spec["access_key_id"], spec["secret_access_key"],
                        spec.get("session_token") or None)
    SigV4Auth(creds, spec["service"], spec["region"]).add_auth(req)
    if req.headers["X-Amz-Date"] != spec["amz_date"]:
        sys.exit(f"botocore signed at {req.headers['X-Amz-Date']}, not {spec['amz_date']}")
    print(req.headers["Authorization"])


if __name__ == "__main__":
    main()
