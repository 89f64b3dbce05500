"""Each worker process's share of the cores, for the commands that run work in a process pool."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["THREAD_VARIABLES", "share_cores"]

#: Thread-pool sizes read by OpenMP (torch, onnxruntime), MKL and OpenBLAS at start-up.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def share_cores(environment: MutableMapping[str, str], workers: int) -> None:
    """Sets a worker's thread-pool sizes in ``environment`` to its share of the cores.

    ``workers`` processes each running torch's and onnxruntime's thread pools on every core would
    oversubscribe them; a size the user set already wins.
    """
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    for variable in THREAD_VARIABLES:
        environment.setdefault(variable, threads)
