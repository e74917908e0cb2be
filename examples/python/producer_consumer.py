"""Producer/consumer: a consumer in another process follows the producer.

The tutorial: a producer fills a shared buffer and the consumer polls it
(or is told by a Queue) with no notion of which items are new; a slow
consumer misses items or reads half-written ones. recmap: the producer
appends; the consumer's store.tail() blocks until the next record is
published (a futex in the file, no polling) and delivers every record once,
in order, never a torn one -- and items outlive both processes.

    python3 producer_consumer.py [STORE_PATH]
"""
import multiprocessing as mp
import os
import sys
import tempfile

import recmap

ITEMS = 1000


def produce(path):
    with recmap.open(path) as store:
        for i in range(ITEMS):
            store.append(b"item %d" % i)
        store.append(b"")  # end of stream


def consume(path, q):
    got = []
    with recmap.open(path, read_only=True) as store:
        for rec in store.tail():  # from the first record, waiting for more
            if rec.value.nbytes == 0:
                break
            got.append(bytes(rec.value))
        del rec
    q.put(got)


def main(path):
    recmap.open(path, create=True).close()
    q = mp.Queue()
    consumer = mp.Process(target=consume, args=(path, q))
    consumer.start()  # may start before or after the producer: same result
    producer = mp.Process(target=produce, args=(path,))
    producer.start()
    got = q.get()
    producer.join()
    consumer.join()
    assert got == [b"item %d" % i for i in range(ITEMS)], got[:5]
    print(f"consumer received {len(got)} items in order")
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(tempfile.mkdtemp(), "queue.rmap"))
