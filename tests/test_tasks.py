"""Frozen-feature tasks: known answers, chance levels, the 1-NN reference, model selection,
clustering, input validation and the task registry."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import install_plugin
import torch
from sklearn.neighbors import NearestNeighbors

from benchbarcode import registry
from benchbarcode.errors import UserError
from benchbarcode.summary import summary_score
from benchbarcode.tasks.clustering import N_COMPONENTS
from benchbarcode.neighbours import nearest_keys
from benchbarcode.tasks.knn import OpenWorldTask
from benchbarcode.tasks.linear_probe import WEIGHT_DECAYS

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny problems


def frame(species, genus=None, bins=None) -> pd.DataFrame:
    """Labels in the task input format (genus and bin default to the species)."""
    species = list(species)
    return pd.DataFrame({"processid": [f"p{i}" for i in range(len(species))],
                         "genus": species if genus is None else list(genus),
                         "species": species, "bin": species if bins is None else list(bins)})


def blobs(rng, centres: np.ndarray, per_class: int, noise: float = 1.0, prefix: str = "c"):
    """``per_class`` points around each centre; labels ``prefix<i>``."""
    y = np.repeat(np.arange(len(centres)), per_class)
    x = centres[y] + noise * rng.normal(size=(len(y), centres.shape[1]))
    return x.astype(np.float32), [f"{prefix}{i}" for i in y]


# ----------------------------------------------------------------------------- 1-NN

def test_open_world_separated_genera_score_one():
    rng = np.random.default_rng(0)
    centres = 10 * rng.normal(size=(8, 32))
    keys, key_genus = blobs(rng, centres, 20, prefix="g")
    queries, query_genus = blobs(rng, centres, 10, prefix="g")
    result = registry.get_task("open-world").evaluate(
        {"train": keys, "test_unseen": queries},
        {"train": frame([f"seen{i}" for i in range(len(keys))], key_genus),
         "test_unseen": frame([f"new{i}" for i in range(len(queries))], query_genus)})
    assert result.scores == {"accuracy": 1.0, "balanced_accuracy": 1.0,
                                "accuracy_centred": 1.0, "balanced_accuracy_centred": 1.0}
    assert result.counts["keys"] == 160 and result.counts["queries"] == 80
    assert result.counts["key_classes"] == 8 and result.scores_std == {}


def test_unseen_species_random_embeddings_are_at_chance():
    rng = np.random.default_rng(1)
    n = 50
    species = [f"s{i}" for i in range(n)]
    emb = {"key_unseen": rng.normal(size=(n * 10, 32)).astype(np.float32),
           "test_unseen": rng.normal(size=(n * 10, 32)).astype(np.float32)}
    labels = {"key_unseen": frame(species * 10), "test_unseen": frame(species * 10)}
    scores = registry.get_task("unseen-species").evaluate(emb, labels).scores
    for metric, value in scores.items():
        assert 0 < value < 3 / n, metric


def test_unseen_species_scores_only_queries_whose_species_has_keys():
    rng = np.random.default_rng(2)
    centres = 10 * rng.normal(size=(4, 16))
    keys, key_species = blobs(rng, centres[:3], 5, prefix="s")
    queries, query_species = blobs(rng, centres, 12, prefix="s")  # s3 has no key: 12 excluded, 36 scored
    emb = {"key_unseen": keys, "test_unseen": queries}
    labels = {"key_unseen": frame(key_species), "test_unseen": frame(query_species)}
    task = registry.get_task("unseen-species")
    result = task.evaluate(emb, labels)
    assert result.scores["accuracy"] == 1.0 and result.counts["queries_excluded"] == 12
    assert result.counts["queries"] == 36 and task.meta.version == "2"
    assert len(result.per_query.ids) == 36 and set(result.per_query.true) == {"s0", "s1", "s2"}
    assert "excluded and counted" in task.meta.protocol["queries_without_key_class"]
    # open-world keeps the reference protocol: such queries count (and are wrong)
    assert registry.get_task("open-world").meta.version == "1"
    assert task.unsupported(labels) is None
    labels["test_unseen"] = frame(["x1", "x2"] * 5)
    assert "no test_unseen record has a species among the key_unseen keys" in task.unsupported(labels)
    with pytest.raises(UserError, match="no test_unseen record has a species"):
        task.evaluate({"key_unseen": keys, "test_unseen": queries[:10]}, labels)


def test_clustering_says_too_many_records_instead_of_running_out_of_memory(monkeypatch):
    from benchbarcode.tasks import clustering

    monkeypatch.setattr(clustering, "MAX_RECORDS", 40)
    x = np.random.default_rng(3).normal(size=(41, 8)).astype(np.float32)
    result = registry.get_task("clustering").evaluate({"test_unseen": x}, {"test_unseen": frame([f"s{i % 5}" for i in range(41)])})
    assert result.unscored.startswith("too many records to cluster: 41 > 40 (Ward linkage needs")
    assert result.scores == {}


def test_clustering_says_too_few_records_instead_of_a_number():
    """27 records of 21 species: ward with k = 21 would score AMI ~1 for nothing."""
    from benchbarcode.results import build_result, validate_result

    rng = np.random.default_rng(3)
    x = rng.normal(size=(27, 16)).astype(np.float32)
    labels = {"test_unseen": frame([f"s{i % 21}" for i in range(27)])}
    task = registry.get_task("clustering")
    result = task.evaluate({"test_unseen": x}, labels)
    assert result.unscored.startswith("too few records to score: 27 records of 21 classes")
    assert result.scores == {} and task.unsupported(labels).startswith("too few records")
    written = build_result(run_id="r", task_meta=task.meta.to_dict(),
                           encoder_meta=registry.get_encoder("kmer").create(k=2).meta.to_dict(),
                           data_identity={"name": "d", "source": "d", "content_hash": "c" * 64, "records": 27,
                                          "split_origin": "derived", "split_seed": 0, "split_sizes": {}},
                           device="cpu", dtype="float32", batch_size=8, seeds={"run": 0}, outcome=result,
                           timings_s={"pretrain": 0, "embed": 0, "evaluate": 0})
    validate_result(written)
    assert written["main_value"] is None and written["unscored"] == result.unscored


def test_centring_rescues_a_shared_offset():
    """Classes differ by +-1 along a huge shared offset: raw cosine cannot see it, centred can."""
    rng = np.random.default_rng(2)
    dim = 16
    offset = np.zeros(dim)
    offset[0] = 100.0
    centres = np.array([offset + sign * np.eye(dim)[0] + 3 * np.eye(dim)[j]
                        for j in (1, 2) for sign in (1, -1)])
    keys, key_genus = blobs(rng, centres, 25, noise=0.05, prefix="g")
    queries, query_genus = blobs(rng, centres, 25, noise=0.05, prefix="g")
    scores = OpenWorldTask().evaluate(
        {"train": keys, "test_unseen": queries},
        {"train": frame(key_genus), "test_unseen": frame(query_genus)}).scores
    assert scores["accuracy"] < 0.75 and scores["balanced_accuracy"] < 0.75
    assert scores["accuracy_centred"] == 1.0 and scores["balanced_accuracy_centred"] == 1.0


@pytest.mark.parametrize("chunks", [(1024, 32768), (7, 13), (1, 1)])
def test_nearest_keys_matches_brute_force(chunks):
    rng = np.random.default_rng(3)
    keys = rng.normal(size=(300, 24)).astype(np.float32)
    queries = rng.normal(size=(101, 24)).astype(np.float32)
    reference = NearestNeighbors(n_neighbors=1, metric="cosine", algorithm="brute").fit(keys)
    expected = reference.kneighbors(queries, return_distance=False)[:, 0]
    query_chunk, key_chunk = chunks
    got = nearest_keys(keys, queries, query_chunk=query_chunk, key_chunk=key_chunk)
    np.testing.assert_array_equal(got, expected)
    centre = keys.mean(axis=0)
    centred = NearestNeighbors(n_neighbors=1, metric="cosine", algorithm="brute").fit(keys - centre)
    np.testing.assert_array_equal(
        nearest_keys(keys, queries, offset=centre, query_chunk=query_chunk, key_chunk=key_chunk),
        centred.kneighbors(queries - centre, return_distance=False)[:, 0])


def test_nearest_keys_ties_and_zero_vectors():
    keys = np.zeros((12, 3), dtype=np.float32)
    keys[:, 2] = 1.0
    keys[3] = keys[9] = [1.0, 0.0, 0.0]  # duplicates in different key chunks
    queries = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 5.0]], dtype=np.float32)
    got = nearest_keys(keys, queries, key_chunk=4)
    # lowest index among ties; the zero query is equally (0) similar to every key -> index 0
    assert got.tolist() == [3, 0, 0]


def test_first_of_duplicates_is_exact_even_when_fingerprints_collide():
    """Bitwise copies are found chunk by chunk; rows that share a fingerprint without being equal
    (forced here: every row one fingerprint, or three) are still told apart."""
    from benchbarcode.neighbours import _first_of_groups, first_of_duplicates

    rng = np.random.default_rng(3)
    distinct = rng.normal(size=(50, 7)).astype(np.float32)
    x = distinct[rng.integers(0, 50, 400)]
    x[5] = -0.0 * x[5]  # -0.0 and 0.0 differ bitwise: not copies
    reference = np.sort(np.unique(x.view(np.dtype((np.void, 28))).ravel(), return_index=True)[1])
    np.testing.assert_array_equal(first_of_duplicates(x, chunk=16), reference)
    for fingerprint in (np.zeros(400, np.uint64), rng.integers(0, 3, 400).astype(np.uint64)):
        np.testing.assert_array_equal(_first_of_groups(x.view(np.uint32), fingerprint, 16), reference)


def exact_nearest(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The definition: float64 cosine of the float32 unit vectors, lowest index on ties."""
    from benchbarcode.neighbours import unit_rows

    sims = unit_rows(queries, None).astype(np.float64) @ unit_rows(keys, None).astype(np.float64).T
    return (sims == sims.max(axis=1, keepdims=True)).argmax(axis=1)


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_candidate_search_is_exact_on_adversarial_embeddings(precision):
    """Shared offset (raw cosine ~0.999 everywhere), clusters of near-identical keys 1e-6 apart
    (far below bfloat16's resolution), exact duplicates across chunks, a zero query."""
    rng = np.random.default_rng(11)
    dim = 64
    offset = 50.0 * rng.normal(size=dim)
    centres = rng.normal(size=(20, dim))
    keys = offset + centres[rng.integers(0, 20, 2000)] + 0.05 * rng.normal(size=(2000, dim))
    keys[500:540] = keys[3] + 1e-6 * rng.normal(size=(40, dim))   # near-ties
    keys[1500:1510] = keys[7]                                        # exact copies, later chunks
    keys = keys.astype(np.float32)
    queries = (offset + centres[rng.integers(0, 20, 300)] + 0.05 * rng.normal(size=(300, dim)))
    queries[:20] = keys[[3, 7, 510, 1505] * 5] + 1e-7 * rng.normal(size=(20, dim))
    queries[20] = 0.0
    queries = queries.astype(np.float32)
    for chunks in [(64, 256), (300, 4096), (1, 7)]:
        got = nearest_keys(keys, queries, precision=precision, query_chunk=chunks[0], key_chunk=chunks[1])
        np.testing.assert_array_equal(got, exact_nearest(keys, queries))
    centre = keys.mean(axis=0)
    got = nearest_keys(keys, queries, offset=centre, precision=precision)
    np.testing.assert_array_equal(got, exact_nearest(keys - centre, queries - centre))


@pytest.mark.parametrize("budget", [40, 3000, 1 << 23])
def test_search_stays_exact_when_candidates_exceed_the_budget(monkeypatch, budget):
    """Embeddings packed closer than bfloat16 resolves (an undertrained encoder's: every key a
    candidate) make queries give up their bfloat16 candidates; they are searched again in float32,
    and, past the budget there too, a few queries at a time. The answer stays the exact one."""
    import benchbarcode.neighbours as nb

    monkeypatch.setattr(nb, "PAIR_BUDGET", budget)
    rng = np.random.default_rng(5)
    dim = 32
    offset = rng.normal(size=dim)
    keys = (offset + 1e-3 * rng.normal(size=(1500, dim))).astype(np.float32)
    keys[700:760] = keys[9] + 1e-7 * rng.normal(size=(60, dim))  # near-copies: float32 cannot split them
    queries = (offset + 1e-3 * rng.normal(size=(200, dim))).astype(np.float32)
    queries[:10] = keys[9]
    got = nb.nearest_keys(keys, queries, precision="bfloat16", query_chunk=64, key_chunk=256)
    np.testing.assert_array_equal(got, exact_nearest(keys, queries))
    qi, ki, over = nb._candidates(torch.from_numpy(nb.unit_rows(queries, None)), torch.from_numpy(
        nb.unit_rows(keys, None)), torch.zeros(dim), "bfloat16", 2.0, 64, 256, False, cap=7)
    if budget < 1 << 23:  # under pressure: kept queries hold at most cap pairs, given-up ones none
        assert over.any() and not np.isin(qi.numpy(), np.flatnonzero(over)).any()
        assert np.bincount(qi.numpy(), minlength=len(queries)).max() <= 7


def test_candidate_margin_is_needed():
    """The proof's margin is what makes bfloat16 exact: without re-ranking, bfloat16's own best
    key differs from the exact one on these embeddings (so the test above can fail)."""
    import torch

    rng = np.random.default_rng(11)
    keys = (rng.normal(size=(2000, 64)) + 30).astype(np.float32)
    queries = (rng.normal(size=(300, 64)) + 30).astype(np.float32)
    unit = lambda x: torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True))  # noqa: E731
    rough = (unit(queries).bfloat16() @ unit(keys).bfloat16().T).float().argmax(dim=1).numpy()
    assert (rough != exact_nearest(keys, queries)).mean() > 0.1
    np.testing.assert_array_equal(nearest_keys(keys, queries, precision="bfloat16"),
                                  exact_nearest(keys, queries))


def test_open_world_chunking_does_not_change_scores_and_drops_missing_genus():
    rng = np.random.default_rng(4)
    keys = rng.normal(size=(60, 8)).astype(np.float32)
    queries = rng.normal(size=(40, 8)).astype(np.float32)
    key_genus = [f"g{i % 5}" for i in range(60)]
    key_genus[0], key_genus[1] = None, np.nan
    query_genus = [f"g{i % 5}" for i in range(40)]
    query_genus[2] = pd.NA
    emb = {"train": keys, "test_unseen": queries}
    labels = {"train": frame(key_genus), "test_unseen": frame(query_genus)}
    small = OpenWorldTask(query_chunk=4, key_chunk=9).evaluate(emb, labels)
    assert small == OpenWorldTask().evaluate(emb, labels)
    assert small.counts["dropped_missing_train"] == 2
    assert small.counts["dropped_missing_test_unseen"] == 1
    assert small.counts["keys"] == 58 and small.counts["queries"] == 39


# ----------------------------------------------------------------------------- linear probe

def probe_data(rng, n_classes: int, dim: int, sep: float):
    centres = sep * rng.normal(size=(n_classes, dim))
    emb, labels = {}, {}
    for split, per in (("train", 12), ("val", 4), ("test", 6)):
        emb[split], species = blobs(rng, centres, per, prefix="s")
        labels[split] = frame(species)
    return emb, labels


def test_closed_world_separated_species_score_one():
    emb, labels = probe_data(np.random.default_rng(5), 10, 16, sep=10.0)
    result = registry.get_task("closed-world").evaluate(emb, labels, seed=0)
    assert result.scores == {"accuracy": 1.0, "balanced_accuracy": 1.0, "macro_f1": 1.0}
    assert result.scores_std == {"accuracy": 0.0, "balanced_accuracy": 0.0, "macro_f1": 0.0}
    assert result.seeds == (0, 1, 2)


def test_closed_world_random_features_are_at_chance():
    n = 20
    emb, labels = probe_data(np.random.default_rng(6), n, 16, sep=0.0)
    scores = registry.get_task("closed-world").evaluate(emb, labels).scores
    for metric, value in scores.items():
        assert value < 3 / n, metric


def test_closed_world_deterministic_drops_unseen_and_records_selection():
    rng = np.random.default_rng(7)
    emb, labels = probe_data(rng, 12, 8, sep=1.0)
    for split, extra in (("val", 3), ("test", 5)):  # species absent from train, and missing species
        emb[split] = np.vstack([emb[split], rng.normal(size=(extra + 1, 8)).astype(np.float32)])
        labels[split] = pd.concat([labels[split], frame(["unseen"] * extra + [None])], ignore_index=True)
    task = registry.get_task("closed-world")
    first = task.evaluate(emb, labels, seed=3)
    assert first == task.evaluate(emb, labels, seed=3)
    assert first.seeds == (3, 4, 5)
    assert set(first.scores_std) == {"accuracy", "balanced_accuracy", "macro_f1"}
    counts = first.counts
    assert counts["dropped_unseen_val"] == 3 and counts["dropped_unseen_test"] == 5
    assert counts["dropped_missing_val"] == 1 and counts["dropped_missing_test"] == 1
    assert counts["val"] == 48 and counts["test"] == 72 and counts["classes"] == 12
    selected = first.extras["selected"]
    assert set(selected["weight_decay"]) <= set(WEIGHT_DECAYS) and len(selected["weight_decay"]) == 3
    assert all(epoch >= 1 for epoch in selected["epoch"])
    assert task.meta.protocol["weight_decay_grid"] == list(WEIGHT_DECAYS)
    assert task.evaluate(emb, labels, seed=4).scores != first.scores


def test_closed_world_selects_on_val():
    """Val labels shifted to the wrong species: the recorded selection accuracy must be val's."""
    emb, labels = probe_data(np.random.default_rng(14), 8, 8, sep=10.0)
    shifted = [f"s{(int(s[1:]) + 1) % 8}" for s in labels["val"]["species"]]
    labels["val"] = frame(shifted)
    result = registry.get_task("closed-world").evaluate(emb, labels)
    assert max(result.extras["selected"]["val_accuracy"]) < 0.3
    assert result.counts["val"] == len(shifted)


def test_closed_world_needs_val_rows_of_seen_species():
    emb, labels = probe_data(np.random.default_rng(8), 4, 8, sep=1.0)
    labels["val"] = frame([f"other{i % 2}" for i in range(len(labels["val"]))])
    with pytest.raises(UserError, match="closed-world: split 'val' has no rows whose species"):
        registry.get_task("closed-world").evaluate(emb, labels)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(13)
    keys = rng.normal(size=(500, 32)).astype(np.float32)
    queries = rng.normal(size=(200, 32)).astype(np.float32)
    np.testing.assert_array_equal(nearest_keys(keys, queries, device="cuda", key_chunk=77),
                                  nearest_keys(keys, queries))
    emb, labels = probe_data(rng, 10, 16, sep=10.0)
    assert registry.get_task("closed-world").evaluate(emb, labels, device="cuda").scores["accuracy"] == 1.0


# ----------------------------------------------------------------------------- clustering

def test_clustering_separated_species_and_bins():
    rng = np.random.default_rng(9)
    x, species = blobs(rng, 20 * rng.normal(size=(6, 32)), 15, prefix="s")
    bins = [f"B{s}" for s in species]
    bins[:4] = [None, np.nan, "", None]
    emb, labels = {"test_unseen": x}, {"test_unseen": frame(species, bins=bins)}
    result = registry.get_task("clustering").evaluate(emb, labels, seed=0)
    assert result.scores["ami_agglomerative"] > 0.95 and result.scores["ami_hdbscan"] > 0.9
    assert result.counts["clustered_dims"] == N_COMPONENTS and result.counts["classes"] == 6
    binned = registry.get_task("bin-reconstruction").evaluate(emb, labels, seed=0)
    assert binned.scores["ami_agglomerative"] > 0.95
    assert binned.counts["dropped_missing_test_unseen"] == 4 and binned.counts["samples"] == 86


def test_clustering_random_embeddings_near_zero_ami():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(150, 32)).astype(np.float32)
    result = registry.get_task("clustering").evaluate(
        {"test_unseen": x}, {"test_unseen": frame([f"s{i % 10}" for i in range(150)])})
    for metric, value in result.scores.items():
        assert abs(value) < 0.1, metric


def test_clustering_tiny_input_skips_umap():
    rng = np.random.default_rng(11)
    x, species = blobs(rng, 20 * rng.normal(size=(3, 8)), 4, prefix="s")
    result = registry.get_task("clustering").evaluate({"test_unseen": x}, {"test_unseen": frame(species)})
    assert result.counts["clustered_dims"] == 8
    assert result.scores["ami_agglomerative"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- validation

def valid_open_world():
    rng = np.random.default_rng(12)
    return ({"train": rng.normal(size=(6, 4)).astype(np.float32),
             "test_unseen": rng.normal(size=(4, 4)).astype(np.float32)},
            {"train": frame(["a", "b"] * 3), "test_unseen": frame(["a", "b"] * 2)})


@pytest.mark.parametrize("breakage, message", [
    (lambda e, l: e.pop("train"), "open-world: split 'train' is missing from the embeddings"),
    (lambda e, l: l.pop("test_unseen"), "open-world: split 'test_unseen' is missing from the labels"),
    (lambda e, l: l.__setitem__("train", frame(["a", "b"] * 4)), "'train': 6 embedding rows but 8 label"),
    (lambda e, l: e["test_unseen"].__setitem__((2, 1), np.nan), "'test_unseen': non-finite .* row 2"),
    (lambda e, l: e["train"].__setitem__((0, 0), np.inf), "'train': non-finite"),
    (lambda e, l: l.__setitem__("train", frame(["a"] * 6)), "'train': 1 genus class"),
    (lambda e, l: l.__setitem__("train", l["train"].assign(genus=[None] * 6)), "'train': 0 genus class"),
    (lambda e, l: l.__setitem__("train", l["train"].drop(columns="genus")), "no 'genus' column"),
    (lambda e, l: e.__setitem__("train", e["train"][:, :3]), "3 dimensions but test_unseen has 4"),
])
def test_invalid_inputs_are_user_errors(breakage, message):
    emb, labels = valid_open_world()
    breakage(emb, labels)
    with pytest.raises(UserError, match=message):
        registry.get_task("open-world").evaluate(emb, labels)


# ----------------------------------------------------------------------------- registry

def test_builtin_tasks_listed_and_described():
    entries = registry.list_tasks()
    names = [e.name for e in entries]
    assert names[:5] == sorted(["open-world", "unseen-species", "closed-world", "clustering",
                                "bin-reconstruction"])
    for entry in entries:
        meta = entry.meta
        assert meta.main_score in meta.metrics and meta.protocol and meta.version
        assert meta.to_dict()["name"] == entry.name == registry.get_task(entry.name).meta.name
    assert registry.get_task("open-world").meta.splits == ("train", "test_unseen")


def test_unknown_task_suggests_closest():
    with pytest.raises(UserError, match=r"unknown task 'open-wrld'; did you mean open-world.*"
                                        r"\(see: benchbarcode tasks\)"):
        registry.get_task("open-wrld")


def test_register_task_twice_is_an_error(monkeypatch):
    monkeypatch.setattr(registry.TASKS, "_entries", dict(registry.TASKS._entries))

    class Impostor(OpenWorldTask):
        pass

    with pytest.raises(ValueError, match="twice"):
        registry.register_task(Impostor)
    assert registry.register_task(OpenWorldTask) is OpenWorldTask  # the same class again is fine


def test_task_meta_main_score_must_be_a_metric():
    with pytest.raises(ValueError, match="main_score"):
        registry.TaskMeta("x", "1", "x", ("test",), "species", ("a",), "b", {})


PLUGIN = '''
import numpy as np
from benchbarcode.registry import Task, TaskMeta, register_task

class MeanNorm(Task):
    """A third-party demo task: the mean embedding norm of the test split."""
    meta = TaskMeta(name="mean-norm", version="1", description="mean embedding norm",
                    splits=("test",), label_rank="species", metrics=("norm",),
                    main_score="norm", protocol={"norm": "L2"})

    def evaluate(self, embeddings, labels, *, seed=0, device="cpu", progress=False):
        x, y, dropped = self.labelled(embeddings, labels, "test")
        return {"scores": {"norm": float(np.linalg.norm(x, axis=1).mean())}, "scores_std": {},
                "seeds": [seed], "counts": {"rows": len(y)}}

@register_task
class Constant(MeanNorm):
    """Registered by its module."""
    meta = TaskMeta(name="constant", version="1", description="always 1", splits=("test",),
                    label_rank="genus", metrics=("one",), main_score="one", protocol={})
'''


def test_entry_point_tasks_discovered(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "bbtask_demo", textwrap.dedent(PLUGIN), "benchbarcode.tasks",
                   "mean-norm = bbtask_demo:MeanNorm\nconstant = bbtask_demo")
    task = registry.get_task("mean-norm")
    result = task.evaluate({"test": np.array([[3, 4], [0, 1]], dtype=np.float32)},
                           {"test": frame(["a", "b"])})
    assert result["scores"] == {"norm": 3.0}
    entries = {e.name: e for e in registry.list_tasks()}
    assert entries["mean-norm"].origin == "plugin bbtask-demo 1.0"
    assert entries["constant"].origin == "plugin bbtask-demo 1.0"
    assert [e.origin == "built-in" for e in registry.list_tasks()] == [True] * 5 + [False] * 2
    sys.modules.pop("bbtask_demo", None)


def test_summary_score_is_the_harmonic_mean():
    assert summary_score(0.8, 0.4) == pytest.approx(2 * 0.8 * 0.4 / 1.2)
    assert summary_score(0.5, 0.5) == pytest.approx(0.5)
    assert summary_score(0.0, 0.9) == 0.0 and summary_score(0.9, 0.0) == 0.0


def test_probe_cross_entropy_matches_torch_and_zeroes_only_denormal_probabilities():
    from benchbarcode.probe import cross_entropy

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 40, generator=gen, dtype=torch.float64).float()
    logits[:, 5] += 95.0  # every other class's probability ~e-41: denormal
    logits[:3, 5] -= 95.0
    target = torch.randint(0, 40, (16,), generator=gen)
    ours, ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    cross_entropy(ours, target).backward()
    torch.nn.functional.cross_entropy(ref, target).backward()
    assert torch.allclose(cross_entropy(logits, target), torch.nn.functional.cross_entropy(logits, target))
    assert torch.allclose(ours.grad, ref.grad, atol=1e-12)
    tiny = (ref.grad.abs() > 0) & (ref.grad.abs() < 1e-30)
    assert tiny.any() and (ours.grad[tiny] == 0).all()  # the denormals are gone, nothing else


def test_umap_reduction_is_reused_for_identical_inputs_only(monkeypatch):
    from benchbarcode.tasks import clustering

    x = np.random.default_rng(0).normal(size=(80, 8)).astype(np.float32)
    first = clustering.reduce(x, seed=0)
    import umap

    def fail(*a, **k):
        raise AssertionError("UMAP recomputed for an identical input")

    monkeypatch.setattr(umap.UMAP, "fit_transform", fail)
    assert clustering.reduce(x.copy(), seed=0) is first
    with pytest.raises(AssertionError):
        clustering.reduce(x, seed=1)
    with pytest.raises(AssertionError):
        clustering.reduce(x + 1e-3, seed=0)


def test_umap_leaves_the_torch_thread_count_as_it_found_it():
    """numba (UMAP's compiler, OpenMP layer) sets the process's OpenMP thread count, which torch
    reads: a run under OMP_NUM_THREADS=1 went on with as many threads as cores after clustering."""
    from benchbarcode.tasks import clustering

    assert torch.get_num_threads() == 1  # one_torch_thread
    clustering.reduce(np.random.default_rng(1).normal(size=(80, 8)).astype(np.float32), seed=2)
    assert torch.get_num_threads() == 1
