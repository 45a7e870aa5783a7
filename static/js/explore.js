// Explore's query box. htmx fetches the suggestions for the text at the caret (#promql-cursor,
// kept here in characters, as the server counts them); this script moves through them with the
// arrow keys and splices the picked one in (each says which text before the caret it replaces).
(function () {
  "use strict";

  function box() { return document.getElementById("promql"); }
  function list() { return document.getElementById("promql-suggestions"); }
  function options() {
    var holder = list();
    return holder && !holder.hidden ? Array.prototype.slice.call(holder.querySelectorAll("[role=option]")) : [];
  }
  function active() { return options().filter(function (option) { return option.getAttribute("aria-selected") === "true"; })[0]; }

  function noteCursor() {
    var input = box();
    var cursor = document.getElementById("promql-cursor");
    // Array.from counts characters, not UTF-16 units, as Python's string offsets do.
    if (input && cursor) cursor.value = Array.from(input.value.slice(0, input.selectionStart)).length;
  }

  function setActive(option) {
    options().forEach(function (each) { each.setAttribute("aria-selected", String(each === option)); });
    var input = box();
    if (option) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function close() {
    var holder = list();
    var input = box();
    if (holder) holder.hidden = true;
    if (input) {
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }
  }

  function pick(option) {
    var input = box();
    var caret = input.selectionStart;
    var before = input.value.slice(0, caret);
    var after = input.value.slice(caret);
    var replaces = option.getAttribute("data-replaces");
    var skip = option.getAttribute("data-skip");
    if (replaces && before.slice(-replaces.length) === replaces) before = before.slice(0, -replaces.length);
    before += option.getAttribute("data-insert");
    if (skip && after.indexOf(skip) === 0) after = after.slice(skip.length);
    input.value = before + after;
    input.focus();
    input.setSelectionRange(before.length, before.length);
    close();
    noteCursor();
    // What follows a pick may have its own suggestions: a label's values after its name.
    htmx.trigger(input, "vigil:suggest");
  }

  function move(step) {
    var all = options();
    if (!all.length) return;
    var index = all.indexOf(active()) + step;
    if (index < 0) index = all.length - 1;
    if (index >= all.length) index = 0;
    setActive(all[index]);
  }

  document.addEventListener("input", function (event) {
    if (event.target.id === "promql") noteCursor();
  });
  document.addEventListener("click", function (event) {
    if (event.target.id === "promql") noteCursor();
    var option = event.target.closest && event.target.closest("#promql-suggestions [role=option]");
    if (option) pick(option);
  });
  // Keep the focus in the box while a suggestion is clicked.
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest("#promql-suggestions")) event.preventDefault();
  });
  document.addEventListener("focusout", function (event) {
    if (event.target.id === "promql") close();
  });
  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "promql" || !options().length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      move(event.key === "ArrowDown" ? 1 : -1);
    } else if ((event.key === "Enter" || event.key === "Tab") && active()) {
      event.preventDefault();
      pick(active());
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });

  htmx.onLoad(function (element) {
    if (element.id !== "promql-suggestions") return;
    var input = box();
    // An answer that comes after the box lost the focus is not shown.
    if (!input || document.activeElement !== input) element.hidden = true;
    input && input.setAttribute("aria-expanded", String(!element.hidden));
  });
})();
