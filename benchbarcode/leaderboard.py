"""The leaderboard: stored result files -> one comparison table per comparable group.

Built only from result files (nothing is re-run). A **row** is one encoder identity on one data
set (:func:`row_key`: the encoder's identity without what only the seed changes — the seed, and
the weights' hash of an encoder pretrained or initialised from that seed — plus its pretraining
steps); its runs with different seeds are aggregated (mean, sample std, n; :mod:`benchbarcode.stats`).
Rows share a **table** only when they are comparable: the same data content hash and, for every
task both have, the same task version and protocol. A learned encoder whose declared control
(:func:`benchbarcode.registry.control_of`) has a row in the same table gets the paired difference of
the summary score over the seeds both have.

Under a table of BIOSCAN-5M measured with the reference protocol
(:func:`benchbarcode.reported.applies`), the published figures of the BIOSCAN-5M paper
(:mod:`benchbarcode.reported`) are shown as marked, unranked rows, each right under the measured row
of the same checkpoint with the difference measured − reported; no other table shows them.

Rendering (markdown via tabulate, CSV via pandas, an HTML page (:mod:`benchbarcode.board_html`), JSON with full
precision, the figure of :mod:`benchbarcode.board_plot`) reads the same :class:`Table` objects; every float shown is
rounded once, by :func:`number`. The output depends only on the results' contents: rows, tables and
seeds are ordered by content, and a (row, seed, task) held by more than one file is taken from the
newest result (by its date, then run id).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from benchbarcode.canonical import digest
from benchbarcode.contracts import Similarity, is_embedding
from benchbarcode.data.dataset import is_local_file
from benchbarcode.errors import UserError
from benchbarcode.protocol_names import DEFAULT_PROTOCOL
from benchbarcode.registry import TASKS, EncoderMeta, control_of
from benchbarcode.results import task_variant
from benchbarcode.stats import INTERVAL
from benchbarcode.summary import (NOT_RECORDED, SUMMARY, Metric, aggregate, canonical_order, difference,
                                  difference_text, metric_text, number, shown, unstated_budget)

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("markdown", "csv", "html", "json")
SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".html": "html", ".htm": "html",
            ".json": "json"}
NOTES = "NOTES.md"  # in a results directory: appended under its tables (e.g. the analysis of the numbers)
VS_CONTROL = "vs control"


# ----------------------------------------------------------------------------- the model
@dataclass
class Row:
    key: str
    meta: dict  # the encoder record of one of its results (the lowest seed)
    metrics: dict[str, Metric] = field(default_factory=dict)  # column -> values by seed
    flops: dict[int, float] = field(default_factory=dict)  # pretraining FLOPs by seed
    missing: list[str] = field(default_factory=list)  # the table's tasks this row lacks
    unscored: dict[str, str] = field(default_factory=dict)  # task -> why it gave no number
    cost: dict | None = None  # inference cost from a profile result: {"sequences_per_s", "peak_mb", ...}
    control: str | None = None  # the control row's encoder label
    vs_control: dict | None = None  # paired difference of the summary against it
    rank: int | None = None
    results: dict = field(default_factory=dict, repr=False)  # (seed, task) -> result

    @property
    def label(self) -> str:
        options = {k: v for k, v in (self.meta.get("options") or {}).items() if k != "seed"}
        return self.meta["name"] + (f" ({', '.join(f'{k}={v}' for k, v in sorted(options.items()))})"
                                    if options else "")

    @property
    def seeds(self) -> list[int]:
        return sorted({s for m in self.metrics.values() for s in m.values})

    @property
    def budget(self) -> dict:
        return self.meta.get("budget") or {}


@dataclass
class Table:
    data: dict  # the data identity of its results
    tasks: dict[str, dict]  # task -> {"version", "main_score", "protocol"}
    columns: list[str]  # metric columns in canonical order (tasks and the summary)
    rows: list[Row]
    commands: list[str]
    versions: list[str]
    reported: list[ReportedRow] = field(default_factory=list)  # published figures (BIOSCAN-5M only)
    local_sources: list[str] = field(default_factory=list)  # --data paths of the machine that ran them

    @property
    def title(self) -> str:
        protocol = self.data.get("protocol")
        return f"{self.data['name']} (content {self.data['content_hash'][:12]}" + (
            f", protocol {protocol})" if protocol else ")")


@dataclass
class ReportedRow:
    """A published row (:class:`benchbarcode.reported.Reported`), unranked, next to ``measured``
    (the best-ranked row of the same checkpoint, None if the table has none) with, per compared
    task, the measured mean minus the reported figure (fractions)."""

    entry: object  # benchbarcode.reported.Reported
    source: dict
    measured: Row | None = None
    differences: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{REPORTED_MARK} reported: {self.entry.model}"


def row_key(meta: dict, data_hash: str) -> str:
    """What makes results one row: the encoder's identity without what only the seed changes,
    the pretraining steps, and the data."""
    ident = EncoderMeta.from_dict(meta).identity()
    options = {k: v for k, v in ident["options"].items() if k != "seed"}
    checkpoint = dict(ident["checkpoint"])
    if "seed" in checkpoint:  # weights made from the seed: their hash changes with it
        checkpoint.pop("seed")
        checkpoint.pop("sha256", None)  # result files written before the tensors were hashed
        checkpoint.pop("tensors_sha256", None)
    budget = meta.get("budget") or {}
    return digest({**ident, "options": options, "checkpoint": checkpoint, "data": data_hash,
                   "steps": budget.get("steps"), "batch_size": budget.get("batch_size")}, 16)


def _method_keys(results: list[dict]) -> dict[str, set[str]]:
    """Per task name, the method keys any of its results declares (older files declare none)."""
    keys: dict[str, set[str]] = {}
    for r in results:
        keys.setdefault(r["task"]["name"], set()).update(r["task"].get("method_keys") or ())
    return keys


def _applies(task: str, meta: dict) -> bool:
    """Whether ``task`` can score this encoder (tasks needing an embedding cannot score alignment)."""
    if is_embedding(meta):
        return True
    try:
        return Similarity.of(meta["similarity"]).value in TASKS.get(task).cls.similarities
    except UserError:  # a task no longer registered: count it as missing
        return True


def build(results: list[dict], data: str | None = None,
          outcomes: Callable[[dict], pd.DataFrame | None] | None = None) -> list[Table]:
    """The tables of ``results`` (validated result dicts), optionally only those of data set
    ``data`` (its name or a prefix of its content hash). ``outcomes`` reads a result's per-query
    outcomes (:func:`benchbarcode.compare.outcomes_reader`): with it, a row and its control sharing
    fewer than three seeds are compared query by query."""
    from benchbarcode.results import is_profile

    profiles = [r for r in results if is_profile(r)]
    results = _of_data([r for r in results if not is_profile(r)], data)
    chosen = _newest(results)
    by_row: dict[tuple, dict] = {}
    for (data_hash, key, seed, task), r in sorted(chosen.items(), key=lambda kv: kv[0]):
        by_row.setdefault((data_hash, key), {})[(seed, task)] = r
    groups = _comparable_groups(by_row, _method_keys(list(chosen.values())))
    out = [_table(data_identity, members, profiles, outcomes) for data_identity, _, members in groups]
    return sorted(out, key=lambda t: (t.data["name"], t.data["content_hash"],
                                      tuple((name, task["version"]) for name, task in t.tasks.items())))


def _of_data(results: list[dict], data: str | None) -> list[dict]:
    """The results of data set ``data`` (its name or a prefix of its content hash; None: all)."""
    if data is None:
        return results
    kept = [r for r in results if r["data"]["name"] == data or r["data"]["content_hash"].startswith(data)]
    if not kept:
        names = sorted({f"{r['data']['name']} ({r['data']['content_hash'][:12]})" for r in results})
        raise UserError(f"--data {data}: no results for it (have: {', '.join(names) or 'none'})")
    return kept


def _newest(results: list[dict]) -> dict[tuple, dict]:
    """(data, row, seed, task) -> the newest result (by date, then run id)."""
    chosen: dict[tuple, dict] = {}
    for r in results:
        slot = (r["data"]["content_hash"], row_key(r["encoder"], r["data"]["content_hash"]),
                r["seeds"]["run"], r["task"]["name"])
        if slot not in chosen or (r["date"], r["run_id"]) > (chosen[slot]["date"], chosen[slot]["run_id"]):
            chosen[slot] = r
    return chosen


def _comparable_groups(by_row: dict[tuple, dict], method_keys: dict[str, set[str]]) -> list[tuple[dict, dict, list]]:
    """Rows grouped into tables: ``(data identity, task variants, [(row key, cells)])``, a row
    joining the first table of its data whose task versions and protocols it shares."""
    tables: list[tuple[dict, dict, list]] = []
    for (data_hash, key), cells in sorted(by_row.items()):
        variants = {task: task_variant(r, method_keys[task]) for (_, task), r in cells.items()}
        for table in tables:
            same_data = table[0]["content_hash"] == data_hash
            if same_data and all(table[1].get(t, v) == v for t, v in variants.items()):
                table[1].update(variants)
                table[2].append((key, cells))
                break
        else:
            first = next(iter(cells.values()))
            tables.append((first["data"], dict(variants), [(key, cells)]))
    return tables


def _table(data_identity: dict, members: list, profiles: list[dict], outcomes=None) -> Table:
    """One table: its rows aggregated over seeds, paired with their controls, ranked."""
    tasks: dict[str, dict] = {}
    rows, commands, versions = [], set(), set()
    for key, cells in members:
        row = _row(key, cells, tasks, commands, versions)
        row.cost = inference_cost(profiles, row.meta, next(iter(cells.values())))
        if row.cost and row.cost["command"]:
            commands.add(row.cost["command"])
        rows.append(row)
    columns = canonical_order([*tasks, *(SUMMARY for r in rows if SUMMARY in r.metrics)])
    for row in rows:
        row.missing = [t for t in canonical_order(tasks)
                       if t not in row.metrics and t not in row.unscored and _applies(t, row.meta)]
    _pair_controls(rows, outcomes)
    _rank(rows)
    sources = {r["data"]["source"] for _, cells in members for r in cells.values()}
    return Table(data_identity, {t: tasks[t] for t in canonical_order(tasks)}, columns, rows,
                 sorted(c for c in commands if c), sorted(versions), _reported(data_identity, tasks, rows),
                 sorted(s for s in sources if is_local_file(s)))


def _reported(data_identity: dict, tasks: dict, rows: list[Row]) -> list[ReportedRow]:
    """The published rows of a BIOSCAN-5M reference-protocol table, each paired with the
    best-ranked measured row of its checkpoint; none for any other table."""
    from benchbarcode import reported

    if not reported.applies(data_identity, tasks):
        return []
    published = reported.load()
    out = []
    for entry in published.entries:
        measured = next((r for r in rows if entry.measures(r.meta)), None)  # rows are in rank order
        diffs = {}
        for task in reported.COMPARED:
            metric = measured.metrics.get(task) if measured else None
            figure = entry.figure(task)
            if metric is not None and figure is not None:
                diffs[task] = metric.mean - figure
        out.append(ReportedRow(entry, published.source, measured, diffs))
    return out


def lines(table: Table) -> list:
    """The table's rows in display order: each measured row followed by the reported rows of its
    checkpoint; reported rows without a measured row last."""
    after: dict[int, list[ReportedRow]] = {}
    for rep in table.reported:
        after.setdefault(id(rep.measured) if rep.measured else None, []).append(rep)
    out: list = []
    for row in table.rows:
        out += [row, *after.get(id(row), [])]
    return out + after.get(None, [])


def _row(key: str, cells: dict, tasks: dict, commands: set, versions: set) -> Row:
    """One row from its ``{(seed, task): result}``; adds to the table's ``tasks``, ``commands``
    and ``versions``."""
    first_seed = min(seed for seed, _ in cells)
    row = Row(key, next(r for (s, _), r in sorted(cells.items()) if s == first_seed)["encoder"], results=dict(cells))
    by_seed: dict[int, dict[str, float]] = {}
    for (seed, task), r in sorted(cells.items()):
        tasks.setdefault(task, {"version": str(r["task"]["version"]), "main_score": r["main_score"],
                                "protocol": r["task"].get("protocol", {})})
        if r["main_value"] is None:
            row.unscored[task] = r["unscored"]
            continue
        by_seed.setdefault(seed, {})[task] = float(r["main_value"])
        flops = (r["encoder"].get("budget") or {}).get("flops")
        if flops:
            row.flops[seed] = float(flops)
        commands.add(" ".join(r["command"]))
        versions.add(r["benchbarcode_version"])
    row.metrics = aggregate(by_seed)
    return row


def inference_cost(profiles: list[dict], meta: dict, result: dict) -> dict | None:
    """The inference cost of the encoder of ``result`` from the newest matching profile: same
    :func:`~benchbarcode.profile.cost_key`, device type and dtype; measured at the run's batch size
    (else the largest batch size profiled). None when no profile matches."""
    from benchbarcode.profile import cost_key

    key, device = cost_key(meta), result["device"].split(":")[0]
    found = [p for p in profiles if p["profile"]["mode"] == "infer" and cost_key(p["encoder"]) == key
             and p["device"].split(":")[0] == device and p["dtype"] == result["dtype"]]
    if not found:
        return None
    newest = max(found, key=lambda p: (p["date"], p["run_id"]))
    by_size = {m["batch_size"]: m for m in newest["profile"]["measurements"]}
    m = by_size.get(result["batch_size"]) or by_size[max(by_size)]
    return {"sequences_per_s": m["sequences_per_s"], "peak_mb": m.get("peak_mb"), "batch_size": m["batch_size"],
            "device": device, "dtype": newest["dtype"], "machine": newest["profile"]["machine"],
            "threads": newest["profile"].get("threads"), "command": " ".join(newest["command"])}


def _matches(row: Row, name: str, options: dict) -> bool:
    meta = row.meta
    if meta["name"] != name:
        return False
    own, checkpoint = meta.get("options") or {}, meta.get("checkpoint") or {}
    return all((own[k] if k in own else checkpoint.get(k)) == v for k, v in options.items())


def _pair_controls(rows: list[Row], outcomes=None) -> None:
    """Each row with its declared control: the paired difference of the summary over seeds, or,
    with fewer than three shared seeds and per-query outcomes on both sides, over queries."""
    for row in rows:
        spec = control_of(row.meta)
        if spec is None:
            continue
        candidates = sorted((r for r in rows if r is not row and _matches(r, *spec)), key=lambda r: r.key)
        if not candidates:
            continue
        control = candidates[0]
        row.control = control.label
        row.vs_control = difference(row.metrics.get(SUMMARY), control.metrics.get(SUMMARY))
        if outcomes is not None and (row.vs_control is None or row.vs_control["n"] < 3):
            row.vs_control = _over_queries(row, control, outcomes) or row.vs_control


def _over_queries(row: Row, control: Row, outcomes) -> dict | None:
    """The summary difference row - control by a paired bootstrap over queries (None without
    per-query outcomes for every summarised result)."""
    from benchbarcode.compare import summary_difference
    from benchbarcode.summary import SUMMARY_OF

    def sides(r: Row) -> dict:
        out: dict[int, dict] = {}
        for (seed, task), result in r.results.items():
            if task in SUMMARY_OF and result["main_value"] is not None:
                out.setdefault(seed, {})[task] = (result, outcomes(result))
        return out

    return summary_difference(sides(row), sides(control))


def _rank(rows: list[Row]) -> None:
    """Rank by the summary's mean (rows without one last, unranked); ties share no rank order
    beyond the label, which keeps the order deterministic."""
    rows.sort(key=lambda r: (SUMMARY not in r.metrics, -(r.metrics[SUMMARY].mean if SUMMARY in r.metrics else 0),
                             r.label, r.key))
    for i, row in enumerate(rows):
        row.rank = i + 1 if SUMMARY in row.metrics else None


# ----------------------------------------------------------------------------- cells
def pretraining_flops(row: Row) -> float | None:
    """The mean pretraining FLOPs over the row's seeds (None when no result states them)."""
    return sum(row.flops.values()) / len(row.flops) if row.flops else None


def pretraining_text(row: Row) -> str:
    """What the row's pretraining was: sequences (or steps) and FLOPs, or why there is no budget."""
    budget = row.budget
    unstated = unstated_budget(budget)
    if unstated is not None:
        return unstated
    sequences = f"{budget['sequences']:,} seq" if budget.get("sequences") else f"{budget['steps']:,} steps"
    flops = pretraining_flops(row)
    return sequences + (f", {flops:.2e} FLOPs" if flops else "")


def sampling_interval(row: Row, column: str) -> dict | None:
    """The 95 % sampling interval of a task column: ``{"low", "high", "n"}``, the bounds averaged
    over the row's seeds (each seed scored the same queries), or ``{"recorded": False}`` when a
    result was written before intervals existed; None for the summary column and for a task that
    gives its main score no interval (e.g. a third-party task)."""
    found = [r for (_, task), r in sorted(row.results.items()) if task == column and r["main_value"] is not None]
    if not found:
        return None
    if any("intervals" not in r for r in found):
        return {"recorded": False}
    intervals = [r["intervals"].get(r["main_score"]) for r in found]
    if any(i is None for i in intervals):
        return None
    return {"recorded": True, "low": sum(i["low"] for i in intervals) / len(intervals),
            "high": sum(i["high"] for i in intervals) / len(intervals),
            "n": sorted({i["n"] for i in intervals})}


def _metric_cell(row: Row, column: str, main_score: str = "") -> str:
    metric = row.metrics.get(column)
    if metric is None:
        return "too few records" if column in row.unscored else "-"
    text = metric_text(metric, len(row.seeds), main_score)
    interval = sampling_interval(row, column)
    if interval is None:
        return text
    if not interval["recorded"]:
        return f"{text} ({NOT_RECORDED})"
    return f"{text} [{number(shown(main_score, interval['low']), 3)}, {number(shown(main_score, interval['high']), 3)}]"


def _queries(table: Table, column: str) -> str:
    """The number of queries a task column's intervals were computed over (a range if rows differ)."""
    sizes = sorted({n for row in table.rows for n in (sampling_interval(row, column) or {}).get("n", [])})
    if not sizes:
        return ""
    return f"; n={sizes[0]:,}" if len(sizes) == 1 else f"; n={sizes[0]:,}-{sizes[-1]:,}"


def _control_cell(row: Row) -> str:
    return difference_text(row.vs_control)


def headers(table: Table) -> list[str]:
    names = [f"{c} ({table.tasks[c]['main_score']}{_queries(table, c)})" if c in table.tasks
             else f"{SUMMARY} (rank key)" for c in table.columns]
    return ["rank", "encoder", "objective", "parameters", "pretraining", "seeds", *names,
            f"{SUMMARY} {VS_CONTROL}", "embed seq/s", "peak MB"]


def _cells(table: Table, row: Row) -> list[str]:
    label = row.label + (f" {NOT_EMBEDDING_MARK}" if not is_embedding(row.meta) else "") + (
        f" {SUPERVISED_MARK}" if row.budget.get("supervision") else "") + (
        f" (incomplete: no {', '.join(row.missing)})" if row.missing else "")
    params = row.meta.get("parameters")
    return ["-" if row.rank is None else str(row.rank), label, row.meta.get("objective", "-"),
            "-" if params is None else f"{params:,}", pretraining_text(row), str(len(row.seeds)),
            *(_metric_cell(row, c, table.tasks.get(c, {}).get("main_score", "")) for c in table.columns),
            _control_cell(row), *_cost_cells(row)]


def _reported_cells(table: Table, rep: ReportedRow) -> list[str]:
    entry = rep.entry
    pretraining = ", ".join(x for x in (entry.pretraining_data, entry.tokens_seen and f"{entry.tokens_seen} tokens")
                            if x) or "-"
    cells = []
    for column in table.columns:
        figure = entry.figure(column)
        diff = rep.differences.get(column)
        cells.append("-" if figure is None else number(figure) + ("" if diff is None else f" (Δ {number(diff, sign=True)})"))
    return ["-", rep.label, "-", "-", pretraining, "-", *cells, "-", "-", "-"]


def line_cells(table: Table, line) -> list[str]:
    return _reported_cells(table, line) if isinstance(line, ReportedRow) else _cells(table, line)


def _cost_cells(row: Row) -> list[str]:
    cost = row.cost
    if cost is None:
        return ["-", "-"]
    return [f"{cost['sequences_per_s']:,.0f}", "-" if cost["peak_mb"] is None else f"{cost['peak_mb']:,.0f}"]


# ----------------------------------------------------------------------------- renderers
def about(table: Table) -> list[str]:
    """The lines that head a table: data, split sizes, task versions, how to reproduce."""
    d = table.data
    sizes = ", ".join(f"{k} {v:,}" for k, v in sorted(d["split_sizes"].items()))
    seed = f", split seed {d['split_seed']}" if d.get("split_origin") == "derived" else ""
    protocol = []
    if d.get("protocol"):
        dropped = d.get("deduplication") or {}
        per_split = ", ".join(f"{k} {v:,}" for k, v in sorted(dropped.items()) if v)
        protocol.append(f"protocol: {d['protocol']}; identical barcodes dropped over the whole file (first kept): "
                        f"{sum(dropped.values()):,} ({per_split})")
    return [f"data: {d['name']}, content hash {d['content_hash'][:12]}, {d['records']:,} records, "
            f"{d.get('split_origin', '?')} splits{seed}: {sizes}", *protocol,
            "tasks: " + ", ".join(f"{t} v{v['version']}" for t, v in table.tasks.items()),
            f"benchbarcode {', '.join(table.versions)}"]


NOT_EMBEDDING_MARK = "‡"
REPORTED_MARK = "§"
SUPERVISED_MARK = "†"
LEGEND = (f"Cells: mean ± sample standard deviation over seeds (n = seeds; `(n=k)` where a task has "
          f"fewer), then `[low, high]`: the 95 % sampling interval of the score over the n evaluation queries "
          f"named in the column header (Wilson for accuracies, a seeded bootstrap for AMI; bounds averaged "
          f"over seeds), `({NOT_RECORDED})` for results written before intervals existed; AMI is shown "
          f"clipped to [0, 1]. Rank key: the harmonic mean of closed- and open-world accuracy. `{VS_CONTROL}`: "
          f"the encoder minus its declared random-initialisation control (same architecture and seeds), "
          f"mean and {INTERVAL}, or, where they share fewer than three seeds, a paired bootstrap over the "
          f"queries of both tasks (marked `(queries)`; `benchbarcode compare` gives it per task); `*`: the "
          f"interval excludes 0. `-`: not measured. `too few records`: "
          f"the task cannot score this data (its result file says why). `embed seq/s`, `peak MB`: inference "
          f"cost from `benchbarcode profile` results in the same directory (median sequences/s of 658-nt "
          f"barcodes and the peak memory one call adds, at the batch size of the row's runs, same device "
          f"type and dtype; the machine is named in the CSV); `-`: not profiled. `{NOT_EMBEDDING_MARK}`: not an "
          f"embedding: the barcodes themselves compared by pairwise alignment, in the 1-NN tasks only "
          f"(the others need an embedding). `{SUPERVISED_MARK}`: trained on the species labels of the train "
          f"split (supervised; its closed-world score is not a probe of a label-free encoder).")


def reported_note(table: Table) -> str | None:
    """The paragraph under a table with reported rows: what they are, where from, what Δ is."""
    if not table.reported:
        return None
    source = table.reported[0].source
    return (f"`{REPORTED_MARK} reported`: figures published in {source['citation']} ({source['url']}), "
            "not measured here; unranked. Each stands under the measured row of the same checkpoint, "
            "Δ = measured mean − reported: closed-world accuracy against the reported linear-probe species "
            "accuracy, open-world accuracy against the reported 1-NN unseen-genus accuracy (fractions; "
            "`benchbarcode reported` lists the figures and their checkpoints).")


def reproduce_notes(table: Table) -> list[str]:
    """What the Reproduce commands need that a clone lacks: each local ``--data`` file."""
    protocol = table.data.get("protocol") or DEFAULT_PROTOCOL
    check = "benchbarcode data describe --data FILE" + ("" if protocol == DEFAULT_PROTOCOL else f" --protocol {protocol}")
    return [f"`--data {source}`: a local file, not in this repository ({table.data['name']}); pass the path of "
            f"your copy. Its records as read here have content hash {table.data['content_hash'][:12]} "
            f"(`{check}` prints your copy's)." for source in table.local_sources]


def leaderboard_command(table: Table) -> str:
    return f"benchbarcode leaderboard --results-dir RESULTS_DIR --data {table.data['content_hash'][:12]}"


def to_markdown(tables: list[Table], notes: str | None = None) -> str:
    from tabulate import tabulate

    parts = ["# benchbarcode leaderboard", "",
             "Generated by `benchbarcode leaderboard` from the result files; do not edit by hand.", ""]
    for table in tables:
        parts += [f"## {table.title}", "", *(f"- {line}" for line in about(table)), ""]
        parts += [tabulate([line_cells(table, r) for r in lines(table)], headers=headers(table),
                           tablefmt="github", disable_numparse=True), ""]
        note = reported_note(table)
        if note:
            parts += [note, ""]
        parts += ["Reproduce:", "", "```bash", *table.commands, leaderboard_command(table), "```", ""]
        parts += [line for note in reproduce_notes(table) for line in (note, "")]
    parts += [LEGEND, ""]
    if notes:
        parts += [notes.rstrip("\n"), ""]
    return "\n".join(parts)


def _records(tables: list[Table]) -> list[dict]:
    """One flat record per row, full precision (CSV and JSON); reported rows in display order,
    with fields of their own (only tables that have them get these columns)."""
    out = []
    for table in tables:
        for line in lines(table):
            out.append(_reported_record(table, line) if isinstance(line, ReportedRow) else _record(table, line))
    return out


def _data_record(table: Table) -> dict:
    return {"data": table.data["name"], "data_hash": table.data["content_hash"],
            "protocol": table.data.get("protocol", DEFAULT_PROTOCOL)}


def _reported_record(table: Table, rep: ReportedRow) -> dict:
    entry = rep.entry
    record = {**_data_record(table), "rank": None, "encoder": rep.label, "name": None, "reported": entry.key, "reported source": rep.source["url"],
              "reported checkpoint": entry.checkpoint, "reported pretraining data": entry.pretraining_data,
              "reported tokens seen": entry.tokens_seen,
              "reported fine-tuned species": None if entry.fine_tuned_species is None else entry.fine_tuned_species / 100,
              "measured encoder": rep.measured.label if rep.measured else None}
    for column in table.columns:
        record[f"{column} mean"] = entry.figure(column)
        if column in rep.differences:
            record[f"{column} measured - reported"] = rep.differences[column]
    return record


def _record(table: Table, row: Row) -> dict:
    """The flat record of one measured row."""
    record = {**_data_record(table), "rank": row.rank,
              "encoder": row.label, "name": row.meta["name"], "objective": row.meta.get("objective"),
              "similarity": Similarity.of(row.meta.get("similarity")).value,
              "parameters": row.meta.get("parameters"), "pretraining_steps": row.budget.get("steps"),
              "pretraining_sequences": row.budget.get("sequences"), "pretraining_flops": pretraining_flops(row),
              "supervision": row.budget.get("supervision"),
              "seeds": " ".join(map(str, row.seeds)), "incomplete": " ".join(row.missing),
              "unscored": " ".join(sorted(row.unscored))}
    for column in table.columns:
        metric = row.metrics.get(column)
        record[f"{column} mean"] = metric.mean if metric else None
        record[f"{column} std"] = metric.std if metric else None
        record[f"{column} n"] = metric.n if metric else None
        if column in table.tasks:
            interval = sampling_interval(row, column) or {}
            record[f"{column} interval low"] = interval.get("low")
            record[f"{column} interval high"] = interval.get("high")
            record[f"{column} queries"] = " ".join(map(str, interval.get("n", []))) or (
                NOT_RECORDED if interval.get("recorded") is False else None)
    diff = row.vs_control or {}
    record |= {"control": row.control, f"{VS_CONTROL} mean": diff.get("mean"),
               f"{VS_CONTROL} low": diff.get("low"), f"{VS_CONTROL} high": diff.get("high"),
               f"{VS_CONTROL} n": diff.get("n"), f"{VS_CONTROL} over": diff.get("over", "seeds") if diff else None}
    cost = row.cost or {}
    record |= {"embed sequences_per_s": cost.get("sequences_per_s"), "embed peak_mb": cost.get("peak_mb"),
               "embed batch_size": cost.get("batch_size"), "profile machine": cost.get("machine")}
    return record


def to_csv(tables: list[Table]) -> str:
    import pandas as pd

    frame = pd.DataFrame(_records(tables))
    counts = [c for c in frame.columns if c in ("rank", "parameters", "pretraining_steps", "pretraining_sequences",
                                                "embed batch_size")
              or c.endswith(" n")]
    frame[counts] = frame[counts].astype("Int64")  # counts stay integers where a cell is empty
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _values(table: Table, line) -> dict:
    """The per-seed values of a measured row (a reported row has none)."""
    if isinstance(line, ReportedRow):
        return {}
    return {c: {str(s): v for s, v in sorted(line.metrics[c].values.items())} for c in table.columns
            if c in line.metrics}


def to_json(tables: list[Table]) -> str:
    doc = {"tables": [{"data": t.data, "tasks": t.tasks, "commands": t.commands, "versions": t.versions,
                       "reproduce_notes": reproduce_notes(t),
                       "rows": [{**rec, "values": _values(t, line)} for rec, line in zip(_records([t]), lines(t))],
                       **({"reported_note": reported_note(t)} if t.reported else {})}
                      for t in tables], "legend": LEGEND}
    return json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n"


def render(tables: list[Table], fmt: str, notes: str | None = None) -> str:
    if fmt == "markdown":
        return to_markdown(tables, notes)
    if fmt == "html":
        from benchbarcode.board_html import page

        return page(tables, notes)
    if fmt == "csv":
        return to_csv(tables)
    if fmt == "json":
        return to_json(tables)
    raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
