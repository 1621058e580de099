#!/usr/bin/env python3
# needs: scipy
"""Throughput against run length: where does a run reach its steady state?

    scripts/runlength.py --out DIR [--reps 5] [--rounds 1,2,5,10,20,50,100,200]
                         [--min-rounds R --min-time T] [--cases http64,...]
    scripts/runlength.py --table DIR      (the table again, from DIR's runs)

Runs each case (http and sleep at 64 and 512 workers, primes at 2, on
threads) at several run lengths, counted in rounds of the pool (tasks =
rounds x workers), with and without the in-run warm-up round, each length
in a results folder of its own (DIR/<case>-<variant>-r<rounds>/runs.csv).
The repetitions are interleaved: rep 1 of every (case, variant, length) in
a shuffled order, then rep 2, ..., so that a slow phase of the machine does
not land on one length. Then writes DIR/RUNLENGTH.md: per case and length
the median throughput, its min..max and coefficient of variation, the share
of the ideal rate (tasks / (ceil(tasks / workers) x latency)), the change
against the longest runs with a Mann-Whitney U test, and whether the rule
(--min-rounds, --min-time: sweep's defaults unless given) is met. The
machine's state (poolbench noise) is recorded before and after in
DIR/noise.jsonl, and every run carries its own in runs.csv.
"""

import argparse
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbresults as pb  # noqa: E402

pb.require(["scipy"], "runlength.py (its rank test)")

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = {
    "http64": ("http", 64, ["latency_ms=5", "bytes=4096"]),
    "http512": ("http", 512, ["latency_ms=20", "bytes=4096"]),
    "sleep64": ("sleep", 64, ["latency_ms=5"]),
    "sleep512": ("sleep", 512, ["latency_ms=20"]),
    "primes2": ("primes", 2, ["span=2000000"]),
}
VARIANTS = {"warm": 1, "cold": 0}  # --warmup-rounds


def folder(out, case, variant, rounds):
    return os.path.join(out, "%s-%s-r%d" % (case, variant, rounds))


def run_one(pbin, out, case, variant, rounds, rep):
    wl, workers, params = CASES[case]
    cmd = [pbin, "sweep", "--out", folder(out, case, variant, rounds), "-W", wl, "-e", "threads",
           "-w", str(workers), "-n", str(rounds * workers), "--min-rounds", "0", "--min-time", "0",
           "--warmup", "0", "--warmup-rounds", str(VARIANTS[variant]), "--reps", "1",
           "--no-baseline", "-q"]
    for p in params:
        cmd += ["-p", p]
    rc = subprocess.run(cmd).returncode
    if rc:
        pb.warn("runlength: %s %s r%d rep %d: sweep exited %d" % (case, variant, rounds, rep, rc))


def noise(pbin, out, label):
    res = subprocess.run([pbin, "noise", "--json", "--label", label], capture_output=True, text=True)
    with open(os.path.join(out, "noise.jsonl"), "a") as f:
        f.write(res.stdout)


def measure(args, cases, variants, rounds):
    os.makedirs(args.out, exist_ok=True)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 31)
    rng = random.Random(seed)
    with open(os.path.join(args.out, "runlength.json"), "w") as f:
        json.dump({"seed": seed, "cases": cases, "variants": variants, "rounds": rounds,
                   "reps": args.reps}, f)
    noise(args.poolbench, args.out, "before")
    jobs = [(c, v, r) for c in cases for v in variants for r in rounds]
    for rep in range(1, args.reps + 1):
        rng.shuffle(jobs)
        for i, (c, v, r) in enumerate(jobs):
            print("\r\033[Krep %d/%d, %d/%d: %s %s %d rounds" % (rep, args.reps, i + 1, len(jobs), c, v, r),
                  end="", file=sys.stderr, flush=True)
            run_one(args.poolbench, args.out, c, v, r, rep)
    print("", file=sys.stderr)
    noise(args.poolbench, args.out, "after")


def row_for(rows, longest, rule):
    tp = [r["throughput"] for r in rows if r.get("throughput") is not None]
    a = pb.Agg(tp)
    shares = [r["throughput"] / pb.ideal_rate(r) for r in rows if pb.ideal_rate(r) and r.get("throughput")]
    walls = pb.Agg([r.get("wall_s") for r in rows])
    cap = pb.Agg([r.get("capacity_cpus") for r in rows])
    r0 = rows[0]
    met = (r0["rounds"] >= rule[0] and walls.median >= rule[1]) if walls else False
    c = pb.Comparison(tp, [x["throughput"] for x in longest]) if longest is not rows else None
    moved = "\u2013 (reference)" if c is None else (
        "%+.1f%%, %s%s" % (c.change_pct, pb.fmt_p(c.p), ": **moves**" if c.significant else ""))
    return ["%d" % r0["rounds"], "%d" % r0["tasks"], pb.fmt(walls.median), "%s (%s..%s)" % (
        pb.fmt(a.median), pb.fmt(a.lo), pb.fmt(a.hi)), "%.1f%%" % (pb.cv_pct(tp) or 0),
        "%.0f%%" % (100 * pb.Agg(shares).median) if shares else "\u2013", moved,
        "yes" if met else "no", "%s..%s" % (pb.fmt(cap.lo), pb.fmt(cap.hi)) if cap else "\u2013", str(a.n)]


def table(args):
    meta = pb.read_json(os.path.join(args.out, "runlength.json")) or {}
    rule = (args.min_rounds, args.min_time)
    lines = ["# Throughput against run length", "",
             "Written by `scripts/runlength.py` from the runs.csv files below this folder (seed %s: "
             "repetitions interleaved over every case, variant and length in a shuffled order). Rule: >= %d "
             "rounds and >= %s s measured. *change vs longest*: the median's change against the longest "
             "runs' and a two-sided Mann-Whitney U test; **moves** when p < %g and the change exceeds the "
             "run-to-run spread (1.4826 x the median absolute deviation / the median, the larger of the "
             "two). *capacity*: CPUs a parallel "
             "spin got just before each run." % (meta.get("seed", "?"), rule[0], pb.fmt(rule[1]), pb.ALPHA), ""]
    for n in pb.read_jsonl(os.path.join(args.out, "noise.jsonl")):
        lines.append("- machine %s: %s of %s CPUs to a parallel spin, load %s, %s runnable, other processes "
                     "%s CPU s over %s s (poolbench noise)" % (
                         n.get("label"), n.get("capacity_cpus"), n.get("online_cpus"), n.get("loadavg_1m"),
                         n.get("procs_running"), n.get("others_cpu_s"), n.get("window_s")))
    lines.append("")
    for case in meta.get("cases", []):
        for variant in meta.get("variants", []):
            found = [(r, pb.read_csv(os.path.join(folder(args.out, case, variant, r), "runs.csv")))
                     for r in meta.get("rounds", [])]
            found = [(r, rows) for r, rows in found if rows]
            if not found:
                continue
            wl, workers, params = CASES[case]
            lines += ["## %s, threads, %d workers, %s; %s" % (wl, workers, ", ".join(params),
                      "warm-up round before the clock" if VARIANTS[variant] else "no warm-up round"), "",
                      "| rounds | tasks | wall (s) | throughput, median (min..max) | CV | share of ideal "
                      "| change vs longest | rule met | capacity | runs |",
                      "|--:|--:|--:|--:|--:|--:|---|---|--:|--:|"]
            longest = found[-1][1]
            for r, rows in found:
                lines.append("| " + " | ".join(row_for(rows, longest, rule)) + " |")
            lines.append("")
    path = os.path.join(args.out, "RUNLENGTH.md")
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    print(path)


def main():
    ap = argparse.ArgumentParser(description="Throughput against run length (steady state).")
    ap.add_argument("--out", required=True, metavar="DIR")
    ap.add_argument("--table", action="store_true", help="only write RUNLENGTH.md from DIR's runs")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", default="1,2,5,10,20,50,100,200")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--variants", default="warm,cold")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--min-rounds", type=int, default=10, help="the rule to mark (default: sweep's)")
    ap.add_argument("--min-time", type=float, default=0.5, help="the rule to mark (default: sweep's)")
    ap.add_argument("--poolbench", default=os.path.join(HERE, "..", "build", "poolbench"))
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    variants = [v for v in args.variants.split(",") if v]
    bad = [c for c in cases if c not in CASES] + [v for v in variants if v not in VARIANTS]
    if bad or args.reps < 1:
        print("poolbench: runlength.py: unknown case or variant %s (cases: %s; variants: warm, cold), or "
              "--reps < 1" % (", ".join(bad), ", ".join(CASES)), file=sys.stderr)
        return 2
    try:
        rounds = sorted({int(x) for x in args.rounds.split(",") if x})
    except ValueError:
        rounds = []
    if not rounds or rounds[0] < 1:
        print("poolbench: runlength.py: --rounds takes positive integers, got '%s'" % args.rounds,
              file=sys.stderr)
        return 2
    if not args.table:
        measure(args, cases, variants, rounds)
    table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
