"""The command: sources -> spec -> render -> files, with the exit codes of eipgate-render-config."""

import argparse
import json
import os
import sys
import urllib.error

from .imds import Imds, read_facts, read_tags
from .rendering import HEADER, render, to_yaml
from .secret_files import fetch_secret, write_atomic
from .spec import DEFAULT_IMDS, ConfigError, spec_from_tags, spec_from_user_data

DESCRIPTION = "eipgate-render-config: render /etc/eipgate/eipgate.yaml from EC2 user data and instance tags."


def main(argv=None):
    ap = argparse.ArgumentParser(description=DESCRIPTION)
    ap.add_argument("--output", default="/etc/eipgate/eipgate.yaml")
    ap.add_argument("--secret-file", default="/etc/eipgate/ha.key")
    ap.add_argument("--env-file", default="/run/eipgate/setup.env")
    ap.add_argument("--local-user-data", default="/etc/eipgate/user-data.json")
    ap.add_argument("--imds", default=os.environ.get("EIPGATE_IMDS_ENDPOINT", DEFAULT_IMDS))
    ap.add_argument("--sysfs", default="/sys")
    ap.add_argument("--facts", help="read facts from this JSON file instead of IMDS and sysfs (tests)")
    ap.add_argument("--print", action="store_true", help="print the config instead of writing files")
    args = ap.parse_args(argv)

    try:
        spec = {}
        found = False
        if args.facts:
            with open(args.facts) as f:
                facts = json.load(f)
            tags = facts.get("tags", {})
            user_data = facts.get("user_data")
        else:
            imds = Imds(args.imds)
            try:
                facts = read_facts(imds, args.sysfs)
                tags = read_tags(imds)
                user_data = imds.get("user-data")
            except (urllib.error.URLError, OSError) as e:
                print("eipgate-render-config: IMDS %s unreachable: %s" % (args.imds, e), file=sys.stderr)
                return 1
        t = spec_from_tags(tags)
        if t:
            spec.update(t)
            found = True
        u = spec_from_user_data(user_data, "user data")
        if u is not None:
            spec.update(u)
            found = True
        if args.local_user_data and os.path.exists(args.local_user_data):
            with open(args.local_user_data) as f:
                loc = spec_from_user_data(f.read(), args.local_user_data)
            if loc is not None:
                spec.update(loc)
                found = True
        if not found:
            print("eipgate-render-config: no eipgate user data, tags or %s: nothing rendered"
                  % args.local_user_data, file=sys.stderr)
            return 3
        cfg, env = render(spec, facts, args.secret_file)
    except ConfigError as e:
        for err in e.errors:
            print("eipgate-render-config: %s" % err, file=sys.stderr)
        return 2

    text = HEADER + to_yaml(cfg) + "\n"
    if args.print:
        sys.stdout.write(text)
        return 0
    try:
        secret = fetch_secret(spec, facts.get("region"))
    except Exception as e:  # botocore errors, access denied, not found
        print("eipgate-render-config: HA secret: %s" % e, file=sys.stderr)
        return 1
    if secret is not None:
        if len(secret) < 16:
            print("eipgate-render-config: HA secret: shorter than 16 bytes", file=sys.stderr)
            return 2
        write_atomic(cfg["ha"]["secret_file"], secret, 0o600)
    write_atomic(args.output, text.encode(), 0o644)
    write_atomic(args.env_file, "".join("%s=%s\n" % kv for kv in env.items()).encode(), 0o644)
    print("eipgate-render-config: wrote %s (data path %s, device %s, %s workers, %s hugepages)"
          % (args.output, env["EIPGATE_DATA_PATH"], cfg["ports"][0]["device"],
             env["EIPGATE_WORKERS"], env["EIPGATE_HUGEPAGES"]))
    return 0
