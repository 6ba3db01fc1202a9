// One-key review: b benign, a anomalous, s skip, u undo, n next. Each key presses the button or submits
// the form marked data-key, so everything also works without this script.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT")) return;
    var el = document.querySelector('[data-key="' + event.key + '"]');
    if (!el) return;
    event.preventDefault();
    if (el.tagName === "FORM") {
      el.requestSubmit();
    } else {
      el.click();
    }
  });
})();
