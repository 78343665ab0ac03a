"""When to stop a session that holds GPUs: GPU idle time, a warning first, never while busy.

A session is *GPU-idle* while every GPU it holds is below ``busy_percent`` utilisation
(NVML) at each observation. After ``idle_timeout - warn_before`` seconds of GPU-idle time
the session is warned; it is stopped once it has been GPU-idle for ``idle_timeout`` and
the warning is at least ``warn_before`` old. One busy reading, on any of its GPUs, resets
both: busy training is never culled. A reading that fails counts as busy (never cull on
a guess). Sessions without GPUs are left to jupyterhub-idle-culler's normal timeout.

The readings come through :class:`GpuUtilisationSource` (``utilisation(gpu_index)`` in
percent): :class:`NvmlUtilisation` on a hub with GPUs, :class:`RecordedUtilisation` to
replay readings in tests and examples.

Examples
--------
>>> policy = GpuCullPolicy(idle_timeout=600, warn_before=120)
>>> tracker = GpuCullTracker(policy)
>>> idle = RecordedUtilisation({0: [0.0] * 20})
>>> [tracker.observe("alice/", [0], idle, now=t).action.value for t in (0, 300, 480, 600)]
['keep', 'keep', 'warn', 'stop']
>>> busy = RecordedUtilisation({1: [97.0, 0.0]})
>>> [tracker.observe("bob/", [1], busy, now=t).action.value for t in (0, 600)]
['busy', 'keep']
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "Action",
    "Decision",
    "GpuCullPolicy",
    "GpuCullTracker",
    "GpuUtilisationSource",
    "NvmlUtilisation",
    "RecordedUtilisation",
]


@runtime_checkable
class GpuUtilisationSource(Protocol):
    """Where GPU utilisation comes from."""

    def utilisation(self, gpu_index: int) -> float:
        """Utilisation of GPU ``gpu_index`` in percent (0-100); raise if it cannot be read."""


class NvmlUtilisation:
    """Utilisation read through NVML (``nvmlDeviceGetUtilizationRates(...).gpu``).

    NVML is initialised on first use and kept open; any NVML error propagates, which the
    policy counts as busy.
    """

    def __init__(self) -> None:
        self._nvml = None

    def utilisation(self, gpu_index: int) -> float:
        """Percent of the last sample period during which a kernel ran on the GPU."""
        if self._nvml is None:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        handle = self._nvml.nvmlDeviceGetHandleByIndex(int(gpu_index))
        return float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)


class RecordedUtilisation:
    """Replays recorded readings: each call for a GPU returns its next value.

    The last value repeats once the recording is used up; ``None`` in a recording stands
    for a failed reading (raises :class:`RuntimeError`, as NVML would).

    >>> source = RecordedUtilisation({0: [12.5, None]})
    >>> source.utilisation(0)
    12.5
    >>> source.utilisation(0)
    Traceback (most recent call last):
    ...
    RuntimeError: no reading recorded for GPU 0 at step 1
    """

    def __init__(self, readings: Mapping[int, Sequence[float | None]]) -> None:
        for gpu, values in readings.items():
            if not values:
                raise ValueError(f"RecordedUtilisation: GPU {gpu} has no readings")
        self.readings = {int(k): list(v) for k, v in readings.items()}
        self._step = {k: 0 for k in self.readings}

    def utilisation(self, gpu_index: int) -> float:
        """The next recorded reading of ``gpu_index``."""
        if gpu_index not in self.readings:
            raise RuntimeError(f"no readings recorded for GPU {gpu_index}")
        values, step = self.readings[gpu_index], self._step[gpu_index]
        self._step[gpu_index] = step + 1
        value = values[min(step, len(values) - 1)]
        if value is None:
            raise RuntimeError(f"no reading recorded for GPU {gpu_index} at step {step}")
        return float(value)


@dataclass(frozen=True)
class GpuCullPolicy:
    """Timeouts of GPU culling.

    Parameters
    ----------
    idle_timeout
        Seconds of GPU-idle time after which a session is stopped.
    warn_before
        Seconds between the warning and the stop (at most ``idle_timeout``).
    busy_percent
        A GPU at or above this utilisation (percent) is busy.
    """

    idle_timeout: float
    warn_before: float
    busy_percent: float = 5.0

    def __post_init__(self) -> None:
        if not self.idle_timeout > 0:
            raise ValueError(
                f"GpuCullPolicy.idle_timeout must be positive, got {self.idle_timeout}"
            )
        if not 0 <= self.warn_before <= self.idle_timeout:
            raise ValueError(
                f"GpuCullPolicy.warn_before must be between 0 and idle_timeout "
                f"({self.idle_timeout}), got {self.warn_before}"
            )
        if not 0 < self.busy_percent <= 100:
            raise ValueError(
                f"GpuCullPolicy.busy_percent must be in (0, 100], got {self.busy_percent}"
            )


class Action(enum.Enum):
    """What to do with a session after one observation."""

    KEEP = "keep"  #: nothing (no GPUs, or idle but not for long enough)
    BUSY = "busy"  #: a GPU is busy: keep, and count it as activity
    WARN = "warn"  #: tell the user the session stops soon
    STOP = "stop"  #: stop the server


@dataclass(frozen=True)
class Decision:
    """The outcome of one observation of one session."""

    action: Action
    idle_for: float = 0.0  #: seconds GPU-idle so far
    stop_in: float | None = None  #: seconds until the stop, once warned
    readings: tuple[float, ...] = ()


@dataclass
class _Watch:
    idle_since: float | None = None
    warned_at: float | None = None


class GpuCullTracker:
    """Remembers, per server, since when its GPUs are idle and when it was warned."""

    def __init__(self, policy: GpuCullPolicy) -> None:
        self.policy = policy
        self._watch: dict[str, _Watch] = {}

    def observe(
        self, server: str, gpu_ids: Sequence[int], source: GpuUtilisationSource, now: float
    ) -> Decision:
        """Read the GPUs of ``server`` at time ``now`` (seconds) and decide."""
        if not gpu_ids:
            self._watch.pop(server, None)
            return Decision(Action.KEEP)
        try:
            readings = tuple(source.utilisation(int(i)) for i in gpu_ids)
        except Exception:  # NVML errors of every kind: unknown means busy
            readings = ()
        watch = self._watch.setdefault(server, _Watch())
        if not readings or max(readings) >= self.policy.busy_percent:
            watch.idle_since = watch.warned_at = None
            return Decision(Action.BUSY, readings=readings)
        if watch.idle_since is None:
            watch.idle_since = now
        idle_for = now - watch.idle_since
        policy = self.policy
        if watch.warned_at is None:
            if idle_for >= policy.idle_timeout - policy.warn_before:
                watch.warned_at = now
                stop_in = max(policy.warn_before, policy.idle_timeout - idle_for)
                return Decision(Action.WARN, idle_for, stop_in, readings)
            return Decision(Action.KEEP, idle_for, None, readings)
        stop_at = max(watch.warned_at + policy.warn_before, watch.idle_since + policy.idle_timeout)
        if now >= stop_at:
            self._watch.pop(server, None)
            return Decision(Action.STOP, idle_for, 0.0, readings)
        return Decision(Action.KEEP, idle_for, stop_at - now, readings)

    def forget(self, keep: Iterable[str]) -> None:
        """Drop servers not in ``keep`` (stopped since the last round)."""
        keep = set(keep)
        for server in [s for s in self._watch if s not in keep]:
            del self._watch[server]
