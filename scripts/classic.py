"""classic.py: the threads-versus-processes table of Python's
concurrent.futures guide, restated as measurements of this machine, for C
(poolbench's threads and procs) and Python (py-threads, py-procs) side by
side, each row ending in a verdict computed from the numbers.

Its data are the cases of a results folder that ran Python executors
beside the C ones (make bench's "Python beside C" sweeps: the same inputs,
the same digests), overhead.jsonl (C, one task in flight) and
peers_python.jsonl (Python, scripts/peers/py_executors.py). report.py
calls section(); plot.py calls chart().

Significance: the report's rule, applied in one place, differs():
pbresults.Comparison, a two-sided Mann-Whitney U test over the two
configurations' runs, significant at p < 0.05 and only for a difference
beyond the run-to-run spread; each verdict names its evidence (the
p-value, or why the difference is not called significant).  With the
interleaved repetitions of make bench (5 or more a side) p < 0.05 is
reachable; with 3 a side it is not (the smallest p is then 0.1).
"""

import os

import pbresults as pb

fmt = pb.fmt
DASH = "\u2013"
LANGS = (("C", "seq", "threads", "procs"), ("Python", "py-seq", "py-threads", "py-procs"))


class Stat(pb.Agg):
    """pb.Agg that keeps its values, for the significance test."""

    __slots__ = ("values",)

    def __init__(self, values):
        vals = [v for v in values if v is not None]
        super().__init__(vals)
        self.values = vals


def stat(rows, column, fn=None):
    return Stat(fn(r) if fn else r.get(column) for r in rows)


class Diff:
    """sign: 1 / 0 / -1, a significantly above, indistinguishable from or
    below b; note: the evidence, for the verdict."""

    def __init__(self, sign, note):
        self.sign, self.note = sign, note


def differs(a, b):
    """The report's significance rule on two Stat samples, pb.Comparison:
    Mann-Whitney U, p < pb.ALPHA and a difference beyond the run-to-run
    spread.  None without data."""
    if not a or not b:
        return None
    c = pb.Comparison(a.values, b.values)
    if not c.significant:
        return Diff(0, c.why_not())
    return Diff(1 if c.change_pct > 0 else -1, "%s, %d vs %d runs" % (pb.fmt_p(c.p), len(c.a), len(c.b)))


def sizing_rule(cpus):
    """concurrent.futures' default max_workers (Python 3.8+)."""
    return min(32, (cpus or 1) + 4)


class Cases:
    """The (workload, params) cases that ran Python executors."""

    def __init__(self, folder):
        self.f = folder
        self.cases = []
        for wl, kind, params in folder.cases():
            if any(k[0] == wl and k[1] == params and k[2].startswith("py-") for k in folder.configs):
                self.cases.append((wl, kind, params))

    def of_kind(self, kind, exclude=("noop", "fault", "table", "mix")):
        return [c for c in self.cases if c[1] == kind and c[0] not in exclude]

    def rows(self, case, ex, workers):
        return self.f.configs.get((case[0], case[2], ex, workers, "none"), [])

    def workers_of(self, case, ex):
        return sorted(k[3] for k in self.f.configs
                      if k[0] == case[0] and k[1] == case[2] and k[2] == ex and k[4] == "none")

    def best(self, case, ex, column="throughput"):
        """(workers, Agg) of the pool size with the highest median."""
        out = None
        for w in self.workers_of(case, ex):
            a = stat(self.rows(case, ex, w), column)
            if a and (out is None or a.median > out[1].median):
                out = (w, a)
        return out

    def speedup(self, case, ex, seq):
        """Best throughput over the language's own sequential median, as an
        Agg over the best configuration's runs."""
        b = self.best(case, ex)
        s = stat(self.rows(case, seq, 1), "throughput")
        if not b or not s:
            return None
        return b[0], stat(self.rows(case, ex, b[0]), "throughput",
                            lambda r: r["throughput"] / s.median if r.get("throughput") else None)


def rss_kib(r):
    """Peak resident memory of the parent plus its workers: a process pool's
    workers are alike, so workers x the largest child's peak."""
    parent = r.get("peak_rss_kb")
    if parent is None:
        return None
    child = r.get("peak_rss_children_kb") or 0
    return parent + (r.get("workers") or 1) * child if r["executor"].endswith("procs") else parent


def small(ratio):
    """The report's note for a significant but small difference."""
    return " (a small difference: under 5%)" if ratio and 1 / 1.05 < ratio < 1.05 else ""


def what(d, a_name, b_name, ratio):
    if d is None:
        return "not measured"
    if d.sign == 0:
        return "no significant difference between %s and %s (%s)" % (a_name, b_name, d.note)
    return "%s %.2fx %s%s (%s)" % (a_name, ratio, "above " + b_name if d.sign > 0 else "below " + b_name,
                                   small(ratio), d.note)


# -------------------------------------------------------------- the rows

def row_speedups(cs, case, favoured):
    """Best speedups of threads and processes; the claim holds when the
    favoured one ("threads" or "processes") is significantly faster."""
    cells, verdicts = [], []
    for lang, seq, th, pr in LANGS:
        t, p = cs.speedup(case, th, seq), cs.speedup(case, pr, seq)
        cells += ["%sx (%d w)" % (fmt(x[1].median), x[0]) if x else DASH for x in (t, p)]
        if t and p:
            fav, other = (t, p) if favoured == "threads" else (p, t)
            name = "processes" if favoured == "threads" else "threads"
            d = differs(fav[1], other[1])
            r = fav[1].median / other[1].median
            verdicts.append("%s: %s%s (%s)" % (lang, {1: "holds (%s %.2fx %s)" % (favoured, r, name),
                                                      0: "no significant difference",
                                                      -1: "false: %s %.2fx %s" % (name, 1 / r, favoured)}[d.sign],
                                               small(r) if d.sign else "", d.note))
    return cells, "; ".join(verdicts)


def row_memory(cs, case):
    cells, verdicts = [], []
    for lang, _, th, pr in LANGS:
        per = {}
        for ex in (th, pr):
            ws = cs.workers_of(case, ex)
            per[ex] = {w: stat(cs.rows(case, ex, w), None, rss_kib) for w in ws}
            cells.append(" / ".join("%d w: %s" % (w, fmt(a.median / 1024)) for w, a in per[ex].items() if a)
                         or DASH)
        common = sorted(set(per[th]) & set(per[pr]))
        if common:
            n = common[-1]
            a, b = per[pr][n], per[th][n]
            if a and b and b.median:
                verdicts.append("%s at %d workers: %s" % (lang, n, what(differs(a, b), "processes", "threads",
                                                                           a.median / b.median)))
    return cells, "; ".join(verdicts)


def row_shared(cs, case):
    """The table workload: every task reads a shared table (a pointer in
    threads, the fork snapshot in processes).  CPU time per task (the page
    faults of copied pages included: the thread clock counts system time)
    and memory, at the largest pool both executors ran that does not
    exceed the CPUs (beyond, waiting for a CPU would blur the comparison)."""
    cells, verdicts = [], []
    cpus = cs.f.online_cpus() or 1
    for lang, _, th, pr in LANGS:
        common = sorted(set(cs.workers_of(case, th)) & set(cs.workers_of(case, pr)))
        fit = [w for w in common if w <= cpus] or common[:1]
        if not fit:
            cells += [DASH, DASH]
            continue
        n = fit[-1]
        run = {ex: stat(cs.rows(case, ex, n), "cpu_mean_ms") for ex in (th, pr)}
        mem = {ex: stat(cs.rows(case, ex, n), None, rss_kib) for ex in (th, pr)}
        sys_s = {ex: stat(cs.rows(case, ex, n), "sys_s") for ex in (th, pr)}
        cells += ["%s ms CPU/task, sys %s s, %s MiB (%d w)" % (
            fmt(run[ex].median), fmt(sys_s[ex].median), fmt(mem[ex].median / 1024), n) for ex in (th, pr)]
        if run[th].median and mem[th].median:
            verdicts.append("%s: CPU per task %s; memory %s" % (
                lang, what(differs(run[pr], run[th]), "processes", "threads", run[pr].median / run[th].median),
                what(differs(mem[pr], mem[th]), "processes", "threads", mem[pr].median / mem[th].median)))
    return cells, "; ".join(verdicts)


def row_mix(cs, case):
    """The mix workload: blocking calls among CPU work.  A pool that a
    blocked worker held back would run no faster than the sequential loop."""
    cells, verdicts = [], []
    for lang, seq, th, pr in LANGS:
        s = stat(cs.rows(case, seq, 1), "throughput")
        for ex in (th, pr):
            b = cs.speedup(case, ex, seq)
            cells.append("%sx (%d w)" % (fmt(b[1].median), b[0]) if b else DASH)
            if ex == th and b and s:
                d = differs(stat(cs.rows(case, ex, b[0]), "throughput"), s)
                verdicts.append("%s: %s (%s)" % (lang, "false: %d threads ran the mix %.2fx faster than the "
                                                 "sequential loop (a blocked worker holds back only itself)"
                                                 % (b[0], b[1].median) if d.sign == 1 else
                                                 "not refuted (no significant gain over the sequential loop)",
                                                 d.note))
    return cells, "; ".join(verdicts)


def row_blocking(cs, case):
    """Tasks that block (sleep): does one blocked worker hold the pool back?
    Throughput at the largest pool against one worker, against the ideal."""
    cells, verdicts = [], []
    for lang, _, th, pr in LANGS:
        for ex in (th, pr):
            ws = cs.workers_of(case, ex)
            if len(ws) < 2:
                cells.append(DASH)
                continue
            one, big = stat(cs.rows(case, ex, ws[0]), "throughput"), stat(cs.rows(case, ex, ws[-1]), "throughput")
            cells.append("%d w: %sx of %d w" % (ws[-1], fmt(big.median / one.median), ws[0]) if one and big else DASH)
            if ex == th and one and big:
                d = differs(big, one)
                verdicts.append("%s: %s (%s)" % (lang, "false: %d blocked threads ran %.1fx one thread's rate "
                                                 "(ideal %d)" % (ws[-1], big.median / one.median, ws[-1] // ws[0])
                                                 if d.sign == 1 else
                                                 "not refuted (no significant gain from more threads)", d.note))
    return cells, "; ".join(verdicts)


def row_sizing(cs, case):
    cpus = cs.f.online_cpus()
    rule = sizing_rule(cpus)
    cells, verdicts = [], []
    for lang, _, th, pr in LANGS:
        for ex in (th, pr):
            b = cs.best(case, ex)
            at_rule = stat(cs.rows(case, ex, rule), "throughput")
            if not b:
                cells.append(DASH)
                continue
            cells.append("best %d w%s" % (b[0], "" if not at_rule else ", rule %s" % (
                "= best" if b[0] == rule else "%.0f%%" % (100 * at_rule.median / b[1].median))))
            if ex == th:
                if not at_rule:
                    verdicts.append("%s: the rule's %d workers were not measured" % (lang, rule))
                else:
                    d = differs(at_rule, b[1])
                    verdicts.append("%s %s: %s" % (lang, ex, "the rule's %d workers are as good as the best (%d)"
                                                   % (rule, b[0]) if b[0] == rule else
                                                   "the rule's %d workers are as good as the best (%d; %s)"
                                                   % (rule, b[0], d.note) if d.sign == 0 else
                                                   "the rule's %d workers are significantly slower than %d "
                                                   "(%.0f%%; %s)" % (rule, b[0], 100 * at_rule.median / b[1].median,
                                                                    d.note)))
    return cells, "; ".join(verdicts)


def row_overhead_all(cs):
    """Empty tasks (noop), all submitted at once: per-task cost at the
    smallest pool of the Python noop case."""
    case = next((c for c in cs.cases if c[0] == "noop"), None)
    if not case:
        return None
    cells, verdicts = [], []
    for lang, _, th, pr in LANGS:
        aggs = {}
        for ex in (th, pr):
            ws = cs.workers_of(case, ex)
            aggs[ex] = stat(cs.rows(case, ex, ws[0]), None,
                              lambda r: r["wall_s"] / r["tasks"] * 1e6 if r.get("wall_s") else None) if ws else None
            cells.append("%s \u00b5s" % fmt(aggs[ex].median) if aggs[ex] else DASH)
        a, b = aggs[pr], aggs[th]
        if a and b and b.median:
            verdicts.append("%s: %s" % (lang, what(differs(a, b), "processes", "threads", a.median / b.median)))
    return cells, "; ".join(verdicts)


def row_overhead_one(f):
    """One task in flight: C from overhead.jsonl, Python from
    peers_python.jsonl (medians over many tasks; one series each)."""
    c = {o.get("executor"): o.get("latency_median_ns") for o in f.overhead or []
         if isinstance(o, dict) and not o.get("exact_cpu")}
    peers = pb.read_jsonl(os.path.join(f.path, "peers_python.jsonl"))
    py = {}
    for o in peers:
        name = str(o.get("peer", ""))
        py["threads" if "Thread" in name else "procs"] = o.get("latency_median_ns")
    vals = [c.get("threads"), c.get("procs"), py.get("threads"), py.get("procs")]
    if not any(isinstance(v, (int, float)) for v in vals):
        return None
    cells = ["%s \u00b5s" % fmt(v / 1e3) if isinstance(v, (int, float)) else DASH for v in vals]
    verdicts = []
    for lang, t, p in (("C", vals[0], vals[1]), ("Python", vals[2], vals[3])):
        if isinstance(t, (int, float)) and isinstance(p, (int, float)) and t:
            verdicts.append("%s: processes %.1fx threads" % (lang, p / t))
    return cells, "; ".join(verdicts) + " (one series of medians each: no significance test)"


def row_advise(f):
    """advise.json (C only): Goetz's predicted and the measured best pool
    size per workload, against the rule (one repetition: no significance)."""
    data = f.advise if isinstance(f.advise, list) else []
    rule = sizing_rule(f.online_cpus())
    out = []
    for a in data:
        if not isinstance(a, dict) or not isinstance(a.get("measured_best"), dict):
            continue
        best, pred = a["measured_best"], a.get("predicted") or {}
        cells = ["best %s w, predicted %s" % (best.get(ex, "?"), pred.get(ex, "?")) for ex in ("threads", "procs")]
        verdict = "C: the rule's %d workers %s the measured best (threads %s, processes %s; advise, one " \
                  "repetition)" % (rule, "match" if best.get("threads") == rule else "differ from",
                                   best.get("threads", "?"), best.get("procs", "?"))
        out.append(("sizing rule min(32, cpu + 4) = %d vs advise: %s" % (rule, a.get("workload", "?")),
                    "max_workers = min(32, cpu + 4)", cells + [DASH, DASH], verdict))
    return out


def rows(folder):
    cs = Cases(folder)
    out = []
    ov = row_overhead_all(cs)
    if ov:
        out.append(("overhead: empty task, all submitted (per task, smallest pool)",
                    "threads: low overhead; processes: higher overhead of IPC", *ov))
    one = row_overhead_one(folder)
    if one:
        out.append(("overhead: one task in flight (round trip)", "the same", *one))
    shared = next((c for c in cs.cases if c[0] == "table"), None)
    if shared:
        out.append(("shared state: every task reads a shared %s MiB table (table)"
                    % pb.parse_params(shared[2]).get("table_mb", "?"),
                    "threads share memory; processes cannot share state efficiently",
                    *row_shared(cs, shared)))
    for case in cs.of_kind("cpu")[:1]:
        out.append(("resource usage: peak RSS parent + workers, MiB (%s)" % case[0],
                    "threads use less memory", *row_memory(cs, case)))
    mix = next((c for c in cs.cases if c[0] == "mix"), None)
    if mix:
        out.append(("blocking calls: mix (%s), best speedup vs own sequential" % pb.short_params(mix[2]),
                    "a blocking call blocks the whole thread pool", *row_mix(cs, mix)))
    for case in cs.of_kind("io"):
        if case[0] == "sleep":
            out.append(("blocking calls: %s only, throughput at the largest pool vs one worker" % case[0],
                        "a blocking call blocks the whole thread pool", *row_blocking(cs, case)))
    for case in cs.of_kind("cpu"):
        out.append(("CPU-bound: %s, best speedup vs own sequential" % case[0],
                    "processes for CPU-bound work", *row_speedups(cs, case, "processes")))
    for case in cs.of_kind("io"):
        out.append(("I/O-bound: %s, best speedup vs own sequential" % case[0],
                    "threads for I/O-bound work", *row_speedups(cs, case, "threads")))
    for case in (cs.of_kind("cpu") + cs.of_kind("io"))[:4]:
        out.append(("sizing rule min(32, cpu + 4) = %d: %s" % (sizing_rule(folder.online_cpus()), case[0]),
                    "max_workers = min(32, cpu + 4)", *row_sizing(cs, case)))
    out += row_advise(folder)
    return cs, out


# ------------------------------------------------------------- the report

def python_speedups(cs):
    """Each Python executor's best speedup against py-seq and against C's seq."""
    out = []
    for case in cs.cases:
        c_seq = stat(cs.rows(case, "seq", 1), "throughput")
        for ex in ("py-threads", "py-procs"):
            b = cs.best(case, ex)
            s = cs.speedup(case, ex, "py-seq")
            if not b:
                continue
            vs_c = b[1].median / c_seq.median if c_seq else None
            ok = all(r.get("digest_ok") == 1 for w in cs.workers_of(case, ex) for r in cs.rows(case, ex, w))
            out.append([case[0], ex, str(b[0]), fmt(b[1].median), fmt(s[1].median) if s else DASH,
                        fmt(vs_c), "yes" if ok else "**no**"])
    return out


def section(folder, table):
    """REPORT.md lines of the section (report.py embeds the chart after
    them); table(header, rows) is report.py's."""
    cs, rws = rows(folder)
    out = ["## Threads or processes, in C and in Python", ""]
    if not cs.cases:
        return out + ["No Python executors ran in this folder (`poolbench sweep -e py-seq,py-threads,"
                      "py-procs`): no side-by-side table.", ""]
    out += ["The classic comparison of Python's `concurrent.futures` guide, each row measured here for "
            "C (poolbench `threads`, `procs`) and Python (`py-threads` = ThreadPoolExecutor, `py-procs` = "
            "ProcessPoolExecutor, fork), on the same inputs with the same digests. Speedups are against "
            "each language's own sequential run (`seq`, `py-seq`); figures are medians over the runs of "
            "a configuration; a verdict calls two configurations different only by the report's "
            "significance rule (a two-sided Mann-Whitney U test over their runs: p < 0.05 and a "
            "difference beyond the run-to-run spread) and names its evidence. `w` = workers. "
            "mandelbrot is pure Python "
            "(the GIL is held throughout); sha256 is hashlib, which releases the GIL; sleep and http "
            "block in the kernel; `table` reads a table built before the pool (threads: a pointer or "
            "a shared list; processes: the fork-time snapshot), `mix` interleaves sleeps with prime "
            "sieving. Memory is peak RSS, parent plus workers x the largest worker: a page shared "
            "copy-on-write counts in every process that maps it, so a process pool's figure is an "
            "upper bound; the pages Python's workers really copy (reference counts written by reads) "
            "show as system time (`sys`) in the shared-state row.", ""]
    out.append(table(["row", "the claim", "C threads", "C procs", "Python threads", "Python procs", "verdict"],
                     [[r[0], r[1], *r[2], r[3]] for r in rws]))
    out.append("")
    sp = python_speedups(cs)
    if sp:
        out += ["Python executors at their best pool size: speedup against Python's own sequential "
                "loop (`py-seq`) and against C's `seq` (runs.csv `speedup` is the latter); digest = "
                "every run's digest equals the C baseline's.", "",
                table(["workload", "executor", "workers", "tasks/s", "vs py-seq", "vs C seq", "digest"], sp), ""]
    return out


# -------------------------------------------------------------- the chart

def chart(plotter, plt):
    """Four panels: CPU-bound and I/O-bound best speedups, memory against
    workers, empty-task overhead; C and Python side by side."""
    cs = Cases(plotter.f)
    cpu, io = cs.of_kind("cpu"), cs.of_kind("io")
    if not cs.cases or not (cpu or io):
        plotter.skip("classic", "", "no Python executors in runs.csv")
        return
    fig, axes = plotter.panels(3, width=4.2, height=3.4, ncols=3)
    series = [("C threads", "threads", "seq", "#1f77b4", None), ("C procs", "procs", "seq", "#d62728", None),
              ("Python threads", "py-threads", "py-seq", "#1f77b4", "//"),
              ("Python procs", "py-procs", "py-seq", "#d62728", "//")]
    for ax, cases, title in ((axes[0], cpu, "CPU-bound: best speedup vs own sequential"),
                             (axes[1], io, "I/O-bound: best speedup vs own sequential")):
        for j, (name, ex, seq, color, hatch) in enumerate(series):
            xs, ys, lo, hi = [], [], [], []
            for i, case in enumerate(cases):
                s = cs.speedup(case, ex, seq)
                if s:
                    xs.append(i + (j - 1.5) * 0.2)
                    ys.append(s[1].median)
                    lo.append(s[1].median - s[1].lo)
                    hi.append(s[1].hi - s[1].median)
            ax.bar(xs, ys, 0.2, color=color, alpha=0.55 if hatch else 0.9, hatch=hatch, label=name,
                   yerr=[lo, hi], error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels([c[0] for c in cases])
        ax.axhline(1.0, color="#7f7f7f", linestyle=":", linewidth=1)
        ax.set_title(title)
        ax.set_ylabel("speedup (x)")
    ax = axes[2]
    for name, ex, _, color, hatch in series:
        for case in cpu[:1]:
            ws = cs.workers_of(case, ex)
            pts = [(w, stat(cs.rows(case, ex, w), None, rss_kib)) for w in ws]
            pts = [(w, a) for w, a in pts if a]
            if pts:
                ax.plot([w for w, _ in pts], [a.median / 1024 for _, a in pts], color=color,
                        linestyle="--" if hatch else "-", marker="o" if "threads" in ex else "^", label=name)
    ax.set_title("peak RSS, parent + workers (%s)" % (cpu[0][0] if cpu else "-"))
    ax.set_xlabel("workers")
    ax.set_ylabel("MiB")
    handles, labels = plotter.legend_of(axes)
    plotter.finish(fig, "Threads or processes: C and Python side by side", "Bars: medians of each language's best "
                   "pool size, whiskers min..max over its runs; speedup = throughput / the same language's "
                   "sequential median (seq, py-seq). Memory: peak RSS of the parent, plus workers x the largest "
                   "worker's for process pools (runs.csv peak_rss_kb, peak_rss_children_kb); solid lines C, "
                   "dashed Python.", handles, labels)
    plotter.save(fig, "classic", "classic_table", "", "Threads or processes: C and Python",
                 "the measured threads-vs-processes table as a chart (REPORT.md, section 'Threads or processes')")
