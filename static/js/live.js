// Live updates: the htmx ws extension swaps the server-rendered fragments the socket pushes.
// This file only watches the socket's health: when it drops, it says so and makes the parts
// marked `data-poll` refresh themselves over HTTP every 10 s (they listen for `vigil:poll`)
// until the socket is back.
//
// <div hx-ext="ws" ws-connect="/ws/..." data-live data-live-filters="#filters"></div>
(function () {
  "use strict";
  var POLL_MS = 10000;
  // Close codes the ws extension does not retry itself; 4401 means "log in again": not retried.
  var RETRIED_BY_HTMX = [1006, 1011, 1012, 1013];
  var NOT_RETRIED = [4401, 4403];
  var pollTimer = null;
  var wasOpen = false;
  var socket = null;

  function notice() {
    return document.getElementById("live-notice");
  }

  function poll() {
    document.querySelectorAll("[data-poll]").forEach(function (element) {
      htmx.trigger(element, "vigil:poll");
    });
  }

  function setDown(down) {
    document.documentElement.classList.toggle("live-down", down);
    var element = notice();
    if (element) element.hidden = !down;
    if (down && pollTimer === null) {
      pollTimer = window.setInterval(poll, POLL_MS);
    } else if (!down && pollTimer !== null) {
      window.clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  function filtersOf(liveElement) {
    var selector = liveElement.getAttribute("data-live-filters");
    var form = selector && document.querySelector(selector);
    return form ? new URLSearchParams(new FormData(form)).toString() : "";
  }

  function sendFilters(liveElement) {
    if (socket && liveElement.hasAttribute("data-live-filters")) {
      socket.send(JSON.stringify({ filters: filtersOf(liveElement) }), liveElement);
    }
  }

  document.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.socketWrapper;
    var liveElement = event.target;
    liveElement.setAttribute("data-live-state", "open");
    sendFilters(liveElement);
    if (wasOpen) poll(); // catch up on what happened while the socket was down
    wasOpen = true;
    setDown(false);
  });

  document.addEventListener("htmx:wsClose", function (event) {
    var liveElement = event.target;
    var code = event.detail.event.code;
    liveElement.setAttribute("data-live-state", "closed");
    setDown(true);
    if (RETRIED_BY_HTMX.indexOf(code) < 0 && NOT_RETRIED.indexOf(code) < 0) {
      var wrapper = event.detail.socketWrapper;
      window.setTimeout(function () {
        if (document.body.contains(liveElement)) wrapper.reconnect();
      }, 5000 + Math.random() * 5000);
    }
  });

  // A changed filter starts its list over at the first page (a form's `page` field, if any).
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (!form || event.target.name === "page") return;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name === "page" && field.type === "hidden") field.value = "1";
    });
  });

  // A filter change swaps the part over HTTP; the socket then pushes with the same filters.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest("form");
    if (!form || !form.id) return;
    document.querySelectorAll("[data-live-filters='#" + form.id + "']").forEach(sendFilters);
  });
})();
