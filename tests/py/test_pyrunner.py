"""test_pyrunner.py: unit tests of the Python runner's pieces that must equal
the C ones bit for bit: the splitmix64 generator and its streams (values
printed by the C wl_rng_init / wl_rng_next / wl_rng_double for the same
arguments), wl_rng_fill's cut last word, llround, the text generator's
shape, and the digest records (workload.h), over the first digest_tasks.
Run by tests/e2e_python.sh; the end-to-end digests there check the rest
against the C workloads.
"""
import hashlib
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "pyrunner"))
import inputs  # noqa: E402
import runner  # noqa: E402


class Generator(unittest.TestCase):
    def test_splitmix64_reference(self):
        r = inputs.Rng(0, 0, 0)
        r.s = 0  # the published splitmix64 sequence from state 0
        self.assertEqual([r.next() for _ in range(3)],
                         [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F])

    def test_streams_match_c(self):
        # From workloads/wl_internal.h, compiled: wl_rng_init(1, STREAM_NOOP, 3).
        r = inputs.Rng(1, inputs.STREAM_NOOP, 3)
        self.assertEqual(r.s, 0x2B50A58C7D289F91)
        self.assertEqual(r.next(), 0x81A34342C3941AE2)
        self.assertEqual(r.next(), 0xBC7E87A96C2FA091)
        self.assertEqual(repr(r.double()), "0.6254158015856288")
        r = inputs.Rng(0xDEADBEEFCAFEF00D, inputs.STREAM_TEXT, 1000000)
        self.assertEqual(r.next(), 0x6ECC514E998CAFC0)

    def test_fill_cuts_the_last_word(self):
        a, b = inputs.Rng(5, 7, 9), inputs.Rng(5, 7, 9)
        words = struct.pack("<QQ", b.next(), b.next())
        self.assertEqual(a.fill(11), words[:11])
        self.assertEqual(a.s, b.s)  # the cut word is consumed, as in C

    def test_llround_halves_away_from_zero(self):
        self.assertEqual([inputs.llround(x) for x in (0.0, 0.49, 0.5, 1.5, 2.5, 1e6 * 1.5)],
                         [0, 0, 1, 2, 3, 1500000])

    def test_text_is_sized_and_capitalised(self):
        text = inputs.fill_text(inputs.Rng(1, inputs.STREAM_TEXT, 0), 5000)
        self.assertEqual(len(text), 5000)
        self.assertTrue(text[:1].isupper())
        self.assertIn(b". ", text)


class Mandelbrot(unittest.TestCase):
    def test_tiles_progressive_and_prefix_stable(self):
        # mandelbrot.c's tile_of: bit-reversed index, x from the even bits.
        self.assertEqual([inputs.mandelbrot_tile(i) for i in range(4)],
                         [(0, 0), (0, 16), (16, 0), (16, 16)])
        self.assertEqual(len({inputs.mandelbrot_tile(i) for i in range(1024)}), 1024)
        self.assertEqual(inputs.mandelbrot_tile(1024 + 5), inputs.mandelbrot_tile(5))
        p = inputs.Params("mandelbrot", [("tile", "8"), ("max_iter", "10")])
        self.assertEqual(inputs.build_mandelbrot(p, 4, 1, None),
                         inputs.build_mandelbrot(p, 40, 1, None)[:4])


class Params(unittest.TestCase):
    def test_missing_and_malformed(self):
        p = inputs.Params("primes", [("span", "x")])
        with self.assertRaises(inputs.UsageError):
            p.int("start")
        with self.assertRaises(inputs.UsageError):
            p.int("span")
        with self.assertRaises(inputs.UsageError):
            inputs.Params("sleep", [("latency_ms", "nan")]).float("latency_ms")


class Digest(unittest.TestCase):
    def test_records_as_workload_h(self):
        run = runner.Run(3)
        run.result[0] = (0, 0, 1, 2, 1, 10, 11, 0, b"abc")
        run.failure[1] = (runner.EX_ETASK, 77)
        # task 2 missing
        want = hashlib.sha256()
        want.update(hashlib.sha256(struct.pack("<QQ", 0, 3) + b"abc").digest())
        want.update(hashlib.sha256(struct.pack("<Q", 1) + b"fail"
                                   + struct.pack("<iI", -7, 77)).digest())
        want.update(struct.pack("<Q", 2) + b"missing" + bytes(17))
        self.assertEqual(runner.digest(run), want.hexdigest())

    def test_digest_tasks_covers_the_first_ones(self):
        # pb_run_opts.digest_tasks: the first n records only, as wl_digest
        # created for n outputs.
        run = runner.Run(3)
        run.result[0] = (0, 0, 1, 2, 1, 10, 11, 0, b"abc")
        run.result[1] = (0, 0, 1, 2, 1, 10, 11, 0, b"de")
        run.failure[2] = (runner.EX_ETASK, 5)
        run.digest_tasks = 2
        want = hashlib.sha256()
        want.update(hashlib.sha256(struct.pack("<QQ", 0, 3) + b"abc").digest())
        want.update(hashlib.sha256(struct.pack("<QQ", 1, 2) + b"de").digest())
        self.assertEqual(runner.digest(run), want.hexdigest())


if __name__ == "__main__":
    unittest.main()
