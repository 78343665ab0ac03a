"""Which library decodes the ZLIB-compressed baskets of ROOT files: zlib or libdeflate.

ZLIB is what uproot writes by default (our generated samples use it) and what many ROOT
files use. Decompressing the baskets is most of the cost of reading them: on the columnar
benchmark's file (300 000 events, 47 MB of ZLIB baskets for the pipeline's branches) Python's
``zlib`` takes 0.34 s of a 0.52 s plain uproot read (profiled). libdeflate, through the
``deflate`` package, decodes the same bytes to the same output in 0.21 s.

uproot 5.7 decodes every ZLIB basket through one object, ``uproot.compression._decompress_ZLIB``.
Its ``library`` setting offers ``"deflate"``, but that branch passes a keyword
(``bufsize=``) that the ``deflate`` releases 0.6 to 0.9 do not accept, and the documented
``uproot.ZLIB.library`` reaches only the compressor. :func:`use_zlib_decoder` therefore gives
that one object a ``decompress`` of its own; nothing else of uproot changes, LZMA, LZ4 and
ZSTD baskets are untouched, and writing files is unaffected.

The choice holds for the whole process. The columnar pipeline makes it where it reads
(:class:`~analysis_lib.columnar.direct.DirectRunner`, in every worker process), unless the
process chose already: call ``use_zlib_decoder("zlib")`` for uproot's own decoder. Where
uproot's internals are not as described (another uproot release), the pipeline keeps
uproot's decoder; ``tests/test_columnar_zlib_decoder.py`` fails then, so that it is noticed.

Examples
--------
>>> import numpy as np, os, tempfile, uproot
>>> path = os.path.join(tempfile.mkdtemp(), "z.root")
>>> with uproot.recreate(path, compression=uproot.ZLIB(1)) as f:
...     f["Events"] = {"x": np.arange(10_000.0)}
>>> use_zlib_decoder("libdeflate")
'libdeflate'
>>> with uproot.open(path) as f:
...     fast = f["Events"]["x"].array(library="np")
>>> use_zlib_decoder("zlib")
'zlib'
>>> with uproot.open(path) as f:
...     plain = f["Events"]["x"].array(library="np")
>>> bool((fast == plain).all()), zlib_decoder()
(True, 'zlib')
>>> use_zlib_decoder()  # the default again: libdeflate where it can be used
'libdeflate'
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Any

#: The decoders :func:`use_zlib_decoder` knows.
DECODERS = ("zlib", "libdeflate")

_lock = threading.Lock()
_chosen: str | None = None  # set by an explicit use_zlib_decoder(name)
_automatic = False  # prefer_fast_zlib has chosen in this process


def _decoder_object() -> Any | None:
    """uproot's one ZLIB decoder object, or None where uproot does not have it."""
    import uproot.compression

    obj = getattr(uproot.compression, "_decompress_ZLIB", None)
    cls = getattr(uproot.compression, "_DecompressZLIB", None)
    if obj is None or cls is None or not isinstance(obj, cls):
        return None
    if not callable(getattr(cls, "decompress", None)):
        return None
    return obj


def _libdeflate() -> Callable[[Any, int], bytes] | None:
    """libdeflate's zlib decoder from the ``deflate`` package, or None without it."""
    try:
        import deflate
    except ImportError:
        return None
    decode = getattr(deflate, "zlib_decompress", None)
    if decode is None:
        return None
    sample = b"hepml-hub " * 20
    try:  # the signature this module relies on: (data, original size)
        if decode(zlib.compress(sample), len(sample)) != sample:
            return None
    except Exception:
        return None
    return decode


def _libdeflate_decompress(decode: Callable[[Any, int], bytes]) -> Callable[..., bytes]:
    def decompress(data: Any, uncompressed_bytes: int | None = None) -> bytes:
        if uncompressed_bytes is None:
            raise ValueError("zlib decompression requires the number of uncompressed bytes")
        try:
            return decode(data, uncompressed_bytes)
        except Exception as exc:  # as zlib reports a bad block, so callers see one type
            raise zlib.error(
                f"libdeflate cannot decode a ZLIB block of {len(data)} bytes into "
                f"{uncompressed_bytes} bytes (corrupt or truncated data): {exc}"
            ) from exc

    decompress.hepml_decoder = "libdeflate"  # type: ignore[attr-defined]
    return decompress


def zlib_decoder() -> str:
    """The decoder uproot uses for ZLIB baskets in this process: ``"zlib"`` or ``"libdeflate"``.

    Examples
    --------
    >>> zlib_decoder() in DECODERS
    True
    """
    obj = _decoder_object()
    if obj is None:
        return "zlib"
    own = obj.__dict__.get("decompress")
    return getattr(own, "hepml_decoder", "zlib")


def use_zlib_decoder(name: str | None = None) -> str:
    """Choose the decoder of ZLIB baskets for every uproot read in this process.

    Parameters
    ----------
    name : {"libdeflate", "zlib"}, optional
        ``"zlib"`` is uproot's own decoder (Python's ``zlib``). None takes libdeflate when
        it can be used here and zlib otherwise.

    Returns
    -------
    str
        The decoder now in use.

    Raises
    ------
    ValueError
        For an unknown ``name``.
    RuntimeError
        For ``"libdeflate"`` where it cannot be used: the ``deflate`` package is missing
        or does not decode, or uproot does not decode ZLIB as this module expects.

    Examples
    --------
    >>> use_zlib_decoder("zlib")
    'zlib'
    >>> use_zlib_decoder("gzip")
    Traceback (most recent call last):
    ...
    ValueError: unknown ZLIB decoder 'gzip' (known: zlib, libdeflate)
    """
    global _chosen
    if name is not None and name not in DECODERS:
        raise ValueError(f"unknown ZLIB decoder {name!r} (known: {', '.join(DECODERS)})")
    with _lock:
        obj = _decoder_object()
        decode = _libdeflate() if name != "zlib" else None
        if name == "libdeflate" and (obj is None or decode is None):
            why = (
                "the 'deflate' package is not installed or does not decode"
                if decode is None
                else "this uproot release does not decode ZLIB through "
                "uproot.compression._decompress_ZLIB"
            )
            raise RuntimeError(f"cannot use libdeflate for ZLIB baskets: {why}")
        if obj is not None:
            if decode is None:
                obj.__dict__.pop("decompress", None)
            elif zlib_decoder() != "libdeflate":
                obj.decompress = _libdeflate_decompress(decode)
        _chosen = name
        return zlib_decoder()


def prefer_fast_zlib() -> str:
    """Take libdeflate for ZLIB baskets unless this process chose a decoder already.

    The columnar pipeline calls this where it reads; after its first call in a process it
    only returns the decoder in use.

    Examples
    --------
    >>> prefer_fast_zlib() in DECODERS
    True
    """
    global _automatic
    if _chosen is None and not _automatic:
        use_zlib_decoder(None)
        _automatic = True
    return zlib_decoder()
