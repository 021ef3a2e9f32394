#!/usr/bin/python3
"""The malformed-config corpus (tests/data/malformed-configs/) through every config loader:
eipgate-dataplane --check, eipgate-control --check (its aws:, ha: and admin: sections) and
eipgate-render-config (user data). Every case must exit 2 with `file:line: reason` lines (the
renderer: its own prefix, and file:line for JSON syntax errors) and the expected reason; never a
crash, an abort or a sanitizer report. expect.json in each folder lists the cases.

  malformed_configs_test.py DATAPLANE_BIN CONTROL_BIN   (run by ctest as config_malformed_corpus)
"""

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "data", "malformed-configs")
RENDER = os.path.join(ROOT, "ami", "scripts", "eipgate-render-config")
CRASH = re.compile(r"terminate called|Aborted|AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|"
                   r"Traceback|Segmentation fault")

FACTS = {
    "region": "us-east-1", "az": "us-east-1a", "instance_id": "i-0aaaaaaaaaaaaaaa1",
    "enis": [{"mac": "0e:00:00:00:0a:01", "id": "eni-0aaaaaaaaaaaaaaa1", "device_number": 0,
              "ips": ["10.0.0.15"], "subnet_cidr": "10.0.0.0/24"},
             {"mac": "0e:00:00:00:0a:02", "id": "eni-0aaaaaaaaaaaaaad1", "device_number": 1,
              "ips": ["10.0.0.5", "10.0.0.100"], "subnet_cidr": "10.0.0.0/24"}],
    "nics": {"0e:00:00:00:0a:01": {"ifname": "ens5", "pci": "0000:00:05.0"},
             "0e:00:00:00:0a:02": {"ifname": "ens6", "pci": "0000:00:06.0"}},
    "cpus": 2, "mem_mib": 2048, "vfio_ok": True,
}

failures = []


def fail(case, why, proc):
    failures.append("%s: %s\n  exit %s\n  stdout: %s\n  stderr: %s"
                    % (case, why, proc.returncode, proc.stdout.strip(), proc.stderr.strip()))


def run(cmd):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=60, env=env)


def check_yaml_loaders(dataplane, control):
    with open(os.path.join(CORPUS, "expect.json")) as f:
        cases = json.load(f)
    binaries = {"dataplane": dataplane, "control": control}
    for name, want in sorted(cases.items()):
        path = os.path.join(CORPUS, name)
        for loader in want["loaders"]:
            case = "%s via %s" % (name, loader)
            p = run([binaries[loader], "--config", path, "--check"])
            if CRASH.search(p.stderr):
                fail(case, "crashed", p)
            elif p.returncode != 2:
                fail(case, "exit %d, not 2" % p.returncode, p)
            lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
            # file:line: reason; only an empty file has no line to name
            prefix = re.compile(r"^(eipgate-dataplane: )?" + re.escape(path) +
                                r"(:[1-9][0-9]*: \S|: the configuration is empty$)")
            if not lines or not all(prefix.match(ln) for ln in lines):
                fail(case, "not every error line is 'file:line: reason'", p)
            if want["expect"] not in p.stderr:
                fail(case, "reason lacks %r" % want["expect"], p)
            print("ok  %-32s %-9s %s" % (name, loader, lines[0] if lines else ""))
    # The base every case derives from is valid: the dataplane accepts it, control stops only at
    # the secret file it names (which does not exist).
    base = os.path.join(CORPUS, "base.yaml")
    p = run([dataplane, "--config", base, "--check"])
    if p.returncode != 0:
        fail("base.yaml via dataplane", "refused", p)
    p = run([control, "--config", base, "--check"])
    if p.returncode != 2 or "ha.secret_file: secret file" not in p.stderr or len(p.stderr.splitlines()) != 1:
        fail("base.yaml via control", "should fail on the secret file only", p)


def check_renderer():
    folder = os.path.join(CORPUS, "render")
    with open(os.path.join(folder, "expect.json")) as f:
        cases = json.load(f)
    with tempfile.TemporaryDirectory(prefix="eipgate-malformed-") as d:
        facts = os.path.join(d, "facts.json")
        with open(facts, "w") as f:
            json.dump(FACTS, f)
        for name, want in sorted(cases.items()):
            path = os.path.join(folder, name)
            case = "render/%s via render-config" % name
            p = run([sys.executable, RENDER, "--facts", facts, "--local-user-data", path, "--print",
                     "--output", os.path.join(d, "out.yaml"), "--env-file", os.path.join(d, "env")])
            if CRASH.search(p.stderr):
                fail(case, "crashed", p)
            elif p.returncode != 2:
                fail(case, "exit %d, not 2" % p.returncode, p)
            lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
            if not lines or not all(ln.startswith("eipgate-render-config: ") for ln in lines):
                fail(case, "errors lack the program prefix", p)
            if want.startswith(":"):  # a JSON syntax error: file:line
                want = path + want
            if want not in p.stderr:
                fail(case, "reason lacks %r" % want, p)
            print("ok  render/%-25s %s" % (name, lines[0] if lines else ""))


def main():
    if len(sys.argv) != 3 or not all(os.path.exists(b) for b in sys.argv[1:]):
        sys.exit("usage: malformed_configs_test.py DATAPLANE_BIN CONTROL_BIN (both built)")
    check_yaml_loaders(sys.argv[1], sys.argv[2])
    check_renderer()
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
