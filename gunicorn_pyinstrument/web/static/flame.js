/* gunicorn-pyinstrument: the flame-graph viewer of the serve page.
 *
 * Draws a call tree (web/flamegraph.py's JSON) as SVG, the root on top: each frame as wide as its
 * time, its callees below it. One side (a report, or reports merged): coloured by where the code
 * is (the app's own, a library, a built-in). Two sides (a comparison): sized by the side chosen,
 * coloured by the change in the frame's self time from A to B, red where it grew, blue where it
 * shrank. Click a frame to zoom into it, a frame above it to zoom out.
 *
 * The tree comes from this server only: data-src (a URL of this origin) or data-json (the id of a
 * JSON element of the page). No inline script, no style attribute: the page's security policy
 * allows neither.
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var ROW = 18;
  var CHAR = 6.7; // px per character of the 11px monospace labels

  var common = GunicornPyinstrument;

  function ms(seconds) {
    return common.ms(seconds) + " ms";
  }

  function signedMs(seconds) {
    return (seconds >= 0 ? "+" : "−") + ms(Math.abs(seconds));
  }

  function hash(text) {
    var h = 0;
    for (var i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
    return Math.abs(h);
  }

  function kindColour(node) {
    var h = hash(node.n || "");
    if (node.k === "app") return "hsl(" + (18 + (h % 22)) + ",85%," + (58 + (h % 12)) + "%)";
    if (node.k === "lib") return "hsl(" + (200 + (h % 25)) + ",55%," + (68 + (h % 12)) + "%)";
    return "hsl(0,0%," + (78 + (h % 10)) + "%)";
  }

  // The change of self time, as a share of the largest change anywhere in the tree.
  function changeOf(node, largest) {
    var delta = node.s[1] - node.s[0];
    var share = largest > 0 ? delta / largest : 0;
    if (Math.abs(share) < 0.02) return { kind: "same", colour: "hsl(0,0%,88%)", delta: delta };
    var light = 90 - 45 * Math.min(1, Math.abs(share));
    if (share > 0) return { kind: "slower", colour: "hsl(5,80%," + light + "%)", delta: delta };
    return { kind: "faster", colour: "hsl(215,75%," + light + "%)", delta: delta };
  }

  function FlameGraph(element, data) {
    this.element = element;
    this.data = data;
    this.sides = data.sides;
    this.side = data.sides - 1;
    this.search = "";
    this.detail = document.getElementById("flame-detail");
    this.svg = document.createElementNS(NS, "svg");
    this.svg.setAttribute("role", "img");
    element.appendChild(this.svg);
    this.largest = 0;
    var self = this;
    (function walk(node, parent, depth) {
      node.parent = parent;
      node.depth = depth;
      // The frame's stack, as the collapsed-stack format writes it (root's callees first).
      node.path = parent && parent.parent ? parent.path + ";" + node.n : node.n || "";
      if (self.sides === 2) self.largest = Math.max(self.largest, Math.abs(node.s[1] - node.s[0]));
      (node.c || []).forEach(function (child) {
        walk(child, node, depth + 1);
      });
    })(data.root, null, 0);
    this.focus = data.root;
  }

  FlameGraph.prototype.value = function (node) {
    return node.t[this.side];
  };

  FlameGraph.prototype.label = function (node) {
    return node.n || "";
  };

  FlameGraph.prototype.describe = function (node) {
    var where = node.f === undefined ? "" : " " + this.data.files[node.f] + ":" + node.l;
    var rootTotal = this.value(this.data.root) || 1;
    if (this.sides === 1) {
      return (
        node.n + where + " — " + ms(node.t[0]) + " (" + ((100 * node.t[0]) / rootTotal).toFixed(1) +
        "%), self " + ms(node.s[0])
      );
    }
    return (
      node.n + where + " — total A " + ms(node.t[0]) + " → B " + ms(node.t[1]) + "; self A " +
      ms(node.s[0]) + " → B " + ms(node.s[1]) + " (" + signedMs(node.s[1] - node.s[0]) + ") per report"
    );
  };

  FlameGraph.prototype.frame = function (node, x, width) {
    var g = document.createElementNS(NS, "g");
    g.setAttribute("class", "frame");
    g.setAttribute("data-name", node.n || "");
    g.setAttribute("data-path", node.path);
    var rect = document.createElementNS(NS, "rect");
    rect.setAttribute("x", x.toFixed(1));
    rect.setAttribute("y", node.depth * ROW);
    rect.setAttribute("width", Math.max(width - 0.5, 0.5).toFixed(1));
    rect.setAttribute("height", ROW - 1);
    var colour;
    if (this.sides === 2 && node.parent) {
      var change = changeOf(node, this.largest);
      colour = change.colour;
      g.setAttribute("data-change", change.kind);
      g.setAttribute("data-delta", (change.delta * 1000).toFixed(3));
    } else {
      colour = node.parent ? kindColour(node) : "hsl(0,0%,85%)";
    }
    rect.setAttribute("fill", colour);
    var text = this.search;
    if (text) {
      var file = node.f === undefined ? "" : this.data.files[node.f];
      var hit = (node.n || "").toLowerCase().indexOf(text) >= 0 || file.toLowerCase().indexOf(text) >= 0;
      if (hit) rect.setAttribute("stroke", "#7a00cc");
      else g.setAttribute("opacity", "0.35");
    }
    var title = document.createElementNS(NS, "title");
    title.textContent = this.describe(node);
    g.appendChild(title);
    g.appendChild(rect);
    var chars = Math.floor((width - 6) / CHAR);
    if (chars >= 3) {
      var label = this.label(node);
      var label_ = document.createElementNS(NS, "text");
      label_.setAttribute("x", (x + 3).toFixed(1));
      label_.setAttribute("y", node.depth * ROW + 13);
      label_.textContent = label.length > chars ? label.slice(0, chars - 1) + "…" : label;
      g.appendChild(label_);
    }
    var graph = this;
    g.addEventListener("click", function () {
      graph.zoom(node === graph.focus && node.parent ? node.parent : node);
    });
    g.addEventListener("mouseenter", function () {
      if (graph.detail) graph.detail.textContent = graph.describe(node);
    });
    return g;
  };

  FlameGraph.prototype.zoom = function (node) {
    this.focus = node;
    this.render();
  };

  FlameGraph.prototype.render = function () {
    var width = this.element.clientWidth || 1000;
    var frames = document.createDocumentFragment();
    var deepest = 0;
    var graph = this;
    // The focus' callers, full width above it.
    for (var up = this.focus.parent; up; up = up.parent) {
      frames.appendChild(this.frame(up, 0, width));
    }
    var total = this.value(this.focus);
    if (!(total > 0) && !this.focus.parent) {
      while (this.svg.firstChild) this.svg.removeChild(this.svg.firstChild);
      this.svg.setAttribute("height", 0);
      if (this.detail) this.detail.textContent = "No samples on this side: nothing to draw.";
      return;
    }
    var scale = total > 0 ? width / total : 0;
    (function place(node, x) {
      var w = graph.value(node) * scale;
      if (w < 0.5) return;
      deepest = Math.max(deepest, node.depth);
      frames.appendChild(graph.frame(node, x, w));
      var at = x;
      (node.c || []).forEach(function (child) {
        place(child, at);
        at += graph.value(child) * scale;
      });
    })(this.focus, 0);
    var height = (deepest + 1) * ROW;
    this.svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    this.svg.setAttribute("height", height);
    while (this.svg.firstChild) this.svg.removeChild(this.svg.firstChild);
    this.svg.appendChild(frames);
    this.element.setAttribute("data-frames", this.svg.childNodes.length);
  };

  function load(element) {
    if (element.dataset.json) {
      var block = document.getElementById(element.dataset.json);
      return Promise.resolve(JSON.parse(block.textContent).tree);
    }
    return common.fetchJSON(element.dataset.src, "the flame graph's data");
  }

  function start(element) {
    var began = performance.now();
    load(element)
      .then(function (data) {
        var drawing = performance.now();
        var graph = new FlameGraph(element, data);
        graph.render();
        element.flameGraph = graph;
        // Timings, for bench/web_charts.py: from the data's request, and the drawing alone.
        element.setAttribute("data-render-ms", (performance.now() - began).toFixed(1));
        element.setAttribute("data-draw-ms", (performance.now() - drawing).toFixed(1));
        element.setAttribute("data-ready", "1");
        var reset = document.getElementById("flame-reset");
        if (reset) reset.addEventListener("click", function () { graph.zoom(data.root); });
        var side = document.getElementById("flame-side");
        if (side) {
          side.addEventListener("change", function () {
            graph.side = Number(side.value);
            graph.render();
          });
        }
        var search = document.getElementById("flame-search");
        if (search) {
          search.addEventListener("input", function () {
            graph.search = search.value.trim().toLowerCase();
            graph.render();
          });
        }
        var timer = null;
        window.addEventListener("resize", function () {
          clearTimeout(timer);
          timer = setTimeout(function () { graph.render(); }, 150);
        });
      })
      .catch(function (error) {
        common.fail(element, error);
      });
  }

  window.FlameGraph = FlameGraph; // for bench/web_charts.py's drawing of a large tree

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".flamegraph").forEach(start);
  });
})();
