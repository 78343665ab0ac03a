"""The pyhf workspace of a binned classifier-score fit, built as plain data.

:func:`build_workspace` is a pure function: templates in, a JSON-serialisable workspace
``dict`` out (pyhf schema ``1.0.0``), with nothing computed; :mod:`.significance` does the
inference. The model has one channel (the score histogram) and:

* the signal sample scaled by the parameter of interest ``mu`` (``normfactor``);
* each background sample as given;
* per uncertainty source on each sample (names as in the columnar pipeline: ``jes``,
  ``jer``, ``btag_sf``, ``lepton_sf``): a ``normsys`` when the up and down histograms are
  the nominal scaled by a positive constant (a pure normalisation change, within
  ``norm_rtol``), otherwise a ``histosys`` with the full varied histograms (also for a
  variation that empties the sample: its factor 0 has no logarithm for ``normsys``).
  The same name on several samples is one nuisance parameter (fully correlated).
  Variations equal to the nominal are left out;
* with ``staterror=True``, the MC statistical uncertainty per bin (``staterror``,
  Barlow-Beeston lite, from each template's ``sumw2``).

The observations are the expected signal plus background (the Asimov data at ``mu = 1``,
nuisances nominal).

Examples
--------
>>> from analysis_lib.evaluation.templates import Template
>>> sig = Template([0.0, 0.5, 1.0], [1.0, 4.0])
>>> bkg = Template([0.0, 0.5, 1.0], [40.0, 10.0],
...                variations={"btag_sf": ([44.0, 11.0], [36.0, 9.0])})
>>> ws = build_workspace(sig, bkg, known_variations=["btag_sf"])
>>> [m["type"] for m in ws["channels"][0]["samples"][1]["modifiers"]]
['normsys']
>>> ws["observations"][0]["data"]
[41.0, 14.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .templates import Template

__all__ = ["POI", "VARIATION_SOURCES", "build_workspace", "known_variation_sources"]

#: Name of the signal-strength parameter.
POI = "mu"


#: The uncertainty sources of the columnar pipeline, in its order
#: (:data:`analysis_lib.columnar.VARIATIONS` without ``_up``/``_down``; kept here so that
#: evaluation does not import coffea, and checked against it by the tests).
VARIATION_SOURCES: tuple[str, ...] = ("jes", "jer", "btag_sf", "lepton_sf")


def known_variation_sources() -> tuple[str, ...]:
    """The uncertainty sources of the columnar pipeline (``jes``, ``jer``, ...).

    Examples
    --------
    >>> known_variation_sources()
    ('jes', 'jer', 'btag_sf', 'lepton_sf')
    """
    return VARIATION_SOURCES


def _is_normalisation(
    nominal: np.ndarray, up: np.ndarray, down: np.ndarray, rtol: float
) -> tuple[float, float] | None:
    """(hi, lo) factors when up/down are the nominal times constants, else None."""
    total = nominal.sum()
    if not total > 0:
        return None
    factors = []
    for varied in (up, down):
        k = varied.sum() / total
        if not np.allclose(varied, k * nominal, rtol=rtol, atol=rtol * abs(total) * 1e-3):
            return None
        factors.append(float(k))
    return factors[0], factors[1]


def _check_non_negative(sample: str, what: str, values: np.ndarray, edges: np.ndarray) -> None:
    bad = np.flatnonzero(values < 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"sample {sample!r} {what} is negative in bin {i} "
            f"[{float(edges[i])!r}, {float(edges[i + 1])!r}): "
            f"{float(values[i])!r}; merge bins or check the weights"
        )


def _modifiers(
    sample: str,
    template: Template,
    *,
    known: set[str],
    norm_rtol: float,
    staterror: bool,
) -> list[dict]:
    mods: list[dict] = []
    for name in sorted(template.variations):
        if name in (POI, "staterror"):
            raise ValueError(
                f"variation {name!r} in sample {sample!r} has the name of the "
                f"{'signal strength' if name == POI else 'MC statistics modifier'}; "
                "rename the variation"
            )
        if name not in known:
            raise ValueError(
                f"unknown variation {name!r} in sample {sample!r}; known variations: "
                f"{', '.join(sorted(known))} (pass known_variations= to add more)"
            )
        up, down = template.variations[name]
        _check_non_negative(sample, f"variation {name!r} up", up, template.edges)
        _check_non_negative(sample, f"variation {name!r} down", down, template.edges)
        if np.allclose(up, template.nominal, rtol=1e-12, atol=0) and np.allclose(
            down, template.nominal, rtol=1e-12, atol=0
        ):
            continue
        factors = _is_normalisation(template.nominal, up, down, norm_rtol)
        # normsys interpolates exponentially (code 4): a factor of 0 (a variation that
        # empties the sample) has no logarithm, so it goes in as a shape (histosys)
        if factors is not None and min(factors) > 0:
            hi, lo = factors
            mods.append({"name": name, "type": "normsys", "data": {"hi": hi, "lo": lo}})
        else:
            mods.append(
                {
                    "name": name,
                    "type": "histosys",
                    "data": {"hi_data": up.tolist(), "lo_data": down.tolist()},
                }
            )
    if staterror:
        if template.sumw2 is None:
            raise ValueError(
                f"staterror needs the sum of squared weights of sample {sample!r} "
                "(Template.sumw2): make the template with make_template, pass sumw2, or "
                "name only the samples that have it (staterror=['background'])"
            )
        mods.append(
            {"name": "staterror", "type": "staterror", "data": np.sqrt(template.sumw2).tolist()}
        )
    return mods


def build_workspace(
    signal: Template,
    backgrounds: Template | Mapping[str, Template],
    *,
    staterror: bool | Iterable[str] = False,
    known_variations: Iterable[str] | None = None,
    norm_rtol: float = 1e-6,
    channel: str = "score",
    poi_bounds: tuple[float, float] = (0.0, 10.0),
) -> dict:
    """The pyhf workspace (a plain dict) of signal and backgrounds in classifier-score bins.

    Parameters
    ----------
    signal : Template
        The signal sample; its yield is scaled by ``mu``.
    backgrounds : Template or mapping of str to Template
        One background (named ``background``) or several, by name.
    staterror : bool or iterable of str
        Add the MC statistical uncertainty per bin: to every sample (``True``) or to the
        named ones (``["background"]``, ``["signal", "ttbar"]``); each needs ``sumw2``.
    known_variations : iterable of str, optional
        The accepted variation names; default :func:`known_variation_sources` (the columnar
        pipeline's ``jes``, ``jer``, ``btag_sf``, ``lepton_sf``).
    norm_rtol : float
        Relative tolerance for treating a variation as a pure normalisation (``normsys``).
    channel : str
        Name of the channel.
    poi_bounds : (float, float)
        Allowed range of ``mu``; must contain 0 (the discovery test) and 1 (the Asimov data).

    Returns
    -------
    dict
        A workspace for :class:`pyhf.Workspace` (``channels``, ``observations``,
        ``measurements``, ``version``).

    Raises
    ------
    ValueError
        Templates with different bin edges, an unknown variation name, negative yields, a
        background-free bin (the discovery test needs ``b > 0`` everywhere), a missing
        ``sumw2`` with ``staterror``, or bad ``poi_bounds``.

    Examples
    --------
    >>> from analysis_lib.evaluation.templates import Template
    >>> sig = Template([0.0, 1.0], [5.0])
    >>> ws = build_workspace(sig, {"ttbar": Template([0.0, 1.0], [50.0]),
    ...                            "wjets": Template([0.0, 1.0], [20.0])})
    >>> [s["name"] for s in ws["channels"][0]["samples"]]
    ['signal', 'ttbar', 'wjets']
    >>> build_workspace(sig, Template([0.0, 0.5, 1.0], [1.0, 2.0]))
    Traceback (most recent call last):
    ...
    ValueError: sample 'background' has bin edges [0.0, 0.5, 1.0], the signal has [0.0, 1.0]
    """
    if isinstance(backgrounds, Template):
        backgrounds = {"background": backgrounds}
    if not isinstance(signal, Template):
        raise ValueError(f"signal must be a Template, got {type(signal).__name__}")
    backgrounds = dict(backgrounds)
    if not backgrounds:
        raise ValueError("no background samples given")
    if "signal" in backgrounds:
        raise ValueError("a background sample cannot be named 'signal'")
    lo, hi = (float(v) for v in poi_bounds)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= 0.0 and hi >= 1.0):
        raise ValueError(f"poi_bounds must be finite and contain 0 and 1; got {poi_bounds}")
    known = set(known_variation_sources() if known_variations is None else known_variations)
    names = {"signal", *backgrounds}
    if isinstance(staterror, bool):
        with_stat = names if staterror else set()
    else:
        with_stat = {staterror} if isinstance(staterror, str) else set(staterror)
        if with_stat - names:
            raise ValueError(
                f"staterror names unknown samples {sorted(with_stat - names)}; "
                f"the samples are {sorted(names)}"
            )

    edges = signal.edges
    for name, template in backgrounds.items():
        if not isinstance(template, Template):
            raise ValueError(f"background {name!r} must be a Template, got {template!r:.60}")
        if template.edges.shape != edges.shape or not np.allclose(
            template.edges, edges, rtol=1e-12, atol=1e-12
        ):
            raise ValueError(
                f"sample {name!r} has bin edges {template.edges.tolist()}, "
                f"the signal has {edges.tolist()}"
            )
    _check_non_negative("signal", "nominal", signal.nominal, edges)
    total_b = np.zeros_like(signal.nominal)
    for name, template in backgrounds.items():
        _check_non_negative(name, "nominal", template.nominal, edges)
        total_b += template.nominal
    empty = np.flatnonzero(total_b <= 0)
    if empty.size:
        i = int(empty[0])
        raise ValueError(
            f"the background is {float(total_b[i])!r} in bin {i} [{float(edges[i])!r}, "
            f"{float(edges[i + 1])!r}); every bin needs a positive expected background: merge bins"
        )
    if signal.nominal.sum() <= 0:
        raise ValueError("the signal template is empty (no expected signal events)")

    rtol = float(norm_rtol)
    samples = [
        {
            "name": "signal",
            "data": signal.nominal.tolist(),
            "modifiers": [
                {"name": POI, "type": "normfactor", "data": None},
                *_modifiers(
                    "signal", signal, known=known, norm_rtol=rtol, staterror="signal" in with_stat
                ),
            ],
        }
    ]
    for name, template in backgrounds.items():
        samples.append(
            {
                "name": str(name),
                "data": template.nominal.tolist(),
                "modifiers": _modifiers(
                    name, template, known=known, norm_rtol=rtol, staterror=name in with_stat
                ),
            }
        )
    return {
        "channels": [{"name": channel, "samples": samples}],
        "observations": [{"name": channel, "data": (signal.nominal + total_b).tolist()}],
        "measurements": [
            {
                "name": "asimov",
                "config": {
                    "poi": POI,
                    "parameters": [{"name": POI, "bounds": [[lo, hi]], "inits": [1.0]}],
                },
            }
        ],
        "version": "1.0.0",
    }
