"""compare.py --baseline: a results folder against a saved baseline.

For every configuration both folders measured: the median throughput of
each, the change in %, a two-sided Mann-Whitney U test between the two sets
of runs (pbresults.Comparison), and a verdict against the threshold. Writes
COMPARE.md and returns the exit status: 0 (no regression), 1 (a
regression), 2 (folders from different machines or builds, without
--across-machines, or a bad option). Every figure in COMPARE.md comes from
the two folders' runs.csv rows; the identity table from their machine.json
(or runs.csv).
"""

import os
import time

import pbresults as pb  # noqa: E402  (sys.path set by compare.py)

REGRESSION, IMPROVEMENT = "regression", "improvement"


def match_key(k, ignored):
    """A configuration key with the ignored parameters left out of params."""
    wl, params, ex, workers, pin = k
    kept = ",".join("%s=%s" % kv for kv in pb.parse_params(params).items() if kv[0] not in ignored)
    return (wl, kept, ex, workers, pin)


def pairs(base, new, ignored):
    """[(key, base rows, new rows)] for configurations in both folders, and the
    keys found in only one of them."""
    b = {}
    for k, rows in base.configs.items():
        b.setdefault(match_key(k, ignored), []).extend(rows)
    n = {}
    for k, rows in new.configs.items():
        n.setdefault(match_key(k, ignored), []).extend(rows)
    both = sorted(set(b) & set(n), key=pb.config_sort_key)
    only = sorted(set(b) ^ set(n), key=pb.config_sort_key)
    return [(k, b[k], n[k]) for k in both], [(k, "baseline" if k in b else "new") for k in only]


def verdict(c, threshold):
    """(kind, text): kind is REGRESSION, IMPROVEMENT or None."""
    if c.change_pct is None:
        return None, "no throughput to compare"
    if not c.significant:
        return None, "no significant difference (%s)" % c.why_not()
    if abs(c.change_pct) <= threshold:
        return None, "within the %g%% threshold (%s)" % (threshold, pb.fmt_p(c.p))
    if c.change_pct < 0:
        return REGRESSION, "**regression**: %.1f%% slower (%s)" % (-c.change_pct, pb.fmt_p(c.p))
    return IMPROVEMENT, "improvement: %.1f%% faster (%s)" % (c.change_pct, pb.fmt_p(c.p))


def identity_table(base, new):
    ib, inew = pb.identity(base), pb.identity(new)
    lines = ["| | baseline | new |", "|---|---|---|"]
    for key, label in pb.IDENTITY_KEYS:
        lines.append("| %s | %s | %s |" % (label, ib.get(key) if ib.get(key) is not None else "unknown",
                                          inew.get(key) if inew.get(key) is not None else "unknown"))
    for key, label in (("git_revision", "git revision"), ("timestamp_utc", "measured")):
        lines.append("| %s | %s | %s |" % (label, base.machine.get(key, "unknown"),
                                          new.machine.get(key, "unknown")))
    return lines


def table(matched, threshold):
    lines = ["| workload | params | executor | workers | pin | baseline tasks/s (runs) | new tasks/s (runs) "
             "| change | p-value | verdict |", "|---|---|---|--:|---|--:|--:|--:|--:|---|"]
    counts = {REGRESSION: 0, IMPROVEMENT: 0, None: 0}
    for (wl, params, ex, workers, pin), brows, nrows in matched:
        c = pb.Comparison([r.get("throughput") for r in nrows], [r.get("throughput") for r in brows])
        kind, text = verdict(c, threshold)
        counts[kind] += 1
        lines.append("| %s | %s | %s | %d | %s | %s (%d) | %s (%d) | %s | %s | %s |" % (
            wl, pb.short_params(params) or "defaults", ex, workers, pin, pb.fmt(c.median_b), len(c.b),
            pb.fmt(c.median_a), len(c.a), "%+.1f%%" % c.change_pct if c.change_pct is not None else "\u2013",
            pb.fmt_p_value(c.p), text))
    return lines, counts


def write(out, lines):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "COMPARE.md")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines).rstrip() + "\n")
    os.replace(tmp, path)
    return path


def main(args, usage_error):
    if len(args.results) != 1:
        return usage_error("--baseline compares one folder against it, got %d" % len(args.results))
    try:
        threshold = float(args.threshold)
    except ValueError:
        threshold = -1.0
    if not 0 < threshold < 100:
        return usage_error("--threshold must be a percentage above 0 and below 100, got '%s'" % args.threshold)
    pb.require(["scipy"], "compare.py --baseline (its rank test)")
    base, new = pb.Folder(args.baseline), pb.Folder(args.results[0])
    diffs = pb.identity_differences(pb.identity(base), pb.identity(new))
    if diffs and not args.across_machines:
        return usage_error("refusing to compare runs from different machines or builds: %s (--across-machines "
                           "compares them anyway)" % "; ".join("%s '%s' vs '%s'" % d for d in diffs))
    matched, only = pairs(base, new, set(args.ignore_param))
    rows, counts = table(matched, threshold)
    lines = ["# poolbench: %s against the baseline %s" % (new.path, base.path), "",
             "Generated by `scripts/compare.py --baseline` on %s. Per configuration: the median throughput "
             "(tasks/s) over each folder's runs.csv rows, the change of the new median against the baseline's, "
             "the p-value of a two-sided Mann-Whitney U test between the two sets of runs (exact without ties), "
             "and the verdict: a regression or an improvement needs p < %g, a change beyond the run-to-run "
             "spread (1.4826 x the median absolute deviation / the median, the larger of the two) and "
             "beyond the %g%% threshold."
             % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), pb.ALPHA, threshold), ""]
    if diffs:
        lines += ["**Compared across machines or builds (--across-machines)**: %s. The changes below "
                  "mix the code's with the machines'." % "; ".join("%s '%s' vs '%s'" % d for d in diffs), ""]
    lines += identity_table(base, new) + [""]
    lines += ["**%d regression%s, %d improvement%s, %d without a significant change beyond the threshold** "
              "(%d configurations in both folders)." % (
                  counts[REGRESSION], "" if counts[REGRESSION] == 1 else "s", counts[IMPROVEMENT],
                  "" if counts[IMPROVEMENT] == 1 else "s", counts[None], len(matched)), ""]
    lines += rows + [""]
    if only:
        lines += ["Configurations in one folder only (not compared): " + "; ".join(
            "`%s` (%s)" % ("|".join(map(str, k)), side) for k, side in only) + "."]
    print(write(args.out or args.results[0], lines))
    return 1 if counts[REGRESSION] else 0
