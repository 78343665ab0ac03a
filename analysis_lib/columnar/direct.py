"""coffea's Runner with a direct read: chunks go to the processor as an open tree, not NanoEvents.

For every chunk, coffea's :class:`~coffea.processor.Runner` opens the file, reads the
``TTree`` again and builds NanoEvents (a form for every branch of the tree) before the
processor sees a column. For a processor that reads a fixed set of branches into numpy
anyway (:class:`~analysis_lib.columnar.processor.SemileptonicProcessor`), that is pure
overhead: on a 100 000-event chunk of our files it costs about a fifth of reading the
chunk's columns, and more for real NanoAOD with its ~1500 branches.

:class:`DirectRunner` keeps everything else of the Runner (chunking, executors, retries,
checkpoints, accumulation) and changes only the work function: when the processor has a
``process_tree(tree, metadata)`` method and the input is ROOT, the chunk's tree comes from
:func:`open_tree` — a small per-thread cache of open files, so the chunks of a file that run
in the same worker thread share one open file and one parsed ``TTree``, as a plain uproot
read of the whole file does — and goes to ``process_tree``. Any other processor or format
takes coffea's own path. Either way the work function first lets the worker process decode
ZLIB baskets with libdeflate (:func:`~analysis_lib.columnar.zlib_decoder.prefer_fast_zlib`).

:func:`close_trees` closes the calling thread's cached files (``run_columnar`` does it when
a run ends); worker processes keep at most :data:`MAX_OPEN_FILES` open per thread.

Examples
--------
>>> import numpy as np, uproot, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "t.root")
>>> with uproot.recreate(path) as f:
...     f["Events"] = {"x": np.arange(3.0)}
>>> tree = open_tree(path, "Events")
>>> open_tree(path, "Events") is tree, tree.num_entries
(True, 3)
>>> close_trees()
"""

from __future__ import annotations

import threading
import uuid as uuid_module
from collections import OrderedDict
from typing import Any

import cloudpickle
import lz4.frame as lz4f
import uproot
from coffea.processor import ProcessorABC, Runner
from coffea.processor.checkpointer import CheckpointerABC

from .zlib_decoder import prefer_fast_zlib

#: Open files kept per thread.
MAX_OPEN_FILES = 4

_local = threading.local()


def _cache() -> OrderedDict:
    cache = getattr(_local, "files", None)
    if cache is None:
        cache = _local.files = OrderedDict()
    return cache


def open_tree(
    filename: str,
    treename: str,
    fileuuid: str | None = None,
    **uproot_options: Any,
):
    """The tree ``treename`` of ``filename``, from this thread's cache of open files.

    Parameters
    ----------
    filename, treename : str
        The file and the tree inside it.
    fileuuid : str, optional
        The file's UUID as coffea gives it: a cached file with another UUID (the file was
        replaced since) is closed and the file opened again.
    **uproot_options
        Passed to :func:`uproot.open` when the file is opened. ``array_cache`` defaults
        to None: a run reads each chunk once, and uproot's default cache would keep up
        to 100 MB of read arrays per open file.
    """
    cache = _cache()
    key = (filename, treename)
    entry = cache.get(key)
    if entry is not None:
        file, tree = entry
        if not fileuuid or str(file.file.uuid) == str(uuid_module.UUID(fileuuid)):
            cache.move_to_end(key)
            return tree
        del cache[key]
        file.close()
    file = uproot.open(filename, **{"array_cache": None, **uproot_options})
    try:
        if fileuuid and str(file.file.uuid) != str(uuid_module.UUID(fileuuid)):
            raise OSError(f"{filename}: the file changed (UUID {file.file.uuid}, not {fileuuid})")
        tree = file[treename]
    except BaseException:
        file.close()
        raise
    keep_tree(filename, treename, file, tree)
    return tree


def keep_tree(filename: str, treename: str, file, tree) -> None:
    """Put an already open ``file`` and its ``tree`` into this thread's cache (see above)."""
    cache = _cache()
    key = (filename, treename)
    old = cache.pop(key, None)
    if old is not None and old[0] is not file:
        old[0].close()
    cache[key] = (file, tree)
    while len(cache) > MAX_OPEN_FILES:
        _, (evicted, _) = cache.popitem(last=False)
        evicted.close()


def close_trees() -> None:
    """Close the files :func:`open_tree` keeps open in the calling thread."""
    cache = _cache()
    while cache:
        _, (file, _) = cache.popitem()
        file.close()


class DirectRunner(Runner):
    """:class:`coffea.processor.Runner` that hands ROOT chunks to ``process_tree`` directly.

    See the module documentation. Takes the Runner's arguments unchanged; outputs,
    checkpoints and retries are the Runner's.
    """

    @staticmethod
    def _work_function(
        format,
        xrootdtimeout,
        schema,
        use_dataframes,
        savemetrics,
        item,
        processor_instance,
        uproot_options,
        iteritems_options,
        checkpointer,
        cache_function,
    ):
        prefer_fast_zlib()  # once per process: libdeflate for ZLIB baskets (zlib_decoder)
        heavy = processor_instance == "heavy"
        processor = item[1] if heavy else processor_instance
        if not isinstance(processor, ProcessorABC) and not callable(processor):
            processor = cloudpickle.loads(lz4f.decompress(processor))
        if (
            format != "root"
            or use_dataframes
            or savemetrics
            or not callable(getattr(processor, "process_tree", None))
            or not getattr(processor, "fast_read", True)
        ):
            return Runner._work_function(
                format,
                xrootdtimeout,
                schema,
                use_dataframes,
                savemetrics,
                item,
                processor_instance,
                uproot_options,
                iteritems_options,
                checkpointer,
                cache_function,
            )
        if heavy:
            item = item[0]
        metadata = {
            "dataset": item.dataset,
            "filename": item.filename,
            "treename": item.treename,
            "entrystart": item.entrystart,
            "entrystop": item.entrystop,
            "fileuuid": str(uuid_module.UUID(bytes=item.fileuuid)) if item.fileuuid else "",
        }
        if item.usermeta is not None:
            metadata.update(item.usermeta)
        if checkpointer is not None:
            if not isinstance(checkpointer, CheckpointerABC):
                raise TypeError("Expected checkpointer to derive from CheckpointerABC")
            out = checkpointer.load(metadata, processor)
            if out is not None:
                return out
        options = dict(uproot_options or {})
        options.setdefault("timeout", xrootdtimeout)
        try:
            out = processor.process_tree(
                lambda: open_tree(item.filename, item.treename, metadata["fileuuid"], **options),
                metadata,
            )
        except Exception as e:  # named like coffea's own work function names it
            raise Exception(f"Failed processing file: {item!r}. The error was: {e!r}.") from e
        if out is None:
            raise ValueError("Output of process_tree() should not be None.")
        out = {"out": out, "processed": {item}}
        if checkpointer is not None:
            checkpointer.save(out, metadata, processor)
        return out
