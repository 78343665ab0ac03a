"""Exceptions of :mod:`analysis_lib.compute`."""

from __future__ import annotations

__all__ = ["ComputeConfigError", "EnvironmentSkewError"]


class ComputeConfigError(ValueError):
    """A backend setting is invalid; ``field`` and ``value`` name the culprit.

    Examples
    --------
    >>> err = ComputeConfigError("cores", -1, "must be a whole number >= 1")
    >>> str(err)
    'cores=-1: must be a whole number >= 1'
    >>> err.field, err.value
    ('cores', -1)
    """

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field, self.value = field, value
        super().__init__(f"{field}={value!r}: {problem}")


class EnvironmentSkewError(RuntimeError):
    """Workers were refused because their packages differ from the client's.

    ``refusals`` holds one message per refused worker, each naming the packages and both
    versions.

    Examples
    --------
    >>> err = EnvironmentSkewError(["worker tcp://10.0.0.2:4000: toolz 1.0.0 here, 0.9 there"])
    >>> "toolz" in str(err)
    True
    """

    def __init__(self, refusals: list[str]) -> None:
        self.refusals = list(refusals)
        super().__init__(
            "workers refused for environment skew (start them from the session's "
            "environment):\n" + "\n".join(self.refusals)
        )
