"""Baseline for `scripts/bench guard`: the Python nsenter package's context manager, which
opens the target's and its own namespace files each time (cold). Prints us per cycle."""
import sys
import time

from nsenter import Namespace

pid, cycles = int(sys.argv[1]), int(sys.argv[2])
for _ in range(cycles // 10):
    with Namespace(pid, "net"):
        pass
start = time.perf_counter()
for _ in range(cycles):
    with Namespace(pid, "net"):
        pass
print("python_nsenter_cold_us %.3f" % ((time.perf_counter() - start) * 1e6 / cycles))
