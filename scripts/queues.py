"""queues.py (not queue.py: scripts/ comes first on sys.path and would hide
the standard library's queue module): the second knob, the queue, measured: latency against the
arrival rate per executor (the knee, the capacity predicted from the
measured per-task time against the measured one), the queue depth and the
tasks in flight over time, a bounded queue's capacity x on_full policy under
overload, ex_map's chunksize, and the advice computed from those numbers.

Its data are the results folder's queue/ sub-folder (make bench's queue
step: runs.csv with the load columns of schema 6, timeline.csv with the
executor's gauges sampled during each run; results/README.md).  report.py
calls section(); plot.py calls chart(); both go through the analysis
functions here (rate_curves, find_knee, Overload, chunk_rows), so the
report and the charts cannot disagree.

Rows are grouped by config_id (it names the load: `|q4|reject|r3200poisson`,
`|c16`); every figure is the median over a configuration's repetitions with
min..max over them.  Rows of schema 5 and before have no load columns:
load() reads them as all-at-once (batch) submissions to an unbounded queue.
Rejected submits are neither ok nor failed (tasks_ok + tasks_failed +
tasks_rejected = tasks) and are reported apart from failures.
"""

import os
import statistics

import pbresults as pb

fmt = pb.fmt
DASH = "\u2013"
KNEE_P99_FACTOR = 3.0        # knee: median p99 above this x the lowest rate's median p99 ...
KNEE_THROUGHPUT_SHARE = 0.9  # ... or median throughput below this share of the offered rate
NEAR_BEST = 0.95             # "throughput within 5% of the best"
EXEC_COLOR = {"seq": "#4d4d4d", "threads": "#1f77b4", "procs": "#d62728"}
EXEC_MARKER = {"seq": "s", "threads": "o", "procs": "^"}
EXEC_LINE = {"seq": ":", "threads": "-", "procs": "--"}
POLICY_COLOR = {"block": "#2ca02c", "reject": "#9467bd", "caller-runs": "#ff7f0e"}
OPEN_LOOP = ("fixed", "poisson")


def load(r):
    """The load of a runs.csv row, with the defaults of rows older than
    schema 6: {queue, on_full, arrival, rate, chunksize}."""
    return {"queue": int(r.get("queue") or 0), "on_full": r.get("on_full") or "block",
            "arrival": r.get("arrival") or "batch", "rate": r.get("offered_rate"),
            "chunksize": int(r.get("chunksize") or 0)}


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


class Point:
    """One configuration (one config_id) and its repetitions."""

    def __init__(self, rows):
        self.rows = sorted(rows, key=lambda r: r.get("rep") or 0)
        r0 = self.rows[0]
        self.config_id = r0.get("config_id", "")
        self.executor = r0.get("executor", "")
        self.workers = r0.get("workers") or 1
        self.case = (r0.get("workload", ""), r0.get("params", ""))
        self.load = load(r0)
        self.rate = self.load["rate"]
        self.n = len(self.rows)
        self.p50 = pb.agg(self.rows, "latency_p50_ms")
        self.p99 = pb.agg(self.rows, "latency_p99_ms")
        self.tput = pb.agg(self.rows, "throughput")
        self.achieved = pb.agg(self.rows, "achieved_rate")
        self.lag = pb.agg(self.rows, "submit_lag_max_ms")
        self.rss = pb.agg(self.rows, None, lambda r: r["peak_rss_kb"] / 1024 if r.get("peak_rss_kb") else None)
        self.rejected = pb.agg(self.rows, None, lambda r: (r.get("tasks_rejected") or 0) / r["tasks"]
                               if r.get("tasks") else None)
        self.caller_ran = pb.agg(self.rows, None, lambda r: r.get("caller_ran") or 0)
        self.failed = sum(int(r.get("tasks_failed") or 0) for r in self.rows)

    def median_run(self):
        """The repetition whose p99 is the (lower) median: the run drawn."""
        rs = sorted(self.rows, key=lambda r: (r.get("latency_p99_ms") is None, r.get("latency_p99_ms") or 0))
        return rs[(len(rs) - 1) // 2]


def group(rows):
    """config_id -> Point, in first-seen order."""
    out = {}
    for r in rows:
        out.setdefault(r.get("config_id", ""), []).append(r)
    return {k: Point(v) for k, v in out.items()}


def service_ms(rows):
    """The task's own time, cpu_mean_ms + blocked_mean_ms (queue wait
    excluded), per run: an Agg, plus the mean over the runs."""
    vals = [r["cpu_mean_ms"] + r["blocked_mean_ms"] for r in rows
            if r.get("cpu_mean_ms") is not None and r.get("blocked_mean_ms") is not None]
    return pb.Agg(vals), (statistics.mean(vals) if vals else None)


def find_knee(points):
    """The knee of a rate curve (points sorted by offered rate): the first
    point whose median p99 exceeds KNEE_P99_FACTOR x the lowest rate's
    median p99, or whose median throughput is below KNEE_THROUGHPUT_SHARE of
    its offered rate.  (index, reason) or None when no point meets the rule."""
    if not points or not points[0].p99:
        return None
    base = points[0].p99.median
    for i, p in enumerate(points):
        why = []
        if p.p99 and p.p99.median > KNEE_P99_FACTOR * base:
            why.append("p99 %s ms > %g x %s ms" % (fmt(p.p99.median), KNEE_P99_FACTOR, fmt(base)))
        if p.tput and p.rate and p.tput.median < KNEE_THROUGHPUT_SHARE * p.rate:
            why.append("throughput %s = %.0f%% of the offered rate" % (fmt(p.tput.median),
                                                                        100 * p.tput.median / p.rate))
        if why:
            return i, " and ".join(why)
    return None


class Curve:
    """One executor's latency against offered rate: open-loop rows, queue 0,
    chunksize 0, of one (workload, params, executor, workers, arrival)."""

    def __init__(self, points, batch):
        self.points = sorted(points, key=lambda p: p.rate)
        p0 = self.points[0]
        self.executor, self.workers, self.case = p0.executor, p0.workers, p0.case
        self.arrival = p0.load["arrival"]
        self.batch = batch
        self.service, self.service_mean = service_ms(p0.rows)
        self.predicted = self.workers * 1000.0 / self.service_mean if self.service_mean else None
        # seq runs each task inside its submit: no open loop can beat its batch baseline.
        cands = [batch] if self.executor == "seq" and batch and batch.tput else [p for p in self.points if p.tput]
        self.measured = max(cands, key=lambda p: p.tput.median) if cands else None
        k = find_knee(self.points)
        self.knee = self.points[k[0]] if k else None
        self.knee_reason = k[1] if k else None
        self.base_p99 = p0.p99.median if p0.p99 else None
        under = self.points[:k[0]] if k else self.points[:-1]
        self.below = under[-1] if under else None
        self.above = self.points[-1]
        # The lowest rate already past capacity: the rule then finds the knee too late.
        self.starts_overloaded = bool(self.predicted and p0.rate >= self.predicted)

    def capacity(self):
        return self.measured.tput.median if self.measured else None

    def label(self):
        return "%s, %d worker%s" % (self.executor, self.workers, "" if self.workers == 1 else "s")


def rate_curves(rows):
    """[Curve] per (workload, params, executor, workers, arrival) of the
    open-loop rows with an unbounded queue and one submit per task."""
    pts = group(rows)
    batch = {}
    curves = {}
    for p in pts.values():
        ld = p.load
        if ld["queue"] or ld["chunksize"]:
            continue
        if ld["arrival"] == "batch":
            batch[(p.case, p.executor, p.workers)] = p
        elif ld["arrival"] in OPEN_LOOP and p.rate:
            curves.setdefault((p.case, p.executor, p.workers, ld["arrival"]), []).append(p)
    order = {ex: i for i, ex in enumerate(pb.EXECUTOR_ORDER)}
    out = [Curve(v, batch.get(k[:3])) for k, v in curves.items()]
    return sorted(out, key=lambda c: (c.case, order.get(c.executor, 99), c.workers, c.arrival))


class Overload:
    """The bounded queues under overload: every configuration with queue > 0
    (at the overload rate: the highest rate such rows ran at), and the
    unbounded queue (queue 0) at that rate from the rate curves when it ran."""

    def __init__(self, rows, curves):
        pts = [p for p in group(rows).values() if p.load["queue"] > 0 and p.load["chunksize"] == 0]
        rates = [p.rate for p in pts if p.rate]
        self.rate = max(rates) if rates else None
        pts = [p for p in pts if p.rate == self.rate]
        order = {ex: i for i, ex in enumerate(pb.EXECUTOR_ORDER)}
        pol = {"reject": 0, "block": 1, "caller-runs": 2}
        self.points = sorted(pts, key=lambda p: (order.get(p.executor, 99), p.workers,
                                                 pol.get(p.load["on_full"], 9), p.load["queue"]))
        self.curves = {(c.executor, c.workers): c for c in curves}
        self.refs = {}
        for c in curves:
            for p in c.points:
                if p.rate == self.rate and any(q.executor == c.executor for q in self.points):
                    self.refs[(c.executor, c.workers)] = p

    def series(self):
        """(executor, workers, on_full) -> [Point] by queue capacity."""
        out = {}
        for p in self.points:
            out.setdefault((p.executor, p.workers, p.load["on_full"]), []).append(p)
        return out

    def best(self, executor, workers, on_full=None):
        """The point with the lowest median p99 among those whose median
        throughput is within 5% of the best one's (of this executor, and of
        this policy when given).  (point, best throughput point) or None."""
        pts = [p for p in self.points if p.executor == executor and p.workers == workers and p.tput and p.p99
               and (on_full is None or p.load["on_full"] == on_full)]
        if not pts:
            return None
        top = max(pts, key=lambda p: p.tput.median)
        near = [p for p in pts if p.tput.median >= NEAR_BEST * top.tput.median]
        return min(near, key=lambda p: p.p99.median), top


def chunk_rows(rows):
    """[(executor, workers, case, {chunksize: Point})] for each case with
    chunksize >= 1 rows, with its chunksize 0 sibling (all submitted at once,
    unbounded queue) under key 0 when it ran."""
    pts = group(rows).values()
    out = {}
    for p in pts:
        if p.load["chunksize"] >= 1:
            out.setdefault((p.executor, p.workers, p.case), {})[p.load["chunksize"]] = p
    for p in pts:
        k = (p.executor, p.workers, p.case)
        if k in out and p.load["arrival"] == "batch" and not p.load["queue"] and not p.load["chunksize"]:
            out[k][0] = p
    order = {ex: i for i, ex in enumerate(pb.EXECUTOR_ORDER)}
    return [(k[0], k[1], k[2], v) for k, v in sorted(out.items(), key=lambda kv: (kv[0][2], order.get(kv[0][0], 99),
                                                                                   kv[0][1]))]


# -------------------------------------------------------------- the data

def read_timeline(path):
    """timeline.csv -> {(config_id, rep, sequence): [sample dicts]}."""
    out = {}
    for r in pb.read_csv(path):
        s = {k: pb.number(str(v)) if not isinstance(v, (int, float)) else v
             for k, v in r.items() if k not in ("config_id", "pin")}
        out.setdefault((r.get("config_id", ""), int(s.get("rep") or 0), int(s.get("sequence") or 0)), []).append(s)
    for v in out.values():
        v.sort(key=lambda s: s.get("t_s") or 0)
    return out


def run_key(r):
    return (r.get("config_id", ""), int(r.get("rep") or 0), int(r.get("sequence") or 0))


class Data:
    """A results folder's queue/ sub-folder, analysed once."""

    def __init__(self, path):
        self.path = path
        self.rows = pb.read_csv(os.path.join(path, "runs.csv"))
        self.timeline = read_timeline(os.path.join(path, "timeline.csv"))
        self.curves = rate_curves(self.rows)
        self.overload = Overload(self.rows, self.curves)
        self.chunks = chunk_rows(self.rows)

    def samples(self, row):
        return self.timeline.get(run_key(row), [])

    def peak_queued(self, point):
        """Median over the point's runs of the largest `queued` sample."""
        return pb.Agg(max(s.get("queued") or 0 for s in self.samples(r)) for r in point.rows if self.samples(r))

    def filled(self, point):
        """Whether the bounded queue filled in the median run: its policy
        acted (a submit rejected, or run by the caller), or its peak queued
        sample reached the bound (block: the samples, every sample_ms, are
        the only witness); unknown without samples counts as filled."""
        if point.rejected.median or point.caller_ran.median:
            return True
        pk = self.peak_queued(point)
        return not pk or pk.median >= point.load["queue"]

    def sample_ms(self):
        """The median interval between consecutive samples (--sample-ms)."""
        gaps = [1000 * (b["t_s"] - a["t_s"]) for ss in self.timeline.values() for a, b in zip(ss, ss[1:])
                if a.get("t_s") is not None and b.get("t_s") is not None]
        return median(gaps)


def queue_dir(folder):
    d = os.path.join(folder.path, "queue")
    return d if os.path.isfile(os.path.join(d, "runs.csv")) else None


def data_of(folder):
    """Data of the folder's queue/, or None when it has none."""
    d = queue_dir(folder)
    return Data(d) if d else None


# ------------------------------------------------------------- the report

def span(a, unit=""):
    """'781 (771..781)' or the median alone for one run."""
    if not a:
        return DASH
    if a.n == 1 or a.lo == a.hi:
        return fmt(a.median) + unit
    return "%s%s (%s..%s)" % (fmt(a.median), unit, fmt(a.lo), fmt(a.hi))


def count(a):
    """span() for whole numbers: '48 (26..48)'."""
    if not a:
        return DASH
    if a.n == 1 or a.lo == a.hi:
        return "%d" % a.median
    return "%d (%d..%d)" % (a.median, a.lo, a.hi)


def pct(a):
    if not a:
        return DASH
    if a.n == 1 or a.lo == a.hi:
        return "%.0f%%" % (100 * a.median)
    return "%.0f%% (%.0f..%.0f%%)" % (100 * a.median, 100 * a.lo, 100 * a.hi)


def cid(p):
    return "`%s`" % p.config_id


def queue_bound(capacity, budget_ms, service):
    """Q = C x (B - S): the queue whose full length, served at C tasks/s,
    keeps a task's queue wait within B - S (B, S in ms); None when B <= S."""
    if not capacity or budget_ms is None or service is None or budget_ms <= service:
        return None
    return capacity * (budget_ms - service) / 1000.0


def ms_text(ms):
    return "%g" % round(ms, 1) if ms else "?"


def how_measured(q):
    arrivals = sorted({load(r)["arrival"] for r in q.rows if load(r)["arrival"] in OPEN_LOOP})
    seeds = sorted({int(r["seed"]) for r in q.rows if r.get("seed") is not None and load(r)["arrival"] in OPEN_LOOP})
    cases = sorted({"%s `%s`" % (r.get("workload"), r.get("params")) for r in q.rows
                    if load(r)["arrival"] in OPEN_LOOP})
    reps = [p.n for p in group(q.rows).values()]
    sm = q.sample_ms()
    return ("From `queue/runs.csv` (%d runs of %d configurations) and `queue/timeline.csv`. An open loop: "
            "tasks arrive on a %s schedule (seed %s) that does not wait for the pool, and a task's latency runs "
            "from its *intended* arrival to its result, so a submitter held back by a full `block` queue, by "
            "`caller-runs` or by too few CPUs adds its lag to the latency instead of hiding it (wrk2's "
            "coordinated omission). Workload: %s. The executor's gauges were sampled every %s ms "
            "(timeline.csv). Every figure is the median over a configuration's repetitions (%s per "
            "configuration) with min..max over them in brackets; the config_id names the runs.csv rows."
            % (len(q.rows), len(reps), " / ".join(arrivals) or "no open-loop", ", ".join(map(str, seeds)) or DASH,
               "; ".join(cases) or DASH, ms_text(sm),
               ("%d" % reps[0] if min(reps) == max(reps) else "%d..%d" % (min(reps), max(reps))) if reps else "0"))


def rate_section(q, table):
    out = ["### Latency against arrival rate", ""]
    if not q.curves:
        return out + ["No open-loop rows with an unbounded queue (`poolbench sweep --rate LIST`): no rate curve.", ""]
    out += ["*Predicted capacity* = workers / S, S = the task's own time (`cpu_mean_ms + blocked_mean_ms`, the "
            "queue wait left out), the mean over the runs at the lowest offered rate. *Measured capacity* = the "
            "largest median throughput among the executor's runs at these rates (for seq, which runs each task "
            "inside its submit, its all-at-once baseline). "
            "*Knee* = the lowest offered rate at which the median p99 exceeds %g x the lowest rate's median p99, "
            "or the median throughput falls below %.0f%% of the offered rate; the capacity lies between it and "
            "the rate before." % (KNEE_P99_FACTOR, 100 * KNEE_THROUGHPUT_SHARE), ""]
    rows = []
    for c in q.curves:
        m = c.measured
        s_mean = (fmt(c.service_mean) + ("" if c.service.n == 1 else " (%s..%s)" % (fmt(c.service.lo), fmt(c.service.hi)))
                  if c.service_mean else DASH)
        rows.append([c.executor, str(c.workers), s_mean, fmt(c.predicted),
                     "%s (%s)" % (span(m.tput), "batch" if m.load["arrival"] == "batch" else "at %s/s" % fmt(m.rate))
                     if m else DASH,
                     ("%s/s: %s" % (fmt(c.knee.rate), c.knee_reason)) if c.knee else
                     "not reached up to %s/s" % fmt(c.points[-1].rate),
                     "%s at %s/s" % (span(c.below.p99), fmt(c.below.rate)) if c.below else DASH,
                     cid(m) if m else DASH])
    out += [table(["executor", "workers", "S (ms): mean (min..max)", "predicted capacity (tasks/s)", "measured capacity (tasks/s)",
                   "knee", "p99 under the knee (ms)", "measured capacity from"], rows), ""]
    for c in q.curves:
        if c.starts_overloaded:
            p0 = c.points[0]
            out += ["- %s: the lowest offered rate, %s/s, is already at or above its predicted capacity (%s/s): "
                    "its p99 there, %s ms, is %.0fx S, so the rule's knee comes late; the real one lies at or "
                    "below %s/s." % (c.label(), fmt(p0.rate), fmt(c.predicted), fmt(p0.p99.median),
                                      p0.p99.median / c.service_mean, fmt(p0.rate))]
    if any(c.starts_overloaded for c in q.curves):
        out.append("")
    rows = []
    for c in q.curves:
        for p in c.points:
            mark = " (knee)" if p is c.knee else ""
            rows.append([c.executor, fmt(p.rate) + mark, span(p.achieved), span(p.tput), span(p.p50), span(p.p99),
                         str(p.n), cid(p)])
    out += ["The curves (offered = the schedule's rate; achieved = the rate the submitter issued at; "
            "latency from the intended arrival):", "",
            table(["executor", "offered (tasks/s)", "achieved (tasks/s)", "throughput (tasks/s)", "p50 (ms)",
                   "p99 (ms)", "runs", "config_id"], rows), ""]
    return out


def overload_section(q, table):
    o = q.overload
    out = ["### Queue capacity under overload", ""]
    if not o.points:
        return out + ["No rows with a bounded queue (`poolbench sweep --queue LIST --on-full LIST`): no table.", ""]
    caps = {k: c.capacity() for k, c in o.curves.items()}
    times = ["%s %.1fx its measured capacity" % (ex, o.rate / cap) for (ex, _), cap in caps.items()
             if cap and any(p.executor == ex for p in o.points)]
    out += ["Offered %s tasks/s (%s). *rejected* = `tasks_rejected / tasks` (submits the full queue refused: "
            "neither ok nor failed, and not in the latency); *caller ran* = tasks the submitter ran itself "
            "(`caller-runs`); *lag* = `submit_lag_max_ms`, how far behind its schedule the submitter fell; "
            "*peak queued* = the largest `queued` gauge sample of a run (timeline.csv; the gauge counts a task a "
            "worker has taken from the queue as queued until it begins, so a sample may exceed the bound by up to "
            "one per worker); memory = `peak_rss_kb` "
            "of the parent, where the queue lives for both pools. *Q/C + S* = the latency of a task that finds "
            "the queue full, with C the measured capacity and S the task's time: the bound a `reject` queue "
            "keeps (the others' latency from arrival adds the submitter's lag). procs holds more than Q: up "
            "to `window` tasks per worker sent ahead, which the gauges count as running, not queued "
            "(executor.h), so its p99 under `reject` sits above Q/C + S by up to workers x window / C.%s"
            % (fmt(o.rate), ", ".join(times) or "capacity not measured", no_caller_runs(o)), ""]
    rows = []
    for p in o.points + list(o.refs.values()):
        c = o.curves.get((p.executor, p.workers))
        qq = p.load["queue"]
        bound = (qq / c.capacity() * 1000 + c.service_mean) if c and c.capacity() and c.service_mean and qq \
            and p.load["on_full"] == "reject" else None
        rows.append([p.executor, p.load["on_full"] if qq else "unbounded", str(qq) if qq else "0 (none)", str(p.n),
                     span(p.tput), span(p.p99), fmt(bound) if bound else DASH, pct(p.rejected),
                     count(p.caller_ran), span(p.lag), span(p.achieved), count(q.peak_queued(p)), span(p.rss), cid(p)])
    out += [table(["executor", "on_full", "queue", "runs", "throughput (tasks/s)", "p99 (ms)", "Q/C + S (ms)",
                   "rejected", "caller ran", "lag (ms)", "achieved (tasks/s)", "peak queued", "peak RSS (MiB)",
                   "config_id"], rows), ""]
    return out


def no_caller_runs(o):
    """The sweep runs no caller-runs on procs: say so where it is missing."""
    pols = {(p.executor, p.load["on_full"]) for p in o.points}
    if ("procs", "caller-runs") in pols or not any(ex == "procs" for ex, _ in pols):
        return ""
    return (" procs has no `caller-runs` rows: a process pool's task cannot run in the submitter (the sweep "
            "skips that combination).")


def chunk_section(q, table):
    out = ["### ex_map's chunksize", ""]
    if not q.chunks:
        return out + ["No rows with chunksize >= 1 (`poolbench sweep --chunksize LIST`): no table.", ""]
    out += ["Throughput of the same inputs submitted one `ex_submit` per task (chunksize 0, all at once) and "
            "through `ex_map` with chunksize inputs per hand-off; *vs 0* = median / the chunksize-0 median.", ""]
    rows = []
    for ex, w, case, by in q.chunks:
        base = by.get(0)
        for cs in sorted(by):
            p = by[cs]
            ratio = fmt(p.tput.median / base.tput.median) + "x" if base and base.tput and p.tput else DASH
            rows.append([ex, str(w), "%s `%s`" % case, str(cs), str(p.n), span(p.tput), ratio, cid(p)])
    return out + [table(["executor", "workers", "workload", "chunksize", "runs", "throughput (tasks/s)", "vs 0",
                         "config_id"], rows), ""]


def advice(q):
    """The "what to set" bullets, each figure with its config_ids."""
    out = []
    o = q.overload
    for c in q.curves:
        cap = c.capacity()
        if not cap:
            continue
        line = ("**%s**: capacity C = %s tasks/s measured (%s, %d runs, %s), predicted %d / %s ms = %s tasks/s. "
                % (c.label(), fmt(cap), cid(c.measured), c.measured.n, span(c.measured.tput), c.workers,
                   fmt(c.service_mean), fmt(c.predicted)))
        if c.executor == "seq":
            line += ("No queue to size: seq runs each task inside its submit, so an arrival above C waits in "
                     "the submitter (p99 %s ms at %s tasks/s)." % (fmt(c.points[0].p99.median), fmt(c.points[0].rate))
                     if c.points[0].p99 else "No queue to size: seq runs each task inside its submit.")
        elif c.knee and c.base_p99:
            budget = KNEE_P99_FACTOR * c.base_p99
            qb = queue_bound(cap, budget, c.service_mean)
            line += ("Knee at %s tasks/s (%s; %s). For a p99 budget B = the knee's threshold, %g x the %s ms p99 "
                     "at %s tasks/s = %s ms, a queue bound Q = C x (B - S) = %s x (%s - %s) ms = **%s tasks** "
                     "keeps a task's queue wait within B - S; a longer queue only stores latency."
                     % (fmt(c.knee.rate), c.knee_reason, cid(c.knee), KNEE_P99_FACTOR, fmt(c.base_p99),
                        fmt(c.points[0].rate), fmt(budget), fmt(cap), fmt(budget), fmt(c.service_mean),
                        "%d" % qb if qb else DASH))
            line += check_bound(q, c, qb, budget)
        else:
            line += "No knee up to %s tasks/s: offer more to find it." % fmt(c.points[-1].rate)
        out.append(line)
    by_ex = {}
    for p in o.points:
        by_ex.setdefault((p.executor, p.workers), []).append(p)
    for (ex, w), pts in by_ex.items():
        c = o.curves.get((ex, w))
        times = " (%.1fx C)" % (o.rate / c.capacity()) if c and c.capacity() else ""
        full = [p for p in pts if q.filled(p)]
        parts = [policy_summary(pol, [p for p in full if p.load["on_full"] == pol], c)
                 for pol in ("reject", "block", "caller-runs")]
        parts = [x for x in parts if x]
        never = [p for p in pts if not q.filled(p)]
        if never:
            parts.append("never full in a run (no submit refused or run by the caller, peak queued below the bound), so not counted above: %s." % ", ".join(
                "%s queue %d (peak %s)" % (p.load["on_full"], p.load["queue"], count(q.peak_queued(p)))
                for p in never))
        out.append("**%s, %d workers, under %s tasks/s%s**; figures from the overload table's rows (its config_id "
                   "column), over the queue sizes that filled:" % (ex, w, fmt(o.rate), times))
        out += ["  - " + x for x in parts]
        b = o.best(ex, w)
        pick = ""
        if b:
            p, top = b
            pick = (" **Best p99 with throughput within %.0f%% of the best (%s tasks/s, %s): %s with queue %d, p99 "
                    "%s ms at %s tasks/s** (%s)." % (100 * (1 - NEAR_BEST), fmt(top.tput.median), cid(top),
                                                    p.load["on_full"], p.load["queue"], fmt(p.p99.median),
                                                    fmt(p.tput.median), cid(p)))
            if p.load["on_full"] == "reject" and p.rejected:
                pick += " It refused %.0f%% of the submits to keep that latency." % (100 * p.rejected.median)
            if top.load["on_full"] == "caller-runs" and top.caller_ran and top.caller_ran.median:
                pick += (" That throughput counts the %d tasks the submitter ran itself while the queue was full "
                         "(a worker beside the pool's %d)." % (top.caller_ran.median, w))
            per = []
            for pol in ("reject", "block", "caller-runs"):
                bp = o.best(ex, w, pol)
                if bp:
                    per.append("%s: queue %d (p99 %s ms)" % (pol, bp[0].load["queue"], fmt(bp[0].p99.median)))
            if per:
                pick += " By the same rule within each policy: %s." % "; ".join(per)
        ref = o.refs.get((ex, w))
        unb = (" Unbounded (queue 0) at this rate: p99 %s ms, peak queued %s (%s)."
               % (fmt(ref.p99.median), fmt(q.peak_queued(ref).median) if q.peak_queued(ref) else DASH, cid(ref))
               if ref else "")
        if pick or unb:
            out.append("  - " + (pick + unb).strip())
    return out


def check_bound(q, c, qb, budget):
    """The advice checked against the overload rows: the largest reject
    queue at or below Q that filled, and its p99 against the budget."""
    pts = [p for p in q.overload.points if p.executor == c.executor and p.workers == c.workers and p.p99
           and p.load["on_full"] == "reject" and qb and p.load["queue"] <= qb and q.filled(p)]
    if not pts:
        return ""
    p = max(pts, key=lambda p: p.load["queue"])
    return (" Measured under overload: `reject` with queue %d kept p99 at %s ms, %s B (%s)."
            % (p.load["queue"], span(p.p99), "within" if p.p99.median <= budget else "above", cid(p)))


def between(pts, val, f=fmt, unit=""):
    """'9.68..170 ms' over the points' medians (one value when they agree)."""
    vals = [v for v in (val(p) for p in pts) if v is not None]
    if not vals:
        return DASH
    lo, hi = f(min(vals)), f(max(vals))
    return (lo if lo == hi else "%s..%s" % (lo, hi)) + unit


def policy_summary(pol, pts, c):
    """What one on_full policy did under the overload, over its queue sizes."""
    if not pts:
        return None
    qs = "queue %s" % between(pts, lambda p: p.load["queue"], str)
    p99 = between(pts, lambda p: p.p99.median if p.p99 else None, unit=" ms")
    lag = between(pts, lambda p: p.lag.median if p.lag else None, unit=" ms")
    ach = between(pts, lambda p: p.achieved.median if p.achieved else None)
    if pol == "reject":
        bound = between(pts, lambda p: p.load["queue"] / c.capacity() * 1000 + c.service_mean
                        if c and c.capacity() and c.service_mean else None, unit=" ms")
        return ("*reject* bounds the latency at the cost of the work refused: p99 %s with %s (Q/C + S: %s), "
                "%s of the submits rejected; the submitter kept its schedule (lag %s)."
                % (p99, qs, bound, between(pts, lambda p: 100 * p.rejected.median if p.rejected else None,
                                           lambda v: "%.0f" % v, "%"), lag))
    if pol == "block":
        return ("*block* bounds memory (peak queued = the queue), but the latency from arrival grows with the "
                "overload: p99 %s with %s, the submitter fell up to %s behind and issued %s of %s tasks/s."
                % (p99, qs, lag, ach, fmt(pts[0].rate)))
    return ("*caller-runs* throttles the producer: the submitter ran %s tasks itself and issued %s of %s tasks/s "
            "(lag %s); p99 %s with %s." % (between(pts, lambda p: p.caller_ran.median if p.caller_ran else None,
                                                  lambda v: "%d" % v), ach, fmt(pts[0].rate), lag, p99, qs))


def failures(q):
    failed = [p for p in group(q.rows).values() if p.failed]
    bad = [r for r in q.rows if r.get("digest_ok") == 0]
    rej = sum(int(r.get("tasks_rejected") or 0) for r in q.rows)
    txt = ("Failed tasks in queue/: %s. Digest mismatches: %s. Rejected submits (%d over the folder) are not "
           "failures: such rows have no digest (`digest_ok` empty)."
           % ("; ".join("%s: %d" % (cid(p), p.failed) for p in failed) or "none",
              "; ".join("`%s` rep %s" % (r.get("config_id"), r.get("rep")) for r in bad) or "none", rej))
    return txt


def section(folder, table, embed=lambda kind: []):
    """REPORT.md lines of the section; table(header, rows) is report.py's,
    embed(kind) the lines that show the charts of that kind."""
    out = ["## Queue size, backpressure and arrival rate", ""]
    q = data_of(folder)
    if q is None:
        return out + ["No `queue/` sub-folder in this results folder (make bench's queue step writes it): no rate "
                      "curve, queue-capacity table or queue-size advice.", ""]
    if not q.rows:
        return out + ["`queue/runs.csv` has no rows.", ""]
    out += [how_measured(q), "", failures(q), ""]
    out += rate_section(q, table) + embed("queue-rate") + embed("queue-timeline")
    out += overload_section(q, table) + embed("queue-capacity")
    out += chunk_section(q, table)
    adv = advice(q)
    out += ["### Queue size: what to set", ""]
    if adv:
        out += [a if a.startswith("  - ") else "- " + a for a in adv] + [""]
    else:
        out += ["No measured capacity: no advice.", ""]
    return out


# ------------------------------------------------------------- the charts

def errorbar(ax, xs, aggs, **kw):
    pts = [(x, a) for x, a in zip(xs, aggs) if a]
    if not pts:
        return
    ax.errorbar([x for x, _ in pts], [a.median for _, a in pts],
                yerr=[[a.median - a.lo for _, a in pts], [a.hi - a.median for _, a in pts]],
                capsize=2.5, elinewidth=0.8, markersize=5, linewidth=1.5, **kw)


def rate_chart(plotter, q):
    curves = q.curves
    if not curves:
        plotter.skip("queue-rate", "", "no open-loop rows with an unbounded queue in queue/runs.csv")
        return
    fig, axes = plotter.panels(2, width=5.4, height=4.0, ncols=2)
    lat, thr = axes
    nmax = max(p.n for c in curves for p in c.points)
    for c in curves:
        col = EXEC_COLOR.get(c.executor, "#2ca02c")
        mk = EXEC_MARKER.get(c.executor, "D")
        xs = [p.rate for p in c.points]
        errorbar(lat, xs, [p.p99 for p in c.points], color=col, marker=mk, linestyle="-",
                 label="%s: p99" % c.label())
        errorbar(lat, xs, [p.p50 for p in c.points], color=col, marker=mk, linestyle=":", alpha=0.6,
                 markerfacecolor="white", label="%s: p50" % c.label())
        errorbar(thr, xs, [p.tput for p in c.points], color=col, marker=mk, linestyle="-", label="_")
        for ax in axes:
            if c.predicted:
                ax.axvline(c.predicted, color=col, linestyle="--", linewidth=1, alpha=0.7,
                           label="%s: predicted capacity %s/s" % (c.executor, fmt(c.predicted)))
        if c.knee:
            lat.plot([c.knee.rate], [c.knee.p99.median], linestyle="none", marker="o", markersize=15,
                     markerfacecolor="none", markeredgecolor="black", markeredgewidth=1.3,
                     label="knee (rule below)")
            thr.plot([c.knee.rate], [c.knee.tput.median], linestyle="none", marker="o", markersize=15,
                     markerfacecolor="none", markeredgecolor="black", markeredgewidth=1.3, label="knee (rule below)")
    rates = sorted({p.rate for c in curves for p in c.points})
    top, low = rates[-1], rates[0]
    wide = top / low >= 6  # a log rate axis, so that the rates below the knee do not crowd together
    lo_x = low / 1.25 if wide else 0
    thr.plot([lo_x, top * 1.05], [lo_x, top * 1.05], color="#7f7f7f", linestyle=":", linewidth=1.2,
             label="throughput = offered rate")
    lat.set_yscale("log")
    lat.set_ylabel("task latency from intended arrival (ms, log)")
    lat.set_title("p99 (solid) and p50 (dotted) latency")
    thr.set_ylabel("throughput (tasks/s)")
    thr.set_title("throughput")
    for ax in axes:
        ax.set_xlabel("offered rate (tasks/s%s)" % (", log" if wide else ""))
        if wide:
            ax.set_xscale("log")
            ax.set_xticks(rates)
            ax.set_xticklabels(["%g" % r for r in rates], rotation=45 if len(rates) > 6 else 0)
            ax.minorticks_off()
            ax.set_xlim(low / 1.15, top * 1.15)
        else:
            ax.set_xlim(0, top * 1.08)
    if wide:
        thr.set_yscale("log")
        thr.set_ylabel("throughput (tasks/s, log)")
        ticks = [m * 10 ** e for e in range(0, 8) for m in (1, 2, 5)]
        ymin, ymax = thr.get_ylim()
        thr.set_yticks([t for t in ticks if ymin <= t <= ymax])
        thr.set_yticklabels(["%g" % t for t in ticks if ymin <= t <= ymax])
        thr.minorticks_off()
    else:
        thr.set_ylim(0, top * 1.1)
    h, lb = plotter.legend_of(axes)
    title = "Latency and throughput against arrival rate (queue/)"
    foot = ("Point: median over %d runs per rate (runs.csv of queue/: open loop, %s arrivals, unbounded queue); "
            "bar: min..max. Latency runs from each task's intended arrival. Dashed vertical line: predicted "
            "capacity = workers / (cpu_mean_ms + blocked_mean_ms) at the lowest rate. Knee: the lowest rate whose "
            "median p99 exceeds %g x the lowest rate's, or whose throughput is below %.0f%% of the offered rate."
            % (nmax, "/".join(sorted({c.arrival for c in curves})), KNEE_P99_FACTOR, 100 * KNEE_THROUGHPUT_SHARE))
    plotter.finish(fig, title, foot, h, lb)
    plotter.save(fig, "queue-rate", "queue_rate", "", title,
                 "p50/p99 latency (log) and throughput against the offered rate per executor, with the capacity "
                 "predicted from the measured per-task time (dashed) and the knee circled; median of %d runs, "
                 "bar = min..max." % nmax)


def timeline_chart(plotter, q):
    curves = [c for c in q.curves if c.executor != "seq"]
    panels = []
    for c in curves:
        for p, where in ((c.below, "below the knee"), (c.above, "the highest rate")):
            if p is None:
                continue
            r = p.median_run()
            ss = q.samples(r)
            if ss:
                panels.append((c, p, where, r, ss))
    if not panels:
        plotter.skip("queue-timeline", "", "no timeline.csv samples for a pool's open-loop run")
        return
    fig, axes = plotter.panels(len(panels), width=4.6, height=2.9, ncols=2)
    for ax, (c, p, where, r, ss) in zip(axes, panels):
        t = [1000 * s["t_s"] for s in ss]
        ax.fill_between(t, [s.get("queued") or 0 for s in ss], step="post", color="#ff7f0e", alpha=0.35,
                        label="queued (accepted, not begun)")
        ax.step(t, [s.get("running") or 0 for s in ss], where="post", color=EXEC_COLOR.get(c.executor, "#2ca02c"),
                linewidth=1.4, label="running (in flight)")
        ax.axhline(c.workers, color="#7f7f7f", linestyle=":", linewidth=1.2, label="workers")
        ax.set_title("%s: %s/s offered, %s\n(rep %s, p99 %s ms)" % (
            c.label(), fmt(p.rate), where, r.get("rep"), fmt(r.get("latency_p99_ms"))))
        ax.set_xlabel("time since the first submit (ms)")
        ax.set_ylabel("tasks")
        ax.set_ylim(bottom=0)
    h, lb = plotter.legend_of(axes)
    sm = q.sample_ms()
    title = "Queue depth and tasks in flight over a run (queue/timeline.csv)"
    foot = ("Gauges (ex_executor_stats) sampled every %s ms; per panel the run with the median p99 among its "
            "repetitions, joined to runs.csv on config_id, rep and sequence. Below: the highest offered rate under "
            "the knee; the other: the highest offered rate. procs counts a task sent ahead to a busy worker "
            "(its window) as running." % ms_text(sm))
    plotter.finish(fig, title, foot, h, lb)
    plotter.save(fig, "queue-timeline", "queue_timeline", "", title,
                 "queue depth and tasks in flight over time for a run below the knee and one at the highest "
                 "offered rate, per pool (timeline.csv, sampled every %s ms)." % ms_text(sm))


def capacity_chart(plotter, q):
    o = q.overload
    if not o.points:
        plotter.skip("queue-capacity", "", "no rows with a bounded queue in queue/runs.csv")
        return
    fig, axes = plotter.panels(3, width=4.2, height=3.6, ncols=3)
    panels = ((lambda p: p.tput, "throughput (tasks/s)"), (lambda p: p.p99, "p99 latency (ms, log)"),
              (lambda p: p.rss, "peak RSS of the parent (MiB)"))
    qs = sorted({p.load["queue"] for p in o.points})
    nmax = max(p.n for p in o.points)
    for (ex, w, pol), pts in o.series().items():
        pts = sorted(pts, key=lambda p: p.load["queue"])
        for ax, (val, _) in zip(axes, panels):
            nudge = {"reject": 0.94, "block": 1.0, "caller-runs": 1.06}.get(pol, 1.0)
            errorbar(ax, [p.load["queue"] * nudge for p in pts], [val(p) for p in pts],
                     color=POLICY_COLOR.get(pol, "#2ca02c"), marker=EXEC_MARKER.get(ex, "D"),
                     linestyle=EXEC_LINE.get(ex, "-"), label="%s, %s" % (ex, pol))
    for (ex, w), ref in o.refs.items():
        for ax, (val, _) in zip(axes, panels):
            a = val(ref)
            if a:
                ax.axhline(a.median, color=EXEC_COLOR.get(ex, "#2ca02c"), linestyle=EXEC_LINE.get(ex, "-"),
                           linewidth=1, alpha=0.7, label="%s, unbounded queue (queue 0)" % ex)
    for ax, (_, name) in zip(axes, panels):
        ax.set_xscale("log", base=2)
        ax.set_xticks(qs)
        ax.set_xticklabels([str(x) for x in qs])
        ax.minorticks_off()
        ax.set_xlabel("queue capacity (tasks, log)")
        ax.set_ylabel(name)
        ax.set_title(name.split(" (")[0])
    axes[1].set_yscale("log")
    axes[0].set_ylim(bottom=0)
    axes[2].set_ylim(bottom=0)
    h, lb = plotter.legend_of(axes)
    title = "Bounded queues under overload: %s tasks/s offered (queue/)" % fmt(o.rate)
    foot = ("Point: median over %d runs per configuration; bar: min..max. Colour: on_full policy; line style and "
            "marker: executor. Throughput counts the tasks the pool took (rejected ones left out); p99 from each "
            "task's intended arrival, over the accepted tasks. Horizontal lines: the unbounded queue at the same "
            "rate, when it ran." % nmax)
    plotter.finish(fig, title, foot, h, lb)
    plotter.save(fig, "queue-capacity", "queue_capacity", "", title,
                 "throughput, p99 latency and peak memory against queue capacity (log) under %s tasks/s, one line "
                 "per executor x on_full policy; median of %d runs, bar = min..max." % (fmt(o.rate), nmax))


def chart(plotter, plt):
    """The three charts of queue/, or one skip when the folder has none."""
    q = data_of(plotter.f)
    if q is None or not q.rows:
        plotter.skip("queue", "", "no queue/ sub-folder with runs (make bench's queue step)")
        return
    rate_chart(plotter, q)
    timeline_chart(plotter, q)
    capacity_chart(plotter, q)
