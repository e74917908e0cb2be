"""Collectors + analyzer: three collector processes, one analyzer tailing them.

The tutorial: collectors write readings into a fixed ring buffer in shared
memory at an index they bump by hand; the analyzer reads the ring while it
is being overwritten, so readings are lost or torn, and nothing survives a
restart. recmap: every collector appends through its own Writer (no lock
between collectors); the analyzer follows all of them with one tail, in
global sequence order, and every reading is kept (a bounded store would
retire old regions instead of overwriting live data).

    python3 analytics.py [STORE_PATH]
"""
import multiprocessing as mp
import os
import struct
import sys
import tempfile

import recmap

COLLECTORS, READINGS = 3, 500
READING = struct.Struct("<Id")  # sensor, value


def collect(path, sensor):
    with recmap.open(path) as store, store.writer() as w:
        for i in range(READINGS):
            w.append(READING.pack(sensor, sensor * 100.0 + i))


def analyze(path, q):
    n, total, per_sensor = 0, 0.0, {}
    with recmap.open(path, read_only=True) as store:
        for rec in store.tail():
            sensor, value = READING.unpack(rec.value)
            n += 1
            total += value
            per_sensor[sensor] = per_sensor.get(sensor, 0) + 1
            if n == COLLECTORS * READINGS:
                break
        del rec
    q.put((n, total, per_sensor))


def main(path):
    recmap.open(path, create=True).close()
    q = mp.Queue()
    analyzer = mp.Process(target=analyze, args=(path, q))
    analyzer.start()
    collectors = [mp.Process(target=collect, args=(path, s)) for s in range(COLLECTORS)]
    for p in collectors:
        p.start()
    n, total, per_sensor = q.get()
    for p in collectors + [analyzer]:
        p.join()
    expected = sum(s * 100.0 + i for s in range(COLLECTORS) for i in range(READINGS))
    print(f"analyzer saw {n} readings, mean {total / n:.2f}, per sensor {per_sensor}")
    assert n == COLLECTORS * READINGS and total == expected
    assert per_sensor == {s: READINGS for s in range(COLLECTORS)}
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(tempfile.mkdtemp(), "analytics.rmap"))
