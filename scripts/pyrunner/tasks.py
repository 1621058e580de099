"""tasks.py: the task functions of poolbench's workloads in Python, bytes in
-> bytes out, computing the same outputs as workloads/*.c from the same
input bytes.  A task returns its output or raises TaskError(code) with the
C workload's task code (workload.h: 900 malformed input, 100..599 HTTP
status, 1000 + a curl-style transfer error, 2000 + errno, 77 fault).

How close each one is to the C task, and whether the GIL is held:
  primes      segmented sieve on a bytearray (slice assignment): GIL held
  sha256      hashlib (OpenSSL), which releases the GIL for buffers over 2 KiB
  mandelbrot  pure Python float arithmetic (IEEE double, as the C loop)
  blur        the C float32 arithmetic, each operation rounded to float32
              through array('f') (exact: a float32 sum or product computed in
              double and rounded once is the float32 result)
  compress    zlib.compress, the same zlib and parameters as deflateInit
  sleep       time.sleep; http, fetch-hash: http.client, one kept-alive
              connection per worker thread (as curl's reused handle);
  file        read + zlib.crc32
  table       a shared list of ints (TABLE, built before the pool): reads
              write its reference counts, so forked workers copy the pages
  mix         time.sleep or the primes task, per the input
"""
import array
import errno as errno_mod
import hashlib
import http.client
import math
import os
import socket
import struct
import threading
import time
import urllib.parse
import zlib

import inputs

CODE_EINPUT = 900
CODE_ENOMEM = 901
FAULT_ERROR_CODE = 77
CURL_BASE = 1000
ERRNO_BASE = 2000
PRIMES_MAX_HI = 10_000_000_000_000
PRIMES_SEGMENT = 1 << 18


class TaskError(Exception):
    """A task's failure with its numeric code (ex_future_task_code)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


# ----------------------------------------------------------------- primes

def _base_primes(limit):
    composite = bytearray(limit + 1)
    primes = []
    for p in range(2, limit + 1):
        if not composite[p]:
            primes.append(p)
            if p * p <= limit:
                composite[p * p::p] = bytes(len(range(p * p, limit + 1, p)))
    return primes


def count_primes(lo, hi):
    lo = max(lo, 2)
    if hi <= lo:
        return 0
    primes = _base_primes(math.isqrt(hi - 1))
    total = 0
    for seg_lo in range(lo, hi, PRIMES_SEGMENT):
        seg_hi = min(seg_lo + PRIMES_SEGMENT, hi)
        n = seg_hi - seg_lo
        seg = bytearray(b"\x01") * n
        for p in primes:
            if p * p >= seg_hi:
                break
            first = max((seg_lo + p - 1) // p * p, p * p)
            if first < seg_hi:
                seg[first - seg_lo::p] = bytes(len(range(first - seg_lo, n, p)))
        total += seg.count(1)
    return total


def task_primes(data):
    if len(data) != 16:
        raise TaskError(CODE_EINPUT)
    lo, hi = struct.unpack("<QQ", data)
    if hi < lo or hi > PRIMES_MAX_HI:
        raise TaskError(CODE_EINPUT)
    return struct.pack("<Q", count_primes(lo, hi))


# ----------------------------------------------------------------- sha256

def _sha256_rounds(body, rounds):
    digest = hashlib.sha256(body).digest()
    for _ in range(rounds - 1):
        h = hashlib.sha256(body)
        h.update(digest)
        digest = h.digest()
    return digest


def task_sha256(data):
    if len(data) < 4:
        raise TaskError(CODE_EINPUT)
    rounds = struct.unpack_from("<I", data)[0]
    if rounds == 0:
        raise TaskError(CODE_EINPUT)
    return _sha256_rounds(memoryview(data)[4:], rounds)


# ------------------------------------------------------------- mandelbrot

def task_mandelbrot(data):
    if len(data) != 44:
        raise TaskError(CODE_EINPUT)
    w, h, max_iter, cx0, cy0, dx, dy = struct.unpack("<III4d", data)
    if w == 0 or h == 0 or w > 65536 or h > 65536 or max_iter > 65535 or w * h > 1 << 28:
        raise TaskError(CODE_EINPUT)
    counts = array.array("H")
    for y in range(h):
        ci = cy0 + y * dy
        for x in range(w):
            cr = cx0 + x * dx
            zr = zi = zr2 = zi2 = 0.0
            n = 0
            while n < max_iter and zr2 + zi2 <= 4.0:
                zi = 2.0 * zr * zi + ci
                zr = zr2 - zi2 + cr
                zr2 = zr * zr
                zi2 = zi * zi
                n += 1
            counts.append(n)
    if counts.itemsize != 2 or struct.pack("=H", 1) != b"\x01\x00":
        counts = array.array("H", counts)
        counts.byteswap()
    return counts.tobytes()


# ------------------------------------------------------------------- blur

def _f32(values):
    """Rounds each double to float32 (C's (float) conversion)."""
    return array.array("f", values).tolist()


def _blur_kernel(sigma):
    radius = int(math.ceil(3.0 * sigma))
    exact = [math.exp(-float(d * d) / (2.0 * sigma * sigma)) for d in range(radius + 1)]
    total = 0.0
    for d, k in enumerate(exact):
        total += 2 * k if d else k
    kernel = _f32(exact)
    return radius, _f32([k / total for k in kernel])


def _convolve_rows(rows, kernel, radius, pick):
    """acc += kernel[|d|] * pick(rows, d) for d in -radius..radius, in the
    C loop's order, each product and sum rounded to float32."""
    acc = None
    for d in range(-radius, radius + 1):
        k = kernel[abs(d)]
        prod = _f32([k * v for v in pick(rows, d)])
        acc = prod if acc is None else _f32([a + b for a, b in zip(acc, prod)])
    return acc


def task_blur(data):
    if len(data) < 16:
        raise TaskError(CODE_EINPUT)
    w, h, sigma = struct.unpack_from("<IId", data)
    if w == 0 or h == 0 or len(data) - 16 != w * h or not sigma > 0.0 or sigma > 64.0:
        raise TaskError(CODE_EINPUT)
    radius, kernel = _blur_kernel(sigma)
    src = memoryview(data)[16:]
    tmp = []
    for y in range(h):
        row = list(src[y * w:(y + 1) * w])
        ext = [row[0]] * radius + row + [row[-1]] * radius
        tmp.append(_convolve_rows(ext, kernel, radius,
                                  lambda e, d: e[radius + d:radius + d + w]))
    out = bytearray(w * h)
    for y in range(h):
        acc = _convolve_rows(tmp, kernel, radius,
                             lambda t, d: t[min(max(y + d, 0), h - 1)])
        out[y * w:(y + 1) * w] = bytes(0 if v < 0 else 255 if v > 255 else v
                                       for v in (int(round(a)) for a in acc))
    return bytes(out)


# --------------------------------------------------------------- compress

def task_compress(data):
    if len(data) < 4:
        raise TaskError(CODE_EINPUT)
    level = struct.unpack_from("<I", data)[0]
    if level > 9:
        raise TaskError(CODE_EINPUT)
    # deflateInit(level): window 15, memLevel 8, default strategy, one
    # Z_FINISH; zlib.compress makes the same calls.
    return zlib.compress(memoryview(data)[4:], level)


# ------------------------------------------------------------ sleep, fault

def task_sleep(data):
    if len(data) != 16:
        raise TaskError(CODE_EINPUT)
    time.sleep(struct.unpack_from("<Q", data, 8)[0] / 1e9)
    return bytes(data[:8])


def task_fault(data):
    if len(data) != 17:
        raise TaskError(CODE_EINPUT)
    fate = data[8]
    if fate == 2:      # crash: the worker process dies, as abort() in C
        os.abort()
    if fate == 3:      # hang: a day
        time.sleep(86400)
        raise TaskError(FAULT_ERROR_CODE)
    if fate == 1:
        raise TaskError(FAULT_ERROR_CODE)
    if fate != 0:
        raise TaskError(CODE_EINPUT)
    time.sleep(struct.unpack_from("<Q", data, 9)[0] / 1e9)
    return bytes(data[:8])


# ------------------------------------------------------------------- http

_local = threading.local()

# curl codes for the transfer errors http.client can meet.
CURLE_URL_MALFORMAT, CURLE_COULDNT_CONNECT = 3, 7
CURLE_OPERATION_TIMEDOUT, CURLE_GOT_NOTHING, CURLE_RECV_ERROR = 28, 52, 56


def _connection(scheme, netloc, connect_s):
    """The calling thread's kept-alive connection to netloc."""
    key = (scheme, netloc, os.getpid())
    conn = getattr(_local, "conn", None)
    if conn is None or _local.key != key:
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(netloc, timeout=connect_s)
        _local.conn, _local.key = conn, key
    return conn


def _drop_connection():
    conn = getattr(_local, "conn", None)
    if conn is not None:
        conn.close()
    _local.conn = None


def _get(url, connect_s, total_s):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TaskError(CURL_BASE + CURLE_URL_MALFORMAT)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    for attempt in (0, 1):
        conn = _connection(parts.scheme, parts.netloc, connect_s)
        fresh = conn.sock is None
        try:
            if fresh:
                conn.connect()
            conn.sock.settimeout(total_s)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.will_close:
                _drop_connection()
            return resp.status, body
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            _drop_connection()
            if fresh or attempt:   # a kept-alive connection may have been closed: once more
                raise TaskError(CURL_BASE + CURLE_GOT_NOTHING)
        except ConnectionRefusedError:
            _drop_connection()
            raise TaskError(CURL_BASE + CURLE_COULDNT_CONNECT)
        except (socket.timeout, TimeoutError):
            _drop_connection()
            raise TaskError(CURL_BASE + CURLE_OPERATION_TIMEDOUT)
        except (OSError, http.client.HTTPException):
            _drop_connection()
            raise TaskError(CURL_BASE + CURLE_RECV_ERROR)
    raise TaskError(CURL_BASE + CURLE_GOT_NOTHING)


def task_http(data):
    if len(data) < 10 or data.find(b"\0", 8) != len(data) - 1:
        raise TaskError(CODE_EINPUT)
    connect_ms, total_ms = struct.unpack_from("<II", data)
    url = bytes(data[8:-1]).decode("utf-8", "replace")
    status, body = _get(url, connect_ms / 1e3, total_ms / 1e3)
    if status < 200 or status > 299:
        raise TaskError(status)
    return body


def task_fetch_hash(data):
    """Both stages in one task: a Python user has no then()."""
    return hashlib.sha256(task_http(data)).digest()


# ------------------------------------------------------------------- file

def task_file(data):
    if len(data) < 2 or data.find(b"\0") != len(data) - 1:
        raise TaskError(CODE_EINPUT)
    try:
        fd = os.open(bytes(data[:-1]), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise TaskError(ERRNO_BASE + (e.errno or errno_mod.EIO))
    crc, size = 0, 0
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    except OSError as e:
        raise TaskError(ERRNO_BASE + (e.errno or errno_mod.EIO))
    finally:
        os.close(fd)
    return struct.pack("<QI", size, crc)


def task_noop(data):
    return data


# ------------------------------------------------------------ table, mix

TABLE = None        # the shared table (inputs.build_table), a list of ints
TABLE_TAG = None
LCG_A, LCG_C = 6364136223846793005, 1442695040888963407
M64 = (1 << 64) - 1


def task_table(data):
    if len(data) != 20:
        raise TaskError(CODE_EINPUT)
    tag, i, lookups = struct.unpack("<QQI", data)
    table = TABLE
    if table is None or tag != TABLE_TAG:
        raise TaskError(CODE_EINPUT)
    n = len(table)
    x = inputs.mix64((i + 1) & M64)
    total = 0
    for _ in range(lookups):
        x = (x * LCG_A + LCG_C) & M64
        total += table[(x >> 33) % n]
    return struct.pack("<Q", total & M64)


def task_mix(data):
    if len(data) != 33 or data[8] > 1:
        raise TaskError(CODE_EINPUT)
    if data[8] == 0:
        return task_primes(bytes(data[17:33]))
    time.sleep(struct.unpack_from("<Q", data, 9)[0] / 1e9)
    return bytes(data[:8])


TASKS = {
    "primes": task_primes, "sha256": task_sha256, "mandelbrot": task_mandelbrot,
    "blur": task_blur, "compress": task_compress, "sleep": task_sleep,
    "http": task_http, "file": task_file, "fetch-hash": task_fetch_hash,
    "noop": task_noop, "fault": task_fault, "table": task_table, "mix": task_mix,
}
