"""Matrix multiply over shared inputs: four processes, one row block each.

The tutorial: A, B and C live in three SharedMemory blocks whose names and
shapes are passed around by hand; every worker writes into C at offsets it
computes itself, and the blocks vanish (or leak) with the processes.
recmap: A and B are records read zero-copy as NumPy arrays by every worker;
each worker appends its block of C as a record; the parent assembles C.

    python3 matrix_multiply.py [STORE_PATH]
"""
import multiprocessing as mp
import os
import sys
import tempfile

import numpy as np

import recmap

N, WORKERS = 256, 4
A_ID, B_ID, C_ID = 1, 2, 10


def worker(path, k):
    with recmap.open(path) as store:
        a = store.get_array(A_ID, np.float64, (N, N))
        b = store.get_array(B_ID, np.float64, (N, N))
        rows = slice(k * N // WORKERS, (k + 1) * N // WORKERS)
        store.put(C_ID + k, np.ascontiguousarray(a[rows] @ b))
        del a, b


def main(path):
    rng = np.random.default_rng(3)
    a, b = rng.random((N, N)), rng.random((N, N))
    with recmap.open(path, create=True) as store:
        store.put(A_ID, a)
        store.put(B_ID, b)
    procs = [mp.Process(target=worker, args=(path, k)) for k in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    with recmap.open(path, read_only=True) as store:
        c = np.vstack([store.get_array(C_ID + k, np.float64, (N // WORKERS, N)).copy()
                       for k in range(WORKERS)])
    assert np.allclose(c, a @ b)
    print(f"C = A @ B ({N}x{N}) by {WORKERS} processes")
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(tempfile.mkdtemp(), "matrix.rmap"))
