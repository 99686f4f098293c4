#!/usr/bin/env python3
"""Runs cargo-fuzz targets one at a time until their coverage plateaus, and prints the table
fuzz/README.md keeps. A target stops when libFuzzer's `cov:` has not grown for `--plateau`
seconds (after `--min` seconds), at `--max` seconds, or when the whole run has used `--budget`.

Usage (from the repo root; see fuzz/README.md for why RUSTC_BOOTSTRAP):
  RUSTC_BOOTSTRAP=1 nice -n 19 python3 fuzz/plateau.py [--min 120] [--plateau 180] [--max 600]
      [--budget 3600] [TARGET ...]"""

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
TARGETS = ["config", "template", "path", "matcher", "jwt", "jwks", "gjson", "headers", "whoami",
           "der", "proto"]
STATUS = re.compile(rb"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+)")


def run(target, args, budget_left):
    limit = min(args.max, budget_left)
    cmd = ["cargo", "fuzz", "run", target, "--", f"-max_total_time={int(limit) + 5}",
           "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"]
    if (FUZZ / "dicts" / f"{target}.dict").exists():
        cmd.append(f"-dict=dicts/{target}.dict")
    log = open(FUZZ / "artifacts" / f"{target}.log", "wb")
    proc = subprocess.Popen(cmd, cwd=FUZZ, stdout=log, stderr=subprocess.PIPE, start_new_session=True)
    start = last_growth = time.monotonic()
    execs = cov = ft = 0
    crashed = False
    for line in proc.stderr:
        log.write(line)
        now = time.monotonic()
        if m := STATUS.match(line):
            n, c, f = (int(x) for x in m.groups())
            if c > cov:
                last_growth = now
            execs, cov, ft = n, c, f
        if b"panicked" in line or b"ERROR: libFuzzer" in line or b"ERROR: AddressSanitizer" in line:
            crashed = True
        plateaued = now - start >= args.min and now - last_growth >= args.plateau
        if (plateaued or now - start >= limit) and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    proc.wait()
    log.close()
    end = time.monotonic()
    return {"target": target, "seconds": round(end - start), "execs": execs, "cov": cov, "ft": ft,
            "flat": round(end - last_growth), "plateaued": end - last_growth >= args.plateau,
            "crashed": crashed}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--min", type=float, default=120)
    p.add_argument("--plateau", type=float, default=180)
    p.add_argument("--max", type=float, default=600)
    p.add_argument("--budget", type=float, default=3600)
    p.add_argument("targets", nargs="*", default=TARGETS)
    args = p.parse_args()
    (FUZZ / "artifacts").mkdir(exist_ok=True)
    rows, started = [], time.monotonic()
    for target in args.targets:
        left = args.budget - (time.monotonic() - started)
        if left < 30:
            print(f"{target}: skipped, the time budget is used up", file=sys.stderr)
            continue
        rows.append(run(target, args, left))
        r = rows[-1]
        print(f"{target}: {r['seconds']} s, {r['execs']} execs, cov {r['cov']}, ft {r['ft']}, "
              f"no new cov for the last {r['flat']} s"
              + (" CRASHED (see fuzz/artifacts)" if r["crashed"] else ""), file=sys.stderr, flush=True)
    print("| target | time (s) | execs | cov | ft | cov flat for (s) | plateau? | crashes |\n"
          "|---|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r['target']} | {r['seconds']} | {r['execs']} | {r['cov']} | {r['ft']} | {r['flat']} | "
              f"{'yes' if r['plateaued'] else 'no'} | {'yes' if r['crashed'] else 'none'} |")
    return 1 if any(r["crashed"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
