"""mpi_peers.py: REPORT.md's MPI section: mpi4py.futures' MPIPoolExecutor
(peers_mpi.jsonl, scripts/peers/mpi_futures.py) beside poolbench's own
executors (overhead.jsonl for the empty task; runs.csv for primes at the
same pool size), drawn against calibrate.json's MPI ping-pong, the limit
any executor over MPI pays per task.  report.py calls section().
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
    if not lim and not os.path.exists(path):
        return []  # a folder from before the MPI measures
    if lim:
        out += ["The limit, `poolbench calibrate`'s MPI ping-pong between two ranks (median; "
                "the bandwidth measures per 1 MiB message): %s." % lim, ""]
    if not rows:
        return out + ["peers_mpi.jsonl is absent or empty: no MPIPoolExecutor rows (they need Open MPI "
                      "and Debian's python3-mpi4py; the bench log says why they were skipped).", ""]
    workers = next((o.get("workers") for o in rows if isinstance(o, dict) and o.get("workers")), 2)
    out += ["Per-task cost of an empty task (all submitted, then waited for: median [min..max] over "
            "the repetitions; one in flight: median round trip), and the primes speedup against a "
            "sequential loop of the same language (Python's for MPIPoolExecutor, C's `seq` for "
            "poolbench; same inputs). `spawn`: workers started by MPI_Comm_spawn from a plain "
            "process; `mpiexec`: `mpiexec -n W+1 python3 -m mpi4py.futures`. Open MPI 4.1's shared "
            "memory (vader) does not reach spawned workers (another job), hence mpiexec + vader.", "",
            table(["executor", "start", "btl", "workers", "empty task, all submitted",
                   "one in flight", "primes speedup", "primes digest"],
                  ours(folder, workers) + peers(rows)), ""]
    return out
