"""test_queues.py: unit tests of scripts/queues.py's analysis on synthetic
runs.csv rows: the knee rule (p99 against the lowest rate's, throughput
against the offered rate, none reached), the predicted capacity (workers /
the lowest rate's mean cpu + blocked) and the measured one (the largest
median throughput; seq's batch baseline), the runs below and above the
knee, the overload pick (best p99 within 5% of the best throughput), the
chunksize siblings, and schema-5 rows read as batch with an unbounded
queue.  Run by tests/e2e_queue.sh.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import queues  # noqa: E402


def row(ex, rate, p99, tput, rep=1, workers=4, queue=0, on_full="block", arrival="poisson", chunksize=0,
        cpu=0.1, blocked=4.9, rejected=0, tasks=100, wl="sleep", params="latency_ms=5"):
    cid = "%s|%s|%s|%d|none" % (wl, params, ex, workers)
    if queue:
        cid += "|q%d|%s" % (queue, on_full)
    if rate:
        cid += "|r%g%s" % (rate, arrival)
    if chunksize:
        cid += "|c%d" % chunksize
    return {"config_id": cid, "workload": wl, "params": params, "executor": ex, "workers": workers, "rep": rep,
            "sequence": rep, "queue": queue, "on_full": on_full, "arrival": arrival if rate else "batch",
            "offered_rate": rate, "chunksize": chunksize, "latency_p50_ms": p99 / 2, "latency_p99_ms": p99,
            "throughput": tput, "cpu_mean_ms": cpu, "blocked_mean_ms": blocked, "tasks_rejected": rejected,
            "tasks": tasks, "tasks_failed": 0}


def curve(rows):
    cs = queues.rate_curves(rows)
    assert len(cs) == 1, cs
    return cs[0]


class Knee(unittest.TestCase):
    def test_p99_rule(self):
        # p99 medians 10, 20, 31 (> 3 x 10), throughput keeps up everywhere
        rows = [row("threads", 100, 10, 100), row("threads", 200, 20, 200),
                row("threads", 300, 31, 300), row("threads", 400, 80, 350)]
        c = curve(rows)
        self.assertEqual(c.knee.rate, 300)
        self.assertIn("p99", c.knee_reason)
        self.assertNotIn("throughput", c.knee_reason)
        self.assertEqual(c.below.rate, 200)
        self.assertEqual(c.above.rate, 400)

    def test_exactly_three_times_is_not_a_knee(self):
        c = curve([row("threads", 100, 10, 100), row("threads", 200, 30, 200)])
        self.assertIsNone(c.knee)
        self.assertEqual(c.below.rate, 100)  # no knee: below is the rate under the highest

    def test_throughput_rule_uses_the_median_of_the_reps(self):
        # at 200/s: throughputs 170, 185, 195 -> median 185 >= 180: no knee;
        # at 300/s: 260, 265, 280 -> median 265 < 270: the knee
        rows = [row("procs", 100, 10, 100, rep=i) for i in (1, 2, 3)]
        rows += [row("procs", 200, 11, t, rep=i) for i, t in ((1, 170), (2, 185), (3, 195))]
        rows += [row("procs", 300, 12, t, rep=i) for i, t in ((1, 260), (2, 265), (3, 280))]
        c = curve(rows)
        self.assertEqual(c.knee.rate, 300)
        self.assertIn("throughput 265 = 88%", c.knee_reason)

    def test_find_knee_without_points(self):
        self.assertIsNone(queues.find_knee([]))


class Capacity(unittest.TestCase):
    def test_predicted_from_the_lowest_rate_runs(self):
        # lowest rate: cpu + blocked = 5 and 3 ms -> mean 4 ms -> 4 workers / 4 ms = 1000/s
        rows = [row("threads", 100, 10, 100, rep=1, cpu=1, blocked=4), row("threads", 100, 10, 100, rep=2, cpu=1,
                                                                              blocked=2),
                row("threads", 900, 50, 700, cpu=5, blocked=50)]
        c = curve(rows)
        self.assertAlmostEqual(c.service_mean, 4.0)
        self.assertAlmostEqual(c.predicted, 1000.0)

    def test_measured_is_the_largest_median_throughput(self):
        rows = [row("threads", 100, 10, 100)]
        rows += [row("threads", 800, 20, t, rep=i) for i, t in ((1, 790), (2, 700), (3, 760))]
        rows += [row("threads", 1200, 90, t, rep=i) for i, t in ((1, 900), (2, 740), (3, 750))]
        c = curve(rows)
        self.assertEqual(c.capacity(), 760)  # medians 100, 760, 750: not the single 900
        self.assertEqual(c.measured.config_id, "sleep|latency_ms=5|threads|4|none|r800poisson")

    def test_seq_uses_its_batch_baseline(self):
        rows = [row("seq", 0, 5, 195, workers=1), row("seq", 200, 70, 199, workers=1),
                row("seq", 400, 300, 190, workers=1)]
        c = curve(rows)
        self.assertEqual(c.capacity(), 195)
        self.assertEqual(c.measured.load["arrival"], "batch")
        self.assertTrue(c.starts_overloaded)  # 1 / 5 ms = 200/s: the lowest rate is already at capacity

    def test_queue_bound(self):
        self.assertAlmostEqual(queues.queue_bound(800, 30, 5), 20.0)
        self.assertIsNone(queues.queue_bound(800, 5, 5))


class Overload(unittest.TestCase):
    def test_best_p99_within_five_percent(self):
        rows = [row("threads", 100, 10, 100)]
        rows += [row("threads", 3200, 12, 745, queue=4, on_full="reject", rejected=70),
                 row("threads", 3200, 90, 780, queue=64, on_full="reject", rejected=60),
                 row("threads", 3200, 200, 775, queue=4, on_full="block"),
                 row("threads", 3200, 5, 500, queue=1, on_full="reject", rejected=90)]
        cs = queues.rate_curves(rows)
        o = queues.Overload(rows, cs)
        self.assertEqual(o.rate, 3200)
        best, top = o.best("threads", 4)
        self.assertEqual(top.load["queue"], 64)
        self.assertEqual((best.load["queue"], best.load["on_full"]), (4, "reject"))  # 745 >= 0.95 x 780 = 741
        self.assertEqual(o.best("threads", 4, "block")[0].load["queue"], 4)
        self.assertAlmostEqual(best.rejected.median, 0.7)
        self.assertEqual(o.refs, {})  # no queue-0 run at 3200/s

    def test_unbounded_reference(self):
        rows = [row("procs", 100, 10, 100), row("procs", 3200, 300, 780),
                row("procs", 3200, 12, 740, queue=4, on_full="reject")]
        o = queues.Overload(rows, queues.rate_curves(rows))
        self.assertEqual(o.refs[("procs", 4)].config_id, "sleep|latency_ms=5|procs|4|none|r3200poisson")


class Chunks(unittest.TestCase):
    def test_siblings(self):
        rows = [row("threads", 0, 1, 1000, workers=2, wl="noop", params="payload_bytes=64"),
                row("threads", 0, 1, 500, workers=2, wl="noop", params="payload_bytes=64", chunksize=1),
                row("threads", 0, 1, 2000, workers=2, wl="noop", params="payload_bytes=64", chunksize=16)]
        (ex, w, case, by), = queues.chunk_rows(rows)
        self.assertEqual((ex, w), ("threads", 2))
        self.assertEqual(sorted(by), [0, 1, 16])
        self.assertEqual(by[16].tput.median / by[0].tput.median, 2.0)


class OldRows(unittest.TestCase):
    def test_schema5_rows_are_batch_unbounded(self):
        r = {"config_id": "x", "executor": "threads", "workers": 2, "throughput": 10}
        self.assertEqual(queues.load(r), {"queue": 0, "on_full": "block", "arrival": "batch", "rate": None,
                                          "chunksize": 0})
        self.assertEqual(queues.rate_curves([r]), [])
        self.assertEqual(queues.chunk_rows([r]), [])
        self.assertIsNone(queues.Overload([r], []).rate)


if __name__ == "__main__":
    unittest.main()
