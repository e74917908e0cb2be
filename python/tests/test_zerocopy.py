import ctypes
import gc

import numpy as np
import pytest

import recmap


def addr(buf):
    return np.frombuffer(buf, dtype=np.uint8).__array_interface__["data"][0]


def test_get_is_a_view_into_the_mapping(store):
    src = np.random.default_rng(1).integers(0, 255, 4096, dtype=np.uint8)
    store.put(1, src)
    a, b = store.get(1), store.get(1)
    assert a.readonly and addr(a) == addr(b) != addr(src)
    assert addr(store.get_array(1)) == addr(a)
    # ctypes agrees: the bytes at that address are the record's
    assert ctypes.string_at(addr(a), 16) == src[:16].tobytes()
    with pytest.raises(TypeError):
        a[0] = 1
    a.release()
    b.release()


def test_64mib_record_without_copy(tmp_path):
    n = 64 << 20
    with recmap.open(str(tmp_path / "big.rmap"), create=True,
                     region_size=128 << 20) as s:
        big = np.full(n, 7, dtype=np.uint8)
        rid = s.append(big)
        del big
        views = [s.get(rid) for _ in range(50)]  # 50 copies would be 3.2 GiB
        assert len({addr(v) for v in views}) == 1
        assert views[0].nbytes == n and views[0][n - 1] == 7
        arr = s.get_array(rid, np.uint64)
        assert arr.shape == (n // 8,) and addr(arr) == addr(views[0])
        del views, arr
        gc.collect()


def test_views_keep_the_store_open(path):
    s = recmap.open(path, create=True)
    s.put(1, b"payload")
    v = s.get(1)
    arr = s.get_array(1)
    recs = list(s.records())
    with pytest.raises(BufferError):
        s.close()
    assert bytes(v) == b"payload"  # still valid
    del v, recs
    with pytest.raises(BufferError):
        s.close()  # the array still holds a view
    del arr
    gc.collect()
    s.close()
    assert s.closed


def test_exporter_of_a_closed_store_refuses(path):
    s = recmap.open(path, create=True)
    s.put(1, b"abc")
    v = s.get(1)
    exporter = v.obj
    v.release()
    s.close()
    with pytest.raises(recmap.Closed):
        memoryview(exporter)


def test_views_survive_the_handle_going_away(path):
    def view():
        s = recmap.open(path, create=True)
        s.put(5, b"still here")
        return s.get(5)  # the store object dies with this frame, not the view
    v = view()
    gc.collect()
    assert bytes(v) == b"still here"
