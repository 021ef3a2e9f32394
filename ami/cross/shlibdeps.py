#!/usr/bin/env python3
"""The Depends of cross-built binaries, from a sysroot made by make-sysroot.sh.

dpkg-shlibdeps asks the host's dpkg database which package ships each library, and the arm64
libraries are not installed there. This does the same lookup in the sysroot's records: for each
DT_NEEDED soname of the given ELF files, the package that ships it (SYSROOT/.debs/PKG/files), and
as dpkg-shlibdeps does, that package's symbols file (DEBIAN/symbols: the smallest version that
has every symbol the programs import from it) or, without one, its shlibs entry (DEBIAN/shlibs).

    shlibdeps.py SYSROOT ELF... > depends.txt      # one line: "libc6 (>= 2.34), ..."

Exits 1, naming it, if a soname is not shipped by any package or the package says nothing of it.
"""
import functools
import os
import re
import subprocess
import sys

ARCH = "arm64"


def readelf(args, path):
    run = subprocess.run(["readelf", *args, "-W", path], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"shlibdeps: {path}: readelf failed: {run.stderr.strip()}")
    return run.stdout


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf(["-d"], path))


def imports(path):
    """Undefined dynamic symbols as symbols files name them: name@VERSION, or name@Base."""
    out = set()
    for line in readelf(["--dyn-syms"], path).splitlines():
        f = line.split()
        if len(f) >= 8 and f[6] == "UND":
            name = f[7]
            out.add(name if "@" in name else name + "@Base")
    return out


def soname_key(soname):
    """libfoo.so.1 -> (libfoo, 1); libfoo-1.2.so -> (libfoo-1.2, '') as in deb-shlibs(5)."""
    m = re.match(r"^(.*)\.so\.(.+)$", soname)
    if m:
        return m.group(1), m.group(2)
    m = re.match(r"^(.*)-([0-9.]+)\.so$", soname)
    if m:
        return m.group(1), m.group(2)
    return soname, ""


def arch_ok(tags):
    """A symbols-file tag list such as 'arch=amd64 i386' or 'arch=!armel optional'."""
    for tag in tags.split("|"):
        if tag.startswith("arch="):
            arches = tag[5:].split()
            if any(a.startswith("!") for a in arches):
                return "!" + ARCH not in arches
            return ARCH in arches or "any" in arches
    return True


@functools.lru_cache(maxsize=None)
def parse_symbols(path):
    """{soname: [dependency template, {symbol@version: minimal version}]} (deb-symbols(5)).
    Read once per file: libc6's serves libc.so.6, libm.so.6, ..."""
    libs, cur = {}, None
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            if line[0] not in " \t*|":
                soname, template = line.split(None, 1)
                cur = libs[soname] = [template.strip(), {}]
            elif line[0] in " \t" and cur is not None:
                body = line.strip()
                if body.startswith("("):
                    end = body.find(")")
                    tags, body = body[1:end], body[end + 1:]
                    if "c++" in tags or "regex" in tags or not arch_ok(tags):
                        continue  # demangled or pattern names: not matched here
                parts = body.split()
                if len(parts) >= 2:
                    cur[1][parts[0]] = parts[1]
    return libs


@functools.lru_cache(maxsize=None)
def version_lt(a, b):
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


def newest(versions):
    best = "0"
    for v in versions:
        if v != "0" and version_lt(best, v):
            best = v
    return best


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    root, elves = argv[1], argv[2:]
    debs = os.path.join(root, ".debs")
    shipped = {}   # soname -> package
    for pkg in sorted(os.listdir(debs)):
        with open(os.path.join(debs, pkg, "files")) as f:
            for line in f:
                base = os.path.basename(line.strip())
                if ".so" in base and "/lib/" in line:
                    shipped.setdefault(base, pkg)
    used = set()   # imported symbols of all programs
    order = []     # (first program that needs it, soname)
    errors = []
    for elf in elves:
        used |= imports(elf)
        for so in needed(elf):
            if all(so != s for _, s in order):
                order.append((elf, so))
    deps = []
    for elf, so in order:
        pkg = shipped.get(so)
        if pkg is None:
            errors.append(f"{elf}: {so}: no package in {root} ships it")
            continue
        control = os.path.join(debs, pkg, "DEBIAN")
        dep = None
        if os.path.exists(os.path.join(control, "symbols")):
            entry = parse_symbols(os.path.join(control, "symbols")).get(so)
            if entry:
                template, table = entry
                v = newest(table[s] for s in used if s in table)
                dep = template.replace("#MINVER#", f"(>= {v})" if v != "0" else "").strip()
        if dep is None and os.path.exists(os.path.join(control, "shlibs")):
            with open(os.path.join(control, "shlibs")) as f:
                for line in f:
                    parts = line.split(None, 2)
                    if len(parts) == 3 and not parts[0].endswith(":") and \
                            (parts[0], parts[1]) == soname_key(so):
                        dep = parts[2].strip()
        if dep is None:
            errors.append(f"{elf}: {so}: {pkg} has neither a symbols nor a shlibs entry for it")
        elif dep not in deps:
            deps.append(dep)
    if errors:
        sys.exit("shlibdeps: " + "\n".join(errors))
    # One entry per package, with the largest minimal version (libc6 from libc.so.6 and libm.so.6).
    merged = {}
    for dep in deps:
        m = re.match(r"^([a-z0-9.+-]+)(?: \(>= ([^)]+)\))?$", dep)
        if not m:
            merged[dep] = None  # a form this does not merge: kept as it is
            continue
        name, v = m.group(1), m.group(2) or "0"
        merged[name] = newest([merged.get(name) or "0", v])
    print(", ".join(sorted(n if v in (None, "0") else f"{n} (>= {v})" for n, v in merged.items())))


if __name__ == "__main__":
    main(sys.argv)
