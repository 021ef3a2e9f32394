#!/usr/bin/env python3
"""The Depends of cross-built binaries, from a sysroot made by make-sysroot.sh.

dpkg-shlibdeps asks the host's dpkg database which package ships each library, and the arm64
libraries are not installed there. This does the same lookup in the sysroot's records: for each
DT_NEEDED soname of the given ELF files, the package that ships it (SYSROOT/.debs/PKG/files) and
that package's shlibs entry (SYSROOT/.debs/PKG/DEBIAN/shlibs), e.g. "libcurl4 (>= 7.16.2)".

    shlibdeps.py SYSROOT ELF... > depends.txt      # one line: "libc6 (>= 2.36), ..."

Exits 1, naming it, if a soname is not shipped by any package or has no shlibs entry.
"""
import os
import re
import subprocess
import sys


def needed(path):
    run = subprocess.run(["readelf", "-d", "-W", path], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"shlibdeps: {path}: readelf failed: {run.stderr.strip()}")
    out = run.stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def soname_key(soname):
    """libfoo.so.1 -> (libfoo, 1); libfoo-1.2.so -> (libfoo-1.2, '') as in deb-shlibs(5)."""
    m = re.match(r"^(.*)\.so\.(.+)$", soname)
    if m:
        return m.group(1), m.group(2)
    m = re.match(r"^(.*)-([0-9.]+)\.so$", soname)
    if m:
        return m.group(1), m.group(2)
    return soname, ""


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    root, elves = argv[1], argv[2:]
    debs = os.path.join(root, ".debs")
    shipped = {}   # soname -> package
    shlibs = {}    # package -> {(name, version): deps}
    for pkg in sorted(os.listdir(debs)):
        with open(os.path.join(debs, pkg, "files")) as f:
            for line in f:
                base = os.path.basename(line.strip())
                if ".so" in base and "/lib/" in line:
                    shipped.setdefault(base, pkg)
        entries = {}
        path = os.path.join(debs, pkg, "DEBIAN", "shlibs")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    parts = line.split(None, 2)
                    if len(parts) == 3 and not parts[0].endswith(":"):
                        entries[(parts[0], parts[1])] = parts[2].strip()
        shlibs[pkg] = entries
    deps, errors = [], []
    for elf in elves:
        for so in needed(elf):
            pkg = shipped.get(so)
            if pkg is None:
                errors.append(f"{elf}: {so}: no package in {root} ships it")
                continue
            dep = shlibs[pkg].get(soname_key(so))
            if dep is None:
                errors.append(f"{elf}: {so}: {pkg} has no shlibs entry for it")
            elif dep not in deps:
                deps.append(dep)
    if errors:
        sys.exit("shlibdeps: " + "\n".join(errors))
    print(", ".join(sorted(deps)))


if __name__ == "__main__":
    main(sys.argv)
