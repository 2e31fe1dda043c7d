#!/usr/bin/env python3
"""tcpflow-lite vs Debian's tcpflow 1.6.1 on the suricata-verify corpus: file names and bytes.

Each capture is classed as
  identical      both write the same files with the same bytes;
  tcpflow bug    they differ, and the difference is gone once the capture is rewritten around
                 tcpflow's documented bugs (normalize.py says which fix-ups it made);
  unexplained    anything else: listed file by file.

usage: corpus.py LITE CORPUS_DIR WORK_DIR [--all]
By default a deterministic sample (every 20th capture in name order); --all runs them all.
Exit status 1 when something is unexplained.
"""
import filecmp
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120).returncode
    except subprocess.TimeoutExpired:
        return -1


def outputs(directory):
    return sorted(n for n in os.listdir(directory) if n != "report.xml")


def tcpflow(capture, directory, parts=()):
    """tcpflow's output for `capture` and then each of `parts` (normalize.py's captures of
    one VLAN each), into one directory."""
    os.makedirs(directory)
    for one in (capture, *parts):
        run(["tcpflow", "-r", one, "-o", "."], cwd=directory)
    return directory


def differences(ours, theirs):
    """Every difference between the two output directories, one line each."""
    found = []
    a, b = set(outputs(ours)), set(outputs(theirs))
    for name in sorted(b - a):
        found.append(f"{name} only in tcpflow's output ({os.path.getsize(os.path.join(theirs, name))} bytes)")
    for name in sorted(a - b):
        found.append(f"{name} only in tcpflow-lite's output ({os.path.getsize(os.path.join(ours, name))} bytes)")
    for name in sorted(a & b):
        x, y = os.path.join(ours, name), os.path.join(theirs, name)
        if not filecmp.cmp(x, y, shallow=False):
            bx, by = open(x, "rb").read(), open(y, "rb").read()
            at = next((i for i, (p, q) in enumerate(zip(bx, by)) if p != q), min(len(bx), len(by)))
            found.append(f"{name} differs: sizes {len(bx)} (lite) and {len(by)} (tcpflow), first difference at byte {at}")
    return found


def main():
    lite, corpus, work = (os.path.abspath(a) for a in sys.argv[1:4])
    everything = "--all" in sys.argv[4:]
    captures = sorted(f for f in os.listdir(corpus) if f.endswith((".pcap", ".pcapng", ".cap")))
    if not everything:
        captures = captures[::20]
    counts = {"identical": 0, "tcpflow bug": 0, "unexplained": 0}
    fixes_seen = {}
    unexplained = []
    for i, name in enumerate(captures):
        capture = os.path.join(corpus, name)
        base = os.path.join(work, f"c{i}")
        shutil.rmtree(base, ignore_errors=True)
        ours = os.path.join(base, "lite")
        os.makedirs(ours)
        code = run([lite, "-r", capture, "-o", ours, "--overlap", "last"])
        raw = tcpflow(capture, os.path.join(base, "raw"))
        if not differences(ours, raw):
            counts["identical"] += 1
        else:
            normalized = os.path.join(base, "normalized.pcap")
            made = subprocess.run([sys.executable, os.path.join(HERE, "normalize.py"), capture, normalized],
                                  stdout=subprocess.PIPE, text=True).stdout.split("\n")
            fixes = [line.split()[0] for line in made if line.strip() and not line.startswith("part ")]
            parts = [line[5:] for line in made if line.startswith("part ")]
            left = differences(ours, tcpflow(normalized, os.path.join(base, "normalized"), parts))
            if not left and fixes:
                counts["tcpflow bug"] += 1
                for fix in fixes:
                    fixes_seen[fix] = fixes_seen.get(fix, 0) + 1
            else:
                counts["unexplained"] += 1
                unexplained.append((name, code, left or differences(ours, raw)))
        shutil.rmtree(base, ignore_errors=True)
        if (i + 1) % 100 == 0:
            print(f"  ... {i + 1} of {len(captures)}", file=sys.stderr)
    for name, code, lines in unexplained:
        print(f"  {name}: UNEXPLAINED{'' if code == 0 else f' (tcpflow-lite exit {code})'}")
        for line in lines[:10]:
            print(f"    {line}")
        if len(lines) > 10:
            print(f"    ... {len(lines) - 10} more")
    bugs = ", ".join(f"{fix} in {n}" for fix, n in sorted(fixes_seen.items()))
    print(f"corpus ({'all' if everything else 'sample of'} {len(captures)} captures): {counts['identical']} identical, "
          f"{counts['tcpflow bug']} differ only by a documented tcpflow bug ({bugs or 'none'}), {counts['unexplained']} unexplained")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
