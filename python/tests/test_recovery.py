"""Store.last_recovery: what an open's recovery found and cut."""
import os

import recmap


def _damage(path, offset):
    fd = os.open(path, os.O_RDWR)
    try:
        b = os.pread(fd, 1, offset)
        os.pwrite(fd, bytes([b[0] ^ 0x40]), offset)
    finally:
        os.close(fd)


def test_clean_open(path):
    with recmap.open(path, create=True, region_size=1 << 16) as s:
        s.put(1, b"x")
    with recmap.open(path) as s:
        r = s.last_recovery
        assert r["mode"] == "tolerate_torn_tail" and r["full_recovery"]
        assert len(r["regions"]) == 1
        g = r["regions"][0]
        assert not g["changed"] and g["dropped_bytes"] == 0
        assert g["stop"] == "end of log"


def test_torn_tail_is_cut_and_reported(path):
    with recmap.open(path, create=True, region_size=1 << 16) as s:
        for i in range(1, 6):
            s.put(i, b"v" * 96)
        s.sync()
        end = {}  # region-relative end of record i
        for i in range(6, 11):
            s.put(i, b"v" * 96)
            end[i] = s.stats()["region_stats"][0]["committed_tail"]
        start = s.stats()["region_stats"][0]["file_offset"]
    tail = end[10]
    # The last byte of record 8's value (96 bytes: no padding after it).
    _damage(path, start + end[8] - 1)
    with recmap.open(path) as s:
        g = s.last_recovery["regions"][0]
        assert g["committed_tail"] == tail
        assert g["valid_end"] == end[7]
        assert g["stop"] == "checksum mismatch"
        assert g["stop_offset"] == end[7]
        assert g["dropped_bytes"] == tail - end[7]
        assert g["changed"]
        assert bytes(s[7]) == b"v" * 96 and 8 not in s
