import os
import signal
import subprocess
import sys
import textwrap
import threading


def test_thread_runs_while_another_waits_in_tail(store):
    started = threading.Event()
    got = []

    def consume():
        t = store.tail(from_sequence=0)
        started.set()
        got.append(t.next_record())  # waits forever, GIL released
        t.close()

    th = threading.Thread(target=consume)
    th.start()
    started.wait()
    # This loop can only run while the tail thread waits without the GIL.
    n = 0
    for i in range(200000):
        n += i
    assert n == sum(range(200000))
    assert th.is_alive()
    store.append(b"wake up")
    th.join(120)
    assert not th.is_alive()
    assert bytes(got[0].value) == b"wake up"


def test_ctrl_c_interrupts_a_waiting_tail(path):
    import recmap
    recmap.open(path, create=True).close()
    code = textwrap.dedent(f"""
        import recmap, sys
        s = recmap.open({path!r})
        t = s.tail(from_sequence=0)
        try:
            print("ready", flush=True)  # a signal from here on is caught
            t.next_record()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(0)
        sys.exit(1)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         text=True, env=os.environ.copy())
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0 and "interrupted" in out


def test_ctrl_c_stops_the_tailer_and_the_tail_resumes(path):
    """SIGINT during a wait goes through Tailer::RequestStop (counted in
    counters["interruptions"]); the tail then resumes where it was and
    delivers exactly the records written after. The parent repeats SIGINT
    until one lands inside the wait (one landing between two calls raises
    KeyboardInterrupt without stopping the tailer; the child retries)."""
    import recmap
    with recmap.open(path, create=True) as s:
        s.append(b"before")
    code = textwrap.dedent(f"""
        import recmap, signal, sys
        armed = [True]
        def on_sigint(sig, frame):
            if armed[0]:
                raise KeyboardInterrupt
        signal.signal(signal.SIGINT, on_sigint)
        s = recmap.open({path!r})
        t = s.tail(from_sequence=0)
        while True:
            try:
                print("ready", flush=True)
                t.next_record()
                sys.exit(1)
            except KeyboardInterrupt:
                if t.counters["interruptions"] >= 1:
                    armed[0] = False
                    break
        print("stopped", t.next_sequence, flush=True)
        s.append(b"after")
        r = t.next_record(timeout=60)
        print(r.sequence, bytes(r.value).decode(), flush=True)
        print(t.next_record(timeout=0), flush=True)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=os.environ.copy())
    assert p.stdout.readline().strip() == "ready"
    stopped = threading.Event()

    def interrupt():
        while not stopped.is_set() and p.poll() is None:
            p.send_signal(signal.SIGINT)
            stopped.wait(0.2)

    th = threading.Thread(target=interrupt)
    th.start()
    try:
        first = p.stdout.readline().strip()
        while first == "ready":  # a retry
            first = p.stdout.readline().strip()
    finally:
        stopped.set()
        th.join()
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, (first, out, err)
    assert first == "stopped 2"
    assert out.splitlines() == ["2 after", "None"]


def test_sigint_handler_is_restored_after_a_wait(store):
    before = signal.getsignal(signal.SIGINT)
    t = store.tail(from_sequence=0)
    assert t.next_record(timeout=0.01) is None
    assert signal.getsignal(signal.SIGINT) is before
    t.close()
