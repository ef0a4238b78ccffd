/* gunicorn-pyinstrument: latency over time, on the serve page's /chart.
 *
 * One point per request report (start time against duration), coloured by status class or by
 * label, with the 50th and 95th percentiles of each slice of time (computed by the server) drawn
 * as lines on top, with uPlot (vendored, see static/VENDORED.md). Hover a point for its request;
 * click it to open its report. Data from this origin only (data-src).
 */
(function () {
  "use strict";
  var STATUS = [
    ["2xx", "#2f9e44"],
    ["3xx", "#1c7ed6"],
    ["4xx", "#f08c00"],
    ["5xx", "#e03131"],
    ["other", "#868e96"],
  ];
  var PALETTE = ["#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#e03131", "#0c8599", "#f08c00", "#5c940d"];
  var PICK_PX = 8;

  var common = GunicornPyinstrument;
  var ms = common.ms;

  function iso(epoch) {
    return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 23) + " UTC";
  }

  // The time axis in UTC, as everywhere on the site: the time of day, with the date on long spans.
  function timeLabels(u, splits) {
    var span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
    return splits.map(function (v) {
      var text = new Date(v * 1000).toISOString();
      return span > 86400 ? text.slice(5, 16).replace("T", " ") : text.slice(11, span > 600 ? 16 : 19);
    });
  }

  // Which group (series) each point belongs to, by status class or by label.
  function groups(data, mode) {
    var points = data.points;
    var n = points.t.length;
    var names = [];
    var colours = [];
    var of = new Array(n);
    if (mode === "label") {
      var labels = data.labels.slice(0, PALETTE.length);
      labels.forEach(function (label, i) {
        names.push(label || "(no label)");
        colours.push(PALETTE[i]);
      });
      var other = data.labels.length > labels.length;
      if (other) {
        names.push("other labels");
        colours.push("#868e96");
      }
      for (var i = 0; i < n; i++) of[i] = Math.min(points.label[i], labels.length);
    } else {
      STATUS.forEach(function (s) {
        names.push(s[0]);
        colours.push(s[1]);
      });
      for (var j = 0; j < n; j++) {
        var status = points.status[j];
        var c = status >= 200 && status < 600 ? Math.floor(status / 100) - 2 : 4;
        of[j] = c < 0 ? 4 : c;
      }
    }
    return { names: names, colours: colours, of: of };
  }

  // uPlot's aligned columns: the points' times merged with the slices' middles; one column per
  // group (a point's duration in its own group's column, null in the others), then p50 and p95.
  function columns(data, grouping) {
    var t = data.points.t;
    var d = data.points.d;
    var b = data.buckets;
    var width = grouping.names.length;
    var n = t.length;
    var m = b.t.length;
    var xs = new Array(n + m);
    var series = [];
    for (var s = 0; s < width + 2; s++) series.push(new Array(n + m).fill(null));
    var index = new Array(n); // point -> its position in xs
    var i = 0;
    var k = 0;
    for (var at = 0; at < n + m; at++) {
      if (k >= m || (i < n && t[i] <= b.t[k])) {
        xs[at] = t[i];
        series[grouping.of[i]][at] = d[i];
        index[i] = at;
        i++;
      } else {
        xs[at] = b.t[k];
        series[width][at] = b.p50[k];
        series[width + 1][at] = b.p95[k];
        k++;
      }
    }
    return { data: [xs].concat(series), index: index };
  }

  function nearest(u, data, left, top) {
    var t = data.points.t;
    var d = data.points.d;
    var lo = u.posToVal(left - PICK_PX, "x");
    var hi = u.posToVal(left + PICK_PX, "x");
    var a = 0;
    var b = t.length;
    while (a < b) {
      var mid = (a + b) >> 1;
      if (t[mid] < lo) a = mid + 1;
      else b = mid;
    }
    var best = -1;
    var bestDistance = PICK_PX * PICK_PX;
    for (var i = a; i < t.length && t[i] <= hi; i++) {
      if (!u.series[u._grouping.of[i] + 1].show) continue;
      var dx = u.valToPos(t[i], "x") - left;
      var dy = u.valToPos(d[i], "y") - top;
      var distance = dx * dx + dy * dy;
      if (distance <= bestDistance) {
        bestDistance = distance;
        best = i;
      }
    }
    return best;
  }

  // onDrawn(u, milliseconds): once, after uPlot has drawn the chart for the first time.
  function draw(element, data, mode, log, onDrawn) {
    var began = performance.now();
    var grouping = groups(data, mode);
    var built = columns(data, grouping);
    var tip = document.getElementById("chart-tip");
    var series = [{}];
    grouping.names.forEach(function (name, i) {
      series.push({
        label: name,
        stroke: grouping.colours[i],
        fill: grouping.colours[i],
        paths: function () { return null; },
        points: { show: true, size: 5, width: 0, fill: grouping.colours[i], stroke: grouping.colours[i] },
        value: function (u, v) { return v == null ? "" : ms(v) + " ms"; },
      });
    });
    series.push({ label: "p50", stroke: "#212529", width: 1.5, spanGaps: true, points: { show: false },
      value: function (u, v) { return v == null ? "" : ms(v) + " ms"; } });
    series.push({ label: "p95", stroke: "#212529", width: 1.5, dash: [6, 4], spanGaps: true,
      points: { show: false }, value: function (u, v) { return v == null ? "" : ms(v) + " ms"; } });
    var options = {
      width: Math.max(element.clientWidth - 10, 300),
      height: 380,
      series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }, // as the site: UTC
      scales: { x: { time: true }, y: log ? { distr: 3, log: 10 } : { range: function (u, lo, hi) { return [0, hi * 1.05 || 1]; } } },
      axes: [{ values: timeLabels }, { label: "duration (ms)", size: 60, values: function (u, vals) { return vals.map(function (v) { return v == null ? "" : ms(v); }); } }],
      cursor: { points: { show: false }, drag: { x: true, y: false } },
      legend: { live: false },
      hooks: {
        draw: [
          function (u) {
            if (onDrawn) onDrawn(u, performance.now() - began);
            onDrawn = null;
          },
        ],
        setCursor: [
          function (u) {
            var i = u.cursor.left >= 0 ? nearest(u, data, u.cursor.left, u.cursor.top) : -1;
            if (i < 0) {
              tip.style.display = "none";
              return;
            }
            var p = data.points;
            tip.textContent =
              iso(p.t[i]) + "  " + ms(p.d[i]) + " ms  " + (p.status[i] == null ? "" : p.status[i]) + "  " +
              data.endpoints[p.path[i]] + (data.labels[p.label[i]] ? "  " + data.labels[p.label[i]] : "");
            tip.style.display = "block";
            tip.style.left = u.over.offsetLeft + u.cursor.left + 12 + "px";
            tip.style.top = u.over.offsetTop + u.cursor.top + 12 + "px";
          },
        ],
      },
    };
    var u = new uPlot(options, built.data, element);
    u._grouping = grouping;
    var down = null;
    u.over.addEventListener("mousedown", function (e) { down = [e.clientX, e.clientY]; });
    u.over.addEventListener("click", function (e) {
      if (down && Math.abs(e.clientX - down[0]) + Math.abs(e.clientY - down[1]) > 3) return; // a drag
      var i = nearest(u, data, u.cursor.left, u.cursor.top);
      if (i >= 0) window.location.href = data.link + encodeURIComponent(data.points.name[i]);
    });
    var drawn = 0;
    for (var s = 1; s <= grouping.names.length; s++) {
      drawn += built.data[s].filter(function (v) { return v != null; }).length;
    }
    element.setAttribute("data-points", drawn);
    return u;
  }

  function start(element) {
    var began = performance.now();
    var summary = document.getElementById("chart-summary");
    common
      .fetchJSON(element.dataset.src, "the chart's data")
      .then(function (data) {
        if (!data.count) {
          summary.textContent = " No request report matches the selection.";
          element.setAttribute("data-points", "0");
          element.setAttribute("data-ready", "1");
          return;
        }
        summary.textContent =
          " " + data.count + " report(s)" + (data.truncated ? " (the newest)" : "") +
          "; percentiles per " + data.bucket_seconds + " s";
        var mode = "status";
        var log = false;
        // Timings, for bench/web_charts.py: the drawing alone, from the data's request, and from
        // the page's navigation; then the chart is ready.
        var chart = draw(element, data, mode, log, function (u, drawing) {
          element.setAttribute("data-render-ms", drawing.toFixed(1));
          element.setAttribute("data-total-ms", (performance.now() - began).toFixed(1));
          element.setAttribute("data-page-ms", performance.now().toFixed(1));
          element.setAttribute("data-ready", "1");
        });
        element.uplot = chart;
        var redraw = function () {
          chart.destroy();
          chart = draw(element, data, mode, log);
          element.uplot = chart;
        };
        document.querySelectorAll('input[name="colour"]').forEach(function (radio) {
          radio.addEventListener("change", function () {
            mode = radio.value;
            redraw();
          });
        });
        var logBox = document.getElementById("chart-log");
        if (logBox) logBox.addEventListener("change", function () { log = logBox.checked; redraw(); });
      })
      .catch(function (error) {
        common.fail(element, error);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("chart");
    if (element && element.dataset.src) start(element);
  });
})();
