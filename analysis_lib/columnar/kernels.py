"""Numba loops over jagged arrays: the per-chunk hot spots of the processor.

Each loop makes one pass over a chunk's flat object arrays (``offsets``, ``n + 1`` from 0,
plus one flat array per field) and writes only what the next step needs, without the dozen
full-size temporaries per step of a numpy version:

* :func:`leading_leptons` — the tight muons and electrons and each event's leading lepton;
* :func:`jet_inputs` — what all variations share (jet masks, MET momentum sums);
* :func:`vary_and_select_all` — every shape variation's jet selection in one pass over the
  jets (a variation only scales the jets' pT, so the jets are read once for all of them);
* :func:`event_features` — every feature column of the selected events of one variation.

``benchmarks/columnar.py`` measures the whole pipeline against a plain read. ``cache=True``
stores the compiled code beside this file (or in ``NUMBA_CACHE_DIR``), so only the first
run on a machine compiles. numba comes with coffea (which requires it).

Examples
--------
>>> import numpy as np
>>> offsets, events = np.array([0, 3, 4]), np.array([0, 1])
>>> pt = np.array([20.0, 50.0, 40.0, 35.0])
>>> ok = np.ones(4, dtype=np.bool_)
>>> tagged = np.array([True, False, True, False])
>>> flavour = np.array([5, 0, 5, 0])
>>> table = np.array([[1.1, 0.1], [0.95, 0.06], [0.9, 0.05]])
>>> n_jets, n_b, index, sf, shift = vary_and_select_all(
...     offsets, events, pt, ok, tagged, flavour, np.array([1.0, 0.8]),
...     np.array([-1, -1]), np.zeros((0, 4)), False, 30.0, table, 2,
...     np.zeros(0), np.zeros(0), 15.0, 3)
>>> n_jets.tolist(), n_b.tolist(), index[0].tolist(), sf[0, :, 0].tolist()
([[2, 1], [2, 0]], [[1, 0], [1, 0]], [[1, 2], [3, -1]], [0.9, 1.0])
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def jet_inputs(
    offsets,
    events,
    pt,
    eta,
    phi,
    jet_id,
    btag,
    cos_phi,
    sin_phi,
    lep_eta,
    lep_phi,
    eta_max,
    dr2_min,
    btag_wp,
    met_pt_min,
    store_momenta,
):
    """What every variation of a chunk shares, for the jets of ``events``, in one pass.

    Returns the flat masks ``base`` (``|eta| < eta_max``, the tight ID bit, ΔR² to the
    lepton > ``dr2_min``; events without a lepton have NaN ``lep_eta``: no ΔR requirement)
    and ``tagged`` (b-tag score > ``btag_wp``); the nominal ``px, py`` (from the jets'
    ``cos_phi, sin_phi``; only with ``store_momenta``, else empty); per event
    ``momentum_sum`` ``(n, 2)``, Σ (px, py) of the jets with ``pt > met_pt_min``; and
    ``sorted_input``: whether the jets are in descending pT in every event looked at.
    Jets of other events are False and 0.
    """
    n_jets = offsets[len(offsets) - 1] - offsets[0]
    base = np.zeros(n_jets, dtype=np.bool_)
    tagged = np.zeros(n_jets, dtype=np.bool_)
    n_stored = n_jets if store_momenta else 0
    px = np.zeros(n_stored, dtype=np.float64)
    py = np.zeros(n_stored, dtype=np.float64)
    momentum = np.zeros((len(offsets) - 1, 2), dtype=np.float64)
    sorted_input = True
    pi = math.pi
    two_pi = 2.0 * math.pi
    for e in events:
        le = lep_eta[e]
        lp = lep_phi[e]
        no_lepton = math.isnan(le)
        sx = 0.0
        sy = 0.0
        first = offsets[e]
        previous = np.inf
        for j in range(first, offsets[e + 1]):
            d_eta = eta[j] - le
            d_phi = phi[j] - lp
            # into [-pi, pi) (the angles are within [-pi, pi]), without branches
            d_phi -= two_pi * ((d_phi >= pi) * 1.0 - (d_phi < -pi) * 1.0)
            far = no_lepton | (d_eta * d_eta + d_phi * d_phi > dr2_min)
            base[j] = far & (abs(eta[j]) < eta_max) & ((jet_id[j] & 2) != 0)
            tagged[j] = btag[j] > btag_wp
            p = pt[j]
            x = p * np.float64(cos_phi[j])
            y = p * np.float64(sin_phi[j])
            if store_momenta:
                px[j] = x
                py[j] = y
            if p > met_pt_min:
                sx += x
                sy += y
            sorted_input &= p <= previous
            previous = p
        momentum[e, 0] = sx
        momentum[e, 1] = sy
    return base, tagged, px, py, momentum, sorted_input


@numba.njit(cache=True, nogil=True, error_model="numpy")
def vary_and_select_all(
    offsets,
    events,
    pt,
    base,
    tagged,
    flavour,
    scalar,
    row,
    per_jet,
    sorted_input,
    pt_min,
    sf_table,
    k,
    px,
    py,
    met_pt_min,
    n_sf,
):
    """Select the jets of several variations at once, in one pass over the jets of ``events``.

    Variation ``v`` scales every jet's pT by ``scalar[v]`` when ``row[v] < 0``, else by
    ``per_jet[row[v], j]``. A jet is selected when ``base`` and its varied pT exceeds
    ``pt_min``; a selected jet is b-tagged when ``tagged``.

    Returns, per variation and event (zeros, -1 and ones for events not in ``events``):

    ``n_jets``, ``n_bjets``
        ``(V, n)``: selected jets and selected b-tagged jets;
    ``index``
        ``(V, n, k)`` flat indices (int32) of the ``k`` leading selected jets by varied pT
        (descending, ties in input order), -1 where there are fewer. With
        ``sorted_input`` (pT-ordered jets) and one factor, the input order is that order;
    ``sf``
        ``(V, n, n_sf)``: the product over selected b-tagged jets of the per-flavour factor
        of ``sf_table`` (rows light, c, b; columns value, uncertainty) — value and, with
        ``n_sf == 3``, value + unc and value - unc;
    ``shift``
        ``(R, n, 2)`` for the ``R`` rows of ``per_jet``: Σ (factor - 1) (px, py) over the
        jets with nominal pT above ``met_pt_min`` (``px``, ``py`` the nominal momenta), the
        change of the MET. For one factor it is (factor - 1) x the momentum sum, not
        computed here.
    """
    n = len(offsets) - 1
    n_var = len(scalar)
    n_jets = np.zeros((n_var, n), dtype=np.int32)
    n_bjets = np.zeros((n_var, n), dtype=np.int32)
    index = np.full((n_var, n, k), -1, dtype=np.int32)
    sf = np.ones((n_var, n, n_sf), dtype=np.float64)
    shift = np.zeros((per_jet.shape[0], n, 2), dtype=np.float64)
    top = np.empty((n_var, k), dtype=np.float64)
    count = np.zeros(n_var, dtype=np.int64)
    nb = np.zeros(n_var, dtype=np.int64)
    prod = np.ones((n_var, 3), dtype=np.float64)
    sums = np.zeros((n_var, 2), dtype=np.float64)
    any_per_jet = n_var > 0 and row.max() >= 0
    if sorted_input and not any_per_jet:
        # the common case (nominal and energy scales on pT-ordered jets): no sorting, the
        # MET shift is (factor - 1) x the momentum sum
        for e in events:
            for v in range(n_var):
                count[v] = 0
                nb[v] = 0
                prod[v, 0] = 1.0
                prod[v, 1] = 1.0
                prod[v, 2] = 1.0
            for j in range(offsets[e], offsets[e + 1]):
                if not base[j]:
                    continue
                is_tagged = tagged[j]
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
                        index[v, e, m] = j
                    count[v] = m + sel
            for v in range(n_var):
                n_jets[v, e] = count[v]
                n_bjets[v, e] = nb[v]
                sf[v, e, 0] = prod[v, 0]
                if n_sf == 3:
                    sf[v, e, 1] = prod[v, 1]
                    sf[v, e, 2] = prod[v, 2]
        return n_jets, n_bjets, index, sf, shift
    for e in events:
        for v in range(n_var):
            count[v] = 0
            nb[v] = 0
            prod[v, 0] = 1.0
            prod[v, 1] = 1.0
            prod[v, 2] = 1.0
            sums[v, 0] = 0.0
            sums[v, 1] = 0.0
        for j in range(offsets[e], offsets[e + 1]):
            if not base[j] and not any_per_jet:
                continue
            fl = abs(flavour[j])
            sf_row = 2 if fl == 5 else (1 if fl == 4 else 0)
            for v in range(n_var):
                r = row[v]
                f = scalar[v] if r < 0 else per_jet[r, j]
                if r >= 0 and pt[j] > met_pt_min:
                    sums[v, 0] += (f - 1.0) * px[j]
                    sums[v, 1] += (f - 1.0) * py[j]
                value = pt[j] * f
                if not (base[j] and value > pt_min):
                    continue
                if tagged[j]:
                    nb[v] += 1
                    a = sf_table[sf_row, 0]
                    u = sf_table[sf_row, 1]
                    prod[v, 0] *= a
                    prod[v, 1] *= a + u
                    prod[v, 2] *= a - u
                m = count[v]
                if sorted_input and r < 0:
                    if m < k:
                        index[v, e, m] = j
                else:  # insert into the top-k list, kept sorted by descending pT
                    filled = m if m < k else k
                    p = filled
                    while p > 0 and top[v, p - 1] < value:
                        p -= 1
                    if p < k:
                        last = filled if filled < k else k - 1
                        for q in range(last, p, -1):
                            top[v, q] = top[v, q - 1]
                            index[v, e, q] = index[v, e, q - 1]
                        top[v, p] = value
                        index[v, e, p] = j
                count[v] = m + 1
        for v in range(n_var):
            n_jets[v, e] = count[v]
            n_bjets[v, e] = nb[v]
            sf[v, e, 0] = prod[v, 0]
            if n_sf == 3:
                sf[v, e, 1] = prod[v, 1]
                sf[v, e, 2] = prod[v, 2]
            if row[v] >= 0:
                shift[row[v], e, 0] = sums[v, 0]
                shift[row[v], e, 1] = sums[v, 1]
    return n_jets, n_bjets, index, sf, shift


@numba.njit(cache=True, nogil=True, error_model="numpy")
def event_cuts(
    n_tight, n_jets, n_bjets, met_x, met_y, met_pt, shift, n_jets_min, n_bjets_min, met_min
):
    """The four event cuts of one variation, and its MET, in one pass over the events.

    The MET is ``(met_x, met_y) - shift`` (``shift`` ``(n, 2)``), or ``met_pt`` as it is
    when ``shift`` is empty (the nominal). Returns ``bits`` (uint32: bit 0 exactly one
    tight lepton, 1 ``n_jets >= n_jets_min``, 2 ``n_bjets >= n_bjets_min``, 3 MET >
    ``met_min``), ``depth`` (how many cuts in a row the event passes, for the cutflow) and
    the varied ``mx, my, pt`` (``mx, my`` empty for the nominal).
    """
    n = len(n_tight)
    varied = shift.shape[0] > 0
    m = n if varied else 0
    bits = np.empty(n, dtype=np.uint32)
    depth = np.empty(n, dtype=np.int64)
    mx = np.empty(m, dtype=np.float64)
    my = np.empty(m, dtype=np.float64)
    mpt = np.empty(n, dtype=np.float64)
    for e in range(n):
        if varied:
            x = met_x[e] - shift[e, 0]
            y = met_y[e] - shift[e, 1]
            mx[e] = x
            my[e] = y
            p = math.sqrt(x * x + y * y)
        else:
            p = np.float64(met_pt[e])
        mpt[e] = p
        c0 = n_tight[e] == 1
        c1 = n_jets[e] >= n_jets_min
        c2 = n_bjets[e] >= n_bjets_min
        c3 = p > met_min
        bits[e] = np.uint32(c0) | (np.uint32(c1) << 1) | (np.uint32(c2) << 2) | (np.uint32(c3) << 3)
        depth[e] = c0 + (c0 & c1) + (c0 & c1 & c2) + (c0 & c1 & c2 & c3)
    return bits, depth, mx, my, mpt


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mass(px, py, pz, e):
    m2 = e * e - px * px - py * py - pz * pz
    return math.sqrt(m2) if m2 > 0.0 else 0.0


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


#: Rows of the float block :func:`event_features` writes after the jet rows (``4 n_store``):
#: the seven high-level masses of the paper (in its order), then the per-event columns.
BLOCK_MASSES = ("m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb")
BLOCK_EVENT = ("lep_pt", "lep_eta", "lep_phi", "met_pt", "met_x", "met_y")


@numba.njit(cache=True, nogil=True, error_model="numpy")
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
    lep_p4,
    lep_pt,
    lep_eta,
    lep_phi,
    lep_charge,
    lep_flavour,
    met_x,
    met_y,
    n_jets,
    n_bjets,
    n_store,
    m_w,
    m_top,
    block,
    small,
    counts,
    offset,
):
    """Every feature column of the events ``rows``, in one pass (the algorithm is in ``features``).

    ``index`` holds the leading selected jets (from :func:`vary_and_select_all`); the jets'
    pT and mass are scaled by ``factor``; ``cos_phi, sin_phi, sinh_eta`` are the jets'
    and ``lep_p4`` ``(n, 4)`` the lepton's px, py, pz, E (NaN without one), all computed
    once per chunk and shared by the variations; ``lep_*`` the events' leptons, ``met_x,
    met_y`` the missing momentum, ``n_jets, n_bjets`` the selected jet counts.

    Writes columns ``offset`` to ``offset + len(rows)`` of the outputs (the caller's
    buffers, shared by the variations of a chunk, see :func:`feature_buffers`): ``block``
    float32 ``(4 n_store + 13, N)``, one row per output column: pt, eta, phi, btag of each
    of the first ``n_store`` jets, then :data:`BLOCK_MASSES` and :data:`BLOCK_EVENT` (NaN
    where undefined); ``small`` int8 ``(2, N)``: lepton charge and flavour; ``counts``
    int16 ``(2, N)``: jets and b jets. Each output value is written once.
    """
    nan = np.nan
    n = len(rows)
    k = index.shape[1]
    jm0 = 4 * n_store  # first mass row
    ev0 = jm0 + len(BLOCK_MASSES)  # first per-event row
    jx = np.empty(k)
    jy = np.empty(k)
    jz = np.empty(k)
    je = np.empty(k)
    jb = np.empty(k)
    f0 = factor[0]
    for r in range(n):
        e = rows[r]
        c = offset + r
        m = 0
        for i in range(k):
            j = index[e, i]
            if j < 0:
                break
            f = factor[j] if per_jet else f0
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
        mx = met_x[e]
        my = met_y[e]
        block[ev0, c] = lep_pt[e]
        block[ev0 + 1, c] = lep_eta[e]
        block[ev0 + 2, c] = lep_phi[e]
        block[ev0 + 3, c] = math.sqrt(mx * mx + my * my)
        block[ev0 + 4, c] = mx
        block[ev0 + 5, c] = my
        small[0, c] = lep_charge[e]
        small[1, c] = lep_flavour[e]
        counts[0, c] = n_jets[e]
        counts[1, c] = n_bjets[e]

        m_jj = m_jjj = m_lv = m_jlv = m_bb = m_wbb = m_wwbb = nan
        # lepton, neutrino, leptonic W
        lx = lep_p4[e, 0]
        has_lep = not math.isnan(lx)
        wx = wy = wz = we = nan
        if has_lep:
            ly = lep_p4[e, 1]
            lz = lep_p4[e, 2]
            le = lep_p4[e, 3]
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
            hx, hy, hz, he = jx[w1] + jx[w2], jy[w1] + jy[w2], jz[w1] + jz[w2], je[w1] + je[w2]
            m_jj = _mass(hx, hy, hz, he)
        if b1 >= 0:
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
            m_jjj = jjj1 if swap else jjj0
            m_jlv = jlv1 if swap else jlv0
            if b2 >= 0:
                bx, by, bz, be = jx[b1] + jx[b2], jy[b1] + jy[b2], jz[b1] + jz[b2], je[b1] + je[b2]
                m_bb = _mass(bx, by, bz, be)
                if w1 >= 0:
                    m_wbb = _mass(hx + bx, hy + by, hz + bz, he + be)
                    if has_lep:
                        m_wwbb = _mass(hx + bx + wx, hy + by + wy, hz + bz + wz, he + be + we)
        block[jm0, c] = m_jj
        block[jm0 + 1, c] = m_jjj
        block[jm0 + 2, c] = m_lv
        block[jm0 + 3, c] = m_jlv
        block[jm0 + 4, c] = m_bb
        block[jm0 + 5, c] = m_wbb
        block[jm0 + 6, c] = m_wwbb


def feature_buffers(n_rows: int, n_store: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output buffers of :func:`event_features` for ``n_rows`` events in all.

    One allocation per chunk for the features of all its variations; the table columns are
    views of its rows.

    Examples
    --------
    >>> block, small, counts = feature_buffers(3, 4)
    >>> block.shape, small.dtype.name, counts.shape
    ((29, 3), 'int8', (2, 3))
    """
    block = np.empty((4 * n_store + len(BLOCK_MASSES) + len(BLOCK_EVENT), n_rows), np.float32)
    return block, np.empty((2, n_rows), np.int8), np.empty((2, n_rows), np.int16)
