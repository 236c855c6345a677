// benchbarcode leaderboard page (benchbarcode/board_html.py): data-set selector, column groups,
// sorting by a header click, provenance rows. No network, no library.
"use strict";
(() => {
  const sections = [...document.querySelectorAll("section.board")];
  const select = document.getElementById("dataset");
  document.querySelector("nav.controls").hidden = false;

  function show(id) {
    for (const section of sections) section.hidden = section.id !== id;
    select.value = id;
  }
  select.addEventListener("change", () => {
    show(select.value);
    history.replaceState(null, "", "#" + select.value);
  });
  const wanted = sections.find((s) => "#" + s.id === location.hash);
  show(wanted ? wanted.id : select.value);  // else the option the page marks selected

  for (const box of document.querySelectorAll("nav.controls input[data-group]")) {
    box.addEventListener("change", () => document.body.classList.toggle("hide-" + box.dataset.group, !box.checked));
  }

  // A column's value in a group's measured row: a number (commas dropped) or text; missing ("-",
  // "too few records", not a number) sorts last in either direction; ties keep the rank order.
  function value(group, index, numeric) {
    const text = group.rows[0].cells[index].textContent.trim();
    if (!numeric) return text === "-" ? null : text;
    const number = parseFloat(text.replace(/,/g, ""));
    return Number.isNaN(number) ? null : number;
  }

  function sort(th) {
    const table = th.closest("table");
    const numeric = th.dataset.kind === "number";
    const current = th.getAttribute("aria-sort");
    const direction = current === "none" ? th.dataset.first : current === "ascending" ? "descending" : "ascending";
    const sign = direction === "ascending" ? 1 : -1;
    const groups = [...table.tBodies].filter((b) => b.classList.contains("group"));
    const keyed = groups.map((g) => [value(g, th.cellIndex, numeric), Number(g.dataset.order), g]);
    keyed.sort(([a, ai], [b, bi]) => {
      if (a === null || b === null) return (a === null) - (b === null) || ai - bi;
      const order = numeric ? a - b : a.localeCompare(b);
      return sign * order || ai - bi;
    });
    const tail = table.querySelector("tbody.unranked");
    for (const [, , group] of keyed) table.insertBefore(group, tail);
    for (const other of th.parentElement.cells) other.setAttribute("aria-sort", "none");
    th.setAttribute("aria-sort", direction);
  }

  document.addEventListener("click", (event) => {
    const header = event.target.closest("thead th");
    if (header && header.closest(".scroll")) return sort(header);
    const toggle = event.target.closest("button.prov-toggle");
    if (!toggle) return;
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.getElementById(toggle.getAttribute("aria-controls")).hidden = !open;
  });
})();
