import numpy as np
import pytest

import recmap


def test_put_get_append_delete(store):
    rid = store.append(b"hello")
    store.put(42, b"answer")
    store[7] = bytearray(b"seven")
    assert bytes(store.get(rid)) == b"hello"
    assert bytes(store[42]) == b"answer"
    assert store.get(7).tobytes() == b"seven"
    assert 42 in store and 43 not in store and "x" not in store
    assert len(store) == 3
    store.delete(42)
    assert 42 not in store and len(store) == 2
    del store[7]
    with pytest.raises(KeyError):
        del store[7]
    store.delete(12345)  # deleting an absent id is no error
    assert len(store) == 1


def test_any_buffer_and_str(store):
    store.put(1, memoryview(b"abcdef")[1:4])
    store.put(2, np.arange(4, dtype=np.int64))
    store.put(3, "héllo")
    assert bytes(store[1]) == b"bcd"
    assert list(np.frombuffer(store[2], dtype=np.int64)) == [0, 1, 2, 3]
    assert bytes(store[3]).decode() == "héllo"
    with pytest.raises((BufferError, ValueError)):
        store.put(4, np.arange(10)[::2])  # not contiguous
    with pytest.raises(TypeError):
        store.put(5, 12)


def test_latest_write_wins_and_iteration(store):
    for i in range(10):
        store.put(i % 3, b"v%d" % i)
    live = list(store)
    assert [r.id for r in live] == [0, 1, 2] or sorted(r.id for r in live) == [0, 1, 2]
    assert {r.id: bytes(r.value) for r in store.records()} == {0: b"v9", 1: b"v7", 2: b"v8"}
    seqs = [r.sequence for r in store.records()]
    assert seqs == sorted(seqs)
    store.delete(0)
    log = list(store.log())
    assert len(log) == 11
    assert [r.type for r in log].count("delete") == 1
    rec = store.get_record(1)
    assert rec.id == 1 and rec.type == "put" and bytes(rec.value) == b"v7"
    assert isinstance(rec, recmap.Record) and rec[0] == 1


def test_get_many_and_array(store):
    a = np.arange(12, dtype=np.float32)
    store.put(1, a)
    store.put(2, b"xy")
    got = store.get_many([2, 1, 99, 2])
    assert bytes(got[0]) == b"xy" and got[2] is None and bytes(got[3]) == b"xy"
    arr = store.get_array(1, np.float32, (3, 4))
    assert arr.shape == (3, 4) and arr.dtype == np.float32
    assert not arr.flags.writeable
    np.testing.assert_array_equal(arr.ravel(), a)
    with pytest.raises(ValueError):
        arr[0, 0] = 1
    many = store.get_many(list(range(1, 200)))
    assert sum(v is not None for v in many) == 2


def test_writer_and_tail(store):
    with store.writer() as w:
        ids = [w.append(b"r%d" % i) for i in range(100)]
        w.put(10**12, b"big id")
        assert w.region >= 0
    assert w.closed
    with pytest.raises(recmap.Closed):
        w.append(b"x")
    got = list(store.tail(timeout=0.5))
    assert [r.id for r in got[:100]] == ids
    assert got[-1].id == 10**12
    t = store.tail(from_sequence=0)  # from now on
    assert t.next_record(timeout=0) is None
    store.append(b"new")
    r = t.next_record(timeout=30)
    assert bytes(r.value) == b"new"
    assert t.next_sequence == r.sequence + 1


def test_stats_verify_compact(path):
    with recmap.open(path, create=True, region_size=1 << 20) as s:
        for i in range(100):
            s.put(i % 10, b"x" * 50)
        st = s.stats()
        assert st["records"] == 100 and st["live_records"] == 10
        v = s.verify()
        assert v.clean and (v.puts, v.deletes, v.payload_bytes) == (100, 0, 5000)
        r = s.compact()
        assert r["records_kept"] == 10 and r["records_dropped"] == 90
        assert len(s) == 10 and bytes(s[3]) == b"x" * 50
    assert recmap.compact(path)["records_kept"] == 10


def test_context_manager_and_closed(path):
    with recmap.open(path, create=True) as s:
        s.put(1, b"a")
    assert s.closed
    with pytest.raises(recmap.Closed):
        s.get(1)
    with pytest.raises(ValueError):  # Closed is also a ValueError
        s.put(1, b"b")
    s.close()  # idempotent
    with recmap.open(path, read_only=True) as r:
        assert r.read_only and bytes(r[1]) == b"a"
        assert r.info["format_version"] >= 1


def test_options(path):
    with pytest.raises(TypeError):
        recmap.open(path, create=True, no_such_option=1)
    with pytest.raises(recmap.InvalidArgument):
        recmap.open(path, create=True, recovery_mode="sometimes")
    with recmap.open(path, create=True, region_size=1 << 16,
                     prefault_bytes=0, persist_index=False,
                     verify_checksums_on_read=True) as s:
        assert s.stats()["region_size"] == 1 << 16
    with pytest.raises(recmap.InvalidArgument):
        recmap.open(path, prefault_mode="eager")
    with pytest.raises(TypeError):  # an internal setting, not an option
        recmap.open(path, prefault_step_bytes=64 << 10)
    with recmap.open(path, prefault_mode="inline",
                     prefault_bytes=1 << 20) as s, s.writer() as w:
        assert [w.append(b"x" * 100) for _ in range(3)] == [1, 2, 3]
    with recmap.open(path, prefault_mode="background") as s:
        assert len(s) == 3


def test_docstrings():
    assert "memoryview" in recmap.Store.get.__doc__
    assert recmap.open.__doc__ and recmap.Store.__doc__ and recmap.__doc__
