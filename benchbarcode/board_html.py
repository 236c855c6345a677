"""The leaderboard as one self-contained HTML page: no network, the same bytes for the same results.

One section per table, shown one at a time by a data-set selector; columns sort on a click of their
header; the header row and the rank and encoder columns stay in view while the table scrolls inside
its own box; each measured row opens its provenance (seeds, per-seed values, intervals, commands,
versions). Published rows (``§ reported``) are unranked: each stays under its measured row whatever
the order, and those without one stay at the end. The figure is inline SVG
(:func:`benchbarcode.board_plot.svg`); the legend and the notes are Markdown rendered without raw
HTML. Without JavaScript every table is shown in rank order. CSS and JS: ``board_html.css``/``.js``.
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources

from benchbarcode import board_plot
from benchbarcode.leaderboard import (LEGEND, VS_CONTROL, ReportedRow, Row, Table, about, headers,
                                      leaderboard_command, line_cells, lines, reported_note, reproduce_notes,
                                      sampling_interval)
from benchbarcode.summary import NOT_RECORDED, SUMMARY, SUMMARY_OF, number, shown

TEXT_COLUMNS = ("encoder", "objective")  # sorted as text; every other column as numbers
# Left to right (the markdown's order within a place): what identifies a row, the rank key and what
# it is made of, the control and the cost, the other tasks, then the encoder's details.
PLACES = ("rank", "encoder", "seeds", *SUMMARY_OF, SUMMARY, f"{SUMMARY} {VS_CONTROL}", "embed seq/s", "peak MB")
GROUPS = {"objective": "details", "parameters": "details", "pretraining": "details",  # hidden together
          "embed seq/s": "cost", "peak MB": "cost"}
_VALUE_THEN_DETAIL = re.compile(r"([+-]?\d[\d.,]*(?: ± \d[\d.]*)?) ([\[(].*)")  # "0.95 ± 0.01 [0.94, 0.96]"


@cache
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _md(text: str) -> str:
    return _markdown().render(text)


def _asset(name: str) -> str:
    return resources.files("benchbarcode").joinpath(name).read_text(encoding="utf-8")


def _esc(value) -> str:
    return html.escape(str(value))


def _cell(text: str) -> str:
    """A cell's text, what follows its value (interval, n, Δ) on a second, smaller line."""
    found = _VALUE_THEN_DETAIL.fullmatch(text)
    if found is None:
        return _esc(text)
    return f"{_esc(found[1])}<span class=sub>{_esc(found[2])}</span>"


def _column_class(name: str) -> str:
    group = GROUPS.get(name)
    return " ".join(c for c in ("rank" if name == "rank" else "enc" if name == "encoder" else "",
                                "txt" if name in (*TEXT_COLUMNS, "pretraining") else "",
                                f"g-{group}" if group else "") if c)


def _display_order(names: list[str]) -> list[int]:
    """The indices of ``names`` (:func:`~benchbarcode.leaderboard.headers`) in the page's order."""
    def place(i: int) -> tuple[int, int]:
        name = names[i].partition(" (")[0]
        return (PLACES.index(name) if name in PLACES else len(PLACES) + (name in GROUPS), i)

    return sorted(range(len(names)), key=place)


def _header_row(names: list[str]) -> str:
    cells = []
    for name in names:
        kind = "text" if name in TEXT_COLUMNS else "number"
        first = "ascending" if kind == "text" or name == "rank" else "descending"
        title, _, detail = name.partition(" (")
        label = _esc(title) + (f"<span class=sub>({_esc(detail)}</span>" if detail else "")
        cells.append(f'<th class="{_column_class(name)}" data-kind={kind} data-first={first} aria-sort=none>'
                     f"<button type=button>{label}</button></th>")
    return "<tr>" + "".join(cells) + "</tr>"


def _cells(names: list[str], texts: list[str], toggle: str = "") -> str:
    out = []
    for name, text in zip(names, texts):
        inner = (toggle + _esc(text)) if name == "encoder" else _cell(text)
        out.append(f'<td class="{_column_class(name)}">{inner}</td>')
    return "".join(out)


def _provenance(table: Table, row: Row) -> str:
    """What stands behind one row: per column its seeds' values, mean, std and sampling interval;
    the control comparison; the inference cost; the exact commands, run ids and versions."""
    lines_ = []
    for column in table.columns:
        metric = row.metrics.get(column)
        if metric is None:
            continue
        score = table.tasks.get(column, {}).get("main_score", "")
        values = ", ".join(f"seed {s}: {number(shown(score, v))}" for s, v in sorted(metric.values.items()))
        interval = sampling_interval(row, column)
        span = ("-" if interval is None else NOT_RECORDED if not interval["recorded"] else
                f"[{number(shown(score, interval['low']), 3)}, {number(shown(score, interval['high']), 3)}] over "
                + ", ".join(f"{n:,}" for n in interval["n"]) + " queries")
        lines_.append(f"<tr><th>{_esc(column)}</th><td>{metric.n}</td><td>{_esc(values)}</td>"
                      f"<td>{number(shown(score, metric.mean))}</td><td>{number(metric.std)}</td><td>{_esc(span)}</td></tr>")
    parts = ["<table class=detail><thead><tr><th>column</th><th>n</th><th>per seed</th><th>mean</th>"
             "<th>std</th><th>95 % sampling interval</th></tr></thead><tbody>" + "".join(lines_) + "</tbody></table>"]
    facts = [("seeds", ", ".join(map(str, row.seeds)))]
    if row.vs_control:
        diff = row.vs_control
        over = f"{diff['n']} paired {diff.get('over', 'seeds')}"
        facts.append((f"{SUMMARY} {VS_CONTROL}",
                      f"{row.control}: {number(diff['mean'], sign=True)}"
                      + ("" if diff["low"] is None else
                         f" [{number(diff['low'], sign=True)}, {number(diff['high'], sign=True)}]") + f" over {over}"))
    if row.cost:
        c = row.cost
        facts.append(("inference cost", f"{c['sequences_per_s']:,.0f} sequences/s, peak "
                      + ("-" if c["peak_mb"] is None else f"{c['peak_mb']:,.0f} MB")
                      + f" at batch {c['batch_size']}, {c['device']} {c['dtype']}, "
                      + ("threads not recorded" if c["threads"] is None else f"{c['threads']} thread(s)")
                      + f", {c['machine']}"))
    runs = sorted({r["run_id"] for r in row.results.values()})
    facts.append(("runs", ", ".join(runs)))
    versions = sorted({", ".join(f"{k} {v}" for k, v in sorted((r.get("environment") or {}).get("versions", {}).items()))
                       or f"benchbarcode {r['benchbarcode_version']} (other versions not recorded)"
                       for r in row.results.values()})
    facts += [("versions", v) for v in versions]
    parts.append("<dl>" + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts) + "</dl>")
    commands = sorted({" ".join(r["command"]) for r in row.results.values()}
                      | ({row.cost["command"]} if row.cost and row.cost["command"] else set()))
    parts.append("<p class=label>Commands</p><pre>" + _esc("\n".join(commands)) + "</pre>")
    return "".join(parts)


def _table_html(table: Table, index: int) -> str:
    """The table: one ``tbody.group`` per measured row (the row, its provenance, the published rows
    under it), sorted as a whole; published rows without a measured row in a last ``tbody.unranked``."""
    shown_names = headers(table)
    order = _display_order(shown_names)
    names = [shown_names[i] for i in order]
    groups: list[list[str]] = []
    unranked: list[str] = []
    for line in lines(table):
        cells = line_cells(table, line)
        texts = [cells[i] for i in order]
        if isinstance(line, ReportedRow):
            (groups[-1] if line.measured is not None else unranked).append(
                f"<tr class=reported>{_cells(names, texts)}</tr>")
            continue
        prov = f"prov-{index}-{len(groups) + 1}"
        toggle = (f"<button type=button class=prov-toggle aria-expanded=false aria-controls={prov} "
                  f'title="provenance: seeds, intervals, commands, versions"></button>')
        groups.append([f"<tr class=measured>{_cells(names, texts, toggle)}</tr>",
                       f"<tr class=prov id={prov} hidden><td colspan={len(names)}><div class=prov-body>"
                       f"{_provenance(table, line)}</div></td></tr>"])
    body = [f"<tbody class=group data-order={i}>{''.join(rows)}</tbody>" for i, rows in enumerate(groups)]
    if unranked:
        body.append(f"<tbody class=unranked>{''.join(unranked)}</tbody>")
    return f"<table><thead>{_header_row(names)}</thead>{''.join(body)}</table>"


def _section(table: Table, index: int) -> str:
    note = reported_note(table)
    commands = [*table.commands, leaderboard_command(table)]
    return (f'<section class=board id=table-{index} aria-label="{_esc(table.title)}">'
            f"<h2>{_esc(table.title)}</h2><ul class=about>"
            + "".join(f"<li>{_esc(line)}</li>" for line in about(table)) + "</ul>"
            + f"<div class=scroll>{_table_html(table, index)}</div>"
            + (f"<div class=note>{_md(note)}</div>" if note else "")
            + _figure(table, index)
            + "<details class=reproduce><summary>Reproduce this table</summary><pre>"
            + _esc("\n".join(commands)) + "</pre>" + "".join(_md(n) for n in reproduce_notes(table))
            + "</details></section>")


def _figure(table: Table, index: int) -> str:
    """The table's figure (:func:`benchbarcode.board_plot.svg`), or nothing when it has no ranked row."""
    figure = board_plot.svg([table], ids=f"t{index}-")
    return (f"<figure class=plot><figcaption>Accuracy against the cost of pretraining and the cost of use "
            f"(hover a point for its numbers)</figcaption>{figure}</figure>") if figure else ""


def _controls(tables: list[Table]) -> str:
    """The data-set selector (first shown: the table with the most rows, the first of those on a tie),
    the column groups' switches and a hint; hidden until the script runs."""
    first = max(range(len(tables)), key=lambda i: (len(tables[i].rows), -i), default=0)
    options = "".join(f"<option value=table-{i + 1}{' selected' * (i == first)}>{_esc(t.title)}: "
                      f"{len(t.rows)} encoders</option>" for i, t in enumerate(tables))
    return ("<nav class=controls hidden><label>Data set <select id=dataset>" + options + "</select></label>"
            "<label><input type=checkbox data-group=details checked> encoder details</label>"
            "<label><input type=checkbox data-group=cost checked> inference cost</label>"
            "<span class=hint>Click a column header to sort; ▸ opens a row's provenance.</span></nav>")


def page(tables: list[Table], notes: str | None = None) -> str:
    """The page: the tables, the figure (when there is one to draw), the legend, then ``notes``."""
    parts = ["<header><h1>benchbarcode leaderboard</h1><p>Generated by <code>benchbarcode leaderboard</code> "
             "from the result files; do not edit by hand. <a href=#legend>How to read the tables</a>.</p>",
             _controls(tables), "</header><main>",
             *(_section(table, i) for i, table in enumerate(tables, 1))]
    parts.append(f"<section id=legend class=legend><h2>How to read the tables</h2>{_md(LEGEND)}</section>")
    if notes:
        parts.append(f"<section class=notes>{_md(notes)}</section>")
    parts.append("</main>")
    return ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>benchbarcode leaderboard</title><style>{_asset('board_html.css')}</style></head><body>\n"
            + "\n".join(parts) + f"\n<script>{_asset('board_html.js')}</script>\n</body></html>\n")
