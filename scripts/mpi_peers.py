"""mpi_peers.py: REPORT.md's MPI section: mpi4py.futures' MPIPoolExecutor
(peers_mpi.jsonl, scripts/peers/mpi_futures.py) beside poolbench's own
executors (overhead.jsonl for the empty task; runs.csv for primes at the
same pool size) and poolbench's own mpi executor (make bench's mpi/
sweep: the empty task and primes over btl tcp,self and vader,tcp,self,
one row per transport, each naming its runs.csv config_ids), drawn
against calibrate.json's MPI ping-pong, the limit any executor over MPI
pays per task.  report.py calls section().
"""

import os

import pbresults as pb

fmt = pb.fmt
DASH = "\u2013"
LIMITS = ("mpi_rtt_8b_tcp", "mpi_rtt_8b_vader", "mpi_bw_1mib_tcp", "mpi_bw_1mib_vader")


def us_range(med, lo, hi):
    """'M \u00b5s [lo..hi]' from ns values (the range when there is one)."""
    if not isinstance(med, (int, float)):
        return DASH
    rng = " [%s..%s]" % (fmt(lo / 1e3), fmt(hi / 1e3)) if isinstance(lo, (int, float)) and \
        isinstance(hi, (int, float)) and hi > lo else ""
    return "%s \u00b5s%s" % (fmt(med / 1e3), rng)


def x_range(med, lo, hi):
    if not isinstance(med, (int, float)):
        return DASH
    rng = " [%s..%s]" % (fmt(lo), fmt(hi)) if isinstance(lo, (int, float)) and hi != lo else ""
    return "%sx%s" % (fmt(med), rng)


def ours(folder, workers):
    """Rows for poolbench's executors: overhead.jsonl's empty task and the
    primes speedup of runs.csv at this pool size (median [min..max])."""
    out = []
    for o in folder.overhead or []:
        if not isinstance(o, dict) or o.get("exact_cpu") or o.get("executor") == "seq":
            continue
        ex = o.get("executor")
        keys = [k for k in folder.configs if k[0] == "primes" and k[2] == ex and k[3] == workers]
        sp = pb.agg([r for k in keys for r in folder.configs[k]], "speedup")
        out.append(["poolbench %s" % ex, DASH, DASH, str(o.get("workers", "?")),
                    us_range(o.get("throughput_ns_per_task"), None, None),
                    us_range(o.get("latency_median_ns"), None, None),
                    x_range(sp.median, sp.lo, sp.hi) if sp else DASH, DASH])
    return out


BTL = {"mpi-tcp": "tcp,self", "mpi-sm": "vader,tcp,self (workers: TCP)"}


def mpi_runs(folder, sub="mpi"):
    """The rows of the mpi executor in sub/runs.csv of the folder (make
    bench's mpi/; "" for the folder's own, where bench-cluster writes
    them): config_id -> rows."""
    by_id = {}
    for r in pb.read_csv(os.path.join(folder.path, sub, "runs.csv")):
        if r.get("executor") == "mpi":
            by_id.setdefault(r.get("config_id"), []).append(r)
    return by_id


def per_task_ns(r):
    w, n = r.get("wall_s"), r.get("tasks")
    return w / n * 1e9 if isinstance(w, (int, float)) and n else None


def mpi_rows(by_id):
    """One table row per transport (mpi-tcp, mpi-sm): the empty task's wall
    per task (all submitted) and primes' speedup against seq, median
    [min..max] over the repetitions; and the config_ids they come from."""
    rows, ids, per_task = [], [], {}
    for tr in sorted({str(r.get("transport")) for v in by_id.values() for r in v},
                     key=lambda t: (t != "mpi-tcp", t)):
        row = ["poolbench mpi", "spawn", BTL.get(tr, str(tr)), DASH, DASH, DASH, DASH, DASH]
        for cid in sorted(c for c, v in by_id.items() if v[0].get("transport") == tr):
            runs = by_id[cid]
            row[3] = str(runs[0].get("workers", "?"))
            ids.append("`%s` (%d runs)" % (cid, len(runs)))
            if runs[0].get("workload") == "noop":
                a = pb.agg(runs, None, per_task_ns)
                per_task[tr] = a.median
                row[4] = us_range(a.median, a.lo, a.hi)
            elif runs[0].get("workload") == "primes":
                a = pb.agg(runs, "speedup")
                row[6] = x_range(a.median, a.lo, a.hi) if a else DASH
                row[7] = "equal to seq's" if all(r.get("digest_ok") == 1 for r in runs) else "DIFFERS"
        rows.append(row)
    return rows, ids, per_task


def reading(folder, rows, per_task):
    """A sentence: per-task costs against the TCP ping-pong round trip."""
    items = {it["name"]: it for it in pb.calibration(folder.calibrate)}
    it = items.get("mpi_rtt_8b_tcp")
    rtt = it["stats"].get("median") if it and not it["skipped"] else None
    if not isinstance(rtt, (int, float)) or rtt <= 0 or not (per_task or rows):
        return []
    parts = ["poolbench mpi %s \u00b5s per empty task over %s, %sx the round trip" %
             (fmt(v / 1e3), tr, fmt(v / rtt))
             for tr, v in sorted(per_task.items(), key=lambda kv: (kv[0] != "mpi-tcp", kv[0]))
             if isinstance(v, (int, float))]
    peers_tcp = [o.get("throughput_ns_per_task") for o in rows if isinstance(o, dict) and
                 o.get("workload") == "empty" and o.get("btl") == "tcp,self" and
                 isinstance(o.get("throughput_ns_per_task"), (int, float))]
    if peers_tcp:
        parts.append("MPIPoolExecutor over tcp,self %s \u00b5s at best, %sx" %
                     (fmt(min(peers_tcp) / 1e3), fmt(min(peers_tcp) / rtt)))
    return ["Reading: against the machine's limit, the TCP ping-pong round trip of %s \u00b5s "
            "(`mpi_rtt_8b_tcp`): %s. With every task submitted at "
            "once a pool could pipeline below one round trip per task; what it pays above it is "
            "the executor's own per-task work (broker, queues, MPI progress)." %
            (fmt(rtt / 1e3), "; ".join(parts)), ""]


def peer_row(o):
    head = [str(o.get("peer", "?")), str(o.get("start", "?")), str(o.get("btl", "?")),
            str(o.get("workers", "?"))]
    if o.get("error"):
        return head + ["failed: %s" % o["error"], DASH, DASH, DASH]
    return head


def peers(rows):
    """One table row per (start, btl): the empty row and the primes row
    of mpi_futures.py merged, or the failure."""
    merged, order = {}, []
    for o in rows:
        if not isinstance(o, dict):
            continue
        key = (o.get("start"), o.get("btl"), o.get("workers"))
        if key not in merged:
            merged[key] = peer_row(o)
            order.append(key)
        row = merged[key]
        if o.get("workload") == "empty":
            row[4:6] = [us_range(o.get("throughput_ns_per_task"), o.get("throughput_ns_per_task_min"),
                                 o.get("throughput_ns_per_task_max")),
                        us_range(o.get("latency_median_ns"), None, None)]
        elif o.get("workload") == "primes":
            row[4:] = row[4:6] or [DASH, DASH]
            row += [x_range(o.get("speedup"), o.get("speedup_min"), o.get("speedup_max")),
                    "equal to the sequential run's" if o.get("digest_matches_seq") else "DIFFERS"]
    return [(merged[k] + [DASH] * 8)[:8] for k in order]


def limits(folder):
    """calibrate.json's MPI measures, as a sentence."""
    items = {it["name"]: it for it in pb.calibration(folder.calibrate)}
    parts = []
    for name in LIMITS:
        it = items.get(name)
        if it and not it["skipped"] and it["stats"].get("median") is not None:
            parts.append("`%s` %s \u00b5s" % (name, fmt(it["stats"]["median"] / 1e3)))
        elif it:
            parts.append("`%s` %s" % (name, it["note"] or "skipped"))
    return "; ".join(parts)


def section(folder, table):
    """REPORT.md lines; table(header, rows) is report.py's."""
    out = ["## MPI: mpi4py.futures beside poolbench", ""]
    path = os.path.join(folder.path, "peers_mpi.jsonl")
    rows = pb.read_jsonl(path)
    lim = limits(folder)
    by_id = mpi_runs(folder)
    if not lim and not os.path.exists(path) and not by_id:
        return []  # a folder from before the MPI measures
    if lim:
        out += ["The limit, `poolbench calibrate`'s MPI ping-pong between two ranks (median; "
                "the bandwidth measures per 1 MiB message): %s." % lim, ""]
    ours_mpi, ids, per_task = mpi_rows(by_id)
    spread = [] if by_id else ["`%s` (%d runs)" % (cid, len(v))
                               for cid, v in sorted(mpi_runs(folder, "").items())]
    if spread:
        return out + ["This folder's mpi rows are runs.csv's (`make bench-cluster`: the hosts of "
                      "machine.json's `cluster`), in the workload sections above beside `seq`: "
                      "config_id %s. The ping-pong above is their limit." % ", ".join(spread), ""]
    if not rows and not ours_mpi:
        return out + ["peers_mpi.jsonl is absent or empty and mpi/ has no rows: no MPIPoolExecutor "
                      "rows (they need Open MPI and Debian's python3-mpi4py; the bench log says why "
                      "they were skipped).", ""]
    workers = next((o.get("workers") for o in rows if isinstance(o, dict) and o.get("workers")), 2)
    out += ["Per-task cost of an empty task (all submitted, then waited for: median [min..max] over "
            "the repetitions; one in flight: median round trip), and the primes speedup against a "
            "sequential loop of the same language (Python's for MPIPoolExecutor, C's `seq` for "
            "poolbench; same inputs). `spawn`: workers started by MPI_Comm_spawn from a plain "
            "process; `mpiexec`: `mpiexec -n W+1 python3 -m mpi4py.futures`. Open MPI 4.1's shared "
            "memory (vader) does not reach spawned workers (another job), hence mpiexec + vader; "
            "poolbench's mpi rows with vader,tcp,self (`mpi-sm`) reach their workers over TCP too.",
            "", table(["executor", "start", "btl", "workers", "empty task, all submitted",
                       "one in flight", "primes speedup", "primes digest"],
                      ours(folder, workers) + ours_mpi + peers(rows)), ""]
    if ids:
        out += ["poolbench mpi rows: `mpi/runs.csv` (wall per task of the empty task, `speedup` of "
                "primes), config_id %s." % ", ".join(ids), ""]
    elif not by_id:
        out += ["No poolbench mpi rows: mpi/runs.csv is absent (a build without the mpi executor; "
                "the bench log says why).", ""]
    return out + reading(folder, rows, per_task)
