"""Seeded phylogenetic simulator of insect COI-5P DNA barcodes (the embedded default data set).

``simulate(n_records, seed)`` returns a *raw* BOLD-like table (cleaning happens elsewhere) with
columns ``processid, order, family, genus, species, bin, sequence``. Everything is drawn from a
single ``numpy.random.default_rng(seed)``; the same ``(n_records, seed)`` gives an identical frame.

Taxonomy (orders > families > genera > species > BINs > haplotypes > specimens)
    * species ``S = max(4, round(n/35))`` (capped at ``n``); species per genus ``~ Geometric``
      (mean 2.8, the first two genera have >= 2 species), so about a third of genera are
      monotypic and the rest hold 2..~15 species; genera per family ``~ Geometric`` (mean
      ``clip(G/(10*O), 1.5, 4)``); ``O = clip(round(1.2*log10 n), 2, 6)`` orders (fewer if there
      are fewer families), each a contiguous block of families. Default n=20 000: 5 orders,
      ~50 families, ~180-200 genera (~130 with >= 2 species), 571 species, ~700 BINs. Taxa are
      numbered in tree order: ``Simorder01``, ``Simfamily012``, ``Simgenus0042``, species
      ``"Simgenus0042 sp003"`` (number within its genus).
    * records per species: ``1 + Multinomial(n - S, lognormal(0, 1.2) weights)`` (heavy-tailed,
      min 1, mean n/S ~ 35, median ~ 20).
    * BINs: 1/2/3 per species with prob .80/.15/.05 (never more than its records); the first BIN
      holds most records. IDs ``BOLD:SIM0123`` are a random permutation of 1..#BINs.
    * haplotypes per BIN: ``1 + Binomial(m-1, 0.25)`` for a BIN with ``m`` records; records pick a
      haplotype with ``P(k) ~ log((k+1)/k)`` (Zipf-like, a dominant haplotype).

Substitution model
    * 658 sites, codon position ``i % 3`` (frame starts at site 0). HKY85 with kappa = 12 and
      codon-position-specific stationary frequencies (AT-rich, third positions ~86 % A+T):
      pos1 A/C/G/T = .30/.16/.25/.29, pos2 .18/.25/.15/.42, pos3 .42/.09/.05/.44 (~68 % A+T
      overall). The root is drawn from these frequencies (its stop codons replaced by AAA).
    * site rates = codon-position rate (1 : 0.3 : 6) x Gamma(shape 0.6, mean 1), normalised to
      mean 1, so branch lengths are expected substitutions per site.
    * internal levels (root -> order -> family -> genus -> species -> BIN) use the exact HKY
      transition probabilities (one uniform per site and branch, vectorised over all branches of
      a level); haplotype and specimen branches are short and use sparse Poisson events (sites
      picked in proportion to their rates, HKY jump chain for the new base).
    * purifying selection: a codon that becomes a stop codon (TAA/TAG, invertebrate mito code)
      is reverted to its parent codon, so every sequence translates in frame 0 without stops.
    * branch lengths (mean, lognormal sd of log): order 0.50 (.25), family 0.22 (.30),
      genus 0.10 (.35), species 0.115 (.45), BIN 0.012 (.30, only for species with > 1 BIN),
      haplotype 0.003 (.50), specimen 0.0006. Calibrated empirically against the measured
      uncorrected p-distance (which saturates because third positions are fast). Measured on
      artefact-free records at the default size (pairs sampled uniformly over records): medians
      ~0.5 % intraspecific (~94 % of pairs < 2 %; distinct BINs of a species ~2.7 % apart),
      ~10.5 % congeneric (q05-q95 ~7-15 %), ~15 % confamilial (different genera), ~21 % between
      families of an order and ~29 % between orders; congeneric ts/tv ~1.7.

Labels and read artefacts
    * ~25 % of records form the unlabeled pretraining part: random records (never the first
      record of a species, so every species keeps a labeled record) get ``species = None``,
      ``genus = None`` with prob 0.5, ``bin`` kept with prob 0.6; order/family kept.
      Rows are shuffled, so labeled and unlabeled records are interleaved; ``processid`` is
      ``SIM0000001``... in row order.
    * ``bin`` is None for ~2 % of labeled records and for every read shorter than 500 nt
      (BOLD's BIN threshold).
    * artefacts (independent, per record): truncation to 400-650 nt (8 %), runs of N at one or
      both ends (3 %, 1-40 nt each), 1-2 IUPAC ambiguity codes consistent with the true base
      (1 %), an alignment gap ``'-'`` run of 1-3 sites (1 %). Output alphabet: ACGTN, RYKMSW, '-'.

Building blocks (public; :mod:`benchbarcode.data.twin` draws its own taxonomy and counts with them)
    * taxa as contiguous blocks: :func:`contiguous_sizes` (Geometric group sizes),
      :func:`random_cut_sizes` (uniform cut points); :func:`assign_haplotypes`;
    * the substitution model on uint8 base codes ``(n, SEQ_LEN)`` (A/C/G/T = 0..3):
      :func:`site_rates`, :func:`root_sequence`, :func:`branch_lengths`, :func:`evolve_dense`
      (exact HKY, long branches), :func:`evolve_sparse` (sparse events, short branches);
    * :func:`read_artefacts`: base codes -> read strings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "SEQ_LEN", "assign_haplotypes", "branch_lengths", "contiguous_sizes", "evolve_dense", "evolve_sparse",
    "random_cut_sizes", "read_artefacts", "root_sequence", "simulate", "site_rates",
]

SEQ_LEN = 658

# A, C, G, T encoded 0..3; purines (A, G) have code & 1 == 0, pyrimidines (C, T) == 1.
_ASCII = np.frombuffer(b"ACGT", dtype=np.uint8)
_PI = np.array(
    [
        [0.30, 0.16, 0.25, 0.29],  # codon position 1
        [0.18, 0.25, 0.15, 0.42],  # codon position 2
        [0.42, 0.09, 0.05, 0.44],  # codon position 3
    ]
)
_KAPPA = 12.0
_CODON_RATES = np.array([1.0, 0.3, 6.0])
_GAMMA_SHAPE = 0.6

# (mean branch length in expected substitutions/site, sd of log) per level
_BRANCH = {
    "order": (0.50, 0.25),
    "family": (0.22, 0.30),
    "genus": (0.10, 0.35),
    "species": (0.115, 0.45),
    "bin": (0.012, 0.30),
    "haplotype": (0.003, 0.50),
    "specimen": (0.0006, 0.0),
}

_UNLABELED_FRAC = 0.25
_P_TRUNC, _P_NRUN, _P_IUPAC, _P_GAP = 0.08, 0.03, 0.01, 0.01
# IUPAC codes containing A, C, G, T respectively
_IUPAC = np.array([list(b"RWM"), list(b"YSM"), list(b"RSK"), list(b"YWK")], dtype=np.uint8)


def _hky_tables():
    """Per codon position: beta (rate normalisation), class freqs, within-class split, jump CDFs."""
    beta = np.empty(3)
    jump_cdf = np.empty((3, 4, 4))
    for p in range(3):
        pi = _PI[p]
        out = np.empty(4)
        for i in range(4):
            w = np.array([(_KAPPA if (i & 1) == (j & 1) else 1.0) * pi[j] for j in range(4)])
            w[i] = 0.0
            out[i] = w.sum()
            jump_cdf[p, i] = np.cumsum(w / w.sum())
        beta[p] = 1.0 / float((pi * out).sum())
    class_freq = np.stack([_PI[:, 0] + _PI[:, 2], _PI[:, 1] + _PI[:, 3]], axis=1)  # (3, 2): R, Y
    first_in_class = np.stack([_PI[:, 0], _PI[:, 1]], axis=1) / class_freq  # P(A|R), P(C|Y)
    return beta, class_freq, first_in_class, jump_cdf


_BETA, _CLASS_FREQ, _FIRST_IN_CLASS, _JUMP_CDF = _hky_tables()
_POS = np.arange(SEQ_LEN) % 3


def branch_lengths(rng: np.random.Generator, level: str, size: int) -> np.ndarray:
    """``size`` branch lengths (expected substitutions per site) of one tree ``level``: ``order``,
    ``family``, ``genus``, ``species``, ``bin``, ``haplotype`` or ``specimen``. Lognormal around the
    level's mean with its sd of log (module docstring); the specimen level's is fixed."""
    mean, sd = _BRANCH[level]
    if sd == 0.0:
        return np.full(size, mean)
    return mean * rng.lognormal(-0.5 * sd * sd, sd, size)


def _revert_stops(child, parent):
    """Revert codons that became TAA/TAG back to the (stop-free) parent codon, in place."""
    nc = SEQ_LEN // 3
    c = child[:, : nc * 3].reshape(len(child), nc, 3)
    stop = (c[:, :, 0] == 3) & (c[:, :, 1] == 0) & ((c[:, :, 2] == 0) | (c[:, :, 2] == 2))
    if stop.any():
        r, k = np.nonzero(stop)
        p = parent[:, : nc * 3].reshape(len(parent), nc, 3)
        c[r, k] = p[r, k]


def evolve_dense(parent: np.ndarray, t: np.ndarray, rate: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Children of the base codes ``parent`` ``(n, SEQ_LEN)`` along branches of length ``t``
    ``(n,)``, by the exact HKY85 transition probabilities at site rates ``rate``
    (:func:`site_rates`); one uniform per site and branch. For long (internal) branches; a codon
    that becomes a stop codon is reverted to the parent's."""
    n = len(parent)
    if n == 0:
        return parent.copy()
    pos = _POS
    a = t[:, None] * (rate * _BETA[pos])[None, :]  # (n, L) beta-scaled time
    u = rng.random(a.shape)
    p_a = -np.expm1(-a)  # P(at least one "redraw from pi" event)
    child = parent.copy()
    # redraw from the stationary distribution of the codon position (v is uniform given u < p_a)
    hit_a = u < p_a
    with np.errstate(divide="ignore", invalid="ignore"):
        v = u / p_a
    cdf = np.cumsum(_PI, axis=1)[pos]  # (L, 4)
    draw = (v > cdf[None, :, 0]).astype(np.uint8)
    draw += v > cdf[None, :, 1]
    draw += v > cdf[None, :, 2]
    # otherwise: within-class (transition) redraw with prob 1 - exp(-a * Pi_J * (kappa - 1))
    cls = parent & 1
    pi_j = _CLASS_FREQ[pos[None, :], cls]
    p_b = -np.expm1(-a * pi_j * (_KAPPA - 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (u - p_a) / (1.0 - p_a)
        z = w / p_b
    hit_b = ~hit_a & (w < p_b)
    within = cls + 2 * (z >= _FIRST_IN_CLASS[pos[None, :], cls]).astype(np.uint8)
    child[hit_a] = draw[hit_a]
    child[hit_b] = within[hit_b]
    _revert_stops(child, parent)
    return child


def evolve_sparse(parent: np.ndarray, t: np.ndarray, rate_cum: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Children of ``parent`` ``(n, SEQ_LEN)`` along short branches ``t`` ``(n,)``: Poisson(t *
    sum(rate)) substitution events per sequence, at sites picked in proportion to their rate
    (``rate_cum = np.cumsum(rate)``), the new base from the HKY jump chain; a codon that becomes a
    stop codon is reverted to the parent's."""
    child = parent.copy()
    total = rate_cum[-1]
    k = rng.poisson(t * total)
    m = int(k.sum())
    if m == 0:
        return child
    rows = np.repeat(np.arange(len(parent)), k)
    sites = np.searchsorted(rate_cum, rng.random(m) * total, side="right")
    sites = np.minimum(sites, SEQ_LEN - 1)
    cur = child[rows, sites]
    cdf = _JUMP_CDF[_POS[sites], cur]  # (m, 4)
    u = rng.random(m)[:, None]
    child[rows, sites] = (u > cdf[:, :3]).sum(axis=1).astype(np.uint8)
    _revert_stops(child, parent)
    return child


def contiguous_sizes(rng: np.random.Generator, total: int, mean: float, first_min: int = 0) -> np.ndarray:
    """Split ``total`` items into contiguous groups of Geometric(mean) size (>= 1); the first two
    groups hold at least ``first_min`` when ``total >= 2 * first_min``. Returns the sizes (int64,
    summing to ``total``), e.g. species per genus."""
    sizes = rng.geometric(1.0 / mean, size=max(total, 1)).astype(np.int64)
    if first_min and total >= 2 * first_min:
        sizes[:2] = np.maximum(sizes[:2], first_min)
        sizes[0] = min(sizes[0], total - first_min)
    cs = np.cumsum(sizes)
    g = int(np.searchsorted(cs, total)) + 1
    sizes = sizes[:g].copy()
    sizes[-1] -= cs[g - 1] - total
    return sizes


def read_artefacts(seqs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Base codes ``(n, SEQ_LEN)`` -> read strings (object array) with truncation, N runs,
    ambiguity codes and gap runs (see the module docstring), and each read's length."""
    n, L = seqs.shape
    mat = _ASCII[seqs]  # (n, L) ASCII codes
    start = np.zeros(n, dtype=np.int64)
    end = np.full(n, L, dtype=np.int64)
    trunc = np.flatnonzero(rng.random(n) < _P_TRUNC)
    keep = rng.integers(400, 651, size=len(trunc))
    start[trunc] = rng.integers(0, L - keep + 1)
    end[trunc] = start[trunc] + keep
    length = end - start

    nrun = np.flatnonzero(rng.random(n) < _P_NRUN)
    side = rng.integers(0, 3, size=len(nrun))  # 0 leading, 1 trailing, 2 both
    lead = np.where(side != 1, np.minimum(rng.geometric(0.12, len(nrun)), 40), 0)
    trail = np.where(side != 0, np.minimum(rng.geometric(0.12, len(nrun)), 40), 0)
    col = np.arange(L)[None, :]
    s0, e0 = start[nrun, None], end[nrun, None]
    nmask = ((col >= s0) & (col < s0 + lead[:, None])) | ((col >= e0 - trail[:, None]) & (col < e0))
    sub = mat[nrun]
    sub[nmask] = ord("N")
    mat[nrun] = sub

    amb = np.flatnonzero(rng.random(n) < _P_IUPAC)
    n_amb = rng.integers(1, 3, size=len(amb))
    rows = np.repeat(amb, n_amb)
    margin = 45  # keep ambiguity codes away from the N-runs at the ends
    frac = rng.random(len(rows))
    pos = start[rows] + margin + (frac * (length[rows] - 2 * margin)).astype(np.int64)
    base = np.searchsorted(_ASCII, mat[rows, pos])  # 0..3 for A/C/G/T
    ok = (base < 4) & (_ASCII[np.minimum(base, 3)] == mat[rows, pos])
    mat[rows[ok], pos[ok]] = _IUPAC[base[ok], rng.integers(0, 3, size=int(ok.sum()))]

    gap = np.flatnonzero(rng.random(n) < _P_GAP)
    glen = rng.integers(1, 4, size=len(gap))
    frac = rng.random(len(gap))
    gpos = start[gap] + margin + (frac * (length[gap] - 2 * margin - 3)).astype(np.int64)
    for j in range(3):
        sel = glen > j
        mat[gap[sel], gpos[sel] + j] = ord("-")

    buf = mat.tobytes()
    del mat
    offs = (np.arange(n) * L).tolist()
    sequence = np.array(
        [buf[o + s : o + e].decode("ascii") for o, s, e in zip(offs, start.tolist(), end.tolist())],
        dtype=object,
    )
    return sequence, length


def random_cut_sizes(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """Split ``total`` items into ``parts`` (<= ``total``) contiguous non-empty groups at
    ``parts - 1`` distinct cut points drawn uniformly; returns the sizes (int64), e.g. families
    per order."""
    cuts = np.array([], dtype=np.int64)
    if parts > 1:
        cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [total]])).astype(np.int64)


def site_rates(rng: np.random.Generator) -> np.ndarray:
    """Relative substitution rates of the :data:`SEQ_LEN` sites: the codon position's rate
    (1 : 0.3 : 6) times Gamma(shape 0.6, mean 1), normalised to mean 1, so that branch lengths
    are expected substitutions per site."""
    rate = _CODON_RATES[_POS] * rng.gamma(_GAMMA_SHAPE, 1.0 / _GAMMA_SHAPE, SEQ_LEN)
    rate /= rate.mean()
    return rate


def root_sequence(rng: np.random.Generator) -> np.ndarray:
    """The root of a tree as base codes ``(1, SEQ_LEN)`` (uint8, A/C/G/T = 0..3): each site drawn
    from its codon position's stationary frequencies, stop codons replaced by AAA."""
    root = np.empty((1, SEQ_LEN), dtype=np.uint8)
    cdf = np.cumsum(_PI, axis=1)[_POS]
    u = rng.random(SEQ_LEN)
    root[0] = (u > cdf[:, 0]).astype(np.uint8) + (u > cdf[:, 1]) + (u > cdf[:, 2])
    _revert_stops(root, np.zeros_like(root))  # AAA codons replace initial stops
    return root


def assign_haplotypes(rng: np.random.Generator, rec_bin: np.ndarray,
                      bin_count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Haplotypes of BINs holding ``bin_count`` records and the haplotype of each record (its BIN
    ``rec_bin``). A BIN of ``m`` records has ``1 + Binomial(max(m - 1, 0), 0.25)`` haplotypes; a
    record picks the ``k``-th of its BIN's ``h`` with probability ``log((k+1)/k) / log(h+1)``
    (Zipf-like: a dominant haplotype). Returns each haplotype's BIN and each record's haplotype
    (an index into the first)."""
    bin_nhap = 1 + rng.binomial(np.maximum(bin_count - 1, 0), 0.25)
    hap_bin = np.repeat(np.arange(len(bin_count)), bin_nhap)
    hap_offset = np.cumsum(bin_nhap) - bin_nhap
    h = bin_nhap[rec_bin]
    k = np.floor(np.exp(rng.random(len(rec_bin)) * np.log(h + 1.0))).astype(np.int64) - 1
    return hap_bin, hap_offset[rec_bin] + np.clip(k, 0, h - 1)


def simulate(n_records: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Simulate a raw COI-5P barcode table of ``n_records`` rows (see module docstring).

    The steps draw from one generator in this order: taxonomy, records (species, BINs,
    haplotypes), sequences, read artefacts, labels and row order."""
    n = int(n_records)
    if n < 1:
        raise ValueError("n_records must be >= 1")
    rng = np.random.default_rng(seed)
    tree = _taxonomy(rng, n)
    records = _records(rng, n, len(tree.sp_genus))
    seqs = _sequences(rng, tree, records)
    sequence, length = read_artefacts(seqs, rng)
    del seqs
    return _table(rng, tree, records, sequence, length)


@dataclass
class _Taxonomy:
    """The tree above the species, numbered in tree order (each level a contiguous block)."""

    fam_order: np.ndarray  # [families] -> order
    gen_family: np.ndarray  # [genera] -> family
    sp_genus: np.ndarray  # [species] -> genus
    sp_local: np.ndarray  # [species]: number within its genus (1-based), for the name
    n_orders: int


@dataclass
class _Records:
    """Records per species, BINs and haplotypes; records are grouped by species, then BIN."""

    sp_count: np.ndarray  # [species]: records
    sp_nbin: np.ndarray  # [species]: BINs
    bin_species: np.ndarray  # [BINs] -> species
    rec_bin: np.ndarray  # [records] -> BIN
    hap_bin: np.ndarray  # [haplotypes] -> BIN
    rec_hap: np.ndarray  # [records] -> haplotype


def _taxonomy(rng: np.random.Generator, n: int) -> _Taxonomy:
    """Species, genera, families and orders for ``n`` records (module docstring, "Taxonomy")."""
    n_sp = int(min(n, max(4, round(n / 35))))
    sp_per_genus = contiguous_sizes(rng, n_sp, 2.8, first_min=2)
    n_gen = len(sp_per_genus)
    n_ord_target = int(np.clip(round(1.2 * np.log10(max(n, 2))), 2, 6))
    fam_mean = float(np.clip(n_gen / (10 * n_ord_target), 1.5, 4.0))
    gen_per_fam = contiguous_sizes(rng, n_gen, fam_mean)
    n_fam = len(gen_per_fam)
    fam_per_ord = random_cut_sizes(rng, n_fam, min(n_ord_target, n_fam))
    sp_local = np.arange(n_sp) - np.repeat(np.cumsum(sp_per_genus) - sp_per_genus, sp_per_genus) + 1
    return _Taxonomy(fam_order=np.repeat(np.arange(len(fam_per_ord)), fam_per_ord),
                     gen_family=np.repeat(np.arange(n_fam), gen_per_fam),
                     sp_genus=np.repeat(np.arange(n_gen), sp_per_genus), sp_local=sp_local,
                     n_orders=len(fam_per_ord))


def _records(rng: np.random.Generator, n: int, n_sp: int) -> _Records:
    """Records per species (heavy-tailed, min 1), BINs per species and records per BIN (the first
    BIN dominant, each BIN >= 1 record), haplotypes per BIN and each record's haplotype."""
    w = rng.lognormal(0.0, 1.2, n_sp)
    sp_count = 1 + rng.multinomial(n - n_sp, w / w.sum())
    sp_nbin = np.minimum(rng.choice([1, 2, 3], size=n_sp, p=[0.80, 0.15, 0.05]), sp_count)
    bin_species = np.repeat(np.arange(n_sp), sp_nbin)
    bin_count = np.ones(len(bin_species), dtype=np.int64)
    first_bin = np.cumsum(sp_nbin) - sp_nbin
    bin_count[first_bin] = sp_count - sp_nbin + 1
    for s in np.flatnonzero(sp_nbin > 1):
        extra = sp_count[s] - sp_nbin[s]
        bw = rng.dirichlet(np.r_[4.0, np.ones(sp_nbin[s] - 1)])
        bin_count[first_bin[s] : first_bin[s] + sp_nbin[s]] = 1 + rng.multinomial(extra, bw)
    rec_bin = np.repeat(np.arange(len(bin_species)), bin_count)
    hap_bin, rec_hap = assign_haplotypes(rng, rec_bin, bin_count)
    return _Records(sp_count, sp_nbin, bin_species, rec_bin, hap_bin, rec_hap)


def _sequences(rng: np.random.Generator, tree: _Taxonomy, records: _Records) -> np.ndarray:
    """Base codes ``(records, SEQ_LEN)``: root -> order -> family -> genus -> species -> BIN by
    exact HKY, then haplotypes and specimens by sparse events (module docstring)."""
    rate = site_rates(rng)
    rate_cum = np.cumsum(rate)
    root = root_sequence(rng)

    def dense(parent, level):
        return evolve_dense(parent, branch_lengths(rng, level, len(parent)), rate, rng)

    seq_ord = dense(root[np.zeros(tree.n_orders, dtype=np.int64)], "order")
    seq_fam = dense(seq_ord[tree.fam_order], "family")
    seq_gen = dense(seq_fam[tree.gen_family], "genus")
    seq_sp = dense(seq_gen[tree.sp_genus], "species")
    bin_species, n_bin = records.bin_species, len(records.bin_species)
    t_bin = np.where(records.sp_nbin[bin_species] > 1, branch_lengths(rng, "bin", n_bin), 0.0)
    seq_bin = evolve_dense(seq_sp[bin_species], t_bin, rate, rng)
    t_hap = branch_lengths(rng, "haplotype", len(records.hap_bin))
    seq_hap = evolve_sparse(seq_bin[records.hap_bin], t_hap, rate_cum, rng)
    n = len(records.rec_hap)
    return evolve_sparse(seq_hap[records.rec_hap], branch_lengths(rng, "specimen", n), rate_cum, rng)


def _table(rng: np.random.Generator, tree: _Taxonomy, records: _Records, sequence: np.ndarray,
           length: np.ndarray) -> pd.DataFrame:
    """The raw table: names, BIN IDs, missing BINs, the unlabeled part and the row shuffle (module
    docstring, "Labels and read artefacts")."""
    n_gen, n_bin, n = len(tree.gen_family), len(records.bin_species), len(records.rec_bin)
    ord_names = np.array([f"Simorder{i + 1:02d}" for i in range(tree.n_orders)], dtype=object)
    fam_names = np.array([f"Simfamily{i + 1:03d}" for i in range(len(tree.fam_order))], dtype=object)
    gen_names = np.array([f"Simgenus{i + 1:04d}" for i in range(n_gen)], dtype=object)
    sp_names = np.array(
        [f"{gen_names[g]} sp{j:03d}" for g, j in zip(tree.sp_genus.tolist(), tree.sp_local.tolist())],
        dtype=object,
    )
    bin_ids = rng.permutation(n_bin) + 1
    bin_names = np.array([f"BOLD:SIM{i:04d}" for i in bin_ids.tolist()], dtype=object)

    rec_species = records.bin_species[records.rec_bin]
    rec_genus = tree.sp_genus[rec_species]
    rec_family = tree.gen_family[rec_genus]
    col_order = ord_names[tree.fam_order[rec_family]]
    col_family = fam_names[rec_family]
    col_genus = gen_names[rec_genus]
    col_species = sp_names[rec_species]
    col_bin = bin_names[records.rec_bin]

    col_bin[(rng.random(n) < 0.02) | (length < 500)] = None

    first_rec = np.cumsum(records.sp_count) - records.sp_count  # records are grouped by species here
    eligible = np.setdiff1d(np.arange(n), first_rec, assume_unique=True)
    n_unl = min(round(_UNLABELED_FRAC * n), len(eligible))
    unl = np.sort(rng.choice(eligible, size=n_unl, replace=False))
    col_species[unl] = None
    col_genus[unl[rng.random(n_unl) < 0.5]] = None
    col_bin[unl[rng.random(n_unl) >= 0.6]] = None

    perm = rng.permutation(n)
    processid = np.array([f"SIM{i + 1:07d}" for i in range(n)], dtype=object)
    cols = {
        "processid": processid,
        "order": col_order[perm],
        "family": col_family[perm],
        "genus": col_genus[perm],
        "species": col_species[perm],
        "bin": col_bin[perm],
        "sequence": sequence[perm],
    }
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})
