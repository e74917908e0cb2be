"""A 1920x1080 RGB image filtered in four stripes by four processes.

The tutorial: the image lives in a SharedMemory block that must be created,
sized and unlinked by hand (forget unlink() and it leaks in /dev/shm), and
the workers write their stripes back into the same buffer with nothing but
offsets keeping them apart. recmap: the image is one record; each worker
reads it zero-copy as a read-only NumPy array straight from the mapping
(no pickling, no copy) and appends its filtered stripe as a record of its
own. The store is a file: nothing leaks, and the result persists.

    python3 image_filter.py [STORE_PATH]
"""
import multiprocessing as mp
import os
import sys
import tempfile

import numpy as np

import recmap

H, W, WORKERS = 1080, 1920, 4
IMAGE_ID = 1
STRIPE_ID = 100  # STRIPE_ID + k holds stripe k


def grayscale(rgb):
    return (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)


def worker(path, k):
    with recmap.open(path) as store:
        img = store.get_array(IMAGE_ID, np.uint8, (H, W, 3))  # zero-copy
        assert not img.flags.writeable and not img.flags.owndata
        rows = slice(k * H // WORKERS, (k + 1) * H // WORKERS)
        store.put(STRIPE_ID + k, grayscale(img[rows]))
        del img


def main(path):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    with recmap.open(path, create=True) as store:
        store.put(IMAGE_ID, image)  # any buffer: written straight from NumPy
    procs = [mp.Process(target=worker, args=(path, k)) for k in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    with recmap.open(path, read_only=True) as store:
        stripes = [store.get_array(STRIPE_ID + k, np.uint8, (H // WORKERS, W))
                   for k in range(WORKERS)]
        result = np.vstack(stripes)
        del stripes
    assert result.shape == (H, W)
    assert np.array_equal(result, grayscale(image))
    print(f"filtered a {W}x{H} RGB image in {WORKERS} stripes")
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(tempfile.mkdtemp(), "image.rmap"))
