"""The allocator gives the memory of big messages back to the system (Linux with glibc)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.tools import unavailable

# Run in a fresh interpreter: the allocator's state is the whole process's.
AFTER_A_BIG_MESSAGE = """
import sys
from migrator.cli.memory import tune_allocator
if sys.argv[1] == "tuned" and not tune_allocator():
    sys.exit(3)

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

message = b"x" * (10 * 2**20)
del message
before = resident_mb()
batch = [b"x" * (1_000_000 + i) for i in range(30)]
kept = bytearray(600)  # something small allocated after the batch, which stays
del batch
print(resident_mb() - before)
"""


def resident_growth(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", AFTER_A_BIG_MESSAGE, mode], capture_output=True, text=True)
    if done.returncode == 3:
        unavailable("this C library has no mallopt")
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_a_batch_after_a_big_message_goes_back_to_the_system():
    assert resident_growth("tuned") < 2
    assert resident_growth("default") > 5, "glibc keeps such a batch on its heap (the problem this solves)"
