"""Worker preload: a local worker process ignores the Ctrl-C meant for its client.

A terminal's Ctrl-C and JupyterLab's "Interrupt kernel" send SIGINT to the whole process
group, and the worker processes a local cluster starts are in it. Each of them then died
of ``KeyboardInterrupt`` and its nanny started a new one (dask/distributed#1925): a cell
interrupted while waiting on a result also lost everything held in the workers' memory
(persisted collections, scattered data), and a script printed a traceback per worker.
With this preload (:class:`~analysis_lib.compute.local.LocalCluster` adds it to each of
its nanny-started workers) only the client is interrupted: it stops waiting, the tasks it
no longer wants are released, and the workers and their data stay. The cluster still
closes them as before.

Examples
--------
>>> import signal
>>> before = signal.getsignal(signal.SIGINT)
>>> dask_setup(worker=None)  # what each worker process runs when it starts
>>> signal.getsignal(signal.SIGINT) is signal.SIG_IGN
True
>>> _ = signal.signal(signal.SIGINT, before)
"""

from __future__ import annotations

import signal
import threading
from typing import Any

#: The module name to give as a worker preload.
PRELOAD = __name__


def dask_setup(worker: Any) -> None:
    """Ignore SIGINT in this worker process (only its main thread can change handlers)."""
    del worker
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
