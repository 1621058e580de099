#!/usr/bin/env python3
# needs: scipy
"""poolbench results compared: against a saved baseline, or machines side by side.

    scripts/compare.py --baseline BASE_DIR NEW_DIR [--threshold PCT] [--out DIR]
                       [--across-machines] [--ignore-param KEY]
    scripts/compare.py DIR_A DIR_B [...] [--out DIR]

With --baseline (what a CI job runs after `make bench`): for every
configuration (workload, parameters, executor, workers, pin) in both
folders, the change of the median throughput in %, the p-value of a
two-sided Mann-Whitney U test between the two folders' runs, and a verdict:
"regression" when throughput fell by more than the threshold (default 5%)
with p < 0.05 and a change beyond the run-to-run spread, "improvement" the
other way, otherwise "no significant difference (p = ...)" or "within the
threshold". Writes COMPARE.md (in NEW_DIR unless --out) and prints its
path. Exit status: 0 no regression, 1 a regression, 2 bad usage or folders
from different machines or builds (host, CPU model, CPU count, compiler,
flags, build kind; machine.json, else runs.csv), which only
--across-machines compares. --ignore-param KEY matches configurations whose
parameters differ only in KEY (a workload whose default changed).

Without --baseline, several machines side by side: for every workload (and
parameter set) one markdown table (executor x workers, one column per
machine: median throughput and speedup) and one speedup chart with the
machines as lines (colour = machine, line style and marker = executor,
each machine's ideal min(workers, its CPUs) dotted in its colour). Writes
OUT/COMPARE.md and OUT/compare_speedup_<workload>.png/.svg; prints the
markdown file's path. Speedups are always against the same machine's own
sequential baseline.
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbresults as pb  # noqa: E402
MACHINE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
EXEC_LINE = {"threads": ("-", "o"), "procs": ("--", "^"), "seq": (":", "s")}


def labels_for(folders):
    """Unique machine labels: the host, plus the folder name when two share it."""
    hosts = [f.host() for f in folders]
    out = []
    for f, h in zip(folders, hosts):
        if hosts.count(h) > 1:
            h = "%s (%s)" % (h, os.path.basename(os.path.abspath(f.path)))
        out.append(h)
    return out


def plotter(outdir, machines_line):
    """A plot.Plotter writing into outdir (matplotlib imported only here:
    the --baseline mode does without it)."""
    import plot  # noqa: E402  (sets the Agg backend)

    class ComparePlotter(plot.Plotter):
        def __init__(self):
            self.out = outdir
            self.machine = machines_line
            self.charts = []
            self.skipped = []
            self.several_pins = False
    return ComparePlotter()


def parse_args():
    ap = argparse.ArgumentParser(description="Compare poolbench results folders: NEW against a saved "
                                 "baseline (--baseline, exit 1 on a regression), or several machines side "
                                 "by side.")
    ap.add_argument("results", nargs="+", metavar="DIR", help="results folders (with runs.csv)")
    ap.add_argument("--out", metavar="DIR", help="output folder (default: with --baseline the NEW folder, "
                    "else results/compare-<UTC time> if ./results exists, else compare-<UTC time>)")
    ap.add_argument("--baseline", metavar="DIR", help="the saved baseline folder: compare the one DIR "
                    "against it")
    ap.add_argument("--threshold", metavar="PCT", default="5",
                    help="with --baseline: a change beyond this %% counts (default 5)")
    ap.add_argument("--across-machines", action="store_true",
                    help="with --baseline: compare even folders from different machines or builds")
    ap.add_argument("--ignore-param", metavar="KEY", action="append", default=[],
                    help="with --baseline: match configurations whose parameters differ only in KEY")
    return ap.parse_args()


def usage_error(msg):
    print("poolbench: compare.py: " + msg, file=sys.stderr)
    return 2


def main():
    args = parse_args()
    for d in args.results + ([args.baseline] if args.baseline else []):
        if not os.path.isfile(os.path.join(d, "runs.csv")):
            return usage_error("%s is not a results folder (no runs.csv)" % d)
    if args.baseline:
        import regress  # noqa: E402
        return regress.main(args, usage_error)
    if args.across_machines or args.ignore_param or args.threshold != "5":
        return usage_error("--threshold, --across-machines and --ignore-param need --baseline")
    pb.require(["matplotlib"], "compare.py (its charts)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or os.path.join("results" if os.path.isdir("results") else ".", "compare-" + stamp)
    os.makedirs(out, exist_ok=True)

    folders = [pb.Folder(d) for d in args.results]
    names = labels_for(folders)
    lines = ["# poolbench: %d machines compared" % len(folders), "",
             "Each cell: median over that folder's runs.csv rows of one configuration (the number of "
             "runs in brackets where it differs from the usual count). Speedup is against the same machine's own `seq` "
             "baseline, so it compares scaling, not raw speed; throughput compares raw speed.", "",
             "| machine | CPU | cores / PUs | kernel | VM | governor | git revision | folder |",
             "|---|---|--:|---|---|---|---|---|"]
    for f, name in zip(folders, names):
        m = f.machine
        lines.append("| %s | %s | %s / %s | %s | %s | %s | %s | `%s` |" % (
            name, pb.clean_text(m.get("cpu_model", "unknown")), m.get("cores", f.online_cpus() or "unknown"),
            m.get("pus", "unknown"), m.get("kernel", "unknown"),
            {True: "yes", False: "no"}.get(m.get("is_vm"), "unknown"), m.get("governor", "unknown"),
            m.get("git_revision", "unknown"), f.path))
    lines.append("")

    # every (workload, params) case, in first-seen order across folders
    cases = []
    for f in folders:
        for c in f.cases():
            if (c[0], c[2]) not in [(x[0], x[2]) for x in cases]:
                cases.append(c)
    by_workload = {}
    for wl, kind, params in cases:
        by_workload.setdefault(wl, (kind, []))[1].append(params)

    p = plotter(out, "machines: " + "; ".join(
        "%s (%s)" % (n, pb.clean_text(f.machine.get("cpu_model", "unknown CPU"))) for f, n in zip(folders, names)))
    for wl, (kind, plist) in by_workload.items():
        lines += ["## %s (%s-bound)" % (wl, kind), ""]
        varied = pb.varied_keys(plist)
        panels = []
        for params in plist:
            keys = []
            for f in folders:
                for k in f.configs_of(wl, params):
                    if (k[2], k[3], k[4]) not in keys:
                        keys.append((k[2], k[3], k[4]))
            keys.sort(key=lambda k: pb.config_sort_key(("", "", k[0], k[1], k[2])))
            several_pins = len({k[2] for k in keys}) > 1
            if len(plist) > 1:
                lines += ["### %s: %s" % (wl, pb.short_params(params, varied)), ""]
            lines += ["Parameters: `%s`." % params, "",
                      "| executor | workers | " + " | ".join("%s: tasks/s (speedup)" % n for n in names) + " |",
                      "|---|---|" + "--:|" * len(names)]
            counts = [len(f.configs.get((wl, params) + k, [])) for f in folders for k in keys]
            counts = [c for c in counts if c]
            usual = max(set(counts), key=counts.count) if counts else 0
            for ex, workers, pin in keys:
                cells = []
                best = []
                for f in folders:
                    rows = f.configs.get((wl, params, ex, workers, pin), [])
                    tp, sp = pb.agg(rows, "throughput"), pb.agg(rows, "speedup")
                    best.append(tp.median if tp else None)
                    cells.append("%s (%s)%s" % (pb.fmt(tp.median), pb.fmt(sp.median), " [%d runs]" % tp.n
                                                if tp.n != usual else "") if tp else "\u2013")
                have = [b for b in best if b is not None]
                top = max(have) if len(have) > 1 else None
                cells = ["**%s**" % c if b is not None and b == top else c for c, b in zip(cells, best)]
                lines.append("| %s | %d | %s |" % (ex + (" pin=" + pin if several_pins else ""), workers,
                                                   " | ".join(cells)))
            lines += ["", "Bold: the fastest machine for that configuration (when several have it). "
                      "Runs per configuration: %d unless marked." % usual, ""]
            if any(k[0] != "seq" for k in keys):
                panels.append((params, keys))
        if not panels:
            p.skip("compare", wl, "only seq rows: no speedup to compare")
            continue
        fig, axes = p.panels(len(panels))
        nmax = 0
        for ax, (params, keys) in zip(axes, panels):
            ws_all = []
            n_series = len(folders) * len({k[0] for k in keys if k[0] != "seq"})
            i = 0
            for mi, (f, name) in enumerate(zip(folders, names)):
                color = MACHINE_COLORS[mi % len(MACHINE_COLORS)]
                for ex in [e for e in pb.EXECUTOR_ORDER if e != "seq"] + sorted(
                        {k[0] for k in keys} - set(pb.EXECUTOR_ORDER)):
                    xs, ys, lo, hi = [], [], [], []
                    for k in f.configs_of(wl, params):
                        if k[2] != ex or k[4] != "none" and any(kk[2] == "none" for kk in keys):
                            continue
                        a = pb.agg(f.configs[k], "speedup")
                        if not a:
                            continue
                        nudge = 2 ** ((i - (n_series - 1) / 2) * 0.04)
                        xs.append(k[3] * nudge)
                        ys.append(a.median)
                        lo.append(a.median - a.lo)
                        hi.append(a.hi - a.median)
                        ws_all.append(k[3])
                        nmax = max(nmax, a.n)
                    if not xs:
                        continue
                    ls, mk = EXEC_LINE.get(ex, ("-.", "D"))
                    ax.errorbar(xs, ys, yerr=[lo, hi], color=color, linestyle=ls, marker=mk, capsize=3,
                                markersize=5, linewidth=1.5, alpha=0.9, label="%s: %s" % (name, ex))
                    i += 1
                cpus = f.online_cpus()
                ws = sorted({k[1] for k in keys})
                if cpus and ws:
                    grid = [2 ** (j / 20) for j in range(round(math.log2(ws[0]) * 20),
                                                         round(math.log2(ws[-1]) * 20) + 1)]
                    ax.plot(grid, [min(w, cpus) for w in grid], color=color, linestyle=":", linewidth=1,
                            alpha=0.7, label="%s: ideal min(workers, %d CPUs)" % (name, cpus))
            if ws_all:
                p.workers_axis(ax, ws_all)
            ax.set_ylabel("speedup (own seq wall time / wall time)")
            ax.set_ylim(bottom=0)
            ax.set_title(pb.short_params(params, varied) if len(plist) > 1 else
                         (pb.short_params(params) or "default parameters"))
        title = "Speedup against workers on %d machines: %s" % (len(folders), wl)
        foot = ("Colour: machine; line style and marker: executor. Point: median of up to %d runs "
                "(runs.csv speedup, against that machine's own seq baseline); bar: min..max." % nmax)
        h, lb = p.legend_of(axes)
        p.finish(fig, title, foot, h, lb)
        name = "compare_speedup_%s" % pb.slug(wl)
        p.save(fig, "compare", name, wl, title, "")
        lines += ["![%s](%s.png)" % (title, name), ""]
    for s in p.skipped:
        lines += ["- no chart for %s: %s" % (s["workload"], s["reason"])]
    path = os.path.join(out, "COMPARE.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines).rstrip() + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
