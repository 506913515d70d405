// fleetctl ui: the pages' only script. Dragging across a graph of a host page (or /ntp) reloads the page
// with the dragged time range; clicking a column header of a `table.sortable` sorts it (numbers
// as numbers, again to reverse). The pages work without it.
"use strict";

(function () {
  function viewX(svg, clientX) {
    const pt = svg.createSVGPoint();
    pt.x = clientX;
    pt.y = 0;
    return pt.matrixTransform(svg.getScreenCTM().inverse()).x;
  }

  function zoomable(svg) {
    const x0 = Number(svg.dataset.x0), x1 = Number(svg.dataset.x1);
    const since = Number(svg.dataset.sinceMs), until = Number(svg.dataset.untilMs);
    if (!(x1 > x0) || !(until > since)) return;
    const plot = svg.querySelector("rect.plot");
    let start = null, band = null;
    const clamp = (x) => Math.min(x1, Math.max(x0, x));
    const time = (x) => Math.round(since + (clamp(x) - x0) / (x1 - x0) * (until - since));
    svg.addEventListener("mousedown", (ev) => {
      start = clamp(viewX(svg, ev.clientX));
      band = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      band.setAttribute("class", "zoom");
      band.setAttribute("y", plot.getAttribute("y"));
      band.setAttribute("height", plot.getAttribute("height"));
      band.setAttribute("x", start);
      band.setAttribute("width", 0);
      svg.appendChild(band);
      ev.preventDefault();
    });
    svg.addEventListener("mousemove", (ev) => {
      if (start === null) return;
      const x = clamp(viewX(svg, ev.clientX));
      band.setAttribute("x", Math.min(start, x));
      band.setAttribute("width", Math.abs(x - start));
    });
    const end = (ev) => {
      if (start === null) return;
      const x = clamp(viewX(svg, ev.clientX));
      band.remove();
      const a = Math.min(start, x), b = Math.max(start, x);
      start = null;
      if (b - a < 3) return;
      const params = new URLSearchParams(location.search);
      params.set("since", time(a));
      params.set("until", time(b));
      location.search = params.toString();
    };
    svg.addEventListener("mouseup", end);
    svg.addEventListener("mouseleave", (ev) => { if (start !== null) end(ev); });
  }

  function sortable(table) {
    const heads = table.querySelectorAll("thead th");
    heads.forEach((th, column) => {
      th.addEventListener("click", () => {
        const body = table.tBodies[0];
        const down = th.dataset.sorted !== "down";
        heads.forEach((h) => { delete h.dataset.sorted; });
        th.dataset.sorted = down ? "down" : "up";
        const key = (row) => {
          const text = row.cells[column] ? row.cells[column].textContent.trim() : "";
          const n = Number(text);
          return text !== "" && !Number.isNaN(n) ? n : text;
        };
        const rows = Array.from(body.rows);
        rows.sort((r1, r2) => {
          const a = key(r1), b = key(r2);
          let c;
          if (typeof a === "number" && typeof b === "number") c = a - b;
          else c = String(a).localeCompare(String(b));
          return down ? -c : c;
        });
        rows.forEach((r) => body.appendChild(r));
      });
    });
  }

  if (location.pathname.startsWith("/hosts/") || location.pathname === "/ntp") {
    document.querySelectorAll("svg.panel").forEach(zoomable);
  }
  document.querySelectorAll("table.sortable").forEach(sortable);
})();
