"""BIOSCAN-5M-style splits, the pretraining corpus, and the leakage report.

Derived splits (used when the source has no ``split`` column), deterministic for a seed:

* records without a species label go to ``pretrain``;
* in genera with >= 2 species, a fraction (default 25 %) of the species is held out as *unseen*,
  chosen at random among all such species but never the last seen species of its genus, so every
  genus with an unseen species keeps a seen one in ``train``;
* records are split by *group*: identical cleaned sequences of one species always go to the same
  split, so a test record never has a copy of itself among its own species' training records;
* seen species' groups go to train / val / test (70 / 10 / 20 % of each species' groups; a
  species with one group goes to train only, with two to train and test);
* unseen species' groups go to key_unseen / val_unseen / test_unseen (60 / 15 / 25 %; one group:
  key_unseen only; two: key_unseen and test_unseen), so every test_unseen species has a key: a
  species too small to split goes wholly to the keys (counted by :func:`split_report`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchbarcode.data.cleaning import SPLITS

PRETRAINING_SPLITS = ("pretrain", "other_heldout", "train")
SEEN_FRACTIONS = (("train", 0.7), ("val", 0.1), ("test", 0.2))
UNSEEN_FRACTIONS = (("key_unseen", 0.6), ("val_unseen", 0.15), ("test_unseen", 0.25))
LEAKAGE_PAIRS = (
    ("train", "test"),
    ("train", "test_unseen"),
    ("key_unseen", "test_unseen"),
    ("pretraining corpus", "test"),
    ("pretraining corpus", "test_unseen"),
)


def choose_unseen_species(table: pd.DataFrame, rng: np.random.Generator,
                          unseen_fraction: float) -> set:
    """Species held out as unseen: a fraction of the species of genera with >= 2 species."""
    labelled = table.loc[table["species"].notna() & table["genus"].notna(), ["genus", "species"]]
    species = labelled.drop_duplicates("species").astype(str).sort_values(["genus", "species"])
    n_per_genus = species.groupby("genus")["species"].transform("size")
    eligible = species.loc[n_per_genus.to_numpy() >= 2].reset_index(drop=True)
    if eligible.empty:
        return set()
    # One species per genus stays seen; the others are candidates.
    order = rng.permutation(len(eligible))
    shuffled = eligible.iloc[order]
    first_in_genus = ~shuffled["genus"].duplicated(keep="first")
    candidates = shuffled.loc[~first_in_genus.to_numpy(), "species"].to_numpy()
    n_unseen = min(len(candidates), int(round(unseen_fraction * len(eligible))))
    picked = rng.choice(len(candidates), size=n_unseen, replace=False) if n_unseen else []
    return set(candidates[np.sort(np.asarray(picked, dtype=int))])


def _assign_groups(n_groups: np.ndarray, rank: np.ndarray, fractions) -> np.ndarray:
    """Split index (into ``fractions``) of each group from its species' group count and its rank.

    Rule: 1 group -> the first split; 2 groups -> first and last split; more -> middle and last splits get
    ``round(f * n)`` groups (last at least 1), the first split the rest.
    """
    (_, _), (_, f_mid), (_, f_last) = fractions
    n_last = np.where(n_groups == 1, 0, np.maximum(1, np.round(f_last * n_groups))).astype(int)
    n_mid = np.round(f_mid * n_groups).astype(int)
    n_mid = np.where(n_groups <= 2, 0, np.minimum(n_mid, n_groups - n_last - 1))
    n_first = n_groups - n_last - n_mid
    out = np.where(rank < n_first, 0, np.where(rank < n_first + n_mid, 1, 2))
    return out


def derive_splits(table: pd.DataFrame, seed: int = 0, unseen_fraction: float = 0.25) -> pd.Series:
    """The derived split of every record (a categorical Series aligned with ``table``)."""
    rng = np.random.default_rng(seed)
    unseen = choose_unseen_species(table, rng, unseen_fraction)
    split = np.full(len(table), "pretrain", dtype=object)
    labelled = table["species"].notna().to_numpy()
    if labelled.any():
        sub = pd.DataFrame({"species": table["species"].astype(str).to_numpy()[labelled],
                            "sequence": table["sequence"].to_numpy()[labelled]})
        group = sub.groupby(["species", "sequence"], sort=True).ngroup().to_numpy()
        n_groups_total = int(group.max()) + 1
        groups = sub.assign(group=group).drop_duplicates("group").sort_values("group")
        # Random rank of each group within its species.
        groups = groups.assign(key=rng.random(n_groups_total)).sort_values(["species", "key"])
        groups["rank"] = groups.groupby("species").cumcount().to_numpy()
        groups["n"] = groups.groupby("species")["group"].transform("size").to_numpy()
        is_unseen = groups["species"].isin(unseen).to_numpy()
        n, rank = groups["n"].to_numpy(), groups["rank"].to_numpy()
        seen_idx = _assign_groups(n, rank, SEEN_FRACTIONS)
        unseen_idx = _assign_groups(n, rank, UNSEEN_FRACTIONS)
        # A single-group unseen species goes wholly to key_unseen: a query needs a key of its species.
        names_seen = np.array([s for s, _ in SEEN_FRACTIONS], dtype=object)
        names_unseen = np.array([s for s, _ in UNSEEN_FRACTIONS], dtype=object)
        group_split = np.where(is_unseen, names_unseen[unseen_idx], names_seen[seen_idx])
        by_group = pd.Series(group_split, index=groups["group"].to_numpy()).sort_index().to_numpy()
        split[labelled] = by_group[group]
    return pd.Series(pd.Categorical(split, categories=SPLITS), index=table.index, name="split")


def pretraining_mask(table: pd.DataFrame, splits: tuple[str, ...] = PRETRAINING_SPLITS) -> np.ndarray:
    """Records of the pretraining corpus (``splits``; by default pretrain + other_heldout + train),
    never an eval split."""
    return table["split"].isin(splits).to_numpy()


def leakage_report(table: pd.DataFrame, pretraining_splits: tuple[str, ...] = PRETRAINING_SPLITS) -> list[dict]:
    """Identical cleaned sequences shared between a reference split and an evaluation split."""
    rows = []
    for ref, query in LEAKAGE_PAIRS:
        ref_mask = pretraining_mask(table, pretraining_splits) if ref == "pretraining corpus" else \
            table["split"].eq(ref).to_numpy()
        q = table.loc[table["split"].eq(query).to_numpy(), ["sequence", "species"]]
        if q.empty:
            continue
        ref_seqs = pd.Index(table.loc[ref_mask, "sequence"].unique())
        hit = q["sequence"].isin(ref_seqs).to_numpy()
        rows.append({
            "reference": ref, "query": query, "query_records": int(len(q)),
            "query_records_with_identical_reference": int(hit.sum()),
            "shared_distinct_sequences": int(q.loc[hit, "sequence"].nunique()),
        })
    return rows


def split_report(table: pd.DataFrame) -> dict:
    """Species whose records all fall in one split of their side (seen or unseen): those too small
    to split, and how many unseen species have queries without a key (0 for derived splits)."""
    labelled = table.loc[table["species"].notna(), ["species", "split"]].astype(str)
    per_species = labelled.groupby("species")["split"].agg(lambda s: frozenset(s))
    unseen = per_species[per_species.map(lambda s: bool(s & {"key_unseen", "val_unseen", "test_unseen"}))]
    seen = per_species[per_species.map(lambda s: bool(s & {"train", "val", "test"}))]
    return {"seen species only in train": int(seen.map(lambda s: s == frozenset({"train"})).sum()),
            "unseen species only in key_unseen": int(unseen.map(lambda s: s == frozenset({"key_unseen"})).sum()),
            "unseen species with test_unseen records but no key": int(unseen.map(
                lambda s: "test_unseen" in s and "key_unseen" not in s).sum())}


def pretraining_overlap(table: pd.DataFrame, splits: tuple[str, ...] = PRETRAINING_SPLITS) -> dict:
    """Per evaluation split: its records and how many have an identical sequence in the
    pretraining corpus (BIOSCAN-5M's own split has such overlap too: unlabelled records go to
    pretrain without de-duplication against the evaluation partitions)."""
    corpus = pd.Index(table.loc[pretraining_mask(table, splits), "sequence"].unique())
    out = {}
    for split in ("val", "test", "key_unseen", "val_unseen", "test_unseen"):
        seqs = table.loc[table["split"].eq(split).to_numpy(), "sequence"]
        if len(seqs):
            out[split] = {"records": int(len(seqs)), "in_pretraining_corpus": int(seqs.isin(corpus).sum())}
    return out
