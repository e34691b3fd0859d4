import platform
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# allocates, fills and frees a 64 MB array three times; prints the page faults of the last two rounds
ROUNDS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from irmas.memory import keep_freed_memory
    keep_freed_memory()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(16 << 20, dtype=np.float32)
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[1:]))
"""


def page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], cwd=ROOT, check=True, capture_output=True, text=True)
    return int(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_kept_memory_serves_the_next_large_block_without_page_faults():
    assert page_faults("default") > 100  # glibc unmaps a freed 64 MB block: the next one faults in again
    assert page_faults("keep") < 10
