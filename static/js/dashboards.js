// A dashboard's variables and time range: a changed choice reloads the page with it in the URL
// (form[data-autosubmit]), so a link reproduces the view.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-autosubmit]");
    if (form) form.requestSubmit();
  });
})();
