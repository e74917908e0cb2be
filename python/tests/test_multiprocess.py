import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import recmap


def _count(path, n):
    with recmap.open(path) as s, s.writer() as w:
        for _ in range(n):
            w.append(b"+1")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_four_processes_append_exactly(path, method):
    recmap.open(path, create=True).close()
    ctx = mp.get_context(method)
    procs = [ctx.Process(target=_count, args=(path, 1000)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    with recmap.open(path, read_only=True) as s:
        assert len(s) == 4000
        ids = [r.id for r in s.records()]
        assert len(set(ids)) == 4000
        v = s.verify()
        assert v.clean and (v.puts, v.deletes) == (4000, 0)


def test_forked_child_cannot_write_through_parents_handle(store):
    store.put(1, b"parent")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            store.put(2, b"child")
        except recmap.UsedAfterFork:
            try:
                with store.writer():
                    pass
            except recmap.UsedAfterFork:
                code = 0 if bytes(store[1]) == b"parent" else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's handle still works: its region locks were not released
    store.put(3, b"after")
    assert 2 not in store and bytes(store[3]) == b"after"


def test_kill9_of_a_writer_loses_nothing_published(path):
    recmap.open(path, create=True).close()
    code = textwrap.dedent(f"""
        import recmap
        s = recmap.open({path!r})
        i = 0
        while True:
            i += 1
            s.put(i, b"value %d" % i)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    seen = 0
    rec = None
    try:
        with recmap.open(path, read_only=True) as r:
            t = r.tail(timeout=300)  # ends if the writer dies early
            for rec in t:  # follow the writer until it has published 5,000
                seen = rec.id
                if seen >= 5000:
                    break
            del rec  # its value is a view into r's mapping
            t.close()
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    with recmap.open(path) as s:  # recovers
        n = len(s)
        assert n >= seen
        for i in range(1, n + 1):
            assert bytes(s[i]) == b"value %d" % i
        v = s.verify()
        assert v.clean and (v.puts, v.deletes) == (n, 0)
        s.put(n + 1, b"writable after the crash")
