"""PersistentSharedData done right: records that survive kill -9 of a writer.

The tutorial's PersistentSharedData packs struct.pack("II", id, len) + data
into a fixed-size mmap'd file at offsets chosen by hand (process_id * 1000):
a record longer than its slot overwrites the next process's records, a
writer killed mid-record leaves a torn record that reads back as garbage,
there is no checksum, no bound on a read, and no way to find the records
again except by knowing the offsets. recmap: put(id, data) writes a
checksummed record in the writer's own region, published atomically; after
kill -9 of a writer the store opens, every record it published is there,
and no torn record is ever returned.

    python3 persistent_shared_data.py [STORE_PATH]
"""
import multiprocessing as mp
import os
import signal
import sys
import tempfile

import recmap


class PersistentSharedData:
    """The tutorial's class, on recmap: ids and data of any length."""

    def __init__(self, filename):
        self.store = recmap.open(filename, create=True)

    def write_record(self, record_id, data):
        self.store.put(record_id, data.encode())

    def read_record(self, record_id):
        return record_id, bytes(self.store.get(record_id)).decode()

    def parallel_writer(self, process_id, num_records=10):
        with self.store.writer() as w:  # a region of its own, no offsets
            for i in range(num_records):
                w.put(process_id * 100 + i, f"Process {process_id} - Record {i}".encode())

    def cleanup(self):
        self.store.close()


def writer(path, process_id):
    PersistentSharedData(path).parallel_writer(process_id)


def doomed_writer(path, ready):
    psd = PersistentSharedData(path)
    with psd.store.writer() as w:
        i = 0
        while True:
            w.put(1_000_000 + i, b"doomed %d" % i)
            if i == 1000:
                ready.set()
            i += 1


def main(path):
    psd = PersistentSharedData(path)
    psd.write_record(1, "Hello from main process!")
    print("Read:", psd.read_record(1))
    procs = [mp.Process(target=writer, args=(path, p)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    ready = mp.Event()
    doomed = mp.Process(target=doomed_writer, args=(path, ready))
    doomed.start()
    ready.wait()
    os.kill(doomed.pid, signal.SIGKILL)  # mid-write, at any instant
    doomed.join()
    psd.cleanup()

    psd = PersistentSharedData(path)  # reopen: recovery runs
    for p in range(4):
        for i in range(10):
            assert psd.read_record(p * 100 + i)[1] == f"Process {p} - Record {i}"
    doomed_ids = sorted(r.id for r in psd.store.records() if r.id >= 1_000_000)
    # a clean prefix: every record the killed writer published, none torn
    assert doomed_ids == list(range(1_000_000, 1_000_000 + len(doomed_ids)))
    assert len(doomed_ids) > 1000
    for rid in doomed_ids:
        assert bytes(psd.store.get(rid)) == b"doomed %d" % (rid - 1_000_000)
    report = psd.store.verify()
    assert report.clean, report.issues
    print(f"after kill -9: 41 records intact, the killed writer's "
          f"{len(doomed_ids)} published records intact, none torn")
    psd.cleanup()
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(tempfile.mkdtemp(), "persistent.rmap"))
