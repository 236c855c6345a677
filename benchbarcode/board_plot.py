"""The leaderboard's figure: per table, the rank key against what an encoder costs to make and to use.

One row of three panels per :class:`~benchbarcode.leaderboard.Table` that has ranked rows, sharing y
(the rank key, :data:`~benchbarcode.summary.SUMMARY`, mean ± std over seeds):

* a narrow band of the encoders without pretraining FLOPs (not pretrained; third-party weights and
  results that state no FLOPs are named as such), so none stands on a FLOPs tick;
* the rank key against pretraining compute (FLOPs, log scale);
* the rank key against the cost of use: embedding throughput (sequences/s at the board's batch
  size, log scale) from the row's profile (``Row.cost``); rows without one are named under it.

Points below three seeds are hollow with ``n=k`` in their label. A row without the rank key but
with an open-world accuracy (``align``: not an embedding, the 1-NN tasks only) is drawn as that
accuracy with a diamond, and its label says so. Rows at the same place in a panel (two identical
controls) are one point with every name. The Pareto front of each panel is ringed. In :func:`svg`
each point carries its hover text as an SVG ``<title>``. The same tables give the same bytes: no
date or version is written and SVG ids are hash-salted.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchbarcode.errors import UserError
from benchbarcode.leaderboard import Row, Table, pretraining_flops, pretraining_text
from benchbarcode.summary import SUMMARY, SUMMARY_OF, Metric, metric_text, number, pretraining_origin

FORMATS = ("png", "svg")
FEW_SEEDS = 3  # below this many seeds a point is hollow and its label says n
OPEN_WORLD = SUMMARY_OF[1]
NO_FLOPS = {"none": "no pretraining", "third party": "third-party weights, compute not stated",
            "this suite": "FLOPs not recorded"}  # by summary.pretraining_origin
BLUE, GREY, RED = "#1f5fa8", "#555555", "#c0392b"
LABEL_SIZE = 7.5
HEAD, BLOCK, ABOVE, BELOW = 1.2, 4.7, 0.75, 0.75  # inches: title and legend; per table; above and below its axes
NEAR = 0.6  # decades: points closer than this on a log axis share a column of labels
_RC = {"svg.hashsalt": "benchbarcode", "svg.fonttype": "path"}  # stable ids: same tables, same file


@dataclass
class _Point:
    """One drawn point: the rows at this place in a panel (usually one), their score and spread."""

    rows: list[Row]
    metrics: list[Metric]  # each row's drawn metric
    x: float
    open_world_only: bool

    @property
    def y(self) -> float:
        return self.metrics[0].mean

    @property
    def err(self) -> float:
        return self.metrics[0].std or 0.0

    @property
    def few_seeds(self) -> bool:
        return min(m.n for m in self.metrics) < FEW_SEEDS


def draw(tables: list[Table], path, fmt: str) -> None:
    """Write the figure of ``tables`` to ``path`` as ``fmt`` (``png`` or ``svg``; the svg is
    :func:`svg`'s, with hover text)."""
    import matplotlib

    if fmt not in FORMATS:
        raise ValueError(f"fmt {fmt!r}: expected one of {FORMATS}")
    with matplotlib.rc_context(_RC):
        figure = _figure(tables)
        if figure is None:
            raise UserError("--plot: no row has both closed-world and open-world results to draw")
        if fmt == "svg":
            Path(path).write_text(_svg_text(*figure), encoding="utf-8")
        else:
            figure[0].savefig(path, format="png", dpi=110, metadata={"Software": None})


def svg(tables: list[Table], ids: str = "") -> str | None:
    """The figure as one inline-ready ``<svg ...>...</svg>`` element (no prolog, doctype or
    comments), each point with a ``<title>`` (its hover text); None when no table has a ranked row.
    ``ids`` prefixes every element id and reference, so several figures can share one page."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure = _figure(tables)
        if figure is None:
            return None
        text = _svg_text(*figure)
    return re.sub(r'(\bid="|url\(#|href="#)', rf"\g<1>{ids}", text) if ids else text


def _svg_text(fig, hover: dict[str, str]) -> str:
    """The SVG of ``fig`` from its ``<svg`` on, with ``hover[gid]`` as the ``<title>`` of the
    group matplotlib writes for the artist of that gid."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = re.sub(r"<!--.*?-->\n?", "", text[text.index("<svg"):], flags=re.DOTALL)  # each text's string, as a comment
    for gid, title in hover.items():
        opening = f'<g id="{gid}">'
        if text.count(opening) != 1:
            raise RuntimeError(f"figure: the svg has {text.count(opening)} groups {opening}, expected one")
        text = text.replace(opening, f"{opening}<title>{html.escape(title, quote=False)}</title>")
    return text


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (less or equal x, greater or equal y, one strictly)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def _label_heights(xs: list[float], ys: list[float], gap: float, near: float = 0.5,
                   lines: list[int] | None = None) -> list[float]:
    """Heights for the points' labels: each at its point, unless two labels whose points stand
    within ``near`` decades of each other would come closer than ``gap`` per line of text; then
    both move apart, the lower one down and the upper one up, in the order of their points."""
    lines = lines or [1] * len(ys)
    order = sorted(range(len(ys)), key=lambda i: (ys[i], xs[i]))
    pairs = [(i, j) for k, i in enumerate(order) for j in order[k + 1:] if abs(math.log10(xs[i] / xs[j])) < near]
    heights = list(ys)
    for _ in range(500):  # relax until no pair overlaps (a chain of n labels settles in about n passes)
        overlap = 0.0
        for i, j in pairs:
            short = gap * (lines[i] + lines[j]) / 2 - (heights[j] - heights[i])
            if short > 0:
                heights[i] -= short / 2
                heights[j] += short / 2
                overlap = max(overlap, short)
        if overlap < 1e-6 * gap:
            break
    return heights


# ----------------------------------------------------------------------------- points
def _scored(table: Table) -> list[tuple[Row, Metric, bool]]:
    """The table's drawable rows: ``(row, drawn metric, open-world only)``."""
    out = []
    for row in table.rows:
        if SUMMARY in row.metrics:
            out.append((row, row.metrics[SUMMARY], False))
        elif OPEN_WORLD in row.metrics:
            out.append((row, row.metrics[OPEN_WORLD], True))
    return out


def _points(scored: list[tuple[Row, Metric, bool]], place) -> list[_Point]:
    """One point per place in a panel: ``place(row)`` gives ``(x, key)`` (None: not in this
    panel); rows with the same key, shown score and spread coincide."""
    groups: dict[tuple, _Point] = {}
    for row, metric, open_world_only in scored:
        placed = place(row)
        if placed is None:
            continue
        x, key = placed
        slot = (key, number(metric.mean), number(metric.std), open_world_only)
        if slot in groups:
            groups[slot].rows.append(row)
            groups[slot].metrics.append(metric)
        else:
            groups[slot] = _Point([row], [metric], x, open_world_only)
    return list(groups.values())


def _name(row: Row, metric: Metric, open_world_only: bool) -> str:
    """A row's label: rank, encoder, what is drawn when not the rank key, n below three seeds."""
    text = row.label if row.rank is None else f"#{row.rank} {row.label}"
    text += " (supervised)" if row.budget.get("supervision") else ""
    text += ": open-world accuracy only" if open_world_only else ""
    return text + (f" (n={metric.n})" if metric.n < FEW_SEEDS else "")


def _cost_text(row: Row) -> str:
    cost = row.cost
    if cost is None:
        return "not profiled"
    peak = "" if cost["peak_mb"] is None else f", peak {cost['peak_mb']:,.0f} MB"
    return (f"{cost['sequences_per_s']:,.0f} seq/s{peak} ({cost['device']} {cost['dtype']}, "
            f"batch {cost['batch_size']})")


def _hover(point: _Point) -> str:
    """The hover text of a point: per row, its name, score ± std and n, pretraining and cost of use."""
    parts = []
    for row, metric in zip(point.rows, point.metrics):
        what = f"{OPEN_WORLD} accuracy (no rank key)" if point.open_world_only else f"{SUMMARY} (rank key)"
        seeds = f"n={metric.n} seed" + ("s" if metric.n != 1 else "")
        parts.append("\n".join([row.label if row.rank is None else f"#{row.rank} {row.label}",
                                f"{what}: {metric_text(metric)}, {seeds}",
                                f"pretraining: {pretraining_text(row)}", f"embed: {_cost_text(row)}"]))
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- panels
@dataclass
class _Panel:
    """One panel's points and how to place them: log x or the no-pretraining band, and the x by
    which a point is cheaper for the Pareto front (None: not on it)."""

    points: list[_Point]
    log: bool
    cheapness: Callable[[_Point], float | None]  # lower is cheaper


def _panels(table: Table) -> list[_Panel]:
    """The band without pretraining FLOPs, pretraining compute, cost of use."""
    scored = _scored(table)
    return [_Panel(_points(scored, _in_band), False,
                   lambda p: 0.0 if pretraining_origin(p.rows[0].budget) == "none" else None),
            _Panel(_points(scored, _at_flops), True, lambda p: p.x),
            _Panel(_points(scored, _at_throughput), True, lambda p: -p.x)]


def _in_band(row: Row) -> tuple[float, str] | None:
    return None if pretraining_flops(row) else (0.9, pretraining_origin(row.budget))


def _at_flops(row: Row) -> tuple[float, str] | None:
    flops = pretraining_flops(row)
    return None if flops is None else (flops, f"{flops:.3g}")


def _at_throughput(row: Row) -> tuple[float, str] | None:
    return None if row.cost is None else (row.cost["sequences_per_s"], f"{row.cost['sequences_per_s']:.0f}")


def _fronts(groups: list[list[_Panel]]) -> set[int]:
    """ids of the points on a Pareto front, over each group of panels that share one x."""
    on = set()
    for panels in groups:
        ranked = [(p, x) for panel in panels for p in panel.points
                  if not p.open_world_only and (x := panel.cheapness(p)) is not None]
        on |= {id(ranked[i][0]) for i in pareto([(x, p.y) for p, x in ranked])}
    return on


def _xlim(panel: _Panel) -> tuple[float, float]:
    if not panel.log:
        return 0.0, 1.0
    if not panel.points:
        return 1.0, 10.0
    logs = [math.log10(p.x) for p in panel.points]
    low, high = min(logs) - 0.4, max(logs) + 0.4
    pad = max(0.0, 2.0 - (high - low)) / 2  # two decades: two labelled ticks
    return 10 ** (low - pad), 10 ** (high + pad)


def _heights(panels: list[_Panel], line: float) -> tuple[list[list[float]], tuple[float, float], float]:
    """Label heights per panel, the shared y limits and the gap between labels per line of text:
    ``line`` of the final y range."""
    ys = [v for panel in panels for p in panel.points for v in (p.y - p.err, p.y + p.err)]
    bottom, top = min(ys), max(ys)
    data_span = max(top - bottom, 0.05)
    low, high = bottom - 0.06 * data_span, top + 0.04 * data_span
    for _ in range(4):  # the labels' room depends on the range they widen: settle it
        gap = line * (high - low)
        heights = [_label_heights([p.x for p in panel.points], [p.y for p in panel.points], gap,
                                  near=NEAR if panel.log else math.inf, lines=[len(p.rows) for p in panel.points])
                   for panel in panels]
        reach = [(h - len(p.rows) * gap / 2, h + len(p.rows) * gap / 2)
                 for panel, hs in zip(panels, heights) for p, h in zip(panel.points, hs)]
        low = min(bottom, *(r[0] for r in reach)) - 0.06 * data_span
        high = max(top, *(r[1] for r in reach)) + 0.04 * data_span
    return heights, (low, high), gap


# ----------------------------------------------------------------------------- drawing
def _figure(tables: list[Table]):
    """``(figure, {gid: hover text})`` of the tables with ranked rows; None when there are none.
    The layout is fixed in inches: a layout engine's solver can differ in the last bits of a
    position from one call to the next, and the SVG names clip paths by the exact floats."""
    from matplotlib.figure import Figure

    drawn = [t for t in tables if any(SUMMARY in r.metrics for r in t.rows)]
    if not drawn:
        return None
    width, height = 15.0, HEAD + BLOCK * len(drawn)
    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(len(drawn), 3, width_ratios=[3.3, 4.7, 6.0], left=0.85 / width, right=1 - 0.2 / width,
                            top=1 - (HEAD + ABOVE) / height, bottom=BELOW / height, wspace=0.12,
                            hspace=(ABOVE + BELOW) / (BLOCK - ABOVE - BELOW))
    hover: dict[str, str] = {}
    for i, table in enumerate(drawn):
        first = fig.add_subplot(grid[i, 0])
        axes = [first, *(fig.add_subplot(grid[i, c], sharey=first) for c in (1, 2))]
        _draw_table(axes, table, hover, f"bb-point-{i}")
        fig.text(0.5, first.get_position().y1 + 0.32 / height, table.title + _not_drawn(table), ha="center",
                 va="bottom", fontsize=10)
    fig.suptitle("benchbarcode leaderboard: accuracy against the cost of pretraining and the cost of use",
                 y=1 - 0.12 / height, va="top")
    fig.legend(handles=_legend(drawn), loc="upper center", bbox_to_anchor=(0.5, 1 - 0.45 / height), ncols=2,
               fontsize=8, frameon=False)
    return fig, hover


def _draw_table(axes, table: Table, hover: dict[str, str], prefix: str) -> None:
    """One row of panels: the band without pretraining FLOPs, pretraining compute, cost of use."""
    from matplotlib.ticker import NullFormatter

    panels = _panels(table)
    front = _fronts([panels[:2], panels[2:]])
    heights, ylim, gap = _heights(panels, line=0.042)
    for k, (ax, panel, panel_heights) in enumerate(zip(axes, panels, heights)):
        ax.set_xlim(*_xlim(panel))
        if panel.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        for j, (point, height) in enumerate(zip(panel.points, panel_heights)):
            gid = f"{prefix}-{k}-{j}"
            _mark(ax, point, gid, id(point) in front)
            hover[gid] = _hover(point)
            side = _side(ax, panel, point)
            _annotate(ax, point, (_anchor(panel, point, side, height, gap), height), side, with_cost=k == 2)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(*ylim)
    _decorate(axes, table, panels)


def _side(ax, panel: _Panel, point: _Point) -> int:
    """Where a point's label goes: left (-1) in the band and in the right part of a log panel."""
    if not panel.log:
        return -1
    low, high = (math.log10(v) for v in ax.get_xlim())
    return 1 if (math.log10(point.x) - low) / (high - low) < 0.6 else -1


def _anchor(panel: _Panel, point: _Point, side: int, height: float, gap: float) -> float:
    """The x a label at ``height`` starts from: past every point within ``NEAR`` decades on its
    side whose marker it would cover (``gap``: the height of a line of text)."""
    if not panel.log:
        return point.x
    reach = gap * (len(point.rows) + 1) / 2
    near = [p.x for p in panel.points
            if 0 <= side * math.log10(p.x / point.x) < NEAR and abs(p.y - height) < reach]
    return max(near, default=point.x) if side > 0 else min(near, default=point.x)


def _mark(ax, point: _Point, gid: str, on_front: bool) -> None:
    color = GREY if point.open_world_only else BLUE
    if point.err:
        ax.errorbar([point.x], [point.y], yerr=[point.err], fmt="none", ecolor=color, alpha=0.55, capsize=3, lw=1)
    (line,) = ax.plot([point.x], [point.y], ls="none", marker="D" if point.open_world_only else "o", ms=7,
                      color=color, mfc="white" if point.few_seeds else color, mew=1.5)
    line.set_gid(gid)
    if on_front:
        ax.plot([point.x], [point.y], ls="none", marker="o", ms=15, mfc="none", mec=RED, mew=1.2)


def _annotate(ax, point: _Point, at: tuple[float, float], side: int, with_cost: bool) -> None:
    """The point's label (every name, one line each) beside ``at``, joined to the point when moved."""
    from matplotlib.transforms import offset_copy

    names = [_name(row, metric, point.open_world_only) for row, metric in zip(point.rows, point.metrics)]
    if with_cost:
        names = [n + ("" if r.cost["peak_mb"] is None else f" · {r.cost['peak_mb']:,.0f} MB")
                 for n, r in zip(names, point.rows)]
    moved = at != (point.x, point.y)
    ax.annotate("\n".join(names), (point.x, point.y), xytext=at,
                textcoords=offset_copy(ax.transData, fig=ax.figure, x=9 * side, units="points"),
                ha="left" if side > 0 else "right", va="center", fontsize=LABEL_SIZE,
                fontweight="bold" if any(r.rank == 1 for r in point.rows) else "normal",
                arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6, "shrinkA": 1, "shrinkB": 4}
                if moved else None)


def _decorate(axes, table: Table, panels: list[_Panel]) -> None:
    band, flops, cost = axes
    origins = sorted({pretraining_origin(p.rows[0].budget) for p in panels[0].points})
    band.set_title(" / ".join(NO_FLOPS[o] for o in origins) or NO_FLOPS["none"], fontsize=9)
    band.set_xticks([])
    band.set_ylabel(f"{SUMMARY} of closed- and open-world\naccuracy (rank key; mean ± std over seeds)")
    flops.set_title("pretraining compute", fontsize=9)
    flops.set_xlabel("pretraining FLOPs (log scale)")
    flops.tick_params(labelleft=False)
    cost.set_title("cost of use", fontsize=9)
    settings = sorted({f"{r.cost['device']} {r.cost['dtype']}, batch {r.cost['batch_size']}"
                       for r in table.rows if r.cost})
    unprofiled = [r.label for r in table.rows if r.cost is None and _drawable(r)]
    cost.set_xlabel(f"embedding throughput, sequences/s (log scale; {'; '.join(settings) or 'no profile'})"
                    + (f"\nnot profiled: {', '.join(unprofiled)}" if unprofiled else ""))


def _drawable(row: Row) -> bool:
    return SUMMARY in row.metrics or OPEN_WORLD in row.metrics


def _not_drawn(table: Table) -> str:
    left = [r.label for r in table.rows if not _drawable(r)]
    return f"\nnot drawn (neither the rank key nor an open-world accuracy): {', '.join(left)}" if left else ""


def _legend(tables: list[Table]) -> list:
    """Legend entries for what the figure holds."""
    from matplotlib.lines import Line2D

    scored = [entry for t in tables for entry in _scored(t)]
    entries = [Line2D([], [], ls="none", marker="o", ms=7, color=BLUE,
                      label=f"{SUMMARY} of closed- and open-world accuracy (rank key), mean ± std over seeds")]
    if any(metric.n < FEW_SEEDS for _, metric, _ in scored):
        entries.append(Line2D([], [], ls="none", marker="o", ms=7, color=BLUE, mfc="white", mew=1.5,
                              label=f"fewer than {FEW_SEEDS} seeds (n in the label)"))
    if any(open_world_only for *_, open_world_only in scored):
        entries.append(Line2D([], [], ls="none", marker="D", ms=7, color=GREY,
                              label="open-world accuracy only: no closed-world score, so no rank key "
                                    "(align: not an embedding, 1-NN tasks only)"))
    entries.append(Line2D([], [], ls="none", marker="o", ms=13, mfc="none", mec=RED, mew=1.2,
                          label="Pareto front of the panel: nothing cheaper (less compute; more sequences/s) "
                                "scores higher"))
    entries.append(Line2D([], [], ls="none", label="#k: rank in the table (bold: the best); "
                                                   "· MB: peak memory of one embedding call"))
    return entries
