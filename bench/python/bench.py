"""recmap from Python against what Python users use today, in one run.

    PYTHONPATH=build/python python3 bench/python/bench.py [--dir DIR] [--n N] [--rounds R]

Systems: recmap (this binding), py-lmdb (NOSYNC+WRITEMAP, a write txn per
1,000 records), sqlite3 (WAL, synchronous=OFF, a transaction per 1,000
rows), and the tutorial's multiprocessing.shared_memory + Lock (a record
header + payload appended at an offset under the lock). Workloads: appends
of 100-byte records from 1 process and from 4, random gets, a full scan,
and the tutorial's shared counter (4 processes, one increment each a
record / a txn / a transaction / a locked add). Each workload has a
one-call-per-record row and, where a system has a batch API, a "batch" row
using each system's fastest equivalent (recmap append_many / get_many /
log_values / log_batches; py-lmdb putmulti / getmulti /
iternext(keys=False); systems without one show "-"). Each round runs every
system once per workload, interleaved; the table shows medians of the
rounds (ops/s), recmap's ratio to py-lmdb (with the ratio's range over the
rounds), against the targets.
"""
import argparse
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from multiprocessing import shared_memory

import lmdb

import recmap

VALUE = b"v" * 100
BATCH = 1000
PROCS = 4
KEY = struct.Struct(">Q")
HDR = struct.Struct("<II")  # the tutorial's "II": id, length


# ------------------------------------------------------------ systems

class Recmap:
    name = "recmap"

    def __init__(self, d):
        self.path = os.path.join(d, "bench.rmap")
        recmap.open(self.path, create=True).close()
        # persist_index=False: with the default, the last writable handle to
        # close a store of >= 100,000 records Syncs (fsync) and writes the
        # index file, and py-lmdb runs NOSYNC. prefault_bytes=1 MiB: each
        # writer here lives for 50,000-200,000 records (6-25 MB), and the
        # default 16 MiB window populates up to 16 MiB of pages past the last
        # record that no record ever uses (page-cache allocation, zeroing and
        # ext4 block mapping: about 5 us a page, twice the children's kernel
        # time of a 1-process round); 1 MiB still keeps appends off page
        # faults while a core is free.
        self.opts = dict(persist_index=False, prefault_bytes=1 << 20)

    def append(self, n, first):
        with recmap.open(self.path, **self.opts) as s, s.writer() as w:
            a = w.append
            for _ in range(n):
                a(VALUE)

    def append_batch(self, n, first):
        with recmap.open(self.path, **self.opts) as s, s.writer() as w:
            for i in range(0, n, BATCH):
                w.append_many([VALUE for _ in range(min(BATCH, n - i))])

    def counter(self, n):
        with recmap.open(self.path, **self.opts) as s, s.writer() as w:
            for _ in range(n):
                w.append(b"+1")

    def counter_value(self):
        with recmap.open(self.path, read_only=True) as s:
            return len(s)

    def reader(self):
        s = recmap.open(self.path, read_only=True)
        ids = [r.id for r in s.log()]
        return s, ids

    def gets(self, h, keys):
        get = h.get
        n = 0
        for k in keys:
            n += len(get(k))
        return n

    def gets_batch(self, h, keys):
        get_many = h.get_many
        n = 0
        for i in range(0, len(keys), BATCH):
            for v in get_many(keys[i:i + BATCH]):
                n += len(v)
        return n

    def scan(self, h):
        n = 0
        for r in h.log():
            n += len(r.value)
        return n

    def scan_values(self, h):
        n = 0
        for v in h.log_values():
            n += len(v)
        return n

    def scan_batch(self, h):
        n = 0
        for b in h.log_batches():
            n += sum(b.lengths)
        return n

    def close_reader(self, h):
        h.close()


class Lmdb:
    name = "py-lmdb"

    def __init__(self, d):
        self.path = os.path.join(d, "bench.lmdb")
        self._env().close()

    def _env(self, readonly=False):
        return lmdb.open(self.path, map_size=8 << 30, sync=False, writemap=True,
                         metasync=False, readonly=readonly, lock=True)

    def append(self, n, first):
        # MDB_APPEND (append=True) is py-lmdb's fastest put for ascending
        # keys; it fails when another process wrote a larger key, so the
        # 4-process runs (interleaved key ranges) cannot use it.
        env = self._env()
        app = n == self.total
        i = 0
        while i < n:
            with env.begin(write=True) as txn:
                put = txn.put
                for _ in range(min(BATCH, n - i)):
                    put(KEY.pack(first + i), VALUE, append=app)
                    i += 1
        env.close()

    def append_batch(self, n, first):
        env = self._env()
        app = n == self.total
        pack = KEY.pack
        for i in range(0, n, BATCH):
            with env.begin(write=True) as txn:
                txn.cursor().putmulti(
                    [(pack(first + j), VALUE)
                     for j in range(i, min(i + BATCH, n))], append=app)
        env.close()

    def counter(self, n):
        env = self._env()
        for _ in range(n):
            with env.begin(write=True) as txn:
                v = txn.get(b"counter")
                txn.put(b"counter", b"%d" % ((int(v) if v else 0) + 1))
        env.close()

    def counter_value(self):
        env = self._env()
        with env.begin() as txn:
            v = int(txn.get(b"counter"))
        env.close()
        return v

    def reader(self):
        env = self._env()
        txn = env.begin()
        keys = [KEY.unpack(k)[0] for k in txn.cursor().iternext(values=False)]
        return (env, txn), keys

    def gets(self, h, keys):
        get = h[1].get
        pack = KEY.pack
        n = 0
        for k in keys:
            n += len(get(pack(k)))
        return n

    def gets_batch(self, h, keys):
        cur = h[1].cursor()
        pack = KEY.pack
        n = 0
        for i in range(0, len(keys), BATCH):
            for _, v in cur.getmulti([pack(k) for k in keys[i:i + BATCH]]):
                n += len(v)
        return n

    def scan(self, h):
        n = 0
        for _, v in h[1].cursor():
            n += len(v)
        return n

    def scan_values(self, h):
        n = 0
        for v in h[1].cursor().iternext(keys=False, values=True):
            n += len(v)
        return n

    # No batch read in py-lmdb: its fastest full read is the values-only
    # cursor iteration (one bytes object a record).
    scan_batch = scan_values

    def close_reader(self, h):
        h[1].abort()
        h[0].close()


class Sqlite:
    name = "sqlite3 WAL"

    def __init__(self, d):
        self.path = os.path.join(d, "bench.sqlite")
        c = self._conn()
        c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        c.execute("CREATE TABLE counter (k INTEGER PRIMARY KEY, v INTEGER)")
        c.execute("INSERT INTO counter VALUES (1, 0)")
        c.commit()
        c.close()

    def _conn(self):
        c = sqlite3.connect(self.path, timeout=600, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=OFF")
        return c

    def append(self, n, first):
        c = self._conn()
        i = 0
        while i < n:
            m = min(BATCH, n - i)
            c.execute("BEGIN IMMEDIATE")
            c.executemany("INSERT INTO t VALUES (?, ?)",
                          ((first + i + j, VALUE) for j in range(m)))
            c.execute("COMMIT")
            i += m
        c.close()

    def counter(self, n):
        c = self._conn()
        for _ in range(n):
            c.execute("UPDATE counter SET v = v + 1 WHERE k = 1")
        c.close()

    def counter_value(self):
        c = self._conn()
        v = c.execute("SELECT v FROM counter").fetchone()[0]
        c.close()
        return v

    def reader(self):
        c = self._conn()
        keys = [k for (k,) in c.execute("SELECT k FROM t")]
        return c, keys

    def gets(self, c, keys):
        n = 0
        ex = c.execute
        for k in keys:
            n += len(ex("SELECT v FROM t WHERE k = ?", (k,)).fetchone()[0])
        return n

    def scan(self, c):
        n = 0
        for (v,) in c.execute("SELECT v FROM t"):
            n += len(v)
        return n

    def close_reader(self, c):
        c.close()


# The tutorial's way: one SharedMemory block, a Lock, records packed with
# struct "II" at an offset kept in the block's first 8 bytes.
_lock = None


class SharedMemoryLock:
    name = "shared_memory+Lock"

    def __init__(self, d, size=None):
        self.size = size
        self.shm = None
        self.lock = mp.Lock()
        global _lock
        _lock = self.lock

    def prepare(self, n):
        if self.shm is not None:
            self.shm.close()
            self.shm.unlink()
        self.shm = shared_memory.SharedMemory(create=True,
                                              size=16 + n * (HDR.size + len(VALUE)) + 4096)
        self.shm.buf[:16] = bytes(16)

    def append(self, n, first):
        shm = shared_memory.SharedMemory(name=self.shm.name)
        buf = shm.buf
        rec = len(VALUE)
        for i in range(n):
            with _lock:
                off = struct.unpack_from("<Q", buf, 0)[0]
                HDR.pack_into(buf, 16 + off, first + i, rec)
                buf[16 + off + 8:16 + off + 8 + rec] = VALUE
                struct.pack_into("<Q", buf, 0, off + 8 + rec)
        del buf
        shm.close()

    def counter(self, n):
        shm = shared_memory.SharedMemory(name=self.shm.name)
        buf = shm.buf
        for _ in range(n):
            with _lock:
                struct.pack_into("<Q", buf, 8, struct.unpack_from("<Q", buf, 8)[0] + 1)
        del buf
        shm.close()

    def counter_value(self):
        return struct.unpack_from("<Q", self.shm.buf, 8)[0]

    def reader(self):
        buf = self.shm.buf
        end = struct.unpack_from("<Q", buf, 0)[0]
        offsets, ids, off = {}, [], 0
        while off < end:
            rid, ln = HDR.unpack_from(buf, 16 + off)
            offsets[rid] = off
            ids.append(rid)
            off += 8 + ln
        return (buf, offsets, end), ids

    def gets(self, h, keys):
        buf, offsets, _ = h
        n = 0
        for k in keys:
            off = 16 + offsets[k]
            _, ln = HDR.unpack_from(buf, off)
            n += len(bytes(buf[off + 8:off + 8 + ln]))
        return n

    def scan(self, h):
        buf, _, end = h
        n, off = 0, 0
        while off < end:
            _, ln = HDR.unpack_from(buf, 16 + off)
            n += len(bytes(buf[16 + off + 8:16 + off + 8 + ln]))
            off += 8 + ln
        return n

    def close_reader(self, h):
        del h

    def cleanup(self):
        if self.shm is not None:
            self.shm.close()
            self.shm.unlink()
            self.shm = None


# ----------------------------------------------------------- workloads

def _child(sysobj, fn, args, barrier):
    barrier.wait()
    getattr(sysobj, fn)(*args)


def in_processes(sysobj, fn, arg_list):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(arg_list) + 1)
    ps = [ctx.Process(target=_child, args=(sysobj, fn, a, barrier)) for a in arg_list]
    for p in ps:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in ps:
        p.join()
        assert p.exitcode == 0, (sysobj.name, fn)
    return time.perf_counter() - t0


def _fresh(cls, d, n):
    sysdir = tempfile.mkdtemp(dir=d)
    s = cls(sysdir)
    if isinstance(s, SharedMemoryLock):
        s.prepare(n)
    return s, sysdir


def _drop(s, sysdir):
    if isinstance(s, SharedMemoryLock):
        s.cleanup()
    shutil.rmtree(sysdir)


def _timed(results, w, n, fn, *args):
    t0 = time.perf_counter()
    total = fn(*args)
    results[w].append(n / (time.perf_counter() - t0))
    assert total == n * len(VALUE), (w, total)


def _reads(s, n, results):
    h, ids = s.reader()
    try:
        assert len(ids) == n, (s.name, len(ids))
        keys = [random.choice(ids) for _ in range(n)]
        _timed(results, "random get", n, s.gets, h, keys)
        if hasattr(s, "gets_batch"):
            _timed(results, "random get, batch", n, s.gets_batch, h, keys)
        _timed(results, "full scan, records", n, s.scan, h)
        if hasattr(s, "scan_values"):
            _timed(results, "full scan, values", n, s.scan_values, h)
        if hasattr(s, "scan_batch"):
            _timed(results, "full scan, batch", n, s.scan_batch, h)
    finally:
        s.close_reader(h)
        del h


def run_round(cls, d, n, counter_n, results):
    per = n // PROCS
    for suffix, fn in (("", "append"), (", batch", "append_batch")):
        if not hasattr(cls, fn):
            continue
        s, sysdir = _fresh(cls, d, n)
        try:
            s.total = n
            t = in_processes(s, fn, [(n, 0)])
            results["append, 1 process" + suffix].append(n / t)
            if not suffix:
                _reads(s, n, results)
        finally:
            _drop(s, sysdir)
        s, sysdir = _fresh(cls, d, n)
        try:
            s.total = n
            t = in_processes(s, fn, [(per, i * per) for i in range(PROCS)])
            results["append, 4 processes" + suffix].append(per * PROCS / t)
        finally:
            _drop(s, sysdir)
    s, sysdir = _fresh(cls, d, 1)  # the counter starts from nothing
    try:
        t = in_processes(s, "counter", [(counter_n,)] * PROCS)
        v = s.counter_value()
        assert v == PROCS * counter_n, (s.name, v)  # exact, every time
        results["shared counter, 4 processes"].append(PROCS * counter_n / t)
    finally:
        _drop(s, sysdir)


WORKLOADS = ["append, 1 process", "append, 1 process, batch",
             "append, 4 processes", "append, 4 processes, batch",
             "random get", "random get, batch",
             "full scan, records", "full scan, values", "full scan, batch",
             "shared counter, 4 processes"]
TARGETS = {"append, 4 processes": 5.0, "append, 4 processes, batch": 5.0,
           "random get": 1.5, "random get, batch": 1.5,
           "full scan, records": 2.0, "full scan, values": 2.0,
           "full scan, batch": 2.0}


def fmt(x):
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M/s" if x >= 1e6 else f"{x / 1e3:.0f} k/s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=None, help="scratch directory (on a disk)")
    ap.add_argument("--n", type=int, default=200_000, help="records per round")
    ap.add_argument("--counter", type=int, default=5_000,
                    help="increments per process in the shared counter")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    d = tempfile.mkdtemp(dir=a.dir, prefix="pybench-")
    systems = [Recmap, Lmdb, Sqlite, SharedMemoryLock]
    res = {c.name: {w: [] for w in WORKLOADS} for c in systems}
    print(f"python bench: {a.n} records of {len(VALUE)} B, {a.rounds} rounds "
          f"(interleaved, medians), {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}, py-lmdb {lmdb.__version__}, sqlite "
          f"{sqlite3.sqlite_version}, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    try:
        for r in range(a.rounds):
            for c in systems:
                run_round(c, d, a.n, a.counter, res[c.name])
            print(f"  round {r + 1}/{a.rounds} done (load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    med = {c.name: {w: (statistics.median(res[c.name][w])
                        if res[c.name][w] else None) for w in WORKLOADS}
           for c in systems}
    names = [c.name for c in systems]
    print()
    print("| workload | " + " | ".join(names) +
          " | recmap / py-lmdb [range] | target |")
    print("|---" * (len(names) + 3) + "|")
    ok = True
    for w in WORKLOADS:
        if med["recmap"][w] is None or med["py-lmdb"][w] is None:
            continue
        ratio = med["recmap"][w] / med["py-lmdb"][w]
        per_round = [r / l for r, l in zip(res["recmap"][w], res["py-lmdb"][w])]
        tgt = TARGETS.get(w)
        verdict = ""
        if tgt:
            verdict = f">= {tgt:g}x " + ("met" if ratio >= tgt else "MISSED")
            ok &= ratio >= tgt
        print(f"| {w} | " + " | ".join(fmt(med[n][w]) for n in names) +
              f" | {ratio:.2f}x [{min(per_round):.2f}-{max(per_round):.2f}]"
              f" | {verdict} |")
    print()
    print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
