"""The report's page: CSS for screen and print, and the skeleton the sections go into.

Kept as Python strings (not a package data file) so the wheel needs no extra
package-data entry and the page can never be shipped without its styles.
"""

from __future__ import annotations

from string import Template

CSS = """
:root { --fg: #1d232b; --muted: #5f6b7a; --line: #dde2e8; --bg-alt: #f6f8fa; --ok: #2e7d32; --bad: #c62828;
        --removed: #2e7d32; --added: #c62828; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 20px 28px 60px; }
header h1 { font-size: 22px; margin: 0 0 4px; }
header .sub { color: var(--muted); margin: 0 0 14px; }
h2 { font-size: 18px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
nav { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,.96); border-bottom: 1px solid var(--line);
      padding: 8px 0; margin-bottom: 8px; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
th.num { max-width: 130px; }
.table-wrap { overflow-x: auto; max-width: 100%; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.aggregate td { font-weight: 600; background: #fbfcfd; }
tr.aggregate:first-of-type td, tr.first-aggregate td { border-top: 2px solid var(--line); }
table.meta th { background: none; color: var(--muted); font-weight: 500; padding-left: 0; }
table.meta td { word-break: break-all; }
td.kernel { max-width: 560px; min-width: 340px; }
td.kernel summary { cursor: pointer; }
details.frame summary { cursor: pointer; }
details.frame table.inner { margin: 6px 0 4px 14px; font-size: 12px; }
td.kernel code { font-size: 12px; }
td.kernel .full { color: var(--muted); font-size: 11px; word-break: break-all; display: block; margin: 2px 0 0 14px; }
td.nowrap { white-space: nowrap; }
.neg { color: var(--removed); } .pos { color: var(--added); } .muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.ok { background: #e6f4ea; color: var(--ok); } .badge.bad { background: #fdecea; color: var(--bad); }
.badge.skip { background: #eef0f3; color: var(--muted); }
.verdict { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 8px 0 12px; }
.verdict.ok { background: #e6f4ea; color: var(--ok); border: 1px solid #b7dfc0; }
.verdict.bad { background: #fdecea; color: var(--bad); border: 1px solid #f3b9b4; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 6px 0 4px; }
.card { flex: 1 1 220px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; background: #fff; }
.card .title { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card .big { font-size: 22px; font-weight: 600; margin: 2px 0; font-variant-numeric: tabular-nums; }
.card .detail { font-size: 13px; color: var(--muted); }
.card.ok { border-color: #b7dfc0; background: #f3faf4; } .card.bad { border-color: #f3b9b4; background: #fef6f5; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0 10px; }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 6px; margin: 12px 0 18px; background: #fff; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; }
.grid2 > * { min-width: 0; }
ul.warnings { margin: 4px 0; padding-left: 20px; color: #8a5a00; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } main { padding: 12px; } }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { font-size: 11px; }
  main { max-width: none; padding: 0; }
  nav, .modebar-container { display: none !important; }
  h2, .note, h3 { break-after: avoid; }
  .figure, .verdict, .cards, tr { break-inside: avoid; }
  .figure { border: none; padding: 0; }
  td.kernel .full { display: none; }
  td.kernel summary { list-style: none; }
}
"""

# Plotly draws at the window's size: for paper, redraw each figure at the page width and no taller than a
# landscape page (a taller one would be cut between pages), then restore the screen layout.
RESIZE_JS = """
(function () {
  var PAGE_WIDTH = 1000, PAGE_HEIGHT = 640, saved = [];
  function plots() { return Array.prototype.slice.call(document.querySelectorAll('.js-plotly-plot')); }
  window.addEventListener('beforeprint', function () {
    saved = plots().map(function (el) {
      var height = el.layout.height;
      Plotly.relayout(el, {width: PAGE_WIDTH, height: Math.min(height || 450, PAGE_HEIGHT)});
      return [el, height];
    });
  });
  window.addEventListener('afterprint', function () {
    saved.forEach(function (pair) { Plotly.relayout(pair[0], {width: null, height: pair[1]}); });
    saved = [];
  });
})();
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="traceview $version">
<title>$title</title>
<style>$css</style>
<script type="text/javascript">$plotlyjs</script>
</head>
<body>
<main>
<header>
<h1>$title</h1>
<p class="sub">$subtitle</p>
</header>
<nav>$nav</nav>
$body
<footer>Generated by traceview $version on $generated. Self-contained: opens offline, no network access.</footer>
</main>
<script type="text/javascript">$resize_js</script>
</body>
</html>
""")
