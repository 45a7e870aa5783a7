// Charts: every element with `data-figure` (plotly figure JSON rendered by dashboard/figures.py)
// becomes a plotly chart, whenever it appears (page load, HTMX swap, out-of-band swap).
// Colours come from the theme's custom properties. Live points pushed by the instance socket
// (#chart-points, data-points = {series_id: [[time, value], ...]}) are appended with
// Plotly.extendTraces to charts inside a `data-live-charts` container; a dashboard's
// (#board-points) to its time-series panels, by line name. A refused PromQL query's
// answer (4xx with a Vigil-Query-Error header: Explore's panel, a dashboard panel) is swapped in
// like a success, so the engine's message shows where the chart would be.
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var PALETTE_LIGHT = ["#2f7fd1", "#8a4fd8", "#1d9a52", "#c98a12", "#d23f3f", "#17a2b8", "#e0682b", "#5b6478"];
  var PALETTE_DARK = ["#5ea3ec", "#b28af0", "#37c171", "#e3a832", "#f06262", "#3fc6dc", "#f08a50", "#97a1b4"];

  // The theme's colours are light-dark() pairs: let the browser resolve them on a probe.
  var probe = null;
  function cssVar(name) {
    if (probe === null) {
      probe = document.createElement("span");
      probe.hidden = true;
      document.body.appendChild(probe);
    }
    probe.style.color = "var(" + name + ")";
    return getComputedStyle(probe).color;
  }

  function isDark() {
    var theme = document.documentElement.getAttribute("data-theme");
    if (theme) return theme === "dark";
    return window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function themeLayout() {
    var grid = cssVar("--border");
    var axis = { gridcolor: grid, linecolor: grid, zerolinecolor: grid, tickfont: { color: cssVar("--muted") } };
    return {
      font: { color: cssVar("--fg") },
      colorway: isDark() ? PALETTE_DARK : PALETTE_LIGHT,
      xaxis: axis,
      yaxis: axis,
      hoverlabel: { bgcolor: cssVar("--panel"), bordercolor: grid, font: { color: cssVar("--fg") } },
      legend: { font: { color: cssVar("--muted") } },
    };
  }

  function merge(target, extra) {
    Object.keys(extra).forEach(function (key) {
      var value = extra[key];
      if (value && typeof value === "object" && !Array.isArray(value) && target[key] && typeof target[key] === "object") {
        merge(target[key], value);
      } else {
        target[key] = value;
      }
    });
    return target;
  }

  function draw(element) {
    var figure = JSON.parse(element.getAttribute("data-figure"));
    element.setAttribute("data-plotted", "");
    Plotly.newPlot(element, figure.data, merge(figure.layout || {}, themeLayout()), CONFIG).then(function () {
      element.dispatchEvent(new CustomEvent("vigil:chartdrawn", { bubbles: true }));
    });
  }

  function drawWithin(root) {
    if (!root.querySelectorAll) return;
    if (root.matches && root.matches("[data-figure]:not([data-plotted])")) draw(root);
    root.querySelectorAll("[data-figure]:not([data-plotted])").forEach(draw);
  }

  function retheme() {
    document.querySelectorAll("[data-plotted]").forEach(function (element) {
      if (element.data) Plotly.relayout(element, themeLayout());
    });
  }

  function appendPoints(points) {
    var container = document.querySelector("[data-live-charts]");
    if (!container) return;
    var spanMs = Number(container.getAttribute("data-range-seconds")) * 1000;
    container.querySelectorAll("[data-plotted]").forEach(function (element) {
      if (!element.data) return;
      var update = { x: [], y: [] };
      var indices = [];
      var newest = null;
      element.data.forEach(function (trace, index) {
        var fresh = points[String(trace.meta)];
        if (!fresh) return;
        var last = trace.x.length ? trace.x[trace.x.length - 1] : "";
        // Times are fixed-format UTC strings: a string comparison orders them.
        fresh = fresh.filter(function (point) { return point[0] > last; });
        if (!fresh.length) return;
        update.x.push(fresh.map(function (point) { return point[0]; }));
        update.y.push(fresh.map(function (point) { return point[1]; }));
        indices.push(index);
        var end = fresh[fresh.length - 1][0];
        if (newest === null || end > newest) newest = end;
      });
      if (!indices.length) return;
      Plotly.extendTraces(element, update, indices);
      if (spanMs) {
        var end = new Date(newest.replace(" ", "T") + "Z");
        var start = new Date(end.getTime() - spanMs);
        Plotly.relayout(element, { "xaxis.range": [plotTime(start), plotTime(end)] });
      }
      element.dispatchEvent(new CustomEvent("vigil:chartextended", { bubbles: true }));
    });
  }

  // A dashboard's push: {panel id: {line name: [time, value]}}; each time-series panel's lines
  // get their new point, and its axis slides to end at it.
  function appendBoardPoints(points) {
    var grid = document.querySelector(".board-grid[data-range-seconds]");
    if (!grid) return;
    var spanMs = Number(grid.getAttribute("data-range-seconds")) * 1000;
    Object.keys(points).forEach(function (panelId) {
      var body = document.getElementById("panel-" + panelId);
      var element = body && body.querySelector("[data-plotted]");
      if (!element || !element.data) return;
      var fresh = points[panelId];
      var update = { x: [], y: [] };
      var indices = [];
      var newest = null;
      element.data.forEach(function (trace, index) {
        var point = fresh[trace.name];
        var last = trace.x.length ? trace.x[trace.x.length - 1] : "";
        if (!point || point[0] <= last) return;
        update.x.push([point[0]]);
        update.y.push([point[1]]);
        indices.push(index);
        if (newest === null || point[0] > newest) newest = point[0];
      });
      if (!indices.length) return;
      Plotly.extendTraces(element, update, indices);
      var end = new Date(newest.replace(" ", "T") + "Z");
      var start = new Date(end.getTime() - spanMs);
      Plotly.relayout(element, { "xaxis.range": [plotTime(start), plotTime(end)] });
      element.dispatchEvent(new CustomEvent("vigil:chartextended", { bubbles: true }));
    });
  }

  function plotTime(date) {
    return date.toISOString().slice(0, 19).replace("T", " ");
  }

  htmx.onLoad(drawWithin);
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.getResponseHeader("Vigil-Query-Error")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("vigil:themechange", retheme);
  document.addEventListener("htmx:wsAfterMessage", function () {
    var holder = document.getElementById("chart-points");
    var raw = holder && holder.getAttribute("data-points");
    if (raw) {
      holder.removeAttribute("data-points");
      appendPoints(JSON.parse(raw));
    }
    var boardHolder = document.getElementById("board-points");
    var boardRaw = boardHolder && boardHolder.getAttribute("data-points");
    if (boardRaw) {
      boardHolder.removeAttribute("data-points");
      appendBoardPoints(JSON.parse(boardRaw));
    }
  });
})();
