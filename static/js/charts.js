// Charts: every element with `data-figure` (plotly figure JSON rendered by dashboard/figures.py)
// becomes a plotly chart, whenever it appears (page load, HTMX swap, out-of-band swap).
// Colours come from the theme's custom properties: the layout's from fixed names, a series'
// from --series-1 to --series-8, and any colour a figure names as "var(--name)" (dashboard/
// figures.py, panels.py, annotations.py) is resolved when it is drawn and again when the theme
// changes. Live points pushed by the instance socket
// (#chart-points, data-points = {series_id: [[time, value], ...]}) are appended with
// Plotly.extendTraces to charts inside a `data-live-charts` container; a dashboard's
// (#board-points) to its time-series panels, by line name. A refused PromQL query's
// answer (4xx with a Vigil-Query-Error header: Explore's panel, a dashboard panel) is swapped in
// like a success, so the engine's message shows where the chart would be.
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  var SERIES_COLOURS = 8;
  var THEME_COLOUR = /^var\(--[\w-]+\)$/;

  // Figures carry UTC times ("YYYY-MM-DD HH:MM:SS"); plotly has no time zones, so each is
  // rewritten as the wall time of the zone the page shows times in (meta vigil-time-zone).
  var zoneMeta = document.querySelector("meta[name=vigil-time-zone]");
  var ZONE = (zoneMeta && zoneMeta.getAttribute("content")) || "UTC";
  var wallTimes = {};
  var wallFormat = null;
  try {
    wallFormat = new Intl.DateTimeFormat("en-CA", {
      timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
  } catch (error) {
    wallFormat = null; // an unknown zone: times stay UTC
  }

  function wallTime(utc) {
    if (wallFormat === null || ZONE === "UTC" || typeof utc !== "string") return utc;
    var known = wallTimes[utc];
    if (known !== undefined) return known;
    var date = new Date(utc.replace(" ", "T") + "Z");
    if (isNaN(date.getTime())) return utc;
    var parts = {};
    wallFormat.formatToParts(date).forEach(function (part) { parts[part.type] = part.value; });
    var text = parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" + parts.second;
    wallTimes[utc] = text;
    return text;
  }

  function inZone(figure) {
    (figure.data || []).forEach(function (trace) {
      if (trace.type === "indicator" || !Array.isArray(trace.x)) return;
      if (typeof trace.x[0] === "string") trace.x = trace.x.map(wallTime);
    });
    var layout = figure.layout || {};
    if (layout.xaxis && layout.xaxis.type === "date" && Array.isArray(layout.xaxis.range)) {
      layout.xaxis.range = layout.xaxis.range.map(wallTime);
    }
    (layout.shapes || []).forEach(function (shape) {
      if (shape.xref === "x") { shape.x0 = wallTime(shape.x0); shape.x1 = wallTime(shape.x1); }
    });
    (layout.annotations || []).forEach(function (label) {
      if (label.xref === "x") label.x = wallTime(label.x);
    });
    return figure;
  }

  // The theme's colours are light-dark() pairs, which plotly cannot read: let the browser
  // resolve them on a probe.
  var probe = null;
  function cssColour(colour) {
    if (probe === null) {
      probe = document.createElement("span");
      probe.hidden = true;
      document.body.appendChild(probe);
    }
    probe.style.color = colour;
    return getComputedStyle(probe).color;
  }

  function cssVar(name) {
    return cssColour("var(" + name + ")");
  }

  function isThemeColour(value) {
    return typeof value === "string" && THEME_COLOUR.test(value);
  }

  // A copy of a figure's part with each "var(--name)" in it resolved.
  function themed(value) {
    if (isThemeColour(value)) return cssColour(value);
    if (Array.isArray(value)) return value.map(themed);
    if (value && typeof value === "object") {
      var copy = {};
      Object.keys(value).forEach(function (key) { copy[key] = themed(value[key]); });
      return copy;
    }
    return value;
  }

  // {plotly attribute path: resolved colour} for each "var(--name)" in a figure's part (an
  // array holding any is resolved whole: a bar chart's colour per bar), for restyle/relayout.
  function themedPaths(value, path, found) {
    if (isThemeColour(value)) {
      found[path] = cssColour(value);
    } else if (Array.isArray(value)) {
      if (value.some(isThemeColour)) {
        found[path] = themed(value);
      } else {
        value.forEach(function (item, index) {
          if (item && typeof item === "object") themedPaths(item, path + "[" + index + "]", found);
        });
      }
    } else if (value && typeof value === "object") {
      Object.keys(value).forEach(function (key) { themedPaths(value[key], path ? path + "." + key : key, found); });
    }
    return found;
  }

  function themeLayout() {
    var grid = cssVar("--border");
    var axis = { gridcolor: grid, linecolor: grid, zerolinecolor: grid, tickfont: { color: cssVar("--muted") } };
    var colorway = [];
    for (var index = 1; index <= SERIES_COLOURS; index++) colorway.push(cssVar("--series-" + index));
    return {
      font: { color: cssVar("--fg") },
      colorway: colorway,
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
    var figure = inZone(JSON.parse(element.getAttribute("data-figure")));
    element.setAttribute("data-plotted", "");
    Plotly.newPlot(element, themed(figure.data), merge(themed(figure.layout || {}), themeLayout()), CONFIG).then(function () {
      element.dispatchEvent(new CustomEvent("vigil:chartdrawn", { bubbles: true }));
    });
  }

  function drawWithin(root) {
    if (!root.querySelectorAll) return;
    if (root.matches && root.matches("[data-figure]:not([data-plotted])")) draw(root);
    root.querySelectorAll("[data-figure]:not([data-plotted])").forEach(draw);
  }

  // Restyled in place, not drawn again: a live chart keeps the points pushed since.
  function retheme() {
    document.querySelectorAll("[data-plotted]").forEach(function (element) {
      if (!element.data) return;
      var figure = JSON.parse(element.getAttribute("data-figure"));
      (figure.data || []).forEach(function (trace, index) {
        var colours = themedPaths(trace, "", {});
        Object.keys(colours).forEach(function (path) { colours[path] = [colours[path]]; });
        if (Object.keys(colours).length) Plotly.restyle(element, colours, [index]);
      });
      Plotly.relayout(element, merge(themedPaths(figure.layout || {}, "", {}), themeLayout()));
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
        fresh = fresh.map(function (point) { return [wallTime(point[0]), point[1]]; });
        var last = trace.x.length ? trace.x[trace.x.length - 1] : "";
        // Times are fixed-format wall times: a string comparison orders them (and the range
        // below is plain arithmetic on them, as if they were UTC).
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
        var point = fresh[trace.name] && [wallTime(fresh[trace.name][0]), fresh[trace.name][1]];
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
