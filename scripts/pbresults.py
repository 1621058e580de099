"""Reading a poolbench results folder (results/README.md: runs.csv schema 4;
folders of schemas 1 to 3 read too, their missing columns as empty).

Shared by plot.py, report.py and compare.py so that the three agree on what
a configuration is, how repetitions are aggregated, how two configurations
are compared (a Mann-Whitney U test: compare_samples) and how numbers print.
Standard library only, except compare_samples, which needs scipy (call
require(["scipy"]) first). Every aggregate is the median over the measured
repetitions of one configuration (the rows of runs.csv sharing workload,
params, executor, workers and pin), with min..max over those rows as its
range: nothing is computed from numbers that are not in the folder.
"""

import csv
import json
import math
import os
import statistics
import subprocess
import sys

# A difference is significant below this p-value (two-sided).
ALPHA = 0.05

EXECUTOR_ORDER = ["seq", "threads", "procs", "py-seq", "py-threads", "py-procs"]

# runs.csv columns read as numbers; everything else stays a string.
NUMERIC = {
    "schema_version", "workers", "rep", "tasks", "seed", "wall_s", "startup_s",
    "throughput", "tasks_ok", "tasks_failed", "check_failed", "digest_ok",
    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_mean_ms",
    "latency_max_ms", "wait_mean_ms", "cpu_mean_ms", "blocked_mean_ms",
    "ipc_mean_ms", "task_cpu_s", "cpu_util", "user_s", "sys_s", "peak_rss_kb",
    "peak_rss_children_kb", "nvcsw", "nivcsw", "cores", "distinct_cpus",
    "workers_replaced", "cpu_over_wall", "cpu_under_zero", "baseline_wall_s", "speedup", "efficiency",
    # schema 4
    "rounds", "min_rounds", "min_time_s", "rule_met", "warmup_tasks", "warmup_s",
    "sequence", "digest_tasks", "loadavg_1m", "procs_running", "capacity_cpus",
    "steal_pct", "iowait_pct", "others_cpu_s", "noise_window_s", "baseline_throughput",
    # schema 6: the load (absent before: batch, unbounded queue, one submit per task)
    "queue", "offered_rate", "achieved_rate", "submit_lag_max_ms", "chunksize", "tasks_rejected",
    "caller_ran",
    # summary.csv
    "reps", "wall_median_s", "wall_ci_low_s", "wall_ci_high_s", "ci_level",
    "wall_cv", "throughput_median", "speedup_median", "efficiency_median",
    "latency_p95_median_ms",
}


def warn(msg):
    print("poolbench: " + msg, file=sys.stderr)


def _imports(python, modules):
    code = "import " + ", ".join(modules)
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def require(modules, what):
    """Makes sure this interpreter imports every module in `modules`: if it
    does not, runs the calling script again with one that does
    ($POOLBENCH_PYTHON, Debian's /usr/bin/python3, then python3 on the PATH;
    the first without the modules is often a pyenv build), or exits 1 with
    one line naming the missing modules and the Debian packages."""
    missing = []
    for m in modules:
        try:
            __import__(m)
        except ImportError:
            missing.append(m)
    if not missing:
        return
    if not os.environ.get("POOLBENCH_REEXEC"):
        here = os.path.realpath(sys.executable)
        cands = [os.environ.get("POOLBENCH_PYTHON"), "/usr/bin/python3"]
        for d in os.environ.get("PATH", "").split(os.pathsep):
            cands.append(os.path.join(d, "python3"))
        for py in cands:
            if py and os.access(py, os.X_OK) and os.path.realpath(py) != here and _imports(py, modules):
                os.environ["POOLBENCH_REEXEC"] = "1"
                os.execv(py, [py] + sys.argv)
    print("poolbench: %s needs %s: no python3 here imports %s (apt-get install %s)"
          % (what, ", ".join(missing), ", ".join(missing),
             " ".join("python3-" + m for m in missing)), file=sys.stderr)
    sys.exit(1)


def number(text):
    """A float from a CSV cell, None when empty or not a finite number."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def read_csv(path):
    """Rows of a CSV file as dicts, NUMERIC columns converted; [] if absent."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row = {}
            for k, v in raw.items():
                if k is None:
                    continue
                row[k] = number(v) if k in NUMERIC else (v or "")
            for k in ("workers", "rep", "tasks", "rounds", "sequence"):
                if row.get(k) is not None:
                    row[k] = int(row[k])
            row.setdefault("pin", "none")
            row["pin"] = row["pin"] or "none"
            rows.append(row)
    return rows


def read_json(path):
    """A JSON file's value, None if absent or unreadable (with a warning)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        warn("%s: unreadable JSON (%s); ignored" % (path, e))
        return None


def read_jsonl(path):
    """Objects of a JSON-lines file ([] if absent); bad lines are skipped."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                warn("%s:%d: not JSON; skipped" % (path, n))
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def parse_params(text):
    """'a=1,b=x' -> {'a': '1', 'b': 'x'} in order (a piece without '='
    belongs to the previous value, so a value may contain a comma)."""
    out = {}
    last = None
    for piece in (text or "").split(","):
        if "=" in piece:
            k, v = piece.split("=", 1)
            out[k] = v
            last = k
        elif last is not None:
            out[last] += "," + piece
    return out


def param_number(params_text, key):
    v = parse_params(params_text).get(key)
    return number(v) if v is not None else None


class Folder:
    """Everything in one results folder, loaded once."""

    def __init__(self, path):
        self.path = path
        self.runs = read_csv(os.path.join(path, "runs.csv"))
        self.summary = read_csv(os.path.join(path, "summary.csv"))
        self.machine = read_json(os.path.join(path, "machine.json"))
        if not isinstance(self.machine, dict):
            self.machine = {}
        self.calibrate = read_json(os.path.join(path, "calibrate.json"))
        self.hyperfine = read_json(os.path.join(path, "hyperfine.json"))
        self.advise = read_json(os.path.join(path, "advise.json"))
        self.overhead = read_jsonl(os.path.join(path, "overhead.jsonl"))
        self.summary_by_id = {r.get("config_id"): r for r in self.summary}
        self.configs = group_configs(self.runs)

    def cases(self):
        """(workload, kind, params) in the order runs.csv first shows them."""
        seen = []
        for r in self.runs:
            c = (r.get("workload", ""), r.get("workload_kind", ""), r.get("params", ""))
            if c not in seen:
                seen.append(c)
        return seen

    def workloads(self):
        """workload -> (kind, [params, ...]) in first-seen order."""
        out = {}
        for wl, kind, params in self.cases():
            out.setdefault(wl, (kind, []))[1].append(params)
        return out

    def configs_of(self, workload, params):
        """Configurations of one case, ordered executor, pin, workers."""
        keys = [k for k in self.configs if k[0] == workload and k[1] == params]
        return sorted(keys, key=config_sort_key)

    def pins(self):
        return sorted({r["pin"] for r in self.runs})

    def online_cpus(self):
        """CPUs the runs saw (runs.csv cores), else machine.json pus/cores."""
        vals = [r.get("cores") for r in self.runs if r.get("cores")]
        if vals:
            return int(statistics.median(vals))
        for k in ("pus", "cores"):
            v = self.machine.get(k)
            if isinstance(v, (int, float)) and v > 0:
                return int(v)
        return None

    def host(self):
        h = self.machine.get("host")
        if not h and self.runs:
            h = self.runs[0].get("host")
        return h or "unknown host"

    def machine_line(self):
        """'host vm, AMD EPYC, 2 cores / 2 PUs' for chart titles."""
        m = self.machine
        cpu = clean_text(m.get("cpu_model")) or "unknown CPU"
        cores = m.get("cores")
        pus = m.get("pus")
        if cores is None:
            cores = self.online_cpus()
        if cores is None:
            cpus = "unknown cores"
        elif pus is not None and pus != cores:
            cpus = "%s cores / %s PUs" % (cores, pus)
        else:
            cpus = "%s cores" % cores
        vm = ""
        if m.get("is_vm") is True:
            vm = ", VM (%s)" % m.get("virtualization") if m.get("virtualization") else ", VM"
        return "host %s, %s, %s%s" % (self.host(), cpu, cpus, vm)


def clean_text(v):
    """'AMD EPYC Processor    ' -> 'AMD EPYC Processor': /proc and hwloc pad
    the CPU model with blanks."""
    return " ".join(str(v).split()) if v is not None else v


def config_sort_key(k):
    wl, params, ex, workers, pin = k
    rank = EXECUTOR_ORDER.index(ex) if ex in EXECUTOR_ORDER else len(EXECUTOR_ORDER)
    return (wl, params, rank, ex, pin != "none", pin, workers)


def group_configs(rows):
    """(workload, params, executor, workers, pin) -> rows sorted by rep."""
    out = {}
    for r in rows:
        k = (r.get("workload", ""), r.get("params", ""), r.get("executor", ""),
             r.get("workers") or 1, r.get("pin", "none"))
        out.setdefault(k, []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r.get("rep") or 0)
    return out


class Agg:
    """Median and min..max of one column over a configuration's runs."""

    __slots__ = ("median", "lo", "hi", "n")

    def __init__(self, values):
        vals = [v for v in values if v is not None]
        self.n = len(vals)
        if vals:
            self.median = statistics.median(vals)
            self.lo = min(vals)
            self.hi = max(vals)
        else:
            self.median = self.lo = self.hi = None

    def __bool__(self):
        return self.n > 0


def agg(rows, column, fn=None):
    """Agg of rows[column] (or of fn(row) when fn is given)."""
    if fn is None:
        return Agg(r.get(column) for r in rows)
    return Agg(fn(r) for r in rows)


def varied_keys(params_list):
    """Parameter keys whose value differs between the given params strings."""
    dicts = [parse_params(p) for p in params_list]
    keys = []
    for d in dicts:
        for k in d:
            if k not in keys:
                keys.append(k)
    return [k for k in keys if len({d.get(k) for d in dicts}) > 1]


def short_params(params, keys=None, skip_empty=True):
    """'span=100000' from the params string, restricted to keys if given;
    empty-valued parameters (url='') are left out."""
    d = parse_params(params)
    items = [(k, v) for k, v in d.items()
             if (keys is None or k in keys) and not (skip_empty and v == "")]
    return ", ".join("%s=%s" % kv for kv in items)


def series_label(executor, pin, several_pins):
    return "%s, pin=%s" % (executor, pin) if several_pins else executor


def fmt(x):
    """Numbers in tables and sentences: 4 significant digits at most.
    >= 100: no decimals; >= 10: one; >= 1: two; below: %.3g."""
    if x is None:
        return "\u2013"
    a = abs(x)
    if a >= 100:
        return "%.0f" % x
    if a >= 10:
        return "%.1f" % x
    if a >= 1:
        return "%.2f" % x
    return "%.3g" % x


def slug(text):
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "x"


# -- calibrate.json --------------------------------------------------------
#
# poolbench calibrate writes {"schema_version": 1, "measures": [{"name",
# "unit": "ns", "skipped", "median", "p5", "p95", "min", "max", "mean", ...,
# "reps", "iters", "pinning", "what", "note"}]}. The reader also accepts
# stats named with a unit suffix ("median_ns"), a "measurements"/"results"
# list, or {"<name>": {...}}. Everything is returned in ns.

UNIT_NS = (("_ns", 1.0), ("_us", 1e3), ("_ms", 1e6), ("_s", 1e9))
UNIT_SCALE = {"ns": 1.0, "us": 1e3, "\u00b5s": 1e3, "ms": 1e6, "s": 1e9}
STATS = ["median", "mean", "p50", "p5", "p95", "p99", "min", "max", "stddev", "ci_low", "ci_high", "value"]
STAT_ORDER = STATS


def _unit(key):
    for suffix, scale in UNIT_NS:
        if key.endswith(suffix):
            return key[: -len(suffix)], scale
    return None, None


def _stats(obj):
    """Time statistics of one measure, in ns."""
    out = {}
    scale = UNIT_SCALE.get(str(obj.get("unit", "")).strip())
    for k, v in obj.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if scale is not None and k in STATS:
            out[k] = float(v) * scale
            continue
        stem, sc = _unit(k)
        if stem is not None and (stem in STATS or stem == ""):
            out[stem or "value"] = float(v) * sc
    return out


def _item(name, obj):
    return {"name": str(name), "description": obj.get("what") or obj.get("description") or "",
            "pinning": obj.get("pinning") or "", "note": obj.get("note") or "",
            "skipped": obj.get("skipped") is True, "stats": _stats(obj),
            "reps": obj.get("reps"), "iters": obj.get("iters"), "samples": obj.get("samples")}


def calibration(obj):
    """[{'name', 'description', 'pinning', 'note', 'skipped', 'stats': {stat: ns},
    'reps', 'iters', 'samples'}] from calibrate.json's value."""
    if not isinstance(obj, dict):
        return []
    for key in ("measures", "measurements", "results", "calibration", "items"):
        if isinstance(obj.get(key), list):
            return [_item(it["name"], it) for it in obj[key]
                    if isinstance(it, dict) and it.get("name") and (_stats(it) or it.get("skipped") is True)]
    items = []
    for k, v in obj.items():
        if isinstance(v, dict) and _stats(v):
            items.append(_item(k, v))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            stem, scale = _unit(k)
            if stem:
                items.append(_item(stem, {"value_ns": float(v) * scale}))
    return items


def calibration_references(items, kind):
    """[(name, ns, stat)] of the round trips to draw as reference lines:
    kind 'pipe' (pipe round trips between processes) or 'handoff' (thread
    hand-off: condition-variable round trips), median preferred."""
    out = []
    for it in items:
        n = it["name"].lower()
        if it["skipped"] or "syscall" in n:
            continue
        if kind == "pipe":
            ok = "pipe" in n and ("rtt" in n or "round" in n)
        else:
            ok = "handoff" in n or "hand_off" in n or "hand-off" in n or n.startswith("cond")
        if not ok:
            continue
        for stat in ("median", "p50", "mean", "value"):
            if stat in it["stats"]:
                out.append((it["name"], it["stats"][stat], stat))
                break
    return out


def hyperfine_results(obj):
    """hyperfine --export-json results with a non-empty times list."""
    if not isinstance(obj, dict) or not isinstance(obj.get("results"), list):
        return []
    out = []
    for r in obj["results"]:
        if isinstance(r, dict) and isinstance(r.get("times"), list) and r["times"]:
            out.append(r)
    return out


# -- comparing two configurations ---------------------------------------------


def mann_whitney(a, b):
    """Two-sided Mann-Whitney U test of samples a and b: (p, method, U) or
    None when a side has fewer than 2 values. Exact (the permutation
    distribution of U) when no value is tied and each side has at most 50
    values; otherwise the normal approximation with tie and continuity
    corrections. scipy.stats.mannwhitneyu does the arithmetic."""
    from scipy.stats import mannwhitneyu
    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) < 2 or len(b) < 2:
        return None
    ties = len(set(a) | set(b)) < len(a) + len(b)
    method = "exact" if not ties and max(len(a), len(b)) <= 50 else "asymptotic"
    res = mannwhitneyu(a, b, alternative="two-sided", method=method)
    return float(res.pvalue), method, float(res.statistic)


def cv_pct(values):
    """Coefficient of variation in % (sample stddev / mean), None if < 2."""
    v = [x for x in values if x is not None]
    if len(v) < 2 or not statistics.mean(v):
        return None
    return 100.0 * statistics.stdev(v) / abs(statistics.mean(v))


def spread_pct(values):
    """The run-to-run spread in %: 1.4826 x the median absolute deviation /
    the median (for normal data this estimates the coefficient of variation,
    and one outlying run does not inflate it). None if < 2 values."""
    v = [x for x in values if x is not None]
    if len(v) < 2 or not statistics.median(v):
        return None
    med = statistics.median(v)
    return 100.0 * 1.4826 * statistics.median(abs(x - med) for x in v) / abs(med)


def fmt_p_value(p):
    """A p-value alone: '0.0079', '0.056', '< 0.0001', 'n/a' (two significant digits)."""
    if p is None:
        return "n/a"
    return "< 0.0001" if p < 1e-4 else "%.2g" % p


def fmt_p(p):
    """p-values as printed in sentences: 'p = 0.0079', 'p = 0.056', 'p < 0.0001'."""
    v = fmt_p_value(p)
    return "p " + v if v.startswith("<") else "p = " + v


class Comparison:
    """a against b (lists of one metric over repetitions, higher = better):
    change_pct = (median a / median b - 1) x 100; p from mann_whitney; noise_pct
    = the larger of the two sides' run-to-run spreads (spread_pct).
    significant: p < ALPHA and |change_pct| > noise_pct, the only
    case in which a verdict may say "faster" or "slower"."""

    def __init__(self, a, b):
        self.a = [x for x in a if x is not None]
        self.b = [x for x in b if x is not None]
        self.median_a = statistics.median(self.a) if self.a else None
        self.median_b = statistics.median(self.b) if self.b else None
        self.change_pct = (100.0 * (self.median_a / self.median_b - 1)
                           if self.median_a is not None and self.median_b else None)
        mw = mann_whitney(self.a, self.b)
        self.p, self.method = (mw[0], mw[1]) if mw else (None, None)
        spreads = [c for c in (spread_pct(self.a), spread_pct(self.b)) if c is not None]
        self.noise_pct = max(spreads) if spreads else None
        self.beyond_noise = (self.change_pct is not None and self.noise_pct is not None
                             and abs(self.change_pct) > self.noise_pct)
        self.significant = self.p is not None and self.p < ALPHA and self.beyond_noise

    def why_not(self):
        """Why the difference is not called significant, in a few words."""
        if self.p is None:
            return "fewer than 2 runs a side: no test"
        if self.p >= ALPHA:
            return fmt_p(self.p)
        return "%s, but the %.1f%% difference is within the %.1f%% run-to-run spread" % (
            fmt_p(self.p), abs(self.change_pct or 0), self.noise_pct or 0)


def ideal_rate(row):
    """For an I/O row with an injected latency (latency_ms in params): the
    highest rate a pool of `workers` can reach on `tasks` tasks when each
    takes exactly the latency and costs nothing else:
        tasks / (ceil(tasks / workers) x latency)
    (the tasks go in rounds of `workers`; a last, partial round takes a
    whole latency). Little's law, workers / latency, is its limit for long
    runs. None for other rows."""
    if row.get("workload_kind") != "io":
        return None
    lat = param_number(row.get("params"), "latency_ms")
    w, n = row.get("workers"), row.get("tasks")
    if not lat or lat <= 0 or not w or not n:
        return None
    return n / (math.ceil(n / w) * lat / 1000.0)


# -- which machine and build a folder comes from --------------------------------

IDENTITY_KEYS = [("host", "host"), ("cpu_model", "CPU model"), ("pus", "CPUs (PUs)"),
                 ("compiler", "compiler"), ("cflags", "compiler flags"), ("build", "build kind")]


def identity(folder):
    """{key: value} naming the machine and the build of a results folder, from
    machine.json, else from runs.csv (host, build)."""
    m = folder.machine
    out = {}
    for key, _ in IDENTITY_KEYS:
        v = m.get(key)
        if key == "build" and isinstance(v, dict):
            v = v.get("kind")
        if v is None and folder.runs:
            col = {"host": "host", "build": "build"}.get(key)
            vals = sorted({r.get(col) for r in folder.runs if col and r.get(col)})
            v = ", ".join(vals) if vals else None
        out[key] = clean_text(v) if isinstance(v, str) else v
    return out


def identity_differences(a, b):
    """[(label, value in a, value in b)] where two identities differ (keys
    unknown on either side are not counted as differences)."""
    out = []
    for key, label in IDENTITY_KEYS:
        va, vb = a.get(key), b.get(key)
        if va is not None and vb is not None and va != vb:
            out.append((label, va, vb))
    return out


# -- noise on record --------------------------------------------------------------

STEAL_MAX_PCT = 2.0       # stolen share of a run's CPU time above which a run is suspect
OTHERS_MAX_SHARE = 0.10   # other processes' share of the CPUs over a run
OTHERS_MIN_S = 0.05       # ... and at least this much CPU (5 ticks: above /proc/stat's resolution)
CAPACITY_MIN_SHARE = 0.9  # CPUs a parallel spin got just before the run, share of the online ones


def noise_reasons(row):
    """Why a runs.csv row's surroundings make it suspect: a list of short
    phrases (empty when nothing was wrong or nothing was measured)."""
    out = []
    steal = row.get("steal_pct")
    if steal is not None and steal > STEAL_MAX_PCT:
        out.append("steal %.1f%%" % steal)
    others, window, cores = row.get("others_cpu_s"), row.get("noise_window_s"), row.get("cores")
    if others is not None and window and cores and others > OTHERS_MIN_S \
            and others / (window * cores) > OTHERS_MAX_SHARE:
        out.append("other processes took %.0f%% of the CPUs" % (100 * others / (window * cores)))
    cap = row.get("capacity_cpus")
    if cap is not None and cores and cap < CAPACITY_MIN_SHARE * cores:
        out.append("%.2f of %d CPUs available" % (cap, int(cores)))
    return out
