#!/usr/bin/python3
"""Where a process's threads spent a measurement: on a CPU, or runnable and waiting for one.

Usage: threadstat.py PID OUT

Samples /proc/PID/task/*/schedstat (nanoseconds on a CPU, nanoseconds
runnable but waiting on a run queue) every 50 ms until SIGTERM or PID
exits, and writes one line to OUT:

  threads=K run_s=R wait_s=W rdk_run_s=RR rdk_wait_s=RW wall_s=T busy=B0,B1,...

K threads of the program's own seen (its main thread and the ones it
starts; librdkafka's, named "rdk:...", are counted apart as RR and RW), R
and W summed over them (a thread's last sample before it ended: the
analyzer starts its worker threads per batch, so up to 50 ms of each is
missed), T the sampled span, and Bi the share of the span during which i
of its own threads' worth of CPU was in use (rounded).
"""
import os
import signal
import sys
import time

pid, out = sys.argv[1], sys.argv[2]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)


def sample():
    got = {}
    try:
        tids = os.listdir("/proc/%s/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            if tid not in names:
                with open("/proc/%s/task/%s/comm" % (pid, tid)) as f:
                    names[tid] = f.read().strip()
            with open("/proc/%s/task/%s/schedstat" % (pid, tid)) as f:
                run, wait, _ = f.read().split()
            got[tid] = (int(run), int(wait))
        except (OSError, ValueError):
            pass  # the thread ended between the listing and the read
    return got


names = {}
last = {}
busy = {}


def own(tid):
    return not names.get(tid, "").startswith("rdk:")


t0 = prev_t = time.monotonic()
prev_run = None
while not stop:
    s = sample()
    if s is None:
        break
    now = time.monotonic()
    last.update(s)
    run = sum(v[0] for t, v in last.items() if own(t))
    if prev_run is not None and now > prev_t:
        cores = round((run - prev_run) / 1e9 / (now - prev_t))
        busy[cores] = busy.get(cores, 0) + (now - prev_t)
    prev_run, prev_t = run, now
    time.sleep(0.05)
span = prev_t - t0
top = max(busy) if busy else 0
mine = [v for t, v in last.items() if own(t)]
rdk = [v for t, v in last.items() if not own(t)]
with open(out, "w") as f:
    f.write("threads=%d run_s=%.2f wait_s=%.2f rdk_run_s=%.2f rdk_wait_s=%.2f wall_s=%.2f busy=%s\n" % (
        len(mine), sum(v[0] for v in mine) / 1e9, sum(v[1] for v in mine) / 1e9,
        sum(v[0] for v in rdk) / 1e9, sum(v[1] for v in rdk) / 1e9, span,
        ",".join("%.2f" % (busy.get(i, 0) / span if span else 0) for i in range(top + 1))))
