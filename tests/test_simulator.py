"""Tests for the seeded COI-5P barcode simulator (benchbarcode.data.simulator)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from benchbarcode.data import simulator
from benchbarcode.data.simulator import SEQ_LEN, simulate

COLUMNS = ["processid", "order", "family", "genus", "species", "bin", "sequence"]


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return simulate()


@pytest.fixture(scope="module")
def clean(df) -> pd.DataFrame:
    """Labeled, artefact-free, full-length records."""
    ok = df.sequence.str.fullmatch(rf"[ACGT]{{{SEQ_LEN}}}") & df.species.notna()
    return df[ok].reset_index(drop=True)


@pytest.fixture(scope="module")
def seq_matrix(clean) -> np.ndarray:
    return np.frombuffer("".join(clean.sequence).encode("ascii"), dtype=np.uint8).reshape(-1, SEQ_LEN)


def _pdist(mat, i, j, cols=slice(None)):
    return (mat[i][:, cols] != mat[j][:, cols]).mean(axis=1)


# ------------------------------------------------------------------ shape / determinism


def test_shape_columns_and_ids(df):
    assert list(df.columns) == COLUMNS
    assert len(df) == 20_000
    assert df.processid.is_unique
    assert df.processid.str.fullmatch(r"SIM\d{7}").all()
    for c in COLUMNS:
        vals = df[c].dropna()
        assert all(isinstance(v, str) for v in vals.iloc[:500]), c
    # missing labels are None (object columns), never empty strings
    assert df.species.isna().any() and df.species[df.species.isna()].map(lambda v: v is None).all()
    assert not (df[COLUMNS[1:]] == "").any().any()
    assert df.order.notna().all() and df.family.notna().all() and df.sequence.notna().all()


def test_name_formats_and_nesting(df):
    assert df.order.str.fullmatch(r"Simorder\d{2}").all()
    assert df.family.str.fullmatch(r"Simfamily\d{3}").all()
    assert df.genus.dropna().str.fullmatch(r"Simgenus\d{4}").all()
    assert df.species.dropna().str.fullmatch(r"Simgenus\d{4} sp\d{3}").all()
    assert df.bin.dropna().str.fullmatch(r"BOLD:SIM\d{4}").all()
    lab = df[df.species.notna()]
    assert (lab.species.str.split(" ").str[0] == lab.genus).all()
    assert lab.groupby("species").genus.nunique().max() == 1
    assert df.dropna(subset=["genus"]).groupby("genus").family.nunique().max() == 1
    assert df.groupby("family").order.nunique().max() == 1
    assert lab.dropna(subset=["bin"]).groupby("bin").species.nunique().max() == 1  # BIN in species
    assert lab.dropna(subset=["bin"]).groupby("species").bin.nunique().max() <= 3


def test_deterministic_and_seed_sensitive(df):
    pd.testing.assert_frame_equal(simulate(20_000, 0), df)
    small = simulate(2_000, 7)
    pd.testing.assert_frame_equal(simulate(2_000, 7), small)
    other = simulate(2_000, 8)
    assert not small.sequence.equals(other.sequence)
    assert not small.species.equals(other.species)


# ------------------------------------------------------------------ taxonomy / counts


def test_taxonomy_counts(df):
    lab = df[df.species.notna()]
    n_sp = lab.species.nunique()
    assert 300 <= n_sp <= 800
    assert lab.genus.nunique() >= 100
    per_genus = lab.groupby("genus").species.nunique()
    assert (per_genus >= 2).sum() >= 50
    assert 4 <= df.order.nunique() <= 6
    assert 24 <= df.family.nunique() <= 120
    assert df.bin.nunique() > n_sp  # some species have several BINs


def test_records_per_species_skewed(df):
    counts = df.species.value_counts()
    assert counts.min() >= 1
    assert counts.max() >= 8 * counts.median()  # heavy tail
    assert (counts <= 3).mean() > 0.05  # and a long tail of rare species


def test_unlabeled_part(df):
    unl = df.species.isna()
    assert 0.23 <= unl.mean() <= 0.27
    assert 0.4 <= df.genus[unl].isna().mean() <= 0.6
    assert df.genus[~unl].notna().all()
    assert 0.3 <= df.bin[unl].notna().mean() <= 0.9  # bin possibly present
    # mixed in, not appended at the end
    halves = np.array_split(unl.to_numpy(), 4)
    assert all(0.18 <= h.mean() <= 0.32 for h in halves)
    # unlabeled records come from the labeled species' lineages: their genera exist labeled
    assert set(df.genus[unl].dropna()) <= set(df.genus[~unl])


# ------------------------------------------------------------------ sequences


def test_alphabet_lengths_composition(df):
    seqs = df.sequence
    assert seqs.str.fullmatch(r"[ACGTNRYKMSW\-]+").all()
    lengths = seqs.str.len()
    assert lengths.min() >= 400 and lengths.max() == SEQ_LEN
    allbases = "".join(seqs.iloc[:5000])
    acgt = sum(allbases.count(b) for b in "ACGT")
    at = (allbases.count("A") + allbases.count("T")) / acgt
    assert 0.6 <= at <= 0.75


def test_third_codon_position_most_at_rich(seq_matrix):
    at = [np.isin(seq_matrix[:2000, p::3], np.frombuffer(b"AT", np.uint8)).mean() for p in range(3)]
    assert at[2] > at[0] + 0.1 and at[2] > at[1] + 0.1
    assert at[2] > 0.75


def test_no_stop_codons_in_frame(clean):
    stops = re.compile(r"^(?:...)*?(?:TAA|TAG)")
    assert not any(stops.match(s) for s in clean.sequence.iloc[:500])


def test_divergence_ranges(clean, seq_matrix):
    rng = np.random.default_rng(0)
    ge = clean.genus.to_numpy()
    od = clean.order.to_numpy()

    # intraspecific: up to 10 random pairs per species
    ii, jj = [], []
    for idx in clean.groupby("species").indices.values():
        if len(idx) >= 2:
            a, b = rng.choice(idx, 10), rng.choice(idx, 10)
            ii.append(a[a != b]), jj.append(b[a != b])
    intra = _pdist(seq_matrix, np.concatenate(ii), np.concatenate(jj))
    assert np.median(intra) < 0.02
    assert (intra < 0.02).mean() > 0.8

    # one representative per species; congeneric = all pairs within a genus
    rep = clean.drop_duplicates("species").index.to_numpy()
    ci, cj = [], []
    for idx in pd.Series(rep).groupby(ge[rep]).apply(np.asarray):
        if len(idx) >= 2:
            a, b = np.triu_indices(len(idx), 1)
            ci.append(idx[a]), cj.append(idx[b])
    ci, cj = np.concatenate(ci), np.concatenate(cj)
    cong = _pdist(seq_matrix, ci, cj)
    assert 0.08 <= np.median(cong) <= 0.15

    # between orders: random representative pairs
    a, b = rng.choice(rep, 3000), rng.choice(rep, 3000)
    m = od[a] != od[b]
    between = _pdist(seq_matrix, a[m], b[m])
    assert np.median(between) > 0.20
    assert np.median(between) > np.median(cong) > np.median(intra)

    # codon-position rate heterogeneity within genera: 3rd >> 1st > 2nd
    per_pos = [_pdist(seq_matrix, ci, cj, slice(p, None, 3)).mean() for p in range(3)]
    assert per_pos[2] > 2 * per_pos[0] and per_pos[2] > 2 * per_pos[1]
    assert per_pos[0] > per_pos[1]


def test_transitions_exceed_transversions(clean, seq_matrix):
    """Among close relatives (congeneric species) transitions outnumber transversions."""
    rep = clean.drop_duplicates("species")
    ci, cj = [], []
    for idx in rep.groupby("genus").indices.values():
        if len(idx) >= 2:
            a, b = np.triu_indices(len(idx), 1)
            ci.append(rep.index.to_numpy()[idx[a]]), cj.append(rep.index.to_numpy()[idx[b]])
    x, y = seq_matrix[np.concatenate(ci)], seq_matrix[np.concatenate(cj)]
    purines = np.frombuffer(b"AG", np.uint8)
    same_class = np.isin(x, purines) == np.isin(y, purines)
    diff = x != y
    ts, tv = (diff & same_class).sum(), (diff & ~same_class).sum()
    assert ts > 1.2 * tv  # despite twice as many possible transversions


# ------------------------------------------------------------------ artefacts


def test_artefacts_present_on_minority(df):
    s = df.sequence
    n_ends = s.str.startswith("N") | s.str.endswith("N")
    gaps = s.str.contains("-", regex=False)
    iupac = s.str.contains(r"[RYKMSW]")
    short = s.str.len() < SEQ_LEN
    for mask, lo, hi in [(n_ends, 0.005, 0.08), (gaps, 0.002, 0.03), (iupac, 0.002, 0.03), (short, 0.02, 0.2)]:
        assert lo <= mask.mean() <= hi
    any_art = n_ends | gaps | iupac | short
    assert any_art.mean() < 0.3
    # N only occurs in runs at the ends
    interior = s.str.strip("N")
    assert not interior.str.contains("N", regex=False).any()
    assert (s.str.len() > 0).all()


def test_bin_missing_for_short_reads(df):
    short = df.sequence.str.len() < 500
    assert short.any()
    assert df.bin[short].isna().all()
    lab = df.species.notna() & ~short
    assert df.bin[lab].notna().mean() > 0.95


# ------------------------------------------------------------------ small sizes


@pytest.mark.parametrize("n", [300, 500])
def test_small_n(n):
    d = simulate(n, seed=3)
    assert len(d) == n and d.processid.is_unique
    lab = d[d.species.notna()]
    per_genus = lab.groupby("genus").species.nunique()
    assert (per_genus >= 2).sum() >= 2
    assert d.sequence.str.len().min() >= 400


def test_tiny_and_invalid_n():
    assert len(simulate(1, 0)) == 1
    assert len(simulate(5, 0)) == 5
    with pytest.raises(ValueError):
        simulate(0)


def test_default_size_under_another_seed(df):
    """Seed 1 at the default size (the other tests' full-size table is seed 0): as many records,
    unique ids, the same table again for the same seed, and not seed 0's table."""
    other = simulate(20_000, 1)
    assert len(other) == 20_000 and other.processid.is_unique
    pd.testing.assert_frame_equal(simulate(20_000, 1), other)
    assert not other.sequence.equals(df.sequence) and not other.species.equals(df.species)


@pytest.mark.parametrize("total", [1, 2, 3, 7, 100])
def test_group_sizes_are_contiguous_blocks_of_the_total(total):
    rng = np.random.default_rng(total)
    sizes = simulator.contiguous_sizes(rng, total, 2.8, first_min=2)
    assert sizes.sum() == total and (sizes >= 1).all()
    if total >= 4:
        assert (sizes[:2] >= 2).all()
    parts = min(3, total)
    cuts = simulator.random_cut_sizes(rng, total, parts)
    assert cuts.dtype == np.int64 and len(cuts) == parts and cuts.sum() == total and (cuts >= 1).all()
