"""The HTML board's page without a browser: self-contained, the notes rendered as Markdown without
raw HTML, published rows kept with their measured row, each row's provenance, no figure when
nothing can be drawn. tests/test_board_browser.py drives the page in Chromium."""

from __future__ import annotations

import re

from test_leaderboard import DATA, OTHER_DATA, SCORES, encoder_meta, write
from test_reported import BIOSCAN5M, results_on

from benchbarcode import board_html, leaderboard
from benchbarcode.store import load_results


def board(tmp_path, tasks=("closed-world", "open-world", "clustering")) -> list:
    root = tmp_path / "results"
    for name, scores in SCORES.items():
        for task in tasks:
            for seed, value in enumerate(scores.get(task, [])):
                write(root, encoder_meta(name, seed), task, seed, value)
    return leaderboard.build(load_results(root))


def tbodies(page: str) -> list[tuple[str, str]]:
    """``(class, content)`` of each tbody."""
    return re.findall(r"<tbody class=(\w+)[^>]*>(.*?)(?=<tbody class=|</table></div>)", page, flags=re.S)


def groups_by_encoder(page: str) -> dict[str, str]:
    return {re.search(r"prov-toggle[^>]*></button>([^<]*)</td>", body)[1]: body
            for kind, body in tbodies(page) if kind == "group"}


def test_the_page_loads_nothing_from_outside(tmp_path):
    page = leaderboard.render(board(tmp_path), "html")
    assert page.startswith("<!doctype html>") and page.count("<script>") == 1 and page.count("<style>") == 1
    for outside in (r"\ssrc=", r"<link", r"@import", r"url\(\s*['\"]?(?!#)", r"<iframe", r"<img"):  # url(#id): in the SVG
        assert re.search(outside, page) is None, outside
    assert page.count("<svg") == 1 and "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_no_figure_section_when_no_row_has_a_summary(tmp_path):
    page = leaderboard.render(board(tmp_path, tasks=("open-world",)), "html")
    assert "<svg" not in page and "class=plot" not in page and "<table>" in page


def test_notes_are_markdown_without_raw_html(tmp_path):
    notes = "## What the numbers say\n\n**mae** <script>alert(1)</script> <b>x</b>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    page = leaderboard.render(board(tmp_path), "html", notes)
    assert "<h2>What the numbers say</h2>" in page and "<strong>mae</strong>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<b>x</b>" not in page
    assert "<td>1</td>" in page  # tables in the notes
    assert "<code>vs control</code>" in page  # the legend, rendered from the same Markdown


def test_each_row_carries_its_provenance(tmp_path):
    (table,) = board(tmp_path)
    page = leaderboard.render([table], "html")
    groups = groups_by_encoder(page)
    assert len(groups) == len(table.rows) == 3
    mae = groups["mae"]
    assert "seed 0: 0.7000, seed 1: 0.7500, seed 2: 0.7300" in mae  # open-world, per seed
    assert "random (like=mae, preset=tiny)" in mae and "3 paired seeds" in mae  # the control comparison
    assert "sim:900:0-seed0, sim:900:0-seed1, sim:900:0-seed2" in mae  # run ids
    assert "<pre>benchbarcode run</pre>" in mae and "benchbarcode 0.1.0" in mae


def test_published_rows_stay_in_their_measured_rows_group():
    (table,) = leaderboard.build(results_on(BIOSCAN5M))
    page = leaderboard.render([table], "html")
    bodies, groups = tbodies(page), groups_by_encoder(page)
    assert "§ reported: DNABERT-2" in groups["dnabert2"] and "§ reported: DNABERT-2" not in groups["kmer (k=4)"]
    assert "§ reported: BarcodeBERT 8-4-4 (BIOSCAN-5M)" in groups["mlm"]
    kind, unranked = bodies[-1]
    assert kind == "unranked" and "§ reported: CNN baseline" in unranked and "prov-toggle" not in unranked
    assert sum(body.count("<tr class=reported>") for _, body in bodies) == 7


def test_cost_and_control_come_before_the_other_tasks(tmp_path):
    (table,) = board(tmp_path)
    page = leaderboard.render([table], "html")
    header = re.search(r"<thead>(.*?)</thead>", page, flags=re.S)[1]
    names = [re.sub(r"<[^>]+>", " ", cell).split()[0] for cell in re.findall(r"<button type=button>(.*?)</button>", header)]
    assert names == ["rank", "encoder", "seeds", "closed-world", "open-world", "harmonic", "harmonic", "embed",
                     "peak", "clustering", "objective", "parameters", "pretraining"]
    assert board_html._display_order(leaderboard.headers(table))[:3] == [0, 1, 5]


def test_the_table_with_the_most_rows_is_shown_first(tmp_path):
    root = tmp_path / "results"
    for name in ("kmer", "mae"):
        write(root, encoder_meta(name, 0), "open-world", 0, 0.9)
    write(root, encoder_meta("kmer", 0), "open-world", 0, 0.5, data=OTHER_DATA)
    tables = leaderboard.build(load_results(root))
    assert [len(t.rows) for t in tables] == [1, 2]
    options = re.findall(r"<option value=(table-\d)( selected)?>", leaderboard.render(tables, "html"))
    assert options == [("table-1", ""), ("table-2", " selected")]


def test_each_table_has_its_own_figure_with_its_own_ids(tmp_path):
    root = tmp_path / "results"
    for data in (DATA, OTHER_DATA):
        for task in ("closed-world", "open-world"):
            for seed in (0, 1):
                write(root, encoder_meta("kmer", seed), task, seed, 0.5 + seed / 10, data=data)
    page = leaderboard.render(leaderboard.build(load_results(root)), "html")
    sections = re.findall(r"<section class=board.*?</section>", page, flags=re.S)
    assert len(sections) == 2 and all(s.count("<figure class=plot>") == 1 for s in sections)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert ids and len(ids) == len(set(ids))  # two inline SVGs, no id twice on the page
    for ref in re.findall(r'(?:url\(#|href="#)([^)"]+)', page):
        assert ref in ids, ref
