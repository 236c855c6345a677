"""``sim-large``: a simulated twin of BIOSCAN-5M, written as a BIOSCAN-5M metadata CSV.

``write_twin(path, n_records, seed)`` writes a file that the BIOSCAN-5M reader reads like the real
metadata: the columns it needs (``processid, order, family, genus, species, dna_bin, dna_barcode,
split``), BIOSCAN-5M's split protocol and, at the full size (5,150,850 records), its split sizes,
named-species counts and BIN count. Smaller twins scale every count by ``n / 5,150,850``.

What is matched (full size; the reference figures are BIOSCAN-5M's own, see REFERENCE.md)
    * records per split exactly: pretrain 4,677,756, train 289,203, val 14,757, test 39,373,
      key_unseen 36,465, val_unseen 8,819, test_unseen 7,887, other_heldout 76,590;
    * named species per role exactly: 11,846 seen (train; val and test each hold records of a
      random subset of 3,378 and 3,483 of them), 914 unseen (key_unseen; val_unseen and
      test_unseen subsets of 903 and 880), 9,862 in other_heldout: 22,622 in all. Species names
      appear on the labelled splits only (about 9 % of records), never on ``pretrain``;
    * BINs: species hold 1/2/3 BINs with probability .80/.15/.05; the number of unnamed species
      (the "dark taxa" that only occur in ``pretrain``) is set so that the realised BIN count is
      BIOSCAN-5M's 324,411: 1.155 BINs per species are realised (a secondary BIN that draws no
      record is absent; measured), so about 258k unnamed species beside the 22,622 named ones
      (measured: 323,103 BINs).

The open-world protocol's premise holds by construction: every unseen species shares its genus
with at least one seen species (so its genus is in ``train``), and no record of an unseen species
is in a pretraining split (``pretrain``, ``other_heldout``, ``train``).

Not calibrated to BIOSCAN-5M (its figures are not in our references): genera (species per genus
~ Geometric, mean 4), families and orders, the fraction of ``pretrain`` records with a genus label
(25 %). Sequences come from the simulator's model (:mod:`benchbarcode.data.simulator`: its
substitution model, branch lengths, haplotypes, stop-codon selection and read artefacts), with
fewer private mutations per specimen (0.0002 per site instead of 0.0006), which brings the
distinct barcodes of ``pretrain`` to 2.18M (BIOSCAN-5M: 2.28M); the small splits keep more
distinct barcodes than the real ones (train 147k vs 118k). Records per species are heavy-tailed
(lognormal(0, 1.2) weights shared by a species' splits, at least one record per split it is in).

Bounded memory: the taxonomy, counts and genus sequences (O(species), about 0.3 GB at full size)
are decided first; records are then generated in blocks of 4,096 consecutive species, each from
its own seeded generator (``SeedSequence(seed, spawn_key=(block,))``), so the file is identical for
any number of worker processes. A block's rows are shuffled; blocks follow the taxonomy.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from benchbarcode.data import simulator as sim
from benchbarcode.fileio import atomic_path

__all__ = ["FULL_RECORDS", "MIN_RECORDS", "TWIN_VERSION", "plan_twin", "write_twin"]

TWIN_VERSION = 1  # part of the cached file's name: bump it whenever the output changes
FULL_RECORDS = 5_150_850
MIN_RECORDS = 10_000  # below this the unseen-species partitions would hold no species
SPLIT_RECORDS = {"pretrain": 4_677_756, "train": 289_203, "val": 14_757, "test": 39_373,
                 "key_unseen": 36_465, "val_unseen": 8_819, "test_unseen": 7_887, "other_heldout": 76_590}
SPLIT_SPECIES = {"train": 11_846, "val": 3_378, "test": 3_483, "key_unseen": 914, "val_unseen": 903,
                 "test_unseen": 880, "other_heldout": 9_862}
FULL_BINS = 324_411
COLUMNS = ["processid", "order", "family", "genus", "species", "dna_bin", "dna_barcode", "split"]
SPLITS = list(SPLIT_RECORDS)
BLOCK_SPECIES = 4_096
_BINS_PER_SPECIES = (np.array([1, 2, 3]), np.array([0.80, 0.15, 0.05]))
_SPECIES_PER_GENUS = 4.0
_GENERA_PER_FAMILY = 8.0
_ORDERS = 6
_PRETRAIN_GENUS = 0.25
_SPECIMEN_BRANCH = 0.0002  # private mutations per site (the simulator's 0.0006 makes 62 % of pretrain distinct)
_REALISED_BINS_PER_SPECIES = 1.155  # measured at full size: secondary BINs that draw no record are absent
_DENSE_ROWS = 8_192  # exact-HKY evolution in row chunks (its temporaries are float64 [rows, 658])
UNNAMED, SEEN, UNSEEN, HELDOUT = 0, 1, 2, 3


@dataclass
class TwinPlan:
    """Everything decided before any record is generated (O(species) arrays)."""

    n_records: int
    seed: int
    counts: np.ndarray  # int64 [species, len(SPLITS)]: records of each species in each split
    role: np.ndarray  # int8 [species]: UNNAMED, SEEN, UNSEEN or HELDOUT
    sp_genus: np.ndarray  # [species] -> genus
    gen_family: np.ndarray  # [genera] -> family
    fam_order: np.ndarray  # [families] -> order
    sp_local: np.ndarray  # [species]: number within its genus (1-based), for the name
    sp_nbin: np.ndarray  # [species]: BINs
    bin_names: np.ndarray  # [total BINs]: "BOLD:TWN0000123", a random permutation
    seq_genus: np.ndarray  # uint8 [genera, 658]: genus sequences
    rate: np.ndarray  # [658] site rates

    @property
    def n_blocks(self) -> int:
        return -(-len(self.role) // BLOCK_SPECIES)

    def block_records(self) -> np.ndarray:
        """Records per block, in block order."""
        per_species = self.counts.sum(axis=1)
        starts = np.arange(0, len(per_species), BLOCK_SPECIES)
        return np.add.reduceat(per_species, starts)


def _scaled(n_records: int) -> tuple[dict, dict, int]:
    """Records per split, named species per split and the unnamed-species count for a twin of
    ``n_records`` (exact BIOSCAN-5M figures at full size)."""
    f = n_records / FULL_RECORDS
    species = {s: max(1, round(k * f)) for s, k in SPLIT_SPECIES.items()}
    species["key_unseen"] = max(2, species["key_unseen"])
    species["train"] = max(species["train"], species["key_unseen"], species["val"], species["test"])
    for sub in ("val_unseen", "test_unseen"):
        species[sub] = min(species[sub], species["key_unseen"])
    records = {s: max(species[s], round(k * f)) for s, k in SPLIT_RECORDS.items() if s != "pretrain"}
    records["pretrain"] = n_records - sum(records.values())
    named = species["train"] + species["key_unseen"] + species["other_heldout"]
    unnamed = max(0, round(FULL_BINS * f / _REALISED_BINS_PER_SPECIES) - named)
    if records["pretrain"] < unnamed:
        raise ValueError(f"sim-large needs at least {MIN_RECORDS} records")
    return records, species, unnamed


def _evolve_dense_chunked(parents: np.ndarray, index: np.ndarray, level: str, rate: np.ndarray,
                          rng: np.random.Generator, t: np.ndarray | None = None) -> np.ndarray:
    """:func:`simulator.evolve_dense <benchbarcode.data.simulator.evolve_dense>` of
    ``parents[index]`` in row chunks (bounded temporaries), along branches ``t`` (default: drawn
    for ``level``)."""
    t = sim.branch_lengths(rng, level, len(index)) if t is None else t
    out = np.empty((len(index), sim.SEQ_LEN), dtype=np.uint8)
    for r0 in range(0, len(index), _DENSE_ROWS):
        rows = slice(r0, r0 + _DENSE_ROWS)
        out[rows] = sim.evolve_dense(parents[index[rows]], t[rows], rate, rng)
    return out


def plan_twin(n_records: int = FULL_RECORDS, seed: int = 0) -> TwinPlan:
    """Taxonomy, roles, counts per species and split, BINs and genus sequences (see the module
    docstring); deterministic in ``(n_records, seed)``."""
    n = int(n_records)
    if n < MIN_RECORDS:
        raise ValueError(f"sim-large needs at least {MIN_RECORDS} records, not {n}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    records, species, n_unnamed = _scaled(n)
    n_species = species["train"] + species["key_unseen"] + species["other_heldout"] + n_unnamed

    # taxonomy: genera, families, orders as contiguous blocks in tree order
    sp_per_genus = sim.contiguous_sizes(rng, n_species, _SPECIES_PER_GENUS, first_min=2)
    gen_per_fam = sim.contiguous_sizes(rng, len(sp_per_genus), _GENERA_PER_FAMILY)
    fam_per_ord = sim.random_cut_sizes(rng, len(gen_per_fam), min(_ORDERS, len(gen_per_fam)))
    sp_genus = np.repeat(np.arange(len(sp_per_genus)), sp_per_genus)
    sp_local = np.arange(n_species) - (np.cumsum(sp_per_genus) - sp_per_genus)[sp_genus] + 1

    role = _roles(rng, sp_per_genus, species)
    counts = _split_counts(rng, role, records, species)
    sp_nbin = np.minimum(rng.choice(_BINS_PER_SPECIES[0], size=n_species, p=_BINS_PER_SPECIES[1]),
                         counts.sum(axis=1))
    bin_names = np.array([f"BOLD:TWN{i:07d}" for i in (rng.permutation(int(sp_nbin.sum())) + 1).tolist()],
                         dtype=object)

    fam_order = np.repeat(np.arange(len(fam_per_ord)), fam_per_ord)
    gen_family = np.repeat(np.arange(len(gen_per_fam)), gen_per_fam)
    rate, seq_gen = _genus_sequences(rng, fam_order, gen_family)
    return TwinPlan(n, int(seed), counts, role, sp_genus, gen_family, fam_order, sp_local, sp_nbin,
                    bin_names, seq_gen, rate)


def _roles(rng: np.random.Generator, sp_per_genus: np.ndarray, species: dict) -> np.ndarray:
    """Each species' role (``UNNAMED``, ``SEEN``, ``UNSEEN``, ``HELDOUT``): every unseen species is
    paired with a seen species of its genus; the other seen and held-out species are drawn from
    the rest, which stay unnamed. ``species``: named species per split (:func:`_scaled`)."""
    n_seen, n_unseen, n_held = species["train"], species["key_unseen"], species["other_heldout"]
    gen_start = np.cumsum(sp_per_genus) - sp_per_genus
    role = np.full(int(sp_per_genus.sum()), UNNAMED, dtype=np.int8)
    eligible = np.flatnonzero(sp_per_genus >= 2)
    if len(eligible) < n_unseen:
        raise ValueError("sim-large: too few genera with two species for the unseen partitions")
    for g in rng.choice(eligible, size=n_unseen, replace=False):
        pair = gen_start[g] + rng.choice(sp_per_genus[g], size=2, replace=False)
        role[pair[0]], role[pair[1]] = UNSEEN, SEEN
    rest = rng.permutation(np.flatnonzero(role == UNNAMED))
    role[rest[: n_seen - n_unseen]] = SEEN
    role[rest[n_seen - n_unseen: n_seen - n_unseen + n_held]] = HELDOUT
    return role


def _split_counts(rng: np.random.Generator, role: np.ndarray, records: dict, species: dict) -> np.ndarray:
    """Records of each species in each split (int64 ``[species, len(SPLITS)]``): >= 1 in each
    split a species is in, heavy-tailed beyond (lognormal weights shared by a species' splits).
    ``records`` / ``species``: records and named species per split (:func:`_scaled`)."""
    weight = rng.lognormal(0.0, 1.2, len(role))
    counts = np.zeros((len(role), len(SPLITS)), dtype=np.int64)

    def allocate(split: str, members: np.ndarray, base: np.ndarray | None = None) -> None:
        ones = np.ones(len(members), dtype=np.int64) if base is None else base
        extra = records[split] - int(ones.sum())
        w = weight[members]
        counts[members, SPLITS.index(split)] = ones + rng.multinomial(extra, w / w.sum())

    def subset(members: np.ndarray, split: str) -> np.ndarray:
        return np.sort(rng.choice(members, size=species[split], replace=False))

    seen, unseen = np.flatnonzero(role == SEEN), np.flatnonzero(role == UNSEEN)
    allocate("train", seen)
    allocate("val", subset(seen, "val"))
    allocate("test", subset(seen, "test"))
    allocate("key_unseen", unseen)
    allocate("val_unseen", subset(unseen, "val_unseen"))
    allocate("test_unseen", subset(unseen, "test_unseen"))
    allocate("other_heldout", np.flatnonzero(role == HELDOUT))
    in_pretrain = np.flatnonzero(role != UNSEEN)  # unnamed species occur in pretrain only
    allocate("pretrain", in_pretrain, (role[in_pretrain] == UNNAMED).astype(np.int64))
    return counts


def _genus_sequences(rng: np.random.Generator, fam_order: np.ndarray,
                     gen_family: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Site rates and the sequences down to genera (``uint8 [genera, 658]``): root -> order ->
    family -> genus by the simulator's exact HKY (species and below are generated per block)."""
    rate = sim.site_rates(rng)
    root = sim.root_sequence(rng)
    n_ord = int(fam_order[-1]) + 1
    seq_ord = _evolve_dense_chunked(root, np.zeros(n_ord, dtype=np.int64), "order", rate, rng)
    seq_fam = _evolve_dense_chunked(seq_ord, fam_order, "family", rate, rng)
    return rate, _evolve_dense_chunked(seq_fam, gen_family, "genus", rate, rng)


class _BlockRecords(NamedTuple):
    """A block's records, grouped by species, then split: block-local species and BIN indices."""

    species: np.ndarray
    split: np.ndarray  # index into SPLITS
    bin: np.ndarray


def block_frame(plan: TwinPlan, block: int) -> pd.DataFrame:
    """The rows of one block of species (``COLUMNS``, shuffled), generated from its own seed."""
    rng = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(block,)))
    s0 = block * BLOCK_SPECIES
    species = np.arange(s0, min(s0 + BLOCK_SPECIES, len(plan.role)))
    seq_bin = _bin_sequences(plan, species, rng)
    records = _block_records(plan, species, rng)
    barcodes, length = _barcodes(plan, seq_bin, records.bin, rng)
    del seq_bin
    return _block_table(plan, species, records, barcodes, length, rng)


def _bin_sequences(plan: TwinPlan, species: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sequences of the species, then of their BINs in species order (a species' only BIN has the
    species' sequence; the BINs of a species with several each branch off it)."""
    seq_sp = _evolve_dense_chunked(plan.seq_genus, plan.sp_genus[species], "species", plan.rate, rng)
    nbin = plan.sp_nbin[species]
    bin_species = np.repeat(np.arange(len(species)), nbin)  # local species of each local BIN
    t_bin = np.where(nbin[bin_species] > 1, sim.branch_lengths(rng, "bin", len(bin_species)), 0.0)
    return _evolve_dense_chunked(seq_sp, bin_species, "bin", plan.rate, rng, t=t_bin)


def _block_records(plan: TwinPlan, species: np.ndarray, rng: np.random.Generator) -> _BlockRecords:
    """The block's records (species x split, as counted by the plan), each given a BIN of its
    species: the first BIN dominant (Dirichlet(4, 1, ...) shares)."""
    nbin = plan.sp_nbin[species]
    first_bin = np.cumsum(nbin) - nbin
    counts = plan.counts[species]
    rec_species = np.repeat(np.repeat(np.arange(len(species)), len(SPLITS)), counts.ravel())
    rec_split = np.repeat(np.tile(np.arange(len(SPLITS)), len(species)), counts.ravel())
    within = np.ones(int(nbin.sum()))  # cumulative share of a BIN and the species' earlier BINs
    for k in (2, 3):
        sel = np.flatnonzero(nbin == k)
        if len(sel):
            share = rng.dirichlet(np.r_[4.0, np.ones(k - 1)], size=len(sel))
            within[first_bin[sel][:, None] + np.arange(k)] = np.cumsum(share, axis=1)
    u = rng.random(len(rec_species))
    rec_first = first_bin[rec_species]
    rec_bin = rec_first.copy()
    for j in (0, 1):
        more = nbin[rec_species] > j + 1
        rec_bin += more & (u > within[np.where(more, rec_first + j, 0)])
    return _BlockRecords(rec_species, rec_split, rec_bin)


def _barcodes(plan: TwinPlan, seq_bin: np.ndarray, rec_bin: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each record's read and its length: a haplotype of its BIN (Zipf-like), then the specimen's
    private mutations (:data:`_SPECIMEN_BRANCH`) and the simulator's read artefacts."""
    rate_cum = np.cumsum(plan.rate)
    hap_bin, rec_hap = sim.assign_haplotypes(rng, rec_bin, np.bincount(rec_bin, minlength=len(seq_bin)))
    seq_hap = sim.evolve_sparse(seq_bin[hap_bin], sim.branch_lengths(rng, "haplotype", len(hap_bin)),
                                rate_cum, rng)
    seqs = sim.evolve_sparse(seq_hap[rec_hap], np.full(len(rec_bin), _SPECIMEN_BRANCH), rate_cum, rng)
    del seq_hap
    return sim.read_artefacts(seqs, rng)


def _block_table(plan: TwinPlan, species: np.ndarray, records: _BlockRecords, barcodes: np.ndarray,
                 length: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """The block's rows, shuffled. Names on the labelled splits; pretrain keeps order and family,
    sometimes the genus; no BIN for 2 % of records and for reads shorter than 500 nt."""
    s0, n = int(species[0]), len(records.species)
    g = plan.sp_genus[species][records.species]
    fam = plan.gen_family[g]
    n_gen, n_fam, n_ord = len(plan.gen_family), len(plan.fam_order), int(plan.fam_order.max()) + 1
    genus_name = np.char.add("Simgenus", np.char.zfill((g + 1).astype(str), max(2, len(str(n_gen)))))
    named_split = records.split != SPLITS.index("pretrain")
    sp_name = np.char.add(np.char.add(genus_name, " sp"),
                          np.char.zfill(plan.sp_local[species][records.species].astype(str), 3))
    genus_col = np.where(named_split | (rng.random(n) < _PRETRAIN_GENUS), genus_name, "")
    bin_col = plan.bin_names[int(plan.sp_nbin[:s0].sum()) + records.bin]
    bin_col = np.where((rng.random(n) < 0.02) | (length < 500), "", bin_col)
    order = rng.permutation(n)
    offset = int(plan.counts[:s0].sum())
    return pd.DataFrame({
        "processid": np.char.add("TWIN", np.char.zfill((offset + np.arange(n) + 1).astype(str), 8)),
        "order": np.char.add("Simorder", np.char.zfill((plan.fam_order[fam] + 1).astype(str),
                                                       max(2, len(str(n_ord)))))[order],
        "family": np.char.add("Simfamily", np.char.zfill((fam + 1).astype(str),
                                                         max(2, len(str(n_fam)))))[order],
        "genus": genus_col[order],
        "species": np.where(named_split, sp_name, "")[order],
        "dna_bin": bin_col[order],
        "dna_barcode": barcodes[order],
        "split": np.asarray(SPLITS, dtype=object)[records.split][order],
    }, columns=COLUMNS)


_PLAN: dict = {}  # the plan, shared with forked worker processes


def _block_csv(block: int) -> str:
    return block_frame(_PLAN["plan"], block).to_csv(header=False, index=False, lineterminator="\n")


def write_twin(path: str | os.PathLike, n_records: int = FULL_RECORDS, seed: int = 0, *,
               workers: int | None = None, progress: bool = False) -> Path:
    """Write the twin of ``n_records`` records to ``path`` atomically (temp file + rename).

    ``workers`` processes generate blocks (default: the CPUs this process may use); the bytes
    written do not depend on it. At most ``2 * workers`` blocks are in flight.
    """
    from tqdm.auto import tqdm

    plan = plan_twin(n_records, seed)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(workers or available, plan.n_blocks))
    if "fork" not in multiprocessing.get_all_start_methods():
        workers = 1  # workers share the plan by fork
    sizes = plan.block_records()
    path = Path(path)
    bar = tqdm(total=int(sizes.sum()), desc=f"sim-large:{n_records}:{seed}", unit="record",
               unit_scale=True, disable=not progress)
    _PLAN["plan"] = plan
    try:
        with atomic_path(path) as tmp, open(tmp, "w", encoding="ascii", newline="") as fh:
            fh.write(",".join(COLUMNS) + "\n")
            if workers == 1:
                for block in range(plan.n_blocks):
                    fh.write(_block_csv(block))
                    bar.update(int(sizes[block]))
            else:
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(workers, mp_context=context) as pool:
                    queue: deque = deque()
                    for block in range(plan.n_blocks + 1):
                        if block < plan.n_blocks:
                            queue.append((block, pool.submit(_block_csv, block)))
                        while queue and (len(queue) > 2 * workers or block == plan.n_blocks):
                            done, future = queue.popleft()
                            fh.write(future.result())
                            bar.update(int(sizes[done]))
    finally:
        _PLAN.clear()
        bar.close()
    return path
