"""The leaderboard's figure (:mod:`benchbarcode.board_plot`): encoders without pretraining in
their own band, the cost-of-use panel from profile results, align's open-world accuracy, n below
three seeds, coinciding points drawn once, the same bytes for the same tables, the SVG's hover text."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest

from benchbarcode import board_plot
from benchbarcode.errors import UserError
from benchbarcode.leaderboard import Row, Table
from benchbarcode.summary import SUMMARY, Metric

SVG = "{http://www.w3.org/2000/svg}"


def cost(sequences_per_s: float, peak_mb: float) -> dict:
    return {"sequences_per_s": sequences_per_s, "peak_mb": peak_mb, "batch_size": 64, "device": "cpu",
            "dtype": "float32", "machine": "test machine", "threads": 1, "command": "benchbarcode profile"}


def row(name: str, rank: int | None, summary: tuple = (), *, options: dict | None = None, flops: float | None = None,
        steps: int = 0, profile: dict | None = None, open_world: tuple = ()) -> Row:
    """A row as the leaderboard builds it: the summary over seeds 0.., pretraining FLOPs per seed, its cost."""
    metrics = {}
    if summary:
        metrics[SUMMARY] = Metric(dict(enumerate(summary)))
    if open_world:
        metrics["open-world"] = Metric(dict(enumerate(open_world)))
    seeds = range(len(summary or open_world))
    return Row(key=f"{name}{options}", meta={"name": name, "options": options or {}, "budget": {"steps": steps}},
               metrics=metrics, flops={s: flops for s in seeds} if flops else {}, cost=profile, rank=rank)


def board() -> list[Table]:
    control = (0.80, 0.85, 0.78)  # two controls with identical scores: one point in the band
    rows = [row("kmer", 1, (0.99, 0.99, 0.99), profile=cost(25_000, 5)),
            row("mae", 2, (0.82, 0.83, 0.81), flops=4e12, steps=250, profile=cost(520, 56)),
            row("random", 3, control, options={"like": "mae"}, profile=cost(500, 48)),
            row("random", 4, control, options={"like": "mlm"}, profile=cost(440, 61)),
            row("gpt", 5, (0.6,), flops=2e13, steps=500),  # one seed, not profiled
            row("align", None, open_world=(0.85,))]  # not an embedding: open-world accuracy only
    return [Table(data={"name": "sim:900:0", "content_hash": "a" * 64}, tasks={}, columns=[], rows=rows,
                  commands=[], versions=[])]


@pytest.fixture(scope="module")
def panels():
    """The three panels of the board's one table: ``{title: (axes, [(marker, label text)])}``."""
    fig, hover = board_plot._figure(board())
    out = {}
    for ax in fig.axes:
        markers = [line for line in ax.lines if line.get_gid()]
        labels = sorted(ax.texts, key=lambda t: t.xy)
        out[ax.get_title()] = (ax, list(zip(sorted(markers, key=lambda m: (m.get_xdata()[0], m.get_ydata()[0])),
                                            [t.get_text() for t in labels], strict=True)))
    return out, hover


def test_encoders_without_pretraining_stand_in_their_own_band_not_on_a_flops_tick(panels):
    (panel, _) = panels
    assert set(panel) == {"no pretraining", "pretraining compute", "cost of use"}
    band, band_points = panel["no pretraining"]
    flops, flops_points = panel["pretraining compute"]
    assert band.get_xscale() == "linear" and not band.get_xticks().size and flops.get_xscale() == "log"
    assert sorted(t for _, t in band_points) == ["#1 kmer", "#3 random (like=mae)\n#4 random (like=mlm)",
                                                 "align: open-world accuracy only (n=1)"]
    assert [(m.get_xdata()[0], t) for m, t in flops_points] == [(4e12, "#2 mae"), (2e13, "#5 gpt (n=1)")]


def test_the_cost_panel_uses_the_profiles_throughput_and_names_what_is_not_profiled(panels):
    (panel, _) = panels
    cost_ax, points = panel["cost of use"]
    assert cost_ax.get_xscale() == "log"
    assert [m.get_xdata()[0] for m, _ in points] == [440, 500, 520, 25_000]  # the two controls: two points here
    assert [t for _, t in points] == ["#4 random (like=mlm) · 61 MB", "#3 random (like=mae) · 48 MB",
                                      "#2 mae · 56 MB", "#1 kmer · 5 MB"]
    assert "sequences/s" in cost_ax.get_xlabel() and cost_ax.get_xlabel().endswith("not profiled: gpt, align")


def test_few_seeds_are_hollow_and_align_is_a_diamond(panels):
    (panel, _) = panels
    markers = {t: m for _, points in panel.values() for m, t in points}
    assert markers["#5 gpt (n=1)"].get_markerfacecolor() == "white"
    assert markers["#2 mae"].get_markerfacecolor() != "white"
    assert markers["align: open-world accuracy only (n=1)"].get_marker() == "D"
    assert markers["align: open-world accuracy only (n=1)"].get_ydata()[0] == 0.85


def test_same_tables_same_bytes(tmp_path):
    pngs = []
    for _ in range(2):
        buffer = io.BytesIO()
        board_plot.draw(board(), buffer, "png")
        pngs.append(buffer.getvalue())
    assert pngs[0][:8] == b"\x89PNG\r\n\x1a\n" and pngs[0] == pngs[1]
    board_plot.draw(board(), tmp_path / "a.svg", "svg")
    board_plot.draw(board(), tmp_path / "b.svg", "svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    assert (tmp_path / "a.svg").read_text(encoding="utf-8") == board_plot.svg(board())


def test_svg_is_one_inline_element_whose_points_carry_hover_text(panels):
    (panel, hover) = panels
    text = board_plot.svg(board())
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    assert "<?xml" not in text and "<!DOCTYPE" not in text and "<!--" not in text and "Matplotlib v" not in text
    titles = [t.text for t in ET.fromstring(text).iter(f"{SVG}title")]  # parses: valid XML
    assert len(titles) == len(hover) == sum(len(points) for _, points in panel.values())
    mae = next(t for t in titles if t.startswith("#2 mae"))
    assert mae.splitlines() == ["#2 mae", "harmonic mean (rank key): 0.8200 ± 0.0100, n=3 seeds",
                                "pretraining: 250 steps, 4.00e+12 FLOPs",
                                "embed: 520 seq/s, peak 56 MB (cpu float32, batch 64)"]
    assert any("pretraining: none (not pretrained)" in t and "peak 5 MB" in t for t in titles)  # kmer
    assert any(t.startswith("#3 random (like=mae)") and "\n\n#4 random (like=mlm)" in t for t in titles)
    align = next(t for t in titles if t.startswith("align"))
    assert "open-world accuracy (no rank key): 0.8500, n=1 seed" in align and "embed: not profiled" in align


def test_nothing_to_draw():
    only_align = board()[0]
    only_align.rows = [r for r in only_align.rows if r.meta["name"] == "align"]
    assert board_plot.svg([]) is None and board_plot.svg([only_align]) is None
    with pytest.raises(UserError, match="--plot: no row"):
        board_plot.draw([only_align], io.BytesIO(), "png")


def test_pareto_front_and_labels_of_coinciding_points():
    assert board_plot.pareto([(1, 0.5), (2, 0.9), (3, 0.8), (0, 0.4)]) == [3, 0, 1]
    heights = board_plot._label_heights([1e11, 1e11, 1e13], [0.8, 0.8, 0.8], gap=0.01)
    assert sorted(heights[:2]) == pytest.approx([0.795, 0.805]) and heights[2] == 0.8  # far away: its own height
    assert board_plot._label_heights([1e11, 1e11], [0.5, 0.9], gap=0.01) == [0.5, 0.9]
    two_lines = board_plot._label_heights([1, 1], [0.5, 0.5], gap=0.01, lines=[1, 2])
    assert two_lines[1] - two_lines[0] == pytest.approx(0.015)
