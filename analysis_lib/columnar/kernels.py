"""Numba loops over jagged jet arrays: the per-variation hot spots of the processor.

A shape variation changes every jet, so its selection runs over all jets of a chunk again.
In numpy that is a dozen full-size temporaries per variation (masks, cumulative sums,
gathers); these loops do it in one pass per quantity, without temporaries (about three times
faster than the numpy version they replaced; ``benchmarks/columnar.py`` measures the whole
pipeline against a plain read). Each takes
the chunk's ``offsets`` (``n + 1``, from 0) and flat jet arrays; ``factor`` holds one value
for all jets (``per_jet=False``) or one per jet. ``cache=True`` stores the compiled code
beside this file (or in ``NUMBA_CACHE_DIR``), so only the first run on a machine compiles.

numba comes with coffea (which requires it).

Examples
--------
>>> import numpy as np
>>> offsets, events = np.array([0, 3, 4]), np.array([0, 1])
>>> pt = np.array([20.0, 50.0, 40.0, 35.0])
>>> ok = np.ones(4, dtype=np.bool_)
>>> tagged = np.array([True, False, True, False])
>>> flavour = np.array([5, 0, 5, 0])
>>> table = np.array([[1.1, 0.1], [0.95, 0.06], [0.9, 0.05]])
>>> none = np.zeros(0)
>>> n_jets, n_b, index, sf, shift = vary_and_select(
...     offsets, events, pt, ok, tagged, flavour, np.array([1.0]), False, True,
...     30.0, table, 2, none, none, 15.0)
>>> n_jets.tolist(), n_b.tolist(), index.tolist(), sf[:, 0].tolist()
([2, 1], [1, 0], [[1, 2], [3, -1]], [0.9, 1.0])
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def jet_base_mask(offsets, events, eta, phi, jet_id, lep_eta, lep_phi, eta_max, dr2_min):
    """Jets with ``|eta| < eta_max``, the tight ID bit, and ΔR² to the lepton > ``dr2_min``.

    Only the jets of ``events`` (indices) are considered; the others are False. Events
    without a lepton have NaN ``lep_eta`` (no ΔR requirement).
    """
    out = np.zeros(offsets[len(offsets) - 1] - offsets[0], dtype=np.bool_)
    two_pi = 2.0 * math.pi
    for e in events:
        le = lep_eta[e]
        lp = lep_phi[e]
        no_lepton = math.isnan(le)
        for j in range(offsets[e], offsets[e + 1]):
            d_eta = eta[j] - le
            d_phi = phi[j] - lp
            d_phi -= two_pi * math.floor((d_phi + math.pi) / two_pi)
            far = no_lepton or d_eta * d_eta + d_phi * d_phi > dr2_min
            out[j] = far and abs(eta[j]) < eta_max and (jet_id[j] & 2) != 0
    return out


@numba.njit(cache=True, nogil=True)
def first_selected(offsets, mask):
    """Per event, the flat index of the first object passing ``mask`` (-1) and how many pass."""
    n = len(offsets) - 1
    first = np.full(n, -1, dtype=np.int64)
    count = np.zeros(n, dtype=np.int32)
    for e in range(n):
        c = 0
        for j in range(offsets[e], offsets[e + 1]):
            if mask[j]:
                if c == 0:
                    first[e] = j
                c += 1
        count[e] = c
    return first, count


@numba.njit(cache=True, nogil=True)
def is_sorted_descending(offsets, values):
    """Whether every event's values are in descending order."""
    for e in range(len(offsets) - 1):
        for j in range(offsets[e] + 1, offsets[e + 1]):
            if values[j] > values[j - 1]:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def vary_and_select(
    offsets,
    events,
    pt,
    base,
    tagged,
    flavour,
    factor,
    per_jet,
    sorted_input,
    pt_min,
    sf_table,
    k,
    px,
    py,
    met_pt_min,
):
    """One pass over the jets of ``events`` for one variation: what the variation needs.

    Each jet's pT is scaled by ``factor`` (one value, or one per jet with ``per_jet``). A
    jet is selected when ``base`` and its varied pT exceeds ``pt_min``; a selected jet is
    b-tagged when ``tagged``.

    Returns, per event (zeros, -1 and ones for events not in ``events``):

    ``n_jets``, ``n_bjets``
        selected jets and selected b-tagged jets;
    ``index``
        ``(n, k)`` flat indices (int32) of the ``k`` leading selected jets by varied pT
        (descending, ties in input order), -1 where there are fewer. With
        ``sorted_input`` (pT-ordered jets) and one factor, the input order is that order;
    ``sf``
        ``(n, 3)``: the product over selected b-tagged jets of the per-flavour factor of
        ``sf_table`` (rows light, c, b; columns value, uncertainty) — value, value + unc,
        value - unc;
    ``shift``
        ``(n, 2)``: Σ (factor - 1) (px, py) over jets with nominal pT above ``met_pt_min``
        (``px``, ``py`` the nominal momenta), only with ``per_jet`` (else empty: for one
        factor it is (factor - 1) x :func:`momentum_sum`).
    """
    n = len(offsets) - 1
    n_jets = np.zeros(n, dtype=np.int32)
    n_bjets = np.zeros(n, dtype=np.int32)
    index = np.full((n, k), -1, dtype=np.int32)
    sf = np.ones((n, 3), dtype=np.float64)
    shift = np.zeros((n if per_jet else 0, 2), dtype=np.float64)
    top = np.empty(k, dtype=np.float64)
    f = factor[0]
    insert = per_jet or not sorted_input
    for e in events:
        m = 0
        nb = 0
        nom = 1.0
        up = 1.0
        down = 1.0
        sx = 0.0
        sy = 0.0
        for j in range(offsets[e], offsets[e + 1]):
            if per_jet:
                f = factor[j]
                if pt[j] > met_pt_min:
                    sx += (f - 1.0) * px[j]
                    sy += (f - 1.0) * py[j]
            v = pt[j] * f
            if not (base[j] and v > pt_min):
                continue
            if tagged[j]:
                nb += 1
                fl = abs(flavour[j])
                row = 2 if fl == 5 else (1 if fl == 4 else 0)
                value = sf_table[row, 0]
                unc = sf_table[row, 1]
                nom *= value
                up *= value + unc
                down *= value - unc
            if not insert:
                if m < k:
                    index[e, m] = j
            else:  # insert into the top-k list, kept sorted by descending pT
                filled = m if m < k else k
                p = filled
                while p > 0 and top[p - 1] < v:
                    p -= 1
                if p < k:
                    last = filled if filled < k else k - 1
                    for q in range(last, p, -1):
                        top[q] = top[q - 1]
                        index[e, q] = index[e, q - 1]
                    top[p] = v
                    index[e, p] = j
            m += 1
        n_jets[e] = m
        n_bjets[e] = nb
        sf[e, 0] = nom
        sf[e, 1] = up
        sf[e, 2] = down
        if per_jet:
            shift[e, 0] = sx
            shift[e, 1] = sy
    return n_jets, n_bjets, index, sf, shift


@numba.njit(cache=True, nogil=True)
def momentum_sum(offsets, events, pt, px, py, pt_min):
    """Per event, Σ (px, py) over jets with ``pt > pt_min``, as ``(n, 2)``."""
    out = np.zeros((len(offsets) - 1, 2), dtype=np.float64)
    for e in events:
        sx = 0.0
        sy = 0.0
        for j in range(offsets[e], offsets[e + 1]):
            if pt[j] > pt_min:
                sx += px[j]
                sy += py[j]
        out[e, 0] = sx
        out[e, 1] = sy
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _mass(px, py, pz, e):
    m2 = e * e - px * px - py * py - pz * pz
    return math.sqrt(m2) if m2 > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def neutrino_pz(lpx, lpy, lpz, mx, my, m_w):
    """p_z of the neutrino from m(l nu) = m_W with a massless lepton (smaller |p_z| root).

    Without a real solution, the real part of the complex pair.
    """
    pt2 = lpx * lpx + lpy * lpy
    e2 = pt2 + lpz * lpz
    mu = 0.5 * m_w * m_w + lpx * mx + lpy * my
    a = mu * lpz / pt2
    b = a * a - (e2 * (mx * mx + my * my) - mu * mu) / pt2
    root = math.sqrt(b) if b > 0.0 else 0.0
    return a - root if a >= 0.0 else a + root


@numba.njit(cache=True, nogil=True)
def event_features(
    rows,
    index,
    pt,
    eta,
    phi,
    mass,
    btag,
    cos_phi,
    sin_phi,
    sinh_eta,
    factor,
    per_jet,
    lep_pt,
    lep_eta,
    lep_phi,
    lep_mass,
    met_x,
    met_y,
    n_store,
    m_w,
    m_top,
):
    """Jet columns and masses of the events ``rows`` (the algorithm is in ``features``).

    ``index`` holds the leading selected jets (from :func:`vary_and_select`); the jets'
    pT and mass are scaled by ``factor``; ``cos_phi, sin_phi, sinh_eta`` are the jets'
    (computed once per chunk, shared by the variations); ``met_x, met_y`` the missing
    momentum. Returns ``jets``
    ``(n, n_store, 4)`` with pt, eta, phi, btag of the first ``n_store`` jets, and
    ``masses`` ``(n, 7)``: m_jj, m_jjj, m_lv, m_jlv, m_bb, m_wbb, m_wwbb — NaN where
    undefined.
    """
    nan = np.nan
    n = len(rows)
    k = index.shape[1]
    jets = np.full((n, n_store, 4), nan, dtype=np.float32)
    masses = np.full((n, 7), nan, dtype=np.float32)
    jx = np.empty(k)
    jy = np.empty(k)
    jz = np.empty(k)
    je = np.empty(k)
    jb = np.empty(k)
    for r in range(n):
        e = rows[r]
        m = 0
        for i in range(k):
            j = index[e, i]
            if j < 0:
                break
            f = factor[j] if per_jet else factor[0]
            jpt = pt[j] * f
            jm = mass[j] * f
            jx[i] = jpt * cos_phi[j]
            jy[i] = jpt * sin_phi[j]
            jz[i] = jpt * sinh_eta[j]
            je[i] = math.sqrt(jx[i] * jx[i] + jy[i] * jy[i] + jz[i] * jz[i] + jm * jm)
            jb[i] = btag[j] if not math.isnan(btag[j]) else -1.0
            if i < n_store:
                jets[r, i, 0] = jpt
                jets[r, i, 1] = eta[j]
                jets[r, i, 2] = phi[j]
                jets[r, i, 3] = btag[j]
            m += 1

        # lepton, neutrino, leptonic W
        has_lep = not math.isnan(lep_pt[e])
        wx = wy = wz = we = nan
        if has_lep:
            lx = lep_pt[e] * math.cos(lep_phi[e])
            ly = lep_pt[e] * math.sin(lep_phi[e])
            lz = lep_pt[e] * math.sinh(lep_eta[e])
            le = math.sqrt(lx * lx + ly * ly + lz * lz + lep_mass[e] * lep_mass[e])
            mx = met_x[e]
            my = met_y[e]
            nz = neutrino_pz(lx, ly, lz, mx, my, m_w)
            ne = math.sqrt(mx * mx + my * my + nz * nz)
            wx, wy, wz, we = lx + mx, ly + my, lz + nz, le + ne
            masses[r, 2] = _mass(wx, wy, wz, we)

        # b candidates: the two highest b-tag scores
        b1 = -1
        b2 = -1
        for i in range(m):
            if b1 < 0 or jb[i] > jb[b1]:
                b2 = b1
                b1 = i
            elif b2 < 0 or jb[i] > jb[b2]:
                b2 = i
        # hadronic W: the pair of other jets closest to m_W
        w1 = -1
        w2 = -1
        best = np.inf
        for i in range(m):
            if i in (b1, b2):
                continue
            for i2 in range(i + 1, m):
                if i2 in (b1, b2):
                    continue
                d = abs(_mass(jx[i] + jx[i2], jy[i] + jy[i2], jz[i] + jz[i2], je[i] + je[i2]) - m_w)
                if d < best:
                    best = d
                    w1 = i
                    w2 = i2
        hx = hy = hz = he = nan
        if w1 >= 0:
            hx, hy, hz, he = jx[w1] + jx[w2], jy[w1] + jy[w2], jz[w1] + jz[w2], je[w1] + je[w2]
            masses[r, 0] = _mass(hx, hy, hz, he)
        if b1 < 0:
            continue
        # m(b l nu) and m(j j b) for both assignments of the b candidates; NaN if undefined
        jlv0 = jlv1 = jjj0 = jjj1 = nan
        if has_lep:
            jlv0 = _mass(wx + jx[b1], wy + jy[b1], wz + jz[b1], we + je[b1])
            if b2 >= 0:
                jlv1 = _mass(wx + jx[b2], wy + jy[b2], wz + jz[b2], we + je[b2])
        if w1 >= 0 and b2 >= 0:
            jjj0 = _mass(hx + jx[b2], hy + jy[b2], hz + jz[b2], he + je[b2])
            jjj1 = _mass(hx + jx[b1], hy + jy[b1], hz + jz[b1], he + je[b1])
        swap = False
        if b2 >= 0:  # both assignments have the same terms defined: compare them
            cost0 = cost1 = 0.0
            if has_lep:
                cost0 += (jlv0 - m_top) ** 2
                cost1 += (jlv1 - m_top) ** 2
            if w1 >= 0:
                cost0 += (jjj0 - m_top) ** 2
                cost1 += (jjj1 - m_top) ** 2
            swap = cost1 < cost0
        masses[r, 1] = jjj1 if swap else jjj0
        masses[r, 3] = jlv1 if swap else jlv0
        if b2 < 0:
            continue
        bx, by, bz, be = jx[b1] + jx[b2], jy[b1] + jy[b2], jz[b1] + jz[b2], je[b1] + je[b2]
        masses[r, 4] = _mass(bx, by, bz, be)
        if w1 >= 0:
            masses[r, 5] = _mass(hx + bx, hy + by, hz + bz, he + be)
            if has_lep:
                masses[r, 6] = _mass(hx + bx + wx, hy + by + wy, hz + bz + wz, he + be + we)
    return jets, masses
