"""Which aligner should the alignment baseline use? Speed and fidelity, measured.

For a sample of ``open-world`` queries (test_unseen, unique barcodes) and each query's 50 keys
(train, unique barcodes) sharing the most 8-mers with it, every candidate pair is aligned by:

* ``edlib``: unit-cost edit distance, the shorter barcode as an infix of the longer (``HW``),
  score ``n - 2e`` (what :mod:`benchbarcode.alignment` uses, with its distance limit off here);
* ``parasail``: semi-global affine-gap alignment with statistics (match 2, mismatch -3, gap open
  5, extend 2: BLASTN's scores; striped SIMD, 16-bit), ranked by score;
* ``pyopal``: Smith-Waterman local alignment scores (the same scores; Opal's inter-sequence SIMD,
  one query against its candidates at once), ranked by score.

Fidelity: how often each aligner's top hit has the same genus as parasail's (the BLAST-like
reference), and the open-world accuracy of each over the sample. Speed: microseconds per
alignment, one thread. The exact search of :func:`benchbarcode.alignment.nearest_by_alignment`
is timed on the same sample for scale (it aligns every key or proves it cannot win).

    pip install parasail pyopal   # the two compared aligners; not dependencies of the package
    python -m experiments.aligner_choice --data ../shared/data/bold_insects_coi5p.tsv.gz --queries 200 --json rows.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--candidates", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)

    import edlib
    import parasail
    import pyopal
    import scoring_matrices

    from benchbarcode.alignment import nearest_by_alignment, qgram_counts
    from benchbarcode.data import load_barcodes

    ds = load_barcodes(args.data)
    train, unseen = ds.split("train"), ds.split("test_unseen")
    train, unseen = train[train["genus"].notna()], unseen[unseen["genus"].notna()]
    keys = train.drop_duplicates("sequence")
    pool = unseen.drop_duplicates("sequence")
    sample = pool.sample(min(args.queries, len(pool)), random_state=args.seed)
    key_seqs, key_genus = keys["sequence"].tolist(), keys["genus"].to_numpy()
    queries, truth = sample["sequence"].tolist(), sample["genus"].to_numpy()
    shared = (qgram_counts(queries) @ qgram_counts(key_seqs).T).toarray()
    top = np.argsort(-shared, axis=1, kind="stable")[:, :args.candidates]

    matrix = parasail.matrix_create("ACGTN", 2, -3)
    opal_matrix = scoring_matrices.ScoringMatrix(
        [[2 if i == j else -3 for j in range(5)] for i in range(5)], alphabet="ACGTN")

    def edlib_scores(q, cands):
        out = []
        for k in cands:
            a, b = (q, k) if len(q) <= len(k) else (k, q)
            out.append(len(a) - 2 * edlib.align(a, b, mode="HW", task="distance")["editDistance"])
        return out

    def parasail_scores(q, cands):
        return [parasail.sg_stats_striped_16(q, k, 5, 2, matrix).score for k in cands]

    def pyopal_scores(q, cands):
        hits = pyopal.align(q, cands, opal_matrix, gap_open=5, gap_extend=2, mode="score",
                            algorithm="sw", threads=1)
        return [h.score for h in sorted(hits, key=lambda h: h.target_index)]

    aligners = {"edlib": edlib_scores, "parasail": parasail_scores, "pyopal": pyopal_scores}
    picks = {name: [] for name in aligners}
    seconds = {name: 0.0 for name in aligners}
    for qi, q in enumerate(queries):
        cands = [key_seqs[j] for j in top[qi]]
        for name, score in aligners.items():
            started = time.perf_counter()
            s = np.asarray(score(q, cands))
            seconds[name] += time.perf_counter() - started
            picks[name].append(top[qi][int(np.argmax(s))])  # first maximum: lowest rank on ties
    n_pairs = len(queries) * args.candidates
    reference = key_genus[np.array(picks["parasail"])]
    rows = []
    for name in aligners:
        genus = key_genus[np.array(picks[name])]
        rows.append({"aligner": name, "us_per_alignment": round(seconds[name] / n_pairs * 1e6, 1),
                     "same_genus_as_parasail": round(float(np.mean(genus == reference)), 4),
                     "same_key_as_parasail": round(float(np.mean(np.array(picks[name]) == np.array(picks["parasail"]))), 4),
                     "open_world_accuracy": round(float(np.mean(genus == truth)), 4)})
    started = time.perf_counter()
    found, _ = nearest_by_alignment(key_seqs, queries, workers=1)
    exact_s = time.perf_counter() - started
    rows.append({"aligner": "edlib exact search (all keys, 1 worker)",
                 "s_per_query": round(exact_s / len(queries), 4), "keys": len(key_seqs),
                 "same_genus_as_parasail": round(float(np.mean(key_genus[found] == reference)), 4),
                 "open_world_accuracy": round(float(np.mean(key_genus[found] == truth)), 4)})
    for row in rows:
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "queries": len(queries), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
