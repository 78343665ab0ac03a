"""The FeatureScorer as a coffea ``ml_tools`` wrapper.

``coffea.ml_tools`` imports TensorFlow when it is imported (seconds), so the class is built
on first use (module ``__getattr__``), not when this module is imported.
"""

from __future__ import annotations

from typing import Any


def _build() -> type:
    from coffea.ml_tools.helper import numpy_call_wrapper

    class CoffeaScorer(numpy_call_wrapper):
        """A :class:`coffea.ml_tools.helper.numpy_call_wrapper` around a ``FeatureScorer``."""

        def __init__(self, scorer: Any) -> None:
            super().__init__()
            self.scorer = scorer

        def prepare_awkward(self, *args, **kwargs):
            return self.scorer.prepare_awkward(*args, **kwargs)

        def validate_numpy_input(self, *args, **kwargs) -> None:
            self.scorer.validate_numpy_input(*args, **kwargs)

        def numpy_call(self, *args, **kwargs):
            return self.scorer.numpy_call(*args, **kwargs)

    CoffeaScorer.__module__ = __name__
    CoffeaScorer.__qualname__ = "CoffeaScorer"
    return CoffeaScorer


def __getattr__(name: str) -> Any:
    if name == "CoffeaScorer":
        cls = _build()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
