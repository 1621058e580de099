#!/usr/bin/env python3
# needs: matplotlib
"""Charts of a poolbench results folder: DIR/charts/*.png and *.svg.

    scripts/py.sh scripts/plot.py RESULTS_DIR

Reads runs.csv (required), machine.json, calibrate.json and hyperfine.json
(optional) and draws, per workload: speedup and efficiency against workers
(CPU-bound), throughput against workers with Little's law (I/O-bound), the
per-task time breakdown, latency percentiles; once per folder: per-task
overhead against payload size (noop) and hyperfine's whole-process times.
Every point is the median of a configuration's runs, its bar the min..max
over those runs. A chart without data is not drawn; DIR/charts/charts.json
lists what was drawn (with a caption) and what was skipped and why, for
report.py. Only files listed in a previous charts.json are ever removed.
"""

import argparse
import json
import math
import os
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classic  # noqa: E402
import pbresults as pb  # noqa: E402
import queues  # noqa: E402

EXEC_STYLE = {
    "seq": {"color": "#4d4d4d", "marker": "s"},
    "threads": {"color": "#1f77b4", "marker": "o"},
    "procs": {"color": "#d62728", "marker": "^"},
    "py-seq": {"color": "#8c8c8c", "marker": "s"},
    "py-threads": {"color": "#17becf", "marker": "o"},
    "py-procs": {"color": "#ff7f0e", "marker": "^"},
}
PIN_LINESTYLE = {"none": "-", "compact": "--", "scatter": "-."}
WORKER_LINESTYLE = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
REF_COLOR = "#7f7f7f"

plt.rcParams.update({
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.fonttype": "none",
})


def exec_style(executor, pin="none", several_pins=False):
    st = dict(EXEC_STYLE.get(executor, {"color": "#2ca02c", "marker": "D"}))
    st["linestyle"] = PIN_LINESTYLE.get(pin, ":") if several_pins else "-"
    if executor.endswith("procs") and not several_pins:
        st["linestyle"] = "--"
    return st


class Plotter:
    def __init__(self, folder, outdir):
        self.f = folder
        self.out = outdir
        self.machine = folder.machine_line()
        self.charts = []
        self.skipped = []
        self.several_pins = len(folder.pins()) > 1

    # -- bookkeeping -------------------------------------------------------

    def skip(self, kind, workload, reason):
        self.skipped.append({"kind": kind, "workload": workload, "reason": reason})

    def save(self, fig, kind, name, workload, title, caption):
        png = name + ".png"
        svg = name + ".svg"
        fig.savefig(os.path.join(self.out, png))
        fig.savefig(os.path.join(self.out, svg))
        plt.close(fig)
        self.charts.append({"kind": kind, "workload": workload, "png": png, "svg": svg,
                            "title": title, "caption": caption})

    # -- figure scaffolding --------------------------------------------------

    @staticmethod
    def panels(n, width=5.0, height=3.6, ncols=None):
        if ncols is None:
            ncols = 1 if n == 1 else 2 if n in (2, 4) else 3
        ncols = min(ncols, n)
        nrows = math.ceil(n / ncols)
        fig, axs = plt.subplots(nrows, ncols, figsize=(width * ncols + 0.6, height * nrows + 1.6),
                                squeeze=False)
        axes = [a for row in axs for a in row]
        for a in axes[n:]:
            a.remove()
        return fig, axes[:n]

    def finish(self, fig, title, footnote, handles, labels):
        """Title (what + machine) on top; legend and footnote below the plots,
        so that neither ever hides data."""
        w, h = fig.get_size_inches()
        chars = int(w * 15)
        foot = "\n".join(textwrap.fill(p, chars) for p in footnote.split("\n")) if footnote else ""
        foot_lines = foot.count("\n") + 1 if foot else 0
        ncol = legend_columns(labels, w - 0.3)
        leg_rows = math.ceil(len(labels) / ncol) if labels else 0
        foot_in = 0.06 + foot_lines * 0.15
        bottom_in = foot_in + leg_rows * 0.24 + 0.08
        fig.suptitle(title + "\n" + textwrap.fill(self.machine, int(w * 13)), fontsize=10.5,
                     y=1 - 0.06 / h, va="top")
        if labels:
            fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8.5, frameon=False,
                       bbox_to_anchor=(0.5, foot_in / h), handlelength=3.2)
        if foot:
            fig.text(0.5, 0.04 / h, foot, ha="center", va="bottom", fontsize=7.5, color="#333333")
        fig.tight_layout(rect=(0, bottom_in / h, 1, 1))

    @staticmethod
    def legend_of(axes):
        """Unique legend entries of all panels: data series first, then plain
        lines (ideal, predictions, references, notes)."""
        data, refs = [], []
        seen = set()
        for ax in axes:
            for hd, lb in zip(*ax.get_legend_handles_labels()):
                if lb in seen or lb.startswith("_"):
                    continue
                seen.add(lb)
                (refs if isinstance(hd, Line2D) else data).append((hd, lb))
        both = data + refs
        return [h for h, _ in both], [lb for _, lb in both]

    @staticmethod
    def workers_axis(ax, workers):
        ws = sorted(set(workers))
        ax.set_xscale("log", base=2)
        ax.set_xticks(ws)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(ws[0] / 1.35, ws[-1] * 1.35)
        ax.set_xlabel("workers (pool size)")

    def panel_title(self, workload, params, plist):
        keys = pb.varied_keys(plist)
        if len(plist) > 1 and keys:
            return pb.short_params(params, keys)
        # About 11 characters per inch of a one-panel figure at this size.
        return textwrap.fill(pb.short_params(params) or "default parameters", 55)

    # -- per-configuration series -------------------------------------------

    def series(self, workload, params):
        """[(executor, pin, [(workers, rows)])] for one case."""
        out = {}
        for k in self.f.configs_of(workload, params):
            _, _, ex, workers, pin = k
            out.setdefault((ex, pin), []).append((workers, self.f.configs[k]))
        return [(ex, pin, pts) for (ex, pin), pts in out.items()]

    def plot_series(self, ax, series, value, scale=1.0):
        """One errorbar line per (executor, pin): median and min..max over the
        runs; x nudged a little per series so that bars do not hide each other.
        Returns the number of points drawn and the max runs per point."""
        drawn, nmax = 0, 0
        k = len(series)
        for i, (ex, pin, pts) in enumerate(series):
            xs, ys, lo, hi = [], [], [], []
            for workers, rows in pts:
                a = pb.agg(rows, None, value)
                if not a:
                    continue
                nudge = 2 ** ((i - (k - 1) / 2) * 0.045)
                xs.append(workers * nudge)
                ys.append(a.median * scale)
                lo.append((a.median - a.lo) * scale)
                hi.append((a.hi - a.median) * scale)
                nmax = max(nmax, a.n)
            if not xs:
                continue
            st = exec_style(ex, pin, self.several_pins)
            if len(xs) == 1:
                st["linestyle"] = "none"
            ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, markersize=6, linewidth=1.6,
                        elinewidth=1, alpha=0.9, label=pb.series_label(ex, pin, self.several_pins),
                        **st)
            drawn += len(xs)
        return drawn, nmax

    # -- charts ---------------------------------------------------------------

    def scaling(self, kind):
        """speedup or efficiency against workers, one figure per CPU-bound workload."""
        cpus = self.f.online_cpus()
        cpu_workloads = {wl: v for wl, v in self.f.workloads().items() if v[0] == "cpu"}
        if not cpu_workloads:
            self.skip(kind, "", "no CPU-bound workload in runs.csv")
            return
        for wl, (_, plist) in cpu_workloads.items():
            cases = []
            for params in plist:
                ser = [s for s in self.series(wl, params)]
                parallel = [s for s in ser if s[0] != "seq"]
                if parallel and any(r.get(kind) is not None for s in ser for _, rows in s[2] for r in rows):
                    cases.append((params, ser))
            if not cases:
                self.skip(kind, wl, "no %s values for a pool executor (only the seq baseline, "
                          "or no baseline to divide by)" % kind)
                continue
            fig, axes = self.panels(len(cases))
            nmax = 0
            for ax, (params, ser) in zip(axes, cases):
                ws = sorted({w for s in ser for w, _ in s[2]})
                _, n = self.plot_series(ax, ser, lambda r: r.get(kind))
                nmax = max(nmax, n)
                self.workers_axis(ax, ws)
                grid = [2 ** (i / 20) for i in range(round(math.log2(ws[0]) * 20),
                                                     round(math.log2(ws[-1]) * 20) + 1)]
                if kind == "speedup":
                    lim = cpus or max(ws)
                    ax.plot(grid, [min(w, lim) for w in grid], color=REF_COLOR, linestyle=":",
                            linewidth=1.4, label="ideal: min(workers, %s CPUs)" % lim if cpus
                            else "ideal: linear", zorder=1)
                    ax.set_ylabel("speedup (seq wall time / wall time)")
                    ax.set_ylim(bottom=0)
                else:
                    lim = cpus or max(ws)
                    ax.plot(grid, [min(w, lim) / w for w in grid], color=REF_COLOR, linestyle=":",
                            linewidth=1.4, label="ideal: min(workers, %s CPUs) / workers" % lim
                            if cpus else "ideal: 1", zorder=1)
                    ax.set_ylabel("efficiency (speedup / workers)")
                    ax.set_ylim(0, max(1.15, ax.get_ylim()[1]))
                ax.set_title(self.panel_title(wl, params, plist))
            what = "Speedup" if kind == "speedup" else "Efficiency"
            title = "%s against workers: %s (CPU-bound)" % (what, wl)
            foot = ("Point: median of %d runs per configuration (runs.csv %s column, baseline = median "
                    "seq wall time); bar: min..max over those runs. seq is the baseline (1 worker)."
                    % (nmax, kind))
            h, lb = self.legend_of(axes)
            self.finish(fig, title, foot, h, lb)
            caption = ("%s of each executor against pool size for %s, with the ideal (linear up to the "
                       "%s online CPUs, flat beyond); point = median of %d runs, bar = min..max."
                       % (what, wl, cpus if cpus else "?", nmax))
            self.save(fig, kind, "%s_%s" % (kind, pb.slug(wl)), wl, title, caption)

    def throughput(self):
        io = {wl: v for wl, v in self.f.workloads().items() if v[0] == "io"}
        if not io:
            self.skip("throughput", "", "no I/O-bound workload in runs.csv")
            return
        for wl, (_, plist) in io.items():
            cases = [(p, self.series(wl, p)) for p in plist]
            cases = [(p, s) for p, s in cases if any(r.get("throughput") is not None
                                                      for x in s for _, rows in x[2] for r in rows)]
            if not cases:
                self.skip("throughput", wl, "no throughput values")
                continue
            fig, axes = self.panels(len(cases))
            nmax, predicted = 0, []
            for ax, (params, ser) in zip(axes, cases):
                ws = sorted({w for s in ser for w, _ in s[2]})
                _, n = self.plot_series(ax, ser, lambda r: r.get("throughput"))
                nmax = max(nmax, n)
                lat = pb.param_number(params, "latency_ms")
                if lat and lat > 0:
                    ax.plot(ws, [w / (lat / 1000.0) for w in ws], color=REF_COLOR, linestyle=":",
                            marker="x", markersize=7, linewidth=1.4,
                            label="Little's law (long-run limit): workers / latency_ms", zorder=1)
                    self.round_ideal(ax, ser)
                    predicted.append(lat)
                else:
                    why = ("latency_ms=0" if lat == 0 else "no latency_ms parameter")
                    ax.plot([], [], color="none", label="%s: no Little's-law line" % why)
                self.workers_axis(ax, ws)
                ax.set_ylabel("throughput (tasks/s)")
                top = max(ax.get_ylim()[1], 1)
                if ws[-1] / ws[0] >= 8:
                    ax.set_yscale("log")
                else:
                    ax.set_ylim(0, top)
                ax.set_title(self.panel_title(wl, params, plist))
            title = "Throughput against workers: %s (I/O-bound)" % wl
            foot = ("Point: median throughput (tasks / wall_s) of %d runs; bar: min..max. Ideal rate of a "
                    "run: tasks / (ceil(tasks / workers) x latency_ms): the tasks go in rounds of N "
                    "workers, each round one latency (per-task overhead ignored); drawn as + where the "
                    "runs' last round is partial, else it equals Little's law, N / latency_ms, its limit "
                    "for long runs." % nmax)
            h, lb = self.legend_of(axes)
            self.finish(fig, title, foot, h, lb)
            if predicted:
                cap = ("Measured throughput against pool size for %s beside the ideal rate, tasks / "
                       "(ceil(tasks / workers) x latency_ms), whose long-run limit is Little's law, workers "
                       "/ latency_ms (latency_ms from the params column); median of %d runs, bar = min..max."
                       % (wl, nmax))
            else:
                cap = ("Measured throughput against pool size for %s; no Little's-law line: the workload "
                       "has no latency_ms parameter (or it is 0). Median of %d runs, bar = min..max."
                       % (wl, nmax))
            self.save(fig, "throughput", "throughput_%s" % pb.slug(wl), wl, title, cap)

    @staticmethod
    def round_ideal(ax, ser):
        """The ideal rate of the runs as they were sized, tasks / (ceil(tasks
        / workers) x latency), where it falls below Little's law (the runs'
        last round is partial): + markers at each configuration's workers."""
        pts = {}
        for _, _, rows_by_w in ser:
            for workers, rows in rows_by_w:
                for r in rows:
                    ideal = pb.ideal_rate(r)
                    lat = pb.param_number(r.get("params"), "latency_ms")
                    if ideal and lat and ideal < 0.999 * workers / (lat / 1000.0):
                        pts.setdefault(workers, []).append(ideal)
        if pts:
            xs = sorted(pts)
            ax.plot(xs, [pb.Agg(pts[x]).median for x in xs], color=REF_COLOR, linestyle="none",
                    marker="+", markersize=9, label="ideal for these runs' length", zorder=1)

    def config_label(self, ex, workers, pin):
        s = "%s\n%d w" % (ex, workers)
        return s + "\npin " + pin if self.several_pins else s

    def breakdown(self):
        """Per case two panels: the whole latency (queue wait on top), and the
        same bars without the queue wait, zoomed, where executors differ."""
        for wl, (_, plist) in self.f.workloads().items():
            cases = []
            for params in plist:
                bars = []
                for k in self.f.configs_of(wl, params):
                    rows = self.f.configs[k]
                    w = pb.agg(rows, "wait_mean_ms")
                    c = pb.agg(rows, "cpu_mean_ms")
                    b = pb.agg(rows, "blocked_mean_ms")
                    if not (w and c and b):
                        continue
                    ipc = pb.agg(rows, "ipc_mean_ms")
                    ipc_v = min(ipc.median or 0.0, b.median) if ipc else 0.0
                    lat = pb.agg(rows, "latency_mean_ms")
                    service = pb.agg(rows, None, lambda r: r["latency_mean_ms"] - r["wait_mean_ms"]
                                     if r.get("latency_mean_ms") is not None and r.get("wait_mean_ms") is not None
                                     else None)
                    bars.append({"key": k, "wait": w.median, "cpu": c.median, "ipc": ipc_v,
                                 "other": max(b.median - ipc_v, 0.0), "lat": lat.median if lat else None,
                                 "service": service.median if service else None, "n": w.n})
                if bars:
                    cases.append((params, bars))
            if not cases:
                self.skip("breakdown", wl, "no wait/cpu/blocked columns in runs.csv")
                continue
            width = max(4.6, 0.55 * max(len(b) for _, b in cases) + 1.2)
            fig, axes = self.panels(2 * len(cases), width=width, height=3.4, ncols=2)
            nmax, any_ipc = 0, False
            for i, (params, bars) in enumerate(cases):
                any_ipc = any_ipc or any(b["ipc"] > 0 for b in bars)
                nmax = max(nmax, max(b["n"] for b in bars))
                name = self.panel_title(wl, params, plist)
                for zoom, ax in ((False, axes[2 * i]), (True, axes[2 * i + 1])):
                    self.stacked(ax, bars, zoom)
                    # Parameters can be long: wrap them under the panel's role
                    # so that two panels side by side never overlap.
                    role = "without queue wait (zoom)" if zoom else "whole latency"
                    ax.set_title("%s\n%s" % (role, textwrap.fill(name, 60)), fontsize=9)
            title = "Per-task time breakdown: %s" % wl
            foot = ("Bar segments: medians over %d runs of runs.csv wait_mean_ms, cpu_mean_ms, "
                    "blocked_mean_ms (of which ipc_mean_ms, hatched); number: their sum in ms. Black tick: "
                    "latency_mean_ms (left) or latency_mean_ms - wait_mean_ms (right), which the segments "
                    "should reach. All tasks are submitted at once, so the queue wait grows with "
                    "tasks / workers; the right panel leaves it out." % nmax)
            h, lb = self.legend_of(axes)
            if not any_ipc:
                keep = [j for j, t in enumerate(lb) if "pipe" not in t]
                h, lb = [h[j] for j in keep], [lb[j] for j in keep]
            self.finish(fig, title, foot, h, lb)
            cap = ("Where each task's time goes for %s, per executor and pool size: queue wait, CPU, "
                   "blocked (pipe transfer hatched for procs), and on the right the same without the queue "
                   "wait; medians of %d runs; the black tick is the measured mean, which the segments "
                   "should reach." % (wl, nmax))
            self.save(fig, "breakdown", "breakdown_%s" % pb.slug(wl), wl, title, cap)
        if not self.f.runs:
            self.skip("breakdown", "", "runs.csv is empty")

    def stacked(self, ax, bars, zoom):
        xs, x, prev = [], 0.0, None
        for bar in bars:
            ex = bar["key"][2]
            if prev is not None and ex != prev:
                x += 0.5
            xs.append(x)
            x += 1
            prev = ex
        bottom = [0.0] * len(bars)
        segments = [("cpu", "CPU", {"color": "#2ca02c"}),
                    ("ipc", "blocked: pipe transfer (procs)",
                     {"color": "#ff7f0e", "hatch": "///", "edgecolor": "white", "linewidth": 0}),
                    ("other", "blocked: other (I/O, sleep, preempted)", {"color": "#9467bd"})]
        if not zoom:
            segments.append(("wait", "queue wait", {"color": "#c7c7c7"}))
        for key, label, style in segments:
            vals = [b[key] for b in bars]
            ax.bar(xs, vals, 0.7, bottom=bottom, label=label, **style)
            bottom = [a + v for a, v in zip(bottom, vals)]
        ref = [b["service"] if zoom else b["lat"] for b in bars]
        lx = [xx for xx, v in zip(xs, ref) if v is not None]
        ly = [v for v in ref if v is not None]
        if ly:
            ax.plot(lx, ly, linestyle="none", marker="_", markersize=16, markeredgewidth=2, color="black",
                    label="measured mean (latency, or latency - wait)")
        ymax = max(bottom + ly)
        for xx, t in zip(xs, bottom):
            ax.annotate(pb.fmt(t), (xx, t), xytext=(0, 2), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7)
        ax.set_ylim(0, ymax * 1.15 if ymax > 0 else 1)
        ax.set_xticks(xs)
        ax.set_xticklabels([self.config_label(b["key"][2], b["key"][3], b["key"][4]) for b in bars],
                           fontsize=7.5)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("time per task (ms)")
        ax.set_xlabel("executor, pool size (w = workers)")

    def latency(self):
        pcts = [("latency_p50_ms", "p50", "#9ecae1"), ("latency_p95_ms", "p95", "#4292c6"),
                ("latency_p99_ms", "p99", "#08306b")]
        for wl, (_, plist) in self.f.workloads().items():
            cases = []
            for params in plist:
                ks = [k for k in self.f.configs_of(wl, params)
                      if pb.agg(self.f.configs[k], "latency_p50_ms")]
                if ks:
                    cases.append((params, ks))
            if not cases:
                self.skip("latency", wl, "no latency percentiles in runs.csv")
                continue
            width = max(5.0, 0.62 * max(len(k) for _, k in cases) + 1.2)
            fig, axes = self.panels(len(cases), width=width, height=3.6)
            nmax = 0
            for ax, (params, ks) in zip(axes, cases):
                xs, x, prev = [], 0.0, None
                for k in ks:
                    if prev is not None and k[2] != prev:
                        x += 0.5
                    xs.append(x)
                    x += 1
                    prev = k[2]
                allv = []
                for j, (col, name, color) in enumerate(pcts):
                    ys, lo, hi, px = [], [], [], []
                    for xx, k in zip(xs, ks):
                        a = pb.agg(self.f.configs[k], col)
                        if not a:
                            continue
                        px.append(xx + (j - 1) * 0.26)
                        ys.append(a.median)
                        lo.append(a.median - a.lo)
                        hi.append(a.hi - a.median)
                        allv += [a.lo, a.hi]
                        nmax = max(nmax, a.n)
                    ax.bar(px, ys, 0.26, color=color, label=name,
                           yerr=[lo, hi], error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#d62728"})
                pos = [v for v in allv if v and v > 0]
                if pos and max(pos) / min(pos) > 30:
                    ax.set_yscale("log")
                ax.set_xticks(xs)
                ax.set_xticklabels([self.config_label(k[2], k[3], k[4]) for k in ks], fontsize=7.5)
                ax.grid(axis="x", visible=False)
                ax.set_ylabel("task latency (ms)" + (", log scale" if ax.get_yscale() == "log" else ""))
                ax.set_xlabel("executor, pool size (w = workers)")
                ax.set_title(self.panel_title(wl, params, plist))
            title = "Task latency percentiles: %s" % wl
            foot = ("Bars: median over %d runs of each run's p50 / p95 / p99 latency (submit to result, "
                    "queueing included: all tasks are submitted at once); red whisker: min..max over "
                    "those runs." % nmax)
            h, lb = self.legend_of(axes)
            self.finish(fig, title, foot, h, lb)
            cap = ("Latency p50/p95/p99 per executor and pool size for %s (median of %d runs, whisker "
                   "min..max); latency includes queue wait." % (wl, nmax))
            self.save(fig, "latency", "latency_%s" % pb.slug(wl), wl, title, cap)

    def overhead(self):
        series = {}
        for k, rows in self.f.configs.items():
            wl, params, ex, workers, pin = k
            if wl != "noop":
                continue
            size = pb.param_number(params, "payload_bytes")
            if size is None or size <= 0:
                continue
            series.setdefault((ex, workers, pin), []).append((size, rows))
        sizes = {s for pts in series.values() for s, _ in pts}
        if len(sizes) < 2:
            self.skip("overhead", "noop", "needs noop rows with at least two payload_bytes values > 0 "
                      "(poolbench sweep -W noop --vary payload_bytes=...); found %d" % len(sizes))
            return
        fig, axes = self.panels(1, width=8.0, height=4.8)
        ax = axes[0]
        worker_counts = sorted({k[1] for k in series})
        cpus = self.f.online_cpus()
        nmax = 0
        order = sorted(series, key=lambda k: pb.config_sort_key(("", "", k[0], k[1], k[2])))
        for i, key in enumerate(order):
            ex, workers, pin = key
            pts = sorted(series[key])
            xs, ys, lo, hi = [], [], [], []
            nudge = 2 ** ((i - (len(order) - 1) / 2) * 0.05)
            for size, rows in pts:
                a = pb.agg(rows, None, lambda r: per_task_us(r, cpus))
                if not a:
                    continue
                xs.append(size * nudge)
                ys.append(a.median)
                lo.append(a.median - a.lo)
                hi.append(a.hi - a.median)
                nmax = max(nmax, a.n)
            st = exec_style(ex)
            st["linestyle"] = WORKER_LINESTYLE[worker_counts.index(workers) % len(WORKER_LINESTYLE)]
            label = "%s, %d worker%s" % (ex, workers, "" if workers == 1 else "s")
            if self.several_pins:
                label += ", pin=" + pin
            ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, markersize=5, linewidth=1.4, alpha=0.85,
                        label=label, **st)
        cal = pb.calibration(self.f.calibrate)
        refs = []
        for kind, color, what in (("pipe", "black", "pipe round trip"),
                                  ("handoff", "#2ca02c", "thread hand-off (condvar) round trip")):
            for name, ns, stat in pb.calibration_references(cal, kind):
                where = ", same PU" if "same" in name else ", across cores" if "cross" in name else ""
                ax.axhline(ns / 1e3, color=color, linewidth=1.2, alpha=0.8,
                           linestyle=(0, (1, 1.5)) if "same" in name else "--",
                           label="%s%s: %s \u00b5s" % (what, where, pb.fmt(ns / 1e3)))
                if what not in refs:
                    refs.append(what)
        if not refs:
            ax.plot([], [], color="none", label="no calibrate.json (or no pipe / hand-off entry): "
                    "no reference lines")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        sz = sorted(sizes)
        ax.set_xticks(sz)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human_bytes(v)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(sz[0] / 1.6, sz[-1] * 1.6)
        ax.set_xlabel("payload per task, in and out (payload_bytes, log scale)")
        ax.set_ylabel("per-task time (\u00b5s, log scale)")
        ax.set_title("per-task time = wall_s \u00d7 min(workers, %s CPUs) / tasks" % (cpus or "?"))
        title = "Per-task overhead against payload size: noop"
        foot = ("Point: median over %d runs of wall_s x min(workers, CPUs) / tasks: the machine time "
                "each noop task (copy payload_bytes in to out) costs when the pool can use min(workers, "
                "CPUs) CPUs; bar: min..max. seq is the task alone; the gap above it is the executor's "
                "cost: hand-off, and for procs the pipe transfer both ways. Horizontal lines: medians "
                "from calibrate.json, the latency of one round trip; a pool with several tasks in "
                "flight can cost less than that per task." % nmax)
        h, lb = self.legend_of([ax])
        self.finish(fig, title, foot, h, lb)
        cap = ("Per-task time (wall_s x min(workers, CPUs) / tasks) of the empty noop task against payload size, "
               "log-log, one line per executor and pool size%s; median of %d runs."
               % (", with the calibrated " + " and ".join(refs) + " as reference lines" if refs
                  else "; no calibration reference lines (calibrate.json absent)", nmax))
        self.save(fig, "overhead", "overhead_payload", "noop", title, cap)

    def hyperfine(self):
        if self.f.hyperfine is None:
            self.skip("hyperfine", "", "hyperfine.json absent")
            return
        res = pb.hyperfine_results(self.f.hyperfine)
        if not res:
            self.skip("hyperfine", "", "hyperfine.json has no results with times")
            return
        groups = {}
        for r in res:
            p = r.get("parameters") or {}
            groups.setdefault(p.get("workload", ""), []).append(r)

        def rank(r):
            ex = (r.get("parameters") or {}).get("executor", "")
            return (pb.EXECUTOR_ORDER.index(ex) if ex in pb.EXECUTOR_ORDER else 9, r.get("command", ""))

        fig, axes = self.panels(len(groups), width=max(4.0, 1.1 * max(len(g) for g in groups.values()) + 1.5),
                                height=3.6)
        allt = [t for r in res for t in r["times"]]
        unit, scale = ("ms", 1e3) if max(allt) < 2 else ("s", 1.0)
        nmax = 0
        for ax, (wl, rs) in zip(axes, groups.items()):
            rs = sorted(rs, key=rank)
            data = [[t * scale for t in r["times"]] for r in rs]
            labels = []
            for r in rs:
                p = dict(r.get("parameters") or {})
                p.pop("workload", None)
                labels.append("\n".join("%s" % v for v in p.values()) if p else
                              textwrap.fill(r.get("command", "?"), 18))
            colors = [EXEC_STYLE.get((r.get("parameters") or {}).get("executor"), {}).get("color", "#2ca02c")
                      for r in rs]
            bp = ax.boxplot(data, labels=labels, showmeans=True, patch_artist=True, widths=0.55,
                            meanprops={"marker": "^", "markerfacecolor": "white", "markeredgecolor": "black"},
                            medianprops={"color": "black"})
            for patch, c in zip(bp["boxes"], colors):
                patch.set_facecolor(c)
                patch.set_alpha(0.35)
            for i, (d, c) in enumerate(zip(data, colors), 1):
                n = len(d)
                nmax = max(nmax, n)
                xs = [i + (j - (n - 1) / 2) * (0.3 / max(n, 1)) for j in range(n)]
                ax.plot(xs, d, linestyle="none", marker="o", markersize=3.5, color=c, alpha=0.9)
            ax.set_ylabel("whole-process time (%s)" % unit)
            ax.set_xlabel("executor (pool size as in the command)")
            ax.set_ylim(bottom=0)
            ax.grid(axis="x", visible=False)
            ax.set_title("workload: %s" % wl if wl else "all commands")
        handles = [Patch(facecolor="#cccccc", edgecolor="black", label="quartiles; whiskers 1.5 IQR"),
                   Line2D([], [], color="black", label="median"),
                   Line2D([], [], linestyle="none", marker="^", markerfacecolor="white",
                          markeredgecolor="black", label="mean"),
                   Line2D([], [], linestyle="none", marker="o", color="#555555", markersize=3.5,
                          label="one run")]
        title = "Whole-process time of poolbench run (hyperfine)"
        cmd = res[0].get("command", "")
        foot = ("hyperfine.json: %d commands, up to %d runs each, e.g. '%s'. Includes process start, "
                "pool creation, input building and exit." % (len(res), nmax, cmd))
        self.finish(fig, title, foot, handles, [h.get_label() for h in handles])
        cap = ("hyperfine's whole-process times of `poolbench run` per executor and workload (box = "
               "quartiles of up to %d runs, triangle = mean, dots = runs): what a user waits for, "
               "start-up and exit included." % nmax)
        self.save(fig, "hyperfine", "hyperfine", "", title, cap)


def legend_columns(labels, width_in):
    """The most legend columns that fit width_in (matplotlib fills the
    columns top to bottom; a column is as wide as its longest label)."""
    n = len(labels)
    for ncol in range(min(n, 6), 1, -1):
        rows = math.ceil(n / ncol)
        cols = [labels[i:i + rows] for i in range(0, n, rows)]
        # ~0.075 in per character at 8.5 pt, plus the handle and the gap.
        if sum(0.075 * max(len(lb) for lb in c) + 1.0 for c in cols) <= width_in:
            return ncol
    return 1


def per_task_us(row, cpus):
    """Machine time per task in us: wall_s x min(workers, CPUs) / tasks."""
    if row.get("wall_s") is None or not row.get("tasks"):
        return None
    used = min(row["workers"], cpus) if cpus else row["workers"]
    return row["wall_s"] * used / row["tasks"] * 1e6


def human_bytes(v):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= size:
            return "%g %s" % (round(v / size, 2), unit)
    return "%g B" % v


def clean_previous(outdir):
    """Remove the files a previous plot.py run listed, and nothing else."""
    index = pb.read_json(os.path.join(outdir, "charts.json"))
    if not isinstance(index, dict):
        return
    for c in index.get("charts", []):
        for key in ("png", "svg"):
            name = c.get(key)
            if name and os.path.basename(name) == name:
                try:
                    os.remove(os.path.join(outdir, name))
                except FileNotFoundError:
                    pass


def main():
    ap = argparse.ArgumentParser(description="Draw the charts of a poolbench results folder "
                                 "into DIR/charts/ (PNG and SVG).")
    ap.add_argument("results", metavar="DIR", help="results folder with runs.csv")
    ap.add_argument("--out", metavar="CHARTS_DIR", help="where to write (default DIR/charts)")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.results, "runs.csv")):
        print("poolbench: %s is not a results folder (no runs.csv)" % args.results, file=sys.stderr)
        return 2
    folder = pb.Folder(args.results)
    outdir = args.out or os.path.join(args.results, "charts")
    os.makedirs(outdir, exist_ok=True)
    clean_previous(outdir)
    p = Plotter(folder, outdir)
    if not folder.runs:
        p.skip("all", "", "runs.csv has no rows")
    else:
        p.scaling("speedup")
        p.scaling("efficiency")
        p.throughput()
        p.breakdown()
        p.latency()
        p.overhead()
        classic.chart(p, plt)
    queues.chart(p, plt)
    p.hyperfine()
    with open(os.path.join(outdir, "charts.json"), "w") as f:
        json.dump({"schema_version": 1, "charts": p.charts, "skipped": p.skipped}, f, indent=1)
        f.write("\n")
    for c in p.charts:
        print(os.path.join(outdir, c["png"]))
    for s in p.skipped:
        print("skipped %s%s: %s" % (s["kind"], " " + s["workload"] if s["workload"] else "", s["reason"]),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
