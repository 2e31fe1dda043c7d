"""Runs several commands interleaved (one of each per round, in a new random order each
round) and prints each one's median and best wall time in ms. Used by `scripts/bench`.

    interleave.py ROUNDS NAME=COMMAND [NAME=COMMAND...]   (COMMAND is split on spaces)

The order is shuffled because a command runs slower right after a heavy one (`docker exec`
leaves dockerd and containerd busy for a while): in a fixed order, whatever follows it
would always pay for it. The seed is fixed, so a run can be repeated.
"""
import os
import random
import statistics
import sys
import time

rounds = int(sys.argv[1])
commands = [(arg.split("=", 1)[0], arg.split("=", 1)[1].split()) for arg in sys.argv[2:]]
times = {name: [] for name, _ in commands}
devnull = os.open(os.devnull, os.O_RDWR)
order = random.Random(42)
for _ in range(rounds):
    for name, argv in order.sample(commands, len(commands)):
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status = os.waitpid(pid, 0)
        elapsed = (time.perf_counter() - start) * 1000
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{name}: {' '.join(argv)} failed with {os.waitstatus_to_exitcode(status)}")
        times[name].append(elapsed)
for name, _ in commands:
    print(f"{name} {statistics.median(times[name]):.3f} {min(times[name]):.3f}")
