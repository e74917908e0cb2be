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
