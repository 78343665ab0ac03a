"""Live progress of a scan: an ipywidgets panel in a notebook, tqdm elsewhere.

Both displays get the same information after every event of the scan: how many trials are
done, running, failed and pruned, and the best value so far. The notebook panel also draws
the metric of every finished trial and the best-so-far curve (matplotlib, rendered to a PNG
in an ``ipywidgets.Image``; redrawn at most every ``redraw_s`` seconds and at the end).

Examples
--------
>>> p = WidgetProgress(redraw_s=0)
>>> p.start(total=3, direction="minimize")
>>> p.update({"done": 1, "running": 1, "failed": 0, "pruned": 0},
...          [{"number": 0, "state": "done", "value": 0.5}])
>>> "done 1/3" in p.label.value, p.points("done")
(True, [(0, 0.5)])
>>> p.close()
"""

from __future__ import annotations

import io
import sys
import time
from typing import Any

__all__ = ["Progress", "TqdmProgress", "WidgetProgress", "in_notebook", "make_progress"]


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (where widgets can be displayed)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def summary(counts: dict[str, int], total: int, best: dict[str, Any] | None) -> str:
    """One line: counts and the best trial so far."""
    text = (
        f"done {counts.get('done', 0)}/{total} · running {counts.get('running', 0)} · "
        f"failed {counts.get('failed', 0)} · pruned {counts.get('pruned', 0)}"
    )
    if best is not None:
        text += f" · best {best['value']:.6g} (trial {best['number']})"
    return text


def best_record(records: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The done record with the best value, or ``None``."""
    done = [r for r in records if r["state"] == "done"]
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda r: r["value"])


class Progress:
    """Base class: a display told about the scan's progress (no output)."""

    total = 0
    direction = "minimize"

    def start(self, total: int, direction: str) -> None:
        self.total = total
        self.direction = direction

    def update(self, counts: dict[str, int], records: list[dict[str, Any]]) -> None:
        """Called after every event with the counts and all finished records."""

    def close(self) -> None:
        """Called once at the end (also after an interruption)."""


class TqdmProgress(Progress):
    """A tqdm bar counting finished trials, with the counts and the best value as postfix."""

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None

    def start(self, total: int, direction: str) -> None:
        from tqdm.auto import tqdm

        super().start(total, direction)
        self.bar = tqdm(total=total, desc="scan", unit="trial", **self.tqdm_kwargs)

    def update(self, counts: dict[str, int], records: list[dict[str, Any]]) -> None:
        if self.bar is None:
            return
        finished = counts.get("done", 0) + counts.get("failed", 0) + counts.get("pruned", 0)
        self.bar.update(finished - self.bar.n)
        best = best_record(records, self.direction)
        post = {k: counts.get(k, 0) for k in ("running", "failed", "pruned")}
        if best is not None:
            post["best"] = f"{best['value']:.6g}"
        self.bar.set_postfix(post, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class WidgetProgress(Progress):
    """An ipywidgets panel: a summary line and a plot of the metric per trial.

    Parameters
    ----------
    redraw_s : float
        Minimum time between two redraws of the plot.
    display : bool
        Display the panel when the scan starts (in a notebook).
    """

    def __init__(self, *, redraw_s: float = 1.0, display: bool = False) -> None:
        import ipywidgets as widgets
        from matplotlib.figure import Figure

        self.redraw_s = redraw_s
        self.display = display
        self.label = widgets.HTML(value="scan: waiting")
        self.image = widgets.Image(format="png")
        self.widget = widgets.VBox([self.label, self.image])
        self.figure = Figure(figsize=(6, 3), dpi=80)
        self.axes = self.figure.add_subplot()
        self._records: list[dict[str, Any]] = []
        self._drawn = 0.0

    def start(self, total: int, direction: str) -> None:
        super().start(total, direction)
        if self.display:
            from IPython.display import display

            display(self.widget)

    def points(self, state: str) -> list[tuple[int, float]]:
        """``(number, value)`` of the plotted trials in ``state``."""
        return [
            (r["number"], r["value"])
            for r in sorted(self._records, key=lambda r: r["number"])
            if r["state"] == state and r.get("value") is not None
        ]

    def update(self, counts: dict[str, int], records: list[dict[str, Any]]) -> None:
        self._records = list(records)
        self.label.value = summary(counts, self.total, best_record(records, self.direction))
        if time.monotonic() - self._drawn >= self.redraw_s:
            self.redraw()

    def redraw(self) -> None:
        """Draw the metric per trial and the best so far, and show it."""
        ax = self.axes
        ax.clear()
        done = self.points("done")
        pruned = self.points("pruned")
        if done:
            ax.plot(*zip(*done, strict=True), "o", color="C0", label="done")
            best, curve = None, []
            for number, value in done:
                better = best is None or (
                    value > best if self.direction == "maximize" else value < best
                )
                best = value if better else best
                curve.append((number, best))
            ax.step(*zip(*curve, strict=True), where="post", color="C1", label="best so far")
        if pruned:
            ax.plot(*zip(*pruned, strict=True), "x", color="C3", label="pruned (last report)")
        ax.set_xlabel("trial")
        ax.set_ylabel("metric")
        if done or pruned:
            ax.legend(loc="best", fontsize="small")
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png")
        self.image.value = buf.getvalue()
        self._drawn = time.monotonic()

    def close(self) -> None:
        self.redraw()


def make_progress(progress: bool | Progress) -> Progress:
    """``True``: widgets in a notebook, tqdm elsewhere; ``False``: nothing; or as given."""
    if isinstance(progress, Progress):
        return progress
    if not progress:
        return Progress()
    if in_notebook():
        return WidgetProgress(display=True)
    return TqdmProgress()
