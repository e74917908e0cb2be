"""The batch APIs (append_many, log_batches, values, log_values) and
verify()'s result: exact ids, columns and counts."""
import array

import numpy as np
import pytest

import recmap


def address(view):
    return np.frombuffer(view, dtype=np.uint8).ctypes.data


def test_append_many_returns_the_ids_in_order(store):
    ids = store.append_many([b"ab", bytearray(b"cde"), memoryview(b"f"),
                             "gh", np.arange(3, dtype=np.uint8)])
    assert isinstance(ids, array.array) and ids.typecode == "Q"
    assert list(ids) == [1, 2, 3, 4, 5]
    assert [bytes(store[i]) for i in ids] == [b"ab", b"cde", b"f", b"gh",
                                              b"\x00\x01\x02"]
    with store.writer() as w:
        more = w.append_many(b"%d" % i for i in range(2500))  # 3 chunks
    assert list(more) == list(range(6, 2506))
    assert bytes(store[2505]) == b"2499"
    assert len(store) == 2505
    assert list(store.append_many([])) == []


def test_append_many_writes_the_items_before_a_bad_one(store):
    with pytest.raises(TypeError):
        store.append_many([b"a", b"b", 5, b"c"])
    assert [bytes(v) for v in store.log_values()] == [b"a", b"b"]
    # A value larger than a region (1 MiB here) fails in C++.
    with store.writer() as w:
        with pytest.raises(recmap.InvalidArgument,
                           match=r"after 1 records of the batch"):
            w.append_many([b"x", bytes(2 << 20), b"y"])
    assert [bytes(v) for v in store.log_values()] == [b"a", b"b", b"x"]


def test_append_many_on_a_read_only_or_closed_store(path):
    recmap.open(path, create=True).close()
    with recmap.open(path, read_only=True) as s:
        with pytest.raises(recmap.ReadOnly):
            s.append_many([b"a"])
    s = recmap.open(path)
    w = s.writer()
    w.close()
    with pytest.raises(recmap.Closed):
        w.append_many([b"a"])
    s.close()


def test_log_batches_columns(store):
    store.put(7, b"seven")
    store.append(b"abc")           # id 2 (its sequence)
    store.delete(7)
    store.put(9, b"")
    batches = list(store.log_batches())
    assert [len(b) for b in batches] == [4]
    b = batches[0]
    assert list(b.ids) == [7, 2, 7, 9]
    assert list(b.sequences) == [1, 2, 3, 4]
    assert list(b.types) == [1, 1, 2, 1]          # put, put, delete, put
    assert list(b.lengths) == [5, 3, 0, 0]
    # Records are 32-byte headers + values padded to 8 bytes.
    assert list(b.offsets)[:2] == [0, 40]
    assert b.data.readonly and b.data.nbytes == 43
    assert [bytes(v) for v in b.values()] == [b"seven", b"abc", b"", b""]
    assert bytes(b[1]) == b"abc" and bytes(b[-4]) == b"seven"
    with pytest.raises(IndexError):
        b[4]
    assert b.ids.readonly and np.asarray(b.ids).dtype == np.uint64
    # Zero-copy: the batch's value is the bytes get() returns.
    assert address(b[1]) == address(store.get(2))
    del b, batches


def test_log_batches_max_records_and_regions(path):
    with recmap.open(path, create=True, region_size=64 << 10) as s:
        with s.writer() as w:
            w.append_many([bytes(100)] * 1000)  # 132 B a record: 3 regions
        sizes = [len(b) for b in s.log_batches(max_records=200)]
        assert sum(sizes) == 1000 and max(sizes) == 200
        assert len(sizes) > 5  # batches never span regions
        assert sum(sum(b.lengths) for b in s.log_batches()) == 100_000
        ids = [i for b in s.log_batches(max_records=7) for i in b.ids]
        assert sorted(ids) == list(range(1, 1001))
        with pytest.raises(recmap.InvalidArgument):
            s.log_batches(max_records=0)


def test_batches_and_value_views_keep_the_store_open(path):
    s = recmap.open(path, create=True)
    s.append_many([b"one", b"two"])
    b = next(iter(s.log_batches()))
    with pytest.raises(BufferError):
        s.close()
    v = b[0]
    del b
    with pytest.raises(BufferError):  # the view still maps the store
        s.close()
    assert bytes(v) == b"one"
    del v
    vals = list(s.log_values())
    with pytest.raises(BufferError):
        s.close()
    assert [bytes(x) for x in vals] == [b"one", b"two"]
    del vals
    s.close()
    assert s.closed


def test_values_and_records_share_one_export_per_batch(store):
    store.append_many([b"a", b"bb", b"ccc"])
    store.put(1, b"A")
    assert [bytes(v) for v in store.values()] == [b"bb", b"ccc", b"A"]
    assert [bytes(v) for v in store.log_values()] == [b"a", b"bb", b"ccc",
                                                     b"A"]
    recs = list(store.log())
    assert [(r.id, r.sequence, r.type, bytes(r.value)) for r in recs] == [
        (1, 1, "put", b"a"), (2, 2, "put", b"bb"), (3, 3, "put", b"ccc"),
        (1, 4, "put", b"A")]
    assert all(r.value.readonly and r.value.format == "B" for r in recs)
    assert recs[1].value.tobytes() == b"bb" and len(recs[2].value) == 3


def test_a_finished_scan_releases_the_store(path):
    s = recmap.open(path, create=True)
    s.append_many([b"x"] * 10)
    it = s.log()
    assert sum(len(r.value) for r in it) == 10  # the records are gone
    s.close()  # `it` is still referenced but exhausted: no export left
    with pytest.raises(recmap.Closed):
        next(it)


def test_verify_result(path):
    with recmap.open(path, create=True, region_size=64 << 10) as s:
        s.append_many([b"v" * 100] * 1000)
        for i in range(1, 11):
            s.delete(i)
    r = recmap.verify(path)
    assert isinstance(r, recmap.VerifyResult)
    assert r.clean and bool(r) and r.issues == []
    assert (r.puts, r.deletes, r.payload_bytes) == (1000, 10, 100_000)
    assert r.indexed_ids == 990 and r.torn_tails == 0  # deleted: not
    assert not r.writers_live and r.regions == 3
    with recmap.open(path, read_only=True) as s:
        again = s.verify()
        assert (again.puts, again.deletes, again.indexed_ids) == (1000, 10, 990)
    with pytest.raises(recmap.NotFound):
        recmap.verify(path + ".missing")


def test_verify_reports_damage_with_its_offset(path):
    with recmap.open(path, create=True) as s:
        s.append(b"intact record")
        s.append(b"DAMAGED-PAYLOAD")
    with open(path, "r+b") as f:
        data = f.read()
        off = data.index(b"DAMAGED-PAYLOAD")
        f.seek(off)
        f.write(b"X")
    r = recmap.verify(path)
    assert not r.clean and not bool(r)
    assert len(r.issues) == 1
    issue = r.issues[0]
    assert issue.region == 0
    assert issue.file_offset == off - 32  # the damaged record's header
    assert "offset" in repr(issue) or issue.what
