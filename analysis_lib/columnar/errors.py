"""Errors of the columnar pipeline: each one names the file and says what exists instead.

All of them carry a message that is complete on its own (no traceback needed), so the
command line prints it as is. They pickle with their message, so they cross Dask workers.

Examples
--------
>>> err = MissingBranchError("a.root", ["Jet_btagDeepFlavB"], available=["Jet_pt", "Jet_eta"])
>>> print(err)
a.root: missing branch Jet_btagDeepFlavB; the file has Jet_eta, Jet_pt
"""

from __future__ import annotations

from collections.abc import Iterable


class ColumnarError(Exception):
    """Base class of the errors this package raises about its input."""


class FileError(ColumnarError):
    """Something wrong with one file: ``"<filename>: <reason>"``.

    Parameters
    ----------
    filename : str
        The file.
    reason : str
        What went wrong, in words; kept on one line (the line breaks of an inner error's
        text, such as uproot's, become spaces) so that a listing of bad files stays one
        line per file.

    Examples
    --------
    >>> inner = OSError("expected 403 bytes," + chr(10) + "received 6")  # two lines
    >>> FileError("a.root", f"not ROOT (OSError: {inner})").reason
    'not ROOT (OSError: expected 403 bytes, received 6)'
    """

    def __init__(self, filename: str, reason: str) -> None:
        reason = " ".join(str(reason).split())
        super().__init__(f"{filename}: {reason}")
        self.filename = str(filename)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.filename, self.reason))


class BadInputError(FileError):
    """A ROOT file that cannot be read: missing, not ROOT, truncated or corrupt.

    Examples
    --------
    >>> print(BadInputError("a.root", "no such file"))
    a.root: no such file
    """


class MissingBranchError(ColumnarError, KeyError):
    """Branches the pipeline needs are not in a file.

    Parameters
    ----------
    filename : str
        The file.
    missing : iterable of str
        Branch names that are needed but absent.
    available : iterable of str
        What the file has instead (usually the branches of the same collection).
    hint : str, optional
        One more sentence (for example how to choose another b-tag branch).
    """

    def __init__(
        self,
        filename: str,
        missing: Iterable[str],
        *,
        available: Iterable[str] = (),
        hint: str = "",
    ) -> None:
        self.filename = str(filename)
        self.missing = sorted(missing)
        self.available = sorted(available)
        self.hint = hint
        plural = "es" if len(self.missing) > 1 else ""
        msg = f"{filename}: missing branch{plural} {', '.join(self.missing)}"
        if self.available:
            msg += f"; the file has {', '.join(self.available)}"
        else:
            msg += "; the file has no related branches"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])

    def __reduce__(self):
        return (
            _rebuild_missing,
            (self.filename, self.missing, self.available, self.hint),
        )


def _rebuild_missing(filename, missing, available, hint):
    return MissingBranchError(filename, missing, available=available, hint=hint)


class UnknownVariationError(ColumnarError, ValueError):
    """A systematic variation name the processor does not know.

    Parameters
    ----------
    unknown : iterable of str
        The names asked for that do not exist.
    known : iterable of str
        The names that exist.
    """

    def __init__(self, unknown: Iterable[str], known: Iterable[str]) -> None:
        self.unknown = list(unknown)
        self.known = list(known)
        super().__init__(
            f"unknown variation{'s' if len(self.unknown) > 1 else ''} "
            f"{', '.join(map(repr, self.unknown))}; known variations: {', '.join(self.known)}"
        )

    def __reduce__(self):
        return (type(self), (self.unknown, self.known))


class ModelFileError(FileError, ValueError):
    """A model file that is missing, unreadable, not a model, or changed during a run.

    Examples
    --------
    >>> print(ModelFileError("bdt.json", "no such file"))
    bdt.json: no such file
    """
