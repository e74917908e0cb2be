import os

import pytest

import recmap


def test_hierarchy():
    for e in (recmap.NotFound, recmap.DataLoss, recmap.ReadOnly, recmap.Busy,
              recmap.InvalidArgument, recmap.ResourceExhausted,
              recmap.AlreadyExists, recmap.PermissionDenied,
              recmap.UsedAfterFork, recmap.Closed, recmap.Internal):
        assert issubclass(e, recmap.Error)
    assert issubclass(recmap.NotFound, KeyError)
    assert issubclass(recmap.ReadOnly, recmap.FailedPrecondition)


def test_not_found(store, tmp_path):
    with pytest.raises(recmap.NotFound):
        store.get(1)
    with pytest.raises(KeyError):
        store[1]
    with pytest.raises(recmap.NotFound, match="no such"):
        recmap.open(str(tmp_path / "missing.rmap"))


def test_value_too_large(tmp_path):
    with recmap.open(str(tmp_path / "s.rmap"), create=True,
                     region_size=16 << 10) as s:
        with pytest.raises(recmap.InvalidArgument):
            s.put(1, b"x" * (20 << 10))


def test_read_only_and_exclusive(path):
    recmap.open(path, create=True).close()
    with recmap.open(path, read_only=True) as s:
        for f in (lambda: s.put(1, b"x"), lambda: s.append(b"x"),
                  lambda: s.delete(1), s.writer, s.sync):
            with pytest.raises(recmap.ReadOnly):
                f()
    with pytest.raises(recmap.AlreadyExists):
        recmap.open(path, create=True, exclusive=True)


def test_bad_files(tmp_path):
    empty = tmp_path / "empty.rmap"
    empty.write_bytes(b"")
    with pytest.raises(recmap.DataLoss):
        recmap.open(str(empty))
    junk = tmp_path / "junk.rmap"
    junk.write_bytes(os.urandom(1 << 16))
    with pytest.raises(recmap.DataLoss) as e:
        recmap.open(str(junk))
    assert str(e.value)  # the C++ message
    with pytest.raises(recmap.Error):
        recmap.open(str(tmp_path))  # a directory


def test_busy_compaction(path):
    with recmap.open(path, create=True) as s:
        s.put(1, b"x")
        with pytest.raises(recmap.Busy):
            recmap.compact(path)
        v = s.get(1)
        with pytest.raises(recmap.Busy):
            s.compact()
        del v
