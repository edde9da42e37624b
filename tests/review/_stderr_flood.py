"""Preloaded by a test's fork server: on SIGUSR1 the server writes 2 MiB to its stderr.

That is far more than a pipe holds (64 KiB on Linux), so a server whose stderr nobody reads
blocks in the write and stops answering.
"""

import signal
import sys


def _flood(*_):
    line = "x" * 1023 + "\n"
    for _ in range(2048):
        sys.stderr.write(line)
    sys.stderr.flush()


signal.signal(signal.SIGUSR1, _flood)
