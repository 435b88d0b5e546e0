"""The countdown of the Python notes, timed three ways for the cpu-bound lesson.

Usage: python3 countdown.py SECONDS

Sizes the countdown so one thread takes about SECONDS, then times it with one
thread, split across two threads, and split across two processes, three
rounds of each, interleaved, keeping each one's fastest: on a shared or
virtual machine the same run can take 50% longer from one moment to the
next, and only the fastest shows the work itself. With each time goes the
CPU time of the same run: this process's for the threads (all of them, as
the interpreter counts it), the children's for the processes. CPU time over
wall time says how many cores the run had at once: about one for threads
that take turns on the GIL. Prints one JSON object on stdout.
"""


import json
import multiprocessing
import resource
import sys
import threading
import time


def countdown(n):
    while n > 0:
        n -= 1


def timed(work):
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def cpu_seconds():
    """CPU time so far, to the microsecond: this process's threads and its
    reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_with_cpu(work):
    cpu = cpu_seconds()
    wall = timed(work)
    return wall, cpu_seconds() - cpu


def decrements_for(seconds):
    # Double a short countdown until it lasts 50 ms, then scale it up.
    n = 100_000
    while True:
        took = timed(lambda: countdown(n))
        if took >= 0.05:
            return max(2, int(n * seconds / took))
        n *= 2


def split(n, parts, make):
    workers = [make(target=countdown, args=(n // parts,)) for _ in range(parts)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    # The interpreter runs the loop slower at first; size it once to warm
    # up, then again for the figure.
    decrements_for(0.1)
    n = decrements_for(float(sys.argv[1]))
    ways = {
        "one_thread_s": lambda: countdown(n),
        "two_threads_s": lambda: split(n, 2, threading.Thread),
        "two_processes_s": lambda: split(n, 2, multiprocessing.Process),
    }
    fastest = {name: (float("inf"), 0.0) for name in ways}
    for _ in range(3):
        for name, work in ways.items():
            fastest[name] = min(fastest[name], timed_with_cpu(work))
    print(json.dumps({
        "version": sys.version.split()[0],
        "start_method": multiprocessing.get_start_method(),
        "decrements": n,
        **{name: wall for name, (wall, _) in fastest.items()},
        **{name.replace("_s", "_cpu_s"): cpu for name, (_, cpu) in fastest.items()},
    }))
