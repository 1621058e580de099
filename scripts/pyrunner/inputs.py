"""inputs.py: the task inputs of poolbench's workloads, built in Python from
the same seed as the C harness builds them (workloads/wl_internal.h), byte
for byte: the splitmix64 generator, its streams, and each workload's input
encoding (little-endian, fixed per workload).  The C side checks the outputs
with wl_check, which rebuilds the C inputs, so a generator that drifted
from the C one fails the checks and the digests, never silently.

Parameters arrive complete from the harness (every key, as text), so no
default is repeated here; a missing or malformed one is a usage error.
"""
import math
import os
import struct
import tempfile

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

# The stream constants of workloads/*.c.
STREAM_SHA256 = 0x5348413235360000
STREAM_TEXT = 0x5445585400000000
STREAM_NOOP = 0x4E4F4F5000000000
STREAM_FILE = 0x46494C4500000000
STREAM_BLUR = 0x424C555200000000
STREAM_FAULT = 0x4641554C54000000
STREAM_TABLE = 0x5441424C45000000
STREAM_MIX = 0x4D49580000000000


class UsageError(Exception):
    """Bad input to the runner: exit status 2 with this message."""


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Rng:
    """wl_rng: a generator for (seed, stream, index)."""

    __slots__ = ("s",)

    def __init__(self, seed, stream, index):
        inner = mix64(((stream * GOLDEN) & M64) ^ mix64((index + 1) & M64))
        self.s = mix64((seed & M64) ^ inner)

    def next(self):
        self.s = (self.s + GOLDEN) & M64
        return mix64(self.s)

    def double(self):
        return (self.next() >> 11) * 2.0 ** -53

    def fill(self, n):
        """wl_rng_fill: n bytes, le64 words, the last one cut."""
        words = (n + 7) // 8
        s = self.s
        vals = []
        append = vals.append
        for _ in range(words):
            s = (s + GOLDEN) & M64
            z = ((s ^ (s >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            append(z ^ (z >> 31))
        self.s = s
        return struct.pack("<%dQ" % words, *vals)[:n]


def llround(x):
    """C's llround for x >= 0: halves away from zero."""
    f = math.floor(x)
    return int(f) + (1 if x - f >= 0.5 else 0)


def le32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def le64(v):
    return struct.pack("<Q", v & M64)


# ------------------------------------------------------------- parameters

class Params:
    """The workload's parameters as the harness passed them (text)."""

    def __init__(self, workload, pairs):
        self.workload = workload
        self.values = dict(pairs)

    def _get(self, key):
        if key not in self.values:
            raise UsageError("workload '%s' needs parameter '%s' (-p %s=VALUE)"
                             % (self.workload, key, key))
        return self.values[key]

    def int(self, key):
        text = self._get(key)
        try:
            return int(text)
        except ValueError:
            raise UsageError("parameter '%s' must be an integer, got '%s'" % (key, text))

    def float(self, key):
        text = self._get(key)
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            raise UsageError("parameter '%s' must be a finite number, got '%s'" % (key, text))
        return v

    def str(self, key):
        return self._get(key)


# --------------------------------------------------------------- builders

def build_primes(p, n, seed, files):
    span, start = p.int("span"), p.int("start")
    return [le64(start + i * span) + le64(start + (i + 1) * span) for i in range(n)]


def build_sha256(p, n, seed, files):
    head = le32(p.int("rounds"))
    size = p.int("bytes")
    return [head + Rng(seed, STREAM_SHA256, i).fill(size) for i in range(n)]


WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or "
    "his from at which but have an had they you were their one all we can her "
    "has there been if more when will would who so pool thread process future "
    "queue worker latency through measure schedule between machine compute "
    "result submit complete").split()


def fill_text(rng, n):
    """compress.c's fill_text: seeded words, sentences and lines."""
    out = bytearray()
    in_sentence = 0
    nwords = len(WORDS)
    while len(out) < n:
        x = rng.next()
        word = WORDS[(x & 0xFFFF) % nwords]
        if in_sentence == 0:
            word = word[0].upper() + word[1:]
        out += word[:n - len(out)].encode()
        in_sentence += 1
        if len(out) < n:
            end = ((x >> 16) % 12) == 0
            if end and len(out) + 1 < n:
                out += b"."
            out += b"\n" if end and ((x >> 24) % 4) == 0 else b" "
            if end:
                in_sentence = 0
    return bytes(out)


def build_compress(p, n, seed, files):
    head = le32(p.int("level"))
    size = p.int("bytes")
    return [head + fill_text(Rng(seed, STREAM_TEXT, i), size) for i in range(n)]


def build_noop(p, n, seed, files):
    size = p.int("payload_bytes")
    return [Rng(seed, STREAM_NOOP, i).fill(size) for i in range(n)]


def build_sleep(p, n, seed, files):
    ns = llround(p.float("latency_ms") * 1e6)
    return [le64(i) + le64(ns) for i in range(n)]


def http_url(p):
    url = p.str("url")
    if url:
        return url
    base = p.str("base_url").rstrip("/")
    if not base:
        raise UsageError("workload '%s' needs a server: base_url or url" % p.workload)
    return "%s/?delay_ms=%d&bytes=%d" % (base, p.int("latency_ms"), p.int("bytes"))


def build_http(p, n, seed, files):
    one = (le32(p.int("connect_timeout_ms")) + le32(p.int("timeout_ms"))
           + http_url(p).encode() + b"\0")
    return [one] * n


def build_file(p, n, seed, files):
    return [files.paths[i % len(files.paths)].encode() + b"\0" for i in range(n)]


MANDELBROT_GRID_BITS = 5  # 32 x 32 tiles


def mandelbrot_tile(i):
    """Task i's tile (column, row): mandelbrot.c's tile_of, the index mod
    1024 with its 10 bits reversed, x from the even bits, y from the odd."""
    bits = 2 * MANDELBROT_GRID_BITS
    k = i % (1 << bits)
    r = int(format(k, "0%db" % bits)[::-1], 2)
    tx = sum(((r >> (2 * b)) & 1) << b for b in range(MANDELBROT_GRID_BITS))
    ty = sum(((r >> (2 * b + 1)) & 1) << b for b in range(MANDELBROT_GRID_BITS))
    return tx, ty


def build_mandelbrot(p, n, seed, files):
    tile, max_iter = p.int("tile"), p.int("max_iter")
    scale = 3.0 / (float(1 << MANDELBROT_GRID_BITS) * tile)
    out = []
    for i in range(n):
        tx, ty = mandelbrot_tile(i)
        cx0 = -2.0 + (float(tx) * tile + 0.5) * scale
        cy0 = -1.5 + (float(ty) * tile + 0.5) * scale
        out.append(struct.pack("<III4d", tile, tile, max_iter, cx0, cy0, scale, scale))
    return out


def c_lrint(v):
    """lrint in the default rounding mode: halves to even (as round())."""
    return int(round(v))


def build_blur(p, n, seed, files):
    tile, sigma = p.int("tile"), p.float("sigma")
    out = []
    for i in range(n):
        r = Rng(seed, STREAM_BLUR, i)
        fx = 0.02 + 0.1 * r.double()
        fy = 0.02 + 0.1 * r.double()
        cx = tile * r.double()
        cy = tile * r.double()
        rad2 = (tile / 4.0) * (tile / 4.0)
        px = bytearray(tile * tile)
        for y in range(tile):
            cos_y = math.cos(fy * y)
            dy2 = (y - cy) * (y - cy)
            for x in range(tile):
                v = 110.0 + 60.0 * math.sin(fx * x) * cos_y
                if (x - cx) * (x - cx) + dy2 < rad2:
                    v += 60.0
                v += float(r.next() % 41) - 20.0
                px[y * tile + x] = 0 if v < 0 else 255 if v > 255 else c_lrint(v)
        out.append(struct.pack("<IId", tile, tile, sigma) + bytes(px))
    return out


FAULT_NONE, FAULT_ERROR, FAULT_CRASH, FAULT_HANG = 0, 1, 2, 3


def build_fault(p, n, seed, files):
    crash, hang = p.float("crash_rate"), p.float("hang_rate")
    error = p.float("error_rate")
    ns = llround(p.float("latency_ms") * 1e6)
    out = []
    for i in range(n):
        u = Rng(seed, STREAM_FAULT, i).double()
        fate = (FAULT_CRASH if u < crash else FAULT_HANG if u < crash + hang
                else FAULT_ERROR if u < crash + hang + error else FAULT_NONE)
        out.append(le64(i) + bytes([fate]) + le64(ns))
    return out


def build_table(p, n, seed, files):
    """table.c: the shared table, here a list of ints published as
    tasks.TABLE before any pool exists (threads share it, forked processes
    inherit it), and inputs that name it by a tag."""
    import tasks
    words = p.int("table_mb") * (1024 * 1024 // 8)
    raw = Rng(seed, STREAM_TABLE, 0).fill(words * 8)
    tasks.TABLE = list(struct.unpack("<%dQ" % words, raw))
    tasks.TABLE_TAG = mix64((seed ^ 1) & M64)
    tag, lookups = le64(tasks.TABLE_TAG), le32(p.int("lookups"))
    return [tag + le64(i) + lookups for i in range(n)]


def build_mix(p, n, seed, files):
    rate, span = p.float("block_rate"), p.int("span")
    ns = llround(p.float("latency_ms") * 1e6)
    out = []
    for i in range(n):
        blocks = Rng(seed, STREAM_MIX, i).double() < rate
        lo = 1000000000 + i * span
        out.append(le64(i) + bytes([1 if blocks else 0]) + le64(ns) + le64(lo) + le64(lo + span))
    return out


# ------------------------------------------------------------- file tree

class Files:
    """The file workload's files: `files` files of `bytes` seeded bytes in a
    private temporary directory, removed by close()."""

    def __init__(self, p, seed):
        self.dir = tempfile.mkdtemp(prefix="poolbench-pyfile-")
        self.paths = []
        size = p.int("bytes")
        for f in range(p.int("files")):
            path = os.path.join(self.dir, "f%06d.dat" % f)
            with open(path, "wb") as fh:
                fh.write(Rng(seed, STREAM_FILE, f).fill(size))
            self.paths.append(path)

    def close(self):
        for path in self.paths:
            os.unlink(path)
        os.rmdir(self.dir)


class NoFiles:
    paths = ()

    def close(self):
        pass


BUILDERS = {
    "primes": build_primes, "sha256": build_sha256, "mandelbrot": build_mandelbrot,
    "blur": build_blur, "compress": build_compress, "sleep": build_sleep,
    "http": build_http, "file": build_file, "fetch-hash": build_http,
    "noop": build_noop, "fault": build_fault, "table": build_table, "mix": build_mix,
}


def build_inputs(workload, params, ntasks, seed):
    """The ntasks inputs and the resources they refer to (close() them)."""
    files = Files(params, seed) if workload == "file" else NoFiles()
    try:
        return BUILDERS[workload](params, ntasks, seed, files), files
    except BaseException:
        files.close()
        raise

