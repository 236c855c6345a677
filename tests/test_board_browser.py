"""The HTML board in a real browser (Chromium driven by Playwright) at 1280 px: no errors, nothing
fetched, no page-level horizontal scrolling, the data-set selector, sorting, the cost columns in
view, the sticky encoder column, provenance, the figure, a screenshot that is not blank; on the
committed board, a synthetic board and a BIOSCAN-5M table with published rows.

Skipped where no Chromium is installed, except under BENCHBARCODE_REQUIRE_BROWSER=1 (.ci/run),
where that is a failure. Playwright runs the system's Chromium and downloads no browser."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from test_board_html import board
from test_reported import BIOSCAN5M, results_on

from benchbarcode import leaderboard

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
WIDTH, HEIGHT = 1280, 900
VISIBLE = "section.board:not([hidden])"


def _unavailable(reason: str):
    if os.environ.get("BENCHBARCODE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"BENCHBARCODE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"{reason} (install Chromium, e.g. apt-get install chromium, and pip install '.[test]')")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no chromium executable on PATH")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """The committed board and two built here: synthetic results, and a BIOSCAN-5M reference table."""
    folder = tmp_path_factory.mktemp("boards")
    built = {"synthetic": board(folder), "published": leaderboard.build(results_on(BIOSCAN5M))}
    out = {"committed": ROOT / "leaderboard" / "LEADERBOARD.html"}
    for name, tables in built.items():
        out[name] = folder / f"{name}.html"
        out[name].write_text(leaderboard.render(tables, "html", "## Notes\n\nSome *notes*."), encoding="utf-8")
    return out


@pytest.fixture(params=["committed", "synthetic", "published"])
def page(request, browser, pages):
    """The page loaded at 1280x900, with its console errors and the URLs it requested."""
    tab = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    tab.errors, tab.requests = [], []
    tab.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.on("request", lambda r: tab.requests.append(r.url))
    tab.goto(pages[request.param].as_uri())
    yield tab
    tab.close()


def column(tab, name: str) -> list[str]:
    """The texts of a column of the shown table's measured rows (first line of each cell), in order."""
    return tab.evaluate("""name => {
        const table = document.querySelector("section.board:not([hidden]) table");
        const index = [...table.tHead.rows[0].cells].findIndex(th => th.textContent.startsWith(name));
        return [...table.querySelectorAll("tr.measured")].map(tr => tr.cells[index].firstChild.textContent.trim());
    }""", name)


def published_under(tab) -> list[list[str]]:
    """[published row, the encoder of the first row of its tbody] of the shown table, sorted."""
    return sorted(tab.evaluate("""() => [...document.querySelectorAll("section.board:not([hidden]) tr.reported")]
        .map(tr => [tr.cells[1].textContent, tr.closest("tbody").rows[0].cells[1].textContent])"""))


def numbers(texts: list[str]) -> list[float]:
    """The values shown (a mean before its ``± std``), unmeasured cells left out."""
    return [float(t.split()[0].replace(",", "")) for t in texts if t not in ("-", "too few records")]


def test_no_errors_nothing_fetched_and_no_page_level_horizontal_scroll(page):
    assert page.errors == []
    assert all(url.startswith(("file:", "data:", "about:")) for url in page.requests), page.requests
    width, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width <= client == WIDTH


def test_the_selector_shows_exactly_one_table(page):
    options = page.eval_on_selector_all("#dataset option", "os => os.map(o => o.value)")
    assert options and options == page.eval_on_selector_all("section.board", "ss => ss.map(s => s.id)")
    for value in reversed(options):
        page.select_option("#dataset", value)
        assert page.eval_on_selector_all(VISIBLE, "ss => ss.map(s => s.id)") == [value]
        assert page.is_visible(f"#{value} table")


def test_clicking_open_world_sorts_by_it_both_ways_keeping_published_rows_attached(page):
    page.select_option("#dataset", page.eval_on_selector_all("#dataset option", "os => os.at(-1).value"))
    attached = published_under(page)
    header = page.locator(f"{VISIBLE} thead th", has_text="open-world")
    before = column(page, "open-world")
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    shown = column(page, "open-world")
    assert sorted(shown) == sorted(before) and numbers(shown) == sorted(numbers(shown), reverse=True)
    assert shown[len(numbers(shown)):] == [t for t in before if t in ("-", "too few records")]  # unmeasured: last
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert numbers(column(page, "open-world")) == sorted(numbers(shown))
    assert published_under(page) == attached
    assert page.evaluate(f"""() => [...document.querySelector("{VISIBLE} table").tBodies].at(-1).className""") in (
        "group", "unranked")  # published rows without a measured row stay last


def test_cost_columns_are_in_view_and_the_encoder_column_stays_put(page):
    for value in page.eval_on_selector_all("#dataset option", "os => os.map(o => o.value)"):
        page.select_option("#dataset", value)
        for name in ("embed seq/s", "peak MB", "vs control"):
            box = page.locator(f"{VISIBLE} thead th", has_text=name).bounding_box()
            assert box["x"] + box["width"] <= WIDTH, (value, name)
    encoder = page.locator(f"{VISIBLE} tr.measured td.enc").first
    x = encoder.bounding_box()["x"]
    page.eval_on_selector(f"{VISIBLE} .scroll", "box => { box.scrollLeft = box.scrollWidth; }")
    assert page.eval_on_selector(f"{VISIBLE} .scroll", "box => box.scrollLeft") > 0 or page.evaluate(
        f"""() => {{ const b = document.querySelector("{VISIBLE} .scroll"); return b.scrollWidth <= b.clientWidth; }}""")
    assert encoder.bounding_box()["x"] == x


def test_a_rows_provenance_opens_and_closes(page):
    toggle = page.locator(f"{VISIBLE} button.prov-toggle").first
    details = page.locator(f"{VISIBLE} tr.prov").first
    assert not details.is_visible()
    toggle.click()
    assert details.is_visible() and "Commands" in details.inner_text() and "benchbarcode run" in details.inner_text()
    toggle.click()
    assert not details.is_visible()


def test_the_figure_is_inline_and_the_screenshot_is_not_blank(page):
    from PIL import Image

    figure = page.locator(f"{VISIBLE} figure.plot svg")  # the shown table's own figure
    assert figure.count() == 1 and figure.is_visible() and figure.bounding_box()["width"] > 600
    assert page.locator("figure.plot svg").count() == page.locator("section.board").count()
    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    assert len(image.getcolors(maxcolors=WIDTH * HEIGHT)) > 50  # text, rules and tints, not one flat colour
