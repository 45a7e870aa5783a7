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

  // A gauge panel's dials (indicator traces) laid out for the size the chart is drawn at, as
  // Grafana does: the grid of rows and columns that gives each dial the most room; a dial too
  // small for its tick labels loses them, and its title is cut to its cell's width.
  var GAUGE_ASPECT = 1.6; // a dial with its number is about 1.6 times as wide as it is high
  var GAUGE_TITLE_PX = 18;
  var GAUGE_GAP_PX = 16;
  var GAUGE_TICKS_MIN_PX = 120; // narrower, a dial's end labels crowd its arc and its neighbour

  function isGauges(figure) {
    var data = figure.data || [];
    return data.length > 0 && data.every(function (trace) { return trace.type === "indicator"; });
  }

  function gaugeGrid(count, width, height, titled) {
    var best = { dial: -1 };
    for (var columns = 1; columns <= count; columns++) {
      var rows = Math.ceil(count / columns);
      var cellWidth = width / columns - GAUGE_GAP_PX;
      var cellHeight = height / rows - GAUGE_GAP_PX - (titled ? GAUGE_TITLE_PX : 0);
      var dial = Math.min(cellWidth, cellHeight * GAUGE_ASPECT);
      if (dial > best.dial) best = { columns: columns, rows: rows, dial: dial, cellWidth: cellWidth, cellHeight: cellHeight };
    }
    return best;
  }

  // Each dial's domain, title and tick labels, in plotly's attribute paths.
  function gaugeFits(traces, width, height) {
    var titled = traces.some(function (trace) { return trace.title && trace.title.text; });
    var grid = gaugeGrid(traces.length, width, height, titled);
    var gapX = GAUGE_GAP_PX / 2 / width;
    var gapY = GAUGE_GAP_PX / 2 / height;
    var titleY = titled ? GAUGE_TITLE_PX / height : 0;
    return traces.map(function (trace, index) {
      var column = index % grid.columns;
      var row = Math.floor(index / grid.columns); // row 0 at the top
      var top = 1 - row / grid.rows;
      var title = (trace.title && trace.title.text) || "";
      var titleSize = (trace.title && trace.title.font && trace.title.font.size) || 11;
      // The end labels stand beside the dial's ends, outside its domain: shown only while the
      // dial left between them is still large enough.
      var labelsWidth = endLabelsWidth(trace.gauge && trace.gauge.axis);
      var ticks = Math.min(grid.cellWidth - 2 * labelsWidth, grid.cellHeight * GAUGE_ASPECT) >= GAUGE_TICKS_MIN_PX;
      var labels = ticks ? labelsWidth / width : 0;
      return {
        "domain.x": [column / grid.columns + gapX + labels, (column + 1) / grid.columns - gapX - labels],
        "domain.y": [top - 1 / grid.rows + gapY, top - gapY - titleY],
        "title.text": clipped(title, Math.floor(grid.cellWidth / (titleSize * 0.6))),
        "gauge.axis.showticklabels": ticks,
      };
    });
  }

  function endLabelsWidth(axis) {
    var texts = (axis && axis.ticktext) || ["100"];
    var size = (axis && axis.tickfont && axis.tickfont.size) || 11;
    return Math.max.apply(null, texts.map(function (text) { return String(text).length; })) * size * 0.6;
  }

  // Plotly text cut to ``characters`` with an ellipsis, never inside an escaped character.
  function clipped(text, characters) {
    var plain = text.replace(/&[^;]+;/g, "x");
    if (plain.length <= characters) return text;
    var cut = text.slice(0, Math.max(1, characters - 1)).replace(/&[^;]*$/, "");
    return cut + "…";
  }

  function setPath(target, path, value) {
    var keys = path.split(".");
    keys.slice(0, -1).forEach(function (key) {
      if (!target[key] || typeof target[key] !== "object") target[key] = {};
      target = target[key];
    });
    target[keys[keys.length - 1]] = value;
  }

  // Into the figure before it is first drawn; in place whenever the chart's size changes after
  // (a window resized, a phone turned).
  function fitGauges(element, figure) {
    if (!element.clientWidth || !element.clientHeight) return;
    var fits = gaugeFits(figure.data, element.clientWidth, element.clientHeight);
    if (!element.data) {
      fits.forEach(function (fit, index) {
        Object.keys(fit).forEach(function (path) { setPath(figure.data[index], path, fit[path]); });
      });
      return;
    }
    var update = {};
    Object.keys(fits[0]).forEach(function (path) {
      update[path] = fits.map(function (fit) { return fit[path]; });
    });
    Plotly.restyle(element, update);
  }

  var resizedGauges = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var element = entry.target;
      if (!element.isConnected) {
        resizedGauges.unobserve(element);
      } else if (element.data) {
        fitGauges(element, JSON.parse(element.getAttribute("data-figure")));
      }
    });
  });

  function draw(element) {
    var figure = inZone(JSON.parse(element.getAttribute("data-figure")));
    if (isGauges(figure)) {
      fitGauges(element, figure);
      resizedGauges.observe(element);
    }
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
