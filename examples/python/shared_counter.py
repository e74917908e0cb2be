"""Shared counter: 4 processes x 1,000 increments = exactly 4,000, every time.

The tutorial: a NumPy int64 in a SharedMemory block, `counter[0] += 1` from
four processes -- a read-modify-write race that loses increments unless a
Lock serialises every one of them (and then the processes take turns).
recmap: each process appends one record per increment through its own
Writer, in a region it owns, sharing no lock with the others; the count is
the number of records, and it is exact.

    python3 shared_counter.py [STORE_PATH]
"""
import multiprocessing as mp
import os
import sys
import tempfile

import recmap

PROCESSES, INCREMENTS = 4, 1000


def increment(path, who):
    with recmap.open(path) as store, store.writer() as w:
        for _ in range(INCREMENTS):
            w.append(b"%d" % who)


def main(path):
    recmap.open(path, create=True).close()
    procs = [mp.Process(target=increment, args=(path, i)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    with recmap.open(path, read_only=True) as store:
        count = len(store)
    print(f"counter = {count} (expected {PROCESSES * INCREMENTS})")
    assert count == PROCESSES * INCREMENTS
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(tempfile.mkdtemp(), "counter.rmap"))
