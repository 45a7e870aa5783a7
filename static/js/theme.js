// Theme: follows the system setting unless the user picked light or dark (kept in localStorage).
// Loaded synchronously in <head> so the stored choice applies before the first paint.
(function () {
  "use strict";
  var KEY = "vigil-theme";
  var ORDER = ["auto", "light", "dark"];
  var LABELS = { auto: "Auto", light: "Light", dark: "Dark" };

  function stored() {
    try {
      var value = localStorage.getItem(KEY);
      return ORDER.indexOf(value) >= 0 ? value : "auto";
    } catch (error) {
      return "auto";
    }
  }

  var current = stored();

  function apply(choice) {
    current = choice;
    var root = document.documentElement;
    if (choice === "auto") {
      root.removeAttribute("data-theme");
    } else {
      root.setAttribute("data-theme", choice);
    }
    document.querySelectorAll("[data-theme-label]").forEach(function (label) {
      label.textContent = LABELS[choice];
    });
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.title = choice === "auto" ? "Theme: follows the system" : "Theme: " + choice;
    });
    document.dispatchEvent(new CustomEvent("vigil:themechange"));
  }

  apply(current);

  document.addEventListener("DOMContentLoaded", function () {
    apply(current);
    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-theme-toggle]");
      if (!button) return;
      var next = ORDER[(ORDER.indexOf(current) + 1) % ORDER.length];
      try {
        localStorage.setItem(KEY, next);
      } catch (error) {
        // Private mode without storage: the choice lasts for this page only.
      }
      apply(next);
    });
  });

  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      document.dispatchEvent(new CustomEvent("vigil:themechange"));
    });
  }
})();

// The browser's time zone, for the server to show times in when the profile names none
// (accounts/time_zones.py reads the cookie). Kept in step on every page; a page written in
// another zone before the cookie said this one (the first visit) is loaded again, once, so
// even the first page shows local times.
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return;
  }
  var cookie = "vigil_tz=" + zone;
  // IANA names (letters, digits, "/", "_", "-", "+") are valid cookie values as they are, and
  // the server reads the value unquoted.
  if (!/^[\w\/+-]+$/.test(zone) || document.cookie.indexOf(cookie) >= 0) {
    return;
  }
  document.cookie = cookie + "; path=/; max-age=31536000; SameSite=Lax";
  var written = document.querySelector('meta[name="vigil-time-zone"]');
  var guessed = document.querySelector('meta[name="vigil-time-zone-guessed"]');
  // Only when the cookie took: a browser that refuses cookies would reload for ever.
  if (written && guessed && written.content !== zone && document.cookie.indexOf(cookie) >= 0) {
    window.location.reload();
  }
})();
