"""What a thread and a process cost Python to start and finish, for the
spawn-cost lesson.

Usage: python3 spawn_cost.py THREADS FORKS SPAWNS BATCHES

Starts and joins THREADS threading.Thread objects, FORKS multiprocessing
Processes with the 'fork' start method and SPAWNS with 'spawn', one after
the other, each running a function that does nothing. One unit of each way
runs first and is not counted: the first spawn also starts multiprocessing's
resource tracker, and imports are paid once. Each way's units run in
BATCHES batches (fewer when there are fewer units); per unit it reports the
median wall time of a batch, and the median CPU time of a batch: this
process's (every thread of it) and its reaped children's, which waiting for a
core does not inflate. Prints one JSON object on stdout.
"""

import json
import multiprocessing
import resource
import sys
import threading
import time


def nothing():
    pass


def cpu_seconds():
    """CPU time so far: this process's threads and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def thread_unit():
    thread = threading.Thread(target=nothing)
    thread.start()
    thread.join()
    return True


def process_unit(context):
    def unit():
        process = context.Process(target=nothing)
        process.start()
        process.join()
        return process.exitcode == 0

    return unit


def measure(way, unit, units, batches):
    unit()
    batches = max(1, min(batches, units))
    sizes = [units // batches + (1 if i < units % batches else 0) for i in range(batches)]
    latencies, cpus, finished = [], [], 0
    for size in sizes:
        cpu = cpu_seconds()
        start = time.perf_counter()
        for _ in range(size):
            finished += unit()
        latencies.append((time.perf_counter() - start) / size)
        cpus.append((cpu_seconds() - cpu) / size)
    return {
        "way": way,
        "units": units,
        "finished": finished,
        "latency_s": median(latencies),
        "cpu_s": median(cpus),
    }


if __name__ == "__main__":
    threads, forks, spawns, batches = (int(arg) for arg in sys.argv[1:5])
    ways = [
        measure("thread", thread_unit, threads, batches),
        measure("fork", process_unit(multiprocessing.get_context("fork")), forks, batches),
        measure("spawn", process_unit(multiprocessing.get_context("spawn")), spawns, batches),
    ]
    print(json.dumps({"version": sys.version.split()[0], "ways": ways}))
