#!/usr/bin/env python3
"""Charts of the process pool's two transports (pipes, shared memory)
against this machine's limits: DIR/charts/transport_*.png and *.svg, and
DIR/TRANSPORT.md with the figures.

    scripts/py.sh scripts/plot_transport.py RESULTS_DIR

Reads DIR/transport.jsonl (`poolbench transport --json`: round trip of one
task in flight per payload size, seq / threads / procs over pipes / procs
over shared memory), DIR/calibrate.json (memcpy_bw_*, pipe_bw_*), and
DIR/transport/runs.csv (the transport sweep of make bench: sha256 and noop
on procs over each transport, beside seq and threads).  Draws:

  transport_bandwidth     GB/s both ways (2 x payload / round trip) against
                          payload size, one line per strategy, with the
                          calibrated memcpy bandwidth (dashed) and the
                          pipe's (markers at their sizes)
  transport_speedup_<wl>  speedup against workers, procs over pipes and over
                          shared memory beside threads, with the ideal line

A chart without data is skipped with a line on stderr.  Standard library
and matplotlib (Agg) only.
"""

import argparse
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbresults as pb  # noqa: E402

STYLE = {
    "seq": {"color": "#4d4d4d", "marker": "s", "linestyle": ":"},
    "threads": {"color": "#1f77b4", "marker": "o", "linestyle": "-"},
    "procs/pipe": {"color": "#d62728", "marker": "^", "linestyle": "--"},
    "procs/shm": {"color": "#2ca02c", "marker": "D", "linestyle": "-"},
}


def strategy(row):
    ex = row.get("executor", "")
    tr = row.get("transport") or ""
    return ex + ("/" + tr if ex == "procs" and tr else ("/pipe" if ex == "procs" else ""))


def size_label(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return "%g %s" % (n / scale, unit)
    return "%d B" % n


def save(fig, out_dir, name):
    os.makedirs(out_dir, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out_dir, "%s.%s" % (name, ext)), bbox_inches="tight")
    plt.close(fig)
    return name


def calibrated(cal):
    """name -> (bytes, GB/s) of the bandwidth measures."""
    out = {}
    for it in (cal or {}).get("measures", []):
        if it.get("bytes") and it.get("median"):
            out[it["name"]] = (it["bytes"], it["bytes"] / it["median"])
    return out


def plot_bandwidth(rows, cal, out_dir, title):
    if not rows:
        print("plot_transport: no transport.jsonl rows: bandwidth chart skipped", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    by = {}
    for r in rows:
        by.setdefault(strategy(r), []).append(r)
    for name, rs in sorted(by.items()):
        rs.sort(key=lambda r: r["payload_bytes"])
        xs = [r["payload_bytes"] for r in rs if r["payload_bytes"] > 0]
        # From the round trips, as the bars are: the JSON's GB/s is rounded
        # to 4 decimals, which put a 64-byte median outside its own bars.
        ys = [2 * r["payload_bytes"] / r["round_trip_median_ns"] for r in rs if r["payload_bytes"] > 0]
        lo = [2 * r["payload_bytes"] / r["round_trip_p95_ns"] for r in rs if r["payload_bytes"] > 0]
        hi = [2 * r["payload_bytes"] / r["round_trip_p5_ns"] for r in rs if r["payload_bytes"] > 0]
        st = STYLE.get(name, {"color": "#9467bd", "marker": "x", "linestyle": "-"})
        ax.errorbar(xs, ys, yerr=[[max(0.0, y - a) for y, a in zip(ys, lo)],
                                  [max(0.0, b - y) for y, b in zip(ys, hi)]],
                    label=name, capsize=2, **st)
    refs = calibrated(cal)
    for name, (nbytes, gbps) in sorted(refs.items()):
        if name.startswith("memcpy"):
            ax.axhline(gbps, color="#7f7f7f", linestyle="--", linewidth=0.8)
            ax.annotate("%s %.1f GB/s" % (name, gbps), (0.01, gbps), xycoords=("axes fraction", "data"),
                        fontsize=7, color="#555555", va="bottom")
        else:
            ax.plot([nbytes], [gbps], marker="*", markersize=11, color="#ff7f0e", linestyle="none")
            ax.annotate("%s %.1f" % (name, gbps), (nbytes, gbps), fontsize=7, color="#b35900",
                        xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: size_label(int(v)) if v >= 1 else ""))
    ax.set_yscale("log")
    ax.set_xlabel("payload bytes (in, and the same out)")
    ax.set_ylabel("GB/s both ways = 2 x payload / round trip")
    ax.set_title("One task in flight echoing its payload, %s" % title)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.01, -0.04, "Median of interleaved round trips (bars: p5..p95); dashed: calibrated memcpy "
             "between warm buffers; stars: calibrated pipe streaming (pipe_bw_*). poolbench transport --json.",
             fontsize=7, wrap=True)
    return save(fig, out_dir, "transport_bandwidth")


def plot_speedup(runs, workload, out_dir, title):
    rows = [r for r in runs if r.get("workload") == workload and r.get("speedup") not in (None, "")]
    if not rows:
        print("plot_transport: no %s rows with a speedup: chart skipped" % workload, file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    by = {}
    for r in rows:
        if r.get("executor") == "seq":
            continue
        by.setdefault(strategy(r), {}).setdefault(int(r["workers"]), []).append(float(r["speedup"]))
    maxw = 1
    for name, per in sorted(by.items()):
        ws = sorted(per)
        maxw = max(maxw, ws[-1])
        med = [statistics.median(per[w]) for w in ws]
        err = [[m - min(per[w]) for m, w in zip(med, ws)], [max(per[w]) - m for m, w in zip(med, ws)]]
        ax.errorbar(ws, med, yerr=err, label=name, capsize=2, **STYLE.get(name, {}))
    cpus = int(next((r.get("cores") for r in rows if r.get("cores")), maxw))
    ideal = [min(w, cpus) for w in range(1, maxw + 1)]
    ax.plot(range(1, maxw + 1), ideal, color="#7f7f7f", linestyle=":", label="ideal")
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup against seq (wall time)")
    ax.set_title("%s: the process pool over pipes and over shared memory, %s" % (workload, title))
    ax.legend(fontsize=8)
    return save(fig, out_dir, "transport_speedup_%s" % pb.slug(workload))


def write_markdown(path, rows, cal, charts):
    lines = ["# Transports: pipes against shared memory", ""]
    if rows:
        sizes = sorted({r["payload_bytes"] for r in rows})
        names = sorted({strategy(r) for r in rows})
        lines.append("Round trip of one task in flight echoing its payload (`poolbench transport`), "
                     "median of interleaved repetitions; GB/s both ways = 2 x payload / round trip.")
        lines.append("")
        lines.append("| payload | " + " | ".join(names) + " |")
        lines.append("|---|" + "---|" * len(names))
        for n in sizes:
            cells = []
            for name in names:
                r = next((x for x in rows if x["payload_bytes"] == n and strategy(x) == name), None)
                cells.append("%.1f us, %.2f GB/s" % (r["round_trip_median_ns"] / 1e3, r["gbps_both_ways_median"])
                             if r else "")
            lines.append("| %s | %s |" % (size_label(n), " | ".join(cells)))
        lines.append("")
    refs = calibrated(cal)
    if refs:
        lines.append("Calibrated: " + ", ".join("%s %.2f GB/s" % (k, v[1]) for k, v in sorted(refs.items())))
        lines.append("")
    for c in charts:
        if c:
            lines.append("![%s](charts/%s.png)" % (c, c))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="a results folder (make bench)")
    args = ap.parse_args()
    d = args.results
    rows = pb.read_jsonl(os.path.join(d, "transport.jsonl")) or []
    cal = pb.read_json(os.path.join(d, "calibrate.json"))
    runs = pb.read_csv(os.path.join(d, "transport", "runs.csv")) or []
    machine = pb.read_json(os.path.join(d, "machine.json")) or {}
    title = "%s (%s)" % (machine.get("host", "this machine"), machine.get("cpu_model", "unknown CPU"))
    out_dir = os.path.join(d, "charts")
    charts = [plot_bandwidth(rows, cal, out_dir, title)]
    for wl in sorted({r.get("workload") for r in runs if r.get("workload")}):
        charts.append(plot_speedup(runs, wl, out_dir, title))
    write_markdown(os.path.join(d, "TRANSPORT.md"), rows, cal, charts)
    print("plot_transport: %s" % os.path.join(d, "TRANSPORT.md"))


if __name__ == "__main__":
    main()
