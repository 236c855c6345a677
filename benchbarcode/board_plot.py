"""The leaderboard's figure for the HTML page (provisional: drawn by :func:`benchbarcode.leaderboard.plot`)."""

from __future__ import annotations

import io

from benchbarcode.summary import SUMMARY


def svg(tables: list) -> str | None:
    """The figure as an inline ``<svg>`` element (no XML prolog or doctype), the same text for the
    same tables; None when no row has a summary score to draw."""
    from benchbarcode import leaderboard

    if not any(SUMMARY in row.metrics for table in tables for row in table.rows):
        return None
    buffer = io.BytesIO()
    leaderboard.plot(tables, buffer, "svg")
    text = buffer.getvalue().decode("utf-8")
    return text[text.index("<svg"):].strip()
