/* gunicorn-pyinstrument: the comparison page's durations, A against B, as percentile curves
 * (uPlot, vendored: static/VENDORED.md), from the page's own JSON element (diff-data). The
 * differential flame graph beside it is static/flame.js's.
 */
(function () {
  "use strict";
  var COLOURS = ["#1c7ed6", "#e03131"];

  var ms = GunicornPyinstrument.ms;

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("distribution");
    var block = document.getElementById("diff-data");
    if (!element || !block) return;
    var sides = JSON.parse(block.textContent).sides;
    var xs = [];
    for (var p = 0; p <= 100; p++) xs.push(p);
    var series = [{ label: "percentile", value: function (u, v) { return v == null ? "" : "p" + v; } }];
    sides.forEach(function (side, i) {
      series.push({
        label: (i === 0 ? "A" : "B") + " (" + side.count + " report" + (side.count === 1 ? ")" : "s)"),
        stroke: COLOURS[i],
        width: 2,
        points: { show: false },
        value: function (u, v) { return v == null ? "" : ms(v) + " ms"; },
      });
    });
    var options = {
      width: Math.max(element.clientWidth - 10, 300),
      height: 300,
      series: series,
      scales: { x: { time: false }, y: { range: function (u, lo, hi) { return [0, hi * 1.05 || 1]; } } },
      axes: [
        { label: "percentile of requests", values: function (u, vals) { return vals.map(function (v) { return "p" + v; }); } },
        { label: "duration (ms)", size: 60, values: function (u, vals) { return vals.map(function (v) { return ms(v); }); } },
      ],
    };
    var data = [xs].concat(sides.map(function (side) { return side.percentiles; }));
    element.uplot = new uPlot(options, data, element);
    element.setAttribute("data-ready", "1");
  });
})();
