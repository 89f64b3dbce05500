"""A local pool's worker process: ``python -m unframe.converters.batch.local_worker FD PPID``.

It reads jobs from the socket ``FD`` its parent handed it, runs each with ``jobs.run_job`` and
sends back the result, until it receives None or its parent goes away. It is a fresh interpreter,
not a fork, so it never re-runs the caller's script (as ``multiprocessing``'s spawn and forkserver
do with an unguarded ``__main__``) and inherits no threads or locks; it stays alive across jobs,
so a framework is imported by its first job and stays imported for the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from multiprocessing.connection import Connection

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when its parent dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def serve(connection: Connection) -> None:
    """Runs each job received on ``connection`` and sends its result back, until None or EOF."""
    from unframe.converters.batch.jobs import run_job

    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        connection.send(run_job(job))


def main(argv: list[str]) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the parent alone stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A framework printing on stdout would corrupt `unframe batch --json`: stdout goes to stderr.
    os.dup2(2, 1)
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)
    # A parent that died before prctl took effect would never send a job.
    if len(argv) != 2 or os.getppid() != int(argv[1]):
        return
    connection = Connection(int(argv[0]))
    try:
        serve(connection)
    finally:
        connection.close()


if __name__ == "__main__":
    main(sys.argv[1:])
