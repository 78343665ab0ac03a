"""Numba loops over jagged arrays: the per-chunk hot spots of the processor.

Each loop makes one pass over a chunk's flat object arrays (``offsets``, ``n + 1`` from 0,
plus one flat array per field) and writes only what the next step needs, without the dozen
full-size temporaries per step of a numpy version:

* :func:`leading_leptons` — the tight muons and electrons and each event's leading lepton;
* :func:`sinh32` — ``sinh(eta)`` of every jet and lepton, once per chunk;
* :func:`variation_pass` — for every shape variation at once: the jet selection, the MET,
  the event cuts and the features of the events that pass, block by block of events, so
  that each event's jets are read from memory once for all variations (called through
  :func:`~analysis_lib.columnar.variation_pass.run_variations`).

``benchmarks/columnar.py`` measures the whole pipeline against a plain read. ``cache=True``
stores the compiled code beside this file (or in ``NUMBA_CACHE_DIR``), so only the first
run on a machine compiles. numba comes with coffea (which requires it).

Examples
--------
>>> import numpy as np
>>> offsets = np.array([0, 2, 3])
>>> pt, eta = np.array([40.0, 35.0, 50.0]), np.array([0.1, 3.0, -1.0])
>>> phi, mass = np.zeros(3), np.array([0.1, 0.1, 0.0005])
>>> charge, tight, iso = np.array([1, -1, 1]), np.array([1, 1, 1]), np.array([0.05, 0.05, 0.2])
>>> kin, q, flavour, n_tight = leading_leptons(
...     offsets, pt, eta, phi, mass, charge, tight, iso,
...     np.array([0, 0, 1]), pt[2:], eta[2:], phi[2:], mass[2:], charge[2:],
...     np.array([4]), np.array([0.05]), 30.0, 2.4, 0.15, 2.5, 4, 0.15)
>>> kin[:, 0].tolist(), flavour.tolist(), n_tight.tolist()
([40.0, 50.0], [13, 11], [1, 1])
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def leading_leptons(
    mu_offsets,
    mu_pt,
    mu_eta,
    mu_phi,
    mu_mass,
    mu_charge,
    mu_tight,
    mu_iso,
    el_offsets,
    el_pt,
    el_eta,
    el_phi,
    el_mass,
    el_charge,
    el_id,
    el_iso,
    pt_min,
    mu_eta_max,
    mu_iso_max,
    el_eta_max,
    el_id_min,
    el_iso_max,
):
    """Per event: the leading tight lepton and the number of tight leptons, in one pass.

    Tight muon: ``pt > pt_min``, ``|eta| < mu_eta_max``, ``tight``, ``iso < mu_iso_max``;
    tight electron: ``pt > pt_min``, ``|eta| < el_eta_max``, ``id >= el_id_min``,
    ``iso < el_iso_max``. The leptons are pT-ordered (NanoAOD), so the first tight one of
    each flavour is its leading one; the electron is taken when its pT is higher, else the
    muon. Returns ``kin`` ``(n, 4)`` float64 pt, eta, phi, mass (NaN without a lepton),
    ``charge`` int8 (0), ``flavour`` int8 (13, 11 or 0) and ``n_tight`` int32.
    """
    n = len(mu_offsets) - 1
    kin = np.full((n, 4), np.nan, dtype=np.float64)
    charge = np.zeros(n, dtype=np.int8)
    flavour = np.zeros(n, dtype=np.int8)
    n_tight = np.zeros(n, dtype=np.int32)
    for e in range(n):
        first_mu = -1
        count = 0
        for j in range(mu_offsets[e], mu_offsets[e + 1]):
            if (
                mu_pt[j] > pt_min
                and abs(mu_eta[j]) < mu_eta_max
                and mu_tight[j] != 0
                and mu_iso[j] < mu_iso_max
            ):
                if first_mu < 0:
                    first_mu = j
                count += 1
        first_el = -1
        for j in range(el_offsets[e], el_offsets[e + 1]):
            if (
                el_pt[j] > pt_min
                and abs(el_eta[j]) < el_eta_max
                and el_id[j] >= el_id_min
                and el_iso[j] < el_iso_max
            ):
                if first_el < 0:
                    first_el = j
                count += 1
        n_tight[e] = count
        use_mu = first_mu >= 0 and not (first_el >= 0 and el_pt[first_el] > mu_pt[first_mu])
        if use_mu:
            j = first_mu
            kin[e, 0] = mu_pt[j]
            kin[e, 1] = mu_eta[j]
            kin[e, 2] = mu_phi[j]
            kin[e, 3] = mu_mass[j]
            charge[e] = mu_charge[j]
            flavour[e] = 13
        elif first_el >= 0:
            j = first_el
            kin[e, 0] = el_pt[j]
            kin[e, 1] = el_eta[j]
            kin[e, 2] = el_phi[j]
            kin[e, 3] = el_mass[j]
            charge[e] = el_charge[j]
            flavour[e] = 11
    return kin, charge, flavour, n_tight


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mass(px, py, pz, e):
    m2 = e * e - px * px - py * py - pz * pz
    return math.sqrt(m2) if m2 > 0.0 else 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _pair(jx, jy, jz, je, a, b):
    return jx[a] + jx[b], jy[a] + jy[b], jz[a] + jz[b], je[a] + je[b]


#: 1 / (2 n + 1)! for n = 0..7: the coefficients of sinh's series in x**2.
_SINH_SERIES = tuple(1.0 / math.factorial(2 * n + 1) for n in range(8))
#: 1 / n! for n = 0..14: exp's series, used on [0, 0.5] (``|x| / 16`` with ``|x| <= 8``).
_EXP_SERIES = tuple(1.0 / math.factorial(n) for n in range(15))
#: Above this ``|x|``, :func:`sinh32` calls ``exp`` (rare: |eta| of jets stays below 5.2).
_SINH_POLY_MAX = 8.0


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _horner(coefficients, x):
    """``sum(c * x**n for n, c in enumerate(coefficients))``, from the highest power down."""
    s = coefficients[-1]
    for c in coefficients[-2::-1]:
        s = c + x * s
    return s


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sinh_poly(v):
    """``sinh(v)`` for ``|v| <= 8`` from polynomials only (so that loops of it vectorise)."""
    a = abs(v)
    # exp(a) = exp(a / 16) ** 16; the series to y**14 / 14! is within 3e-17 for y <= 0.5
    p = _horner(_EXP_SERIES, a * 0.0625)
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    big = 0.5 * (p - 1.0 / p)
    # near 0 the series of sinh itself: there e - 1/e cancels
    return v * _horner(_SINH_SERIES, v * v) if a < 0.5 else (big if v >= 0.0 else -big)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def sinh32(x):
    """``sinh`` of a float32 array, computed in float64 and rounded to float32.

    numpy's float32 ``sinh`` is vectorised only with AVX-512 and is off by one unit in 26 %
    of the values; ``math.exp`` per value cannot be vectorised at all. This loop uses only
    polynomials, which the compiler vectorises (with fused multiply-adds where the CPU has
    them): for ``|x| < 0.5`` the series of ``sinh`` to ``x**15 / 15!``, above it
    ``exp(|x|)`` as ``exp(|x| / 16) ** 16`` from exp's series. The float64 value is within
    a few 1e-15 of the true one, far below float32's unit; rounded to float32 it equalled
    ``np.sinh`` in float64, rounded, for all of 2.2 M values tried. Values beyond ``|x| = 8``
    (and NaN, inf) take ``math.exp`` in a second pass. 1.7 M jets took 5 ms here (12 ms
    with ``math.exp`` per value, 37 ms with numpy's float32 ``sinh``).

    Examples
    --------
    >>> x = np.array([0.0, 0.1, -2.0, 9.5, np.inf], dtype=np.float32)
    >>> sinh32(x).tolist() == np.sinh(x.astype(np.float64)).astype(np.float32).tolist()
    True
    """
    n = len(x)
    out = np.empty(n, dtype=np.float32)
    outside = 0
    for i in range(n):
        v = np.float64(x[i])
        outside += not (abs(v) <= _SINH_POLY_MAX)
        out[i] = _sinh_poly(v)
    if outside:
        for i in range(n):
            v = np.float64(x[i])
            if not (abs(v) <= _SINH_POLY_MAX):
                e = math.exp(abs(v))
                s = 0.5 * (e - 1.0 / e)
                out[i] = s if v >= 0.0 else -s
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


#: Rows of the float block :func:`variation_pass` writes after the jet rows (``4 n_store``):
#: the seven high-level masses of the paper (in its order), then the per-event columns.
BLOCK_MASSES = ("m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb")
BLOCK_EVENT = ("lep_pt", "lep_eta", "lep_phi", "met_pt", "met_phi")
#: Events per block of :func:`variation_pass` (its scratch stays in the cache).
BLOCK_EVENTS = 2048


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def pass_outputs(n_var, n, cap, n_sf, n_block):
    """The arrays :func:`variation_pass` returns, allocated: ``n_block`` feature rows.

    ``n_jets, n_bjets, sf, bits, depth, rows, n_rows, block, small, counts``; ``n_jets``,
    ``n_bjets`` and ``n_rows`` zero and ``sf`` one, the others uninitialised.
    """
    width = n_var * cap
    return (
        np.zeros((n_var, n), dtype=np.int32),
        np.zeros((n_var, n), dtype=np.int32),
        np.ones((n_var, n, n_sf), dtype=np.float64),
        np.empty((n_var, n), dtype=np.uint32),
        np.empty((n_var, n), dtype=np.int64),
        np.empty((n_var, cap), dtype=np.int64),
        np.zeros(n_var, dtype=np.int64),
        np.empty((n_block, width), dtype=np.float32),
        np.empty((2, width), dtype=np.int8),
        np.empty((2, width), dtype=np.int16),
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def variation_pass(
    offsets,
    candidates,
    pt,
    eta,
    phi,
    mass,
    jet_id,
    btag,
    flavour,
    cos_phi,
    sin_phi,
    sinh_eta,
    lep_pt,
    lep_eta,
    lep_phi,
    lep_mass,
    lep_cos,
    lep_sin,
    lep_sinh,
    lep_charge,
    lep_flavour,
    n_tight,
    met_x,
    met_y,
    met_pt,
    scalar,
    row,
    per_jet,
    nominal,
    eta_max,
    dr2_min,
    btag_wp,
    met_pt_min,
    pt_min,
    n_jets_min,
    n_bjets_min,
    met_min,
    need,
    sf_table,
    n_sf,
    k,
    n_store,
    m_w,
    m_top,
):
    """Jet selection, MET, cuts and features of every shape variation of a chunk.

    The events go in blocks of :data:`BLOCK_EVENTS`: first the jet selection of every
    variation for the block's events, then per variation the MET and the cuts of the
    block, then the features of the block's events that pass — so the block's jets are
    read from memory once and stay in the cache for all variations. The definitions are
    those of ``selection`` (objects, cuts) and ``features`` (the columns);
    :func:`~analysis_lib.columnar.variation_pass.run_variations` prepares the arguments.

    Parameters
    ----------
    offsets, candidates
        The jets' offsets (``n + 1``, from 0); ascending indices of the events whose jets
        are looked at. Only candidates can be rows; the others get 0 jets, a b-tag factor
        of 1 and their cut bits.
    pt, eta, phi, mass, jet_id, btag, flavour, cos_phi, sin_phi, sinh_eta
        Flat jet arrays (the last three from the angles, once per chunk).
    lep_pt, lep_eta, lep_phi, lep_mass
        Per event, the lepton (NaN without one, as :func:`leading_leptons` gives it).
    lep_cos, lep_sin, lep_sinh, lep_charge, lep_flavour, n_tight
        Per event, the cosine and sine of the lepton's phi and the sinh of its eta, its
        charge and flavour, and the number of tight leptons.
    met_x, met_y, met_pt
        The stored missing momentum per event.
    scalar, row, per_jet, nominal
        ``(V,)``, ``(V,)``, ``(R, n_jets)``, ``(V,)``: variation ``v`` scales every jet's
        pT and mass by ``scalar[v]`` when ``row[v] < 0``, else by ``per_jet[row[v]]``; a
        ``nominal`` variation keeps the stored MET, the others move it by ``-Σ (factor -
        1) (px, py)`` of the jets with nominal pT above ``met_pt_min``.
    eta_max, dr2_min, btag_wp, met_pt_min, pt_min
        Jet |eta| limit, ΔR² to the lepton, b-tag working point, the MET jets' pT
        threshold and the jet pT threshold (after the variation).
    n_jets_min, n_bjets_min, met_min, need
        The event cuts, and the bits (0 one lepton, 1 jets, 2 b jets, 3 MET) an event
        needs to be a row.
    sf_table, n_sf
        ``(3, 2)`` b-tag scale factors (rows light, c, b; value, uncertainty); 1 (the
        nominal factor) or 3 (with up and down).
    k, n_store, m_w, m_top
        Jets taken into the masses, jets stored as columns, the masses of the hypothesis.

    Returns
    -------
    n_jets, n_bjets : numpy.ndarray
        ``(V, n)`` int32 selected jets and b jets.
    sf : numpy.ndarray
        ``(V, n, n_sf)`` the product over the selected b-tagged jets of their factor.
    bits, depth : numpy.ndarray
        ``(V, n)`` the cuts as bits and how many of them in a row each event passes.
    rows, n_rows : numpy.ndarray
        ``(V, C)``: each variation's rows (ascending), the first ``n_rows[v]`` valid
        (``C = len(candidates)``).
    block, small, counts : numpy.ndarray
        The features, one row per column, variation ``v`` in columns ``v C`` to ``v C +
        n_rows[v]``: ``block`` float32 — pt, eta, phi, b-tag of each of the ``n_store``
        leading jets, then :data:`BLOCK_MASSES` and :data:`BLOCK_EVENT` (NaN where
        undefined); ``small`` int8 lepton charge and flavour; ``counts`` int16 jets and b
        jets.
    """
    nan = np.nan
    pi = math.pi
    two_pi = 2.0 * math.pi
    n = len(offsets) - 1
    n_var = len(scalar)
    cap = len(candidates)
    jm0 = 4 * n_store  # first mass row
    ev0 = jm0 + len(BLOCK_MASSES)  # first per-event row
    n_jets, n_bjets, sf, bits, depth, rows, n_rows, block, small, counts = pass_outputs(
        n_var, n, cap, n_sf, ev0 + len(BLOCK_EVENT)
    )
    # scratch of a block
    size = max(1, min(BLOCK_EVENTS, n))
    longest = 0
    for e in range(n):
        longest = max(longest, offsets[e + 1] - offsets[e])
    base = np.empty(longest, dtype=np.bool_)
    tagged = np.empty(longest, dtype=np.bool_)
    index = np.empty((n_var, size, k), dtype=np.int32)
    shift = np.zeros((n_var, size, 2), dtype=np.float64)
    looked = np.zeros(size, dtype=np.bool_)
    passed = np.empty((n_var, size), dtype=np.int64)
    n_passed = np.zeros(n_var, dtype=np.int64)
    met_xy = np.empty((n_var, size, 2), dtype=np.float64)
    top = np.empty(k, dtype=np.float64)
    count = np.zeros(n_var, dtype=np.int64)
    nb = np.zeros(n_var, dtype=np.int64)
    prod = np.ones((n_var, 3), dtype=np.float64)
    sums = np.zeros((n_var, 2), dtype=np.float64)
    jx = np.empty(k)
    jy = np.empty(k)
    jz = np.empty(k)
    je = np.empty(k)
    jb = np.empty(k)
    any_per_jet = n_var > 0 and row.max() >= 0
    next_candidate = 0
    for start in range(0, n, size):
        stop = min(start + size, n)
        # 1. every variation's jet selection of the block's candidates
        for e in range(start, stop):
            local = e - start
            is_candidate = next_candidate < cap and candidates[next_candidate] == e
            looked[local] = is_candidate
            if not is_candidate:
                continue
            next_candidate += 1
            first = offsets[e]
            last = offsets[e + 1]
            # the masks no variation changes, the momentum sum, the pT order
            le = lep_eta[e]
            lp = lep_phi[e]
            no_lepton = math.isnan(le)
            sx = 0.0
            sy = 0.0
            in_order = True
            previous = np.inf
            for j in range(first, last):
                d_eta = eta[j] - le
                d_phi = phi[j] - lp
                # into [-pi, pi) (the angles are within [-pi, pi]), without branches
                d_phi -= two_pi * ((d_phi >= pi) * 1.0 - (d_phi < -pi) * 1.0)
                far = no_lepton | (d_eta * d_eta + d_phi * d_phi > dr2_min)
                base[j - first] = far & (abs(eta[j]) < eta_max) & ((jet_id[j] & 2) != 0)
                tagged[j - first] = btag[j] > btag_wp
                p = pt[j]
                if p > met_pt_min:
                    sx += p * np.float64(cos_phi[j])
                    sy += p * np.float64(sin_phi[j])
                in_order &= p <= previous
                previous = p
            for v in range(n_var):
                count[v] = 0
                nb[v] = 0
                prod[v, 0] = 1.0
                prod[v, 1] = 1.0
                prod[v, 2] = 1.0
                sums[v, 0] = 0.0
                sums[v, 1] = 0.0
                for i in range(k):
                    index[v, local, i] = -1
            if in_order and not any_per_jet:
                # the common case (nominal and energy scales on pT-ordered jets): the first
                # k selected jets are the leading ones
                for j in range(first, last):
                    if not base[j - first]:
                        continue
                    is_tagged = tagged[j - first]
                    a = 1.0
                    u = 0.0
                    if is_tagged:
                        fl = abs(flavour[j])
                        sf_row = 2 if fl == 5 else (1 if fl == 4 else 0)
                        a = sf_table[sf_row, 0]
                        u = sf_table[sf_row, 1]
                    p = pt[j]
                    for v in range(n_var):  # without branches on the cut: it flips often
                        sel = p * scalar[v] > pt_min
                        b = sel & is_tagged
                        nb[v] += b
                        prod[v, 0] *= a if b else 1.0
                        prod[v, 1] *= a + u if b else 1.0
                        prod[v, 2] *= a - u if b else 1.0
                        m = count[v]
                        if sel and m < k:
                            index[v, local, m] = j
                        count[v] = m + sel
            else:
                for v in range(n_var):
                    r = row[v]
                    for j in range(first, last):
                        ok = base[j - first]
                        if not ok and r < 0:
                            continue
                        f = scalar[v] if r < 0 else per_jet[r, j]
                        if r >= 0 and pt[j] > met_pt_min:
                            sums[v, 0] += (f - 1.0) * (pt[j] * np.float64(cos_phi[j]))
                            sums[v, 1] += (f - 1.0) * (pt[j] * np.float64(sin_phi[j]))
                        value = pt[j] * f
                        if not (ok and value > pt_min):
                            continue
                        if tagged[j - first]:
                            fl = abs(flavour[j])
                            sf_row = 2 if fl == 5 else (1 if fl == 4 else 0)
                            nb[v] += 1
                            a = sf_table[sf_row, 0]
                            u = sf_table[sf_row, 1]
                            prod[v, 0] *= a
                            prod[v, 1] *= a + u
                            prod[v, 2] *= a - u
                        m = count[v]
                        if in_order and r < 0:
                            if m < k:
                                index[v, local, m] = j
                        else:  # insert into the top-k list, kept sorted by descending pT
                            filled = m if m < k else k
                            q = filled
                            while q > 0 and top[q - 1] < value:
                                q -= 1
                            if q < k:
                                last_slot = filled if filled < k else k - 1
                                for s in range(last_slot, q, -1):
                                    top[s] = top[s - 1]
                                    index[v, local, s] = index[v, local, s - 1]
                                top[q] = value
                                index[v, local, q] = j
                        count[v] = m + 1
            for v in range(n_var):
                n_jets[v, e] = count[v]
                n_bjets[v, e] = nb[v]
                sf[v, e, 0] = prod[v, 0]
                if n_sf == 3:
                    sf[v, e, 1] = prod[v, 1]
                    sf[v, e, 2] = prod[v, 2]
                if row[v] >= 0:
                    shift[v, local, 0] = sums[v, 0]
                    shift[v, local, 1] = sums[v, 1]
                elif scalar[v] != 1.0:
                    shift[v, local, 0] = (scalar[v] - 1.0) * sx
                    shift[v, local, 1] = (scalar[v] - 1.0) * sy
                else:
                    shift[v, local, 0] = 0.0
                    shift[v, local, 1] = 0.0
        # 2. per variation: the MET, the cuts, the rows
        for v in range(n_var):
            q = 0
            keep = nominal[v]
            for e in range(start, stop):
                local = e - start
                if keep:
                    mx = np.float64(met_x[e])
                    my = np.float64(met_y[e])
                    p = np.float64(met_pt[e])
                else:
                    s0 = 0.0
                    s1 = 0.0
                    if looked[local]:
                        s0 = shift[v, local, 0]
                        s1 = shift[v, local, 1]
                    mx = met_x[e] - s0
                    my = met_y[e] - s1
                    p = math.sqrt(mx * mx + my * my)
                c0 = n_tight[e] == 1
                c1 = n_jets[v, e] >= n_jets_min
                c2 = n_bjets[v, e] >= n_bjets_min
                c3 = p > met_min
                b = (
                    np.uint32(c0)
                    | (np.uint32(c1) << 1)
                    | (np.uint32(c2) << 2)
                    | (np.uint32(c3) << 3)
                )
                bits[v, e] = b
                depth[v, e] = c0 + (c0 & c1) + (c0 & c1 & c2) + (c0 & c1 & c2 & c3)
                if looked[local] and (b & need) == need:
                    passed[v, q] = e
                    met_xy[v, q, 0] = mx
                    met_xy[v, q, 1] = my
                    q += 1
            n_passed[v] = q
        # 3. per variation: the features of the rows
        for v in range(n_var):
            r = row[v]
            f0 = scalar[v]
            for q in range(n_passed[v]):
                e = passed[v, q]
                local = e - start
                c = v * cap + n_rows[v]
                rows[v, n_rows[v]] = e
                n_rows[v] += 1
                m = 0
                for i in range(k):
                    j = index[v, local, i]
                    if j < 0:
                        break
                    f = per_jet[r, j] if r >= 0 else f0
                    jpt = pt[j] * f
                    jm = mass[j] * f
                    x = jpt * cos_phi[j]
                    y = jpt * sin_phi[j]
                    z = jpt * sinh_eta[j]
                    jx[i] = x
                    jy[i] = y
                    jz[i] = z
                    je[i] = math.sqrt(x * x + y * y + z * z + jm * jm)
                    b = btag[j]
                    jb[i] = b if not math.isnan(b) else -1.0
                    if i < n_store:
                        block[4 * i, c] = jpt
                        block[4 * i + 1, c] = eta[j]
                        block[4 * i + 2, c] = phi[j]
                        block[4 * i + 3, c] = b
                    m += 1
                for i in range(m, n_store):
                    block[4 * i, c] = nan
                    block[4 * i + 1, c] = nan
                    block[4 * i + 2, c] = nan
                    block[4 * i + 3, c] = nan

                # the event's own columns
                mx = met_xy[v, q, 0]
                my = met_xy[v, q, 1]
                lpt = lep_pt[e]
                block[ev0, c] = lpt
                block[ev0 + 1, c] = lep_eta[e]
                block[ev0 + 2, c] = lep_phi[e]
                block[ev0 + 3, c] = math.sqrt(mx * mx + my * my)
                block[ev0 + 4, c] = math.atan2(my, mx)
                small[0, c] = lep_charge[e]
                small[1, c] = lep_flavour[e]
                counts[0, c] = n_jets[v, e]
                counts[1, c] = n_bjets[v, e]

                m_jj = m_jjj = m_lv = m_jlv = m_bb = m_wbb = m_wwbb = nan
                # lepton, neutrino, leptonic W
                lx = lpt * np.float64(lep_cos[e])
                has_lep = not math.isnan(lx)
                wx = wy = wz = we = nan
                if has_lep:
                    ly = lpt * np.float64(lep_sin[e])
                    lz = lpt * np.float64(lep_sinh[e])
                    lm = lep_mass[e]
                    le = math.sqrt(lx * lx + ly * ly + lz * lz + lm * lm)
                    nz = neutrino_pz(lx, ly, lz, mx, my, m_w)
                    ne = math.sqrt(mx * mx + my * my + nz * nz)
                    wx, wy, wz, we = lx + mx, ly + my, lz + nz, le + ne
                    m_lv = _mass(wx, wy, wz, we)

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
                    xi = jx[i]
                    yi = jy[i]
                    zi = jz[i]
                    ei = je[i]
                    for i2 in range(i + 1, m):
                        if i2 in (b1, b2):
                            continue
                        d = abs(_mass(xi + jx[i2], yi + jy[i2], zi + jz[i2], ei + je[i2]) - m_w)
                        if d < best:
                            best = d
                            w1 = i
                            w2 = i2
                hx = hy = hz = he = nan
                if w1 >= 0:
                    hx, hy, hz, he = _pair(jx, jy, jz, je, w1, w2)
                    m_jj = _mass(hx, hy, hz, he)
                if b1 >= 0:
                    # m(b l nu) and m(j j b) for both assignments of the b candidates
                    jlv0 = jlv1 = jjj0 = jjj1 = nan
                    if has_lep:
                        jlv0 = _mass(wx + jx[b1], wy + jy[b1], wz + jz[b1], we + je[b1])
                        if b2 >= 0:
                            jlv1 = _mass(wx + jx[b2], wy + jy[b2], wz + jz[b2], we + je[b2])
                    if w1 >= 0 and b2 >= 0:
                        jjj0 = _mass(hx + jx[b2], hy + jy[b2], hz + jz[b2], he + je[b2])
                        jjj1 = _mass(hx + jx[b1], hy + jy[b1], hz + jz[b1], he + je[b1])
                    swap = False
                    if b2 >= 0:  # both assignments have the same terms defined
                        cost0 = cost1 = 0.0
                        if has_lep:
                            cost0 += (jlv0 - m_top) ** 2
                            cost1 += (jlv1 - m_top) ** 2
                        if w1 >= 0:
                            cost0 += (jjj0 - m_top) ** 2
                            cost1 += (jjj1 - m_top) ** 2
                        swap = cost1 < cost0
                    m_jjj = jjj1 if swap else jjj0
                    m_jlv = jlv1 if swap else jlv0
                    if b2 >= 0:
                        bx, by, bz, be = _pair(jx, jy, jz, je, b1, b2)
                        m_bb = _mass(bx, by, bz, be)
                        if w1 >= 0:
                            m_wbb = _mass(hx + bx, hy + by, hz + bz, he + be)
                            if has_lep:
                                m_wwbb = _mass(
                                    hx + bx + wx, hy + by + wy, hz + bz + wz, he + be + we
                                )
                block[jm0, c] = m_jj
                block[jm0 + 1, c] = m_jjj
                block[jm0 + 2, c] = m_lv
                block[jm0 + 3, c] = m_jlv
                block[jm0 + 4, c] = m_bb
                block[jm0 + 5, c] = m_wbb
                block[jm0 + 6, c] = m_wwbb
    return n_jets, n_bjets, sf, bits, depth, rows, n_rows, block, small, counts
