#include "analysis/report/html/report_assets.h"

namespace lminf {

const char* report_css() {
  return R"CSS(
:root { --fg: #1d2330; --muted: #5d6778; --line: #dde2ea; --bg: #f5f7fa; --card: #fff; --accent: #2f6fdb;
        --warn-bg: #fff6e0; --warn-line: #f0c36d; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
header.top { background: #1f2a3c; color: #fff; padding: 18px 32px 14px; }
header.top h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header.top .meta { color: #c5cedc; font-size: 13px; }
header.top .meta span { margin-right: 18px; white-space: nowrap; }
header.top code { color: #fff; }
nav.toc { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--line);
          padding: 8px 32px; font-size: 13px; display: flex; flex-wrap: wrap; gap: 2px 18px; }
nav.toc a { color: var(--accent); text-decoration: none; white-space: nowrap; }
nav.toc a:hover { text-decoration: underline; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 48px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 4px 22px 18px;
               margin: 18px 0; scroll-margin-top: 48px; }
h2 { font-size: 18px; margin: 16px 0 10px; }
h3 { font-size: 15px; margin: 16px 0 8px; }
h4, h5, h6 { font-size: 14px; margin: 14px 0 6px; color: var(--muted); }
p.lead { color: var(--muted); margin: 0 0 10px; }
.sub { margin-left: 4px; padding-left: 12px; border-left: 3px solid var(--line); }
.notes { margin: 16px 0 0; }
.note { background: var(--warn-bg); border: 1px solid var(--warn-line); border-radius: 6px; padding: 8px 12px;
        margin: 6px 0; }
.table-wrap { overflow: auto; max-height: 420px; margin: 6px 14px 14px 0; border: 1px solid var(--line);
              border-radius: 6px; display: inline-block; vertical-align: top; max-width: 100%; }
table.data { border-collapse: separate; border-spacing: 0; font-size: 13px; }
table.data caption { caption-side: top; text-align: left; font-weight: 600; padding: 6px 10px; color: var(--muted);
                     background: #fafbfc; position: sticky; left: 0; }
table.data th { position: sticky; top: 0; background: #eef2f7; text-align: left; font-weight: 600; padding: 6px 10px;
                border-bottom: 1px solid var(--line); cursor: pointer; user-select: none; vertical-align: bottom; }
table.data th:hover { background: #e2e8f1; }
table.data th[data-dir="asc"]::after { content: " \25B2"; font-size: 10px; }
table.data th[data-dir="desc"]::after { content: " \25BC"; font-size: 10px; }
table.data td { padding: 4px 10px; border-bottom: 1px solid #eef0f3; vertical-align: top; max-width: 520px;
                overflow-wrap: break-word; }
table.data tbody tr:nth-child(even) td { background: #fafbfd; }
table.data tbody tr:hover td { background: #eef4ff; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; margin: 8px 0 12px; }
figure.fig { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px; cursor: zoom-in; }
figure.fig.wide { grid-column: 1 / -1; cursor: zoom-out; }
figure.fig img { display: block; width: 100%; height: auto; }
figure.fig figcaption { font-size: 12px; color: var(--muted); margin-top: 6px; overflow-wrap: anywhere; }
pre.config { background: #f7f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 12px; overflow: auto;
             max-height: 560px; font-size: 12.5px; }
details { margin: 8px 0; }
details > summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
details.element > summary { font-weight: 500; color: var(--muted); }
details.point h2 { font-size: 15px; }
details.point { border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px; margin: 10px 0; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 10px 0 28px; }
)CSS";
}

const char* report_js() {
  return R"JS(
(function () {
  function cellKey(row, col, numeric) {
    var cell = row.cells[col];
    var text = cell ? cell.textContent.trim() : '';
    if (!numeric) return text === '' ? null : text.toLowerCase();
    var v = parseFloat(text);
    return isNaN(v) ? null : v;
  }
  function sortTable(table, col, th) {
    var numeric = th.getAttribute('data-type') === 'num';
    var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute('data-dir');
    th.setAttribute('data-dir', dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
      return { row: r, key: cellKey(r, col, numeric), index: i };
    });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {  // missing values last, either direction
        if (a.key === b.key) return a.index - b.index;
        return a.key === null ? 1 : -1;
      }
      var c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      if (dir === 'desc') c = -c;
      return c !== 0 ? c : a.index - b.index;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener('click', function () { sortTable(table, col, th); });
    });
  });
  document.querySelectorAll('figure.fig').forEach(function (f) {
    f.addEventListener('click', function () { f.classList.toggle('wide'); });
  });
})();
)JS";
}

}  // namespace lminf
