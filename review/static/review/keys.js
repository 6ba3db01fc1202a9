// One-key review: b benign, a anomalous, s skip, c claim, u undo, n next, q back to the list, ? help. Each key
// presses the button, submits the form or follows the link marked data-key, so everything also works without
// this script (the help is a <details> element that opens with a click).
(function () {
  "use strict";
  var TEXT_TYPES = ["text", "search", "email", "number", "password", "url", "tel", "date", "file"];

  function typing(target) {
    if (!target || !target.tagName) return false;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable) return true;
    return target.tagName === "INPUT" && TEXT_TYPES.indexOf((target.type || "text").toLowerCase()) !== -1;
  }

  var busy = false; // one action per page: a second key press while the first one loads would act twice

  window.addEventListener("pageshow", function () {
    busy = false;
  });

  document.addEventListener("keydown", function (event) {
    if (busy) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var help = document.getElementById("keys-help");
    if (event.key === "?" && help) {
      event.preventDefault();
      help.open = !help.open;
      if (help.open) help.scrollIntoView({ block: "nearest" });
      return;
    }
    if (event.key === "Escape" && help && help.open) {
      help.open = false;
      return;
    }
    var el = document.querySelector('[data-key="' + event.key + '"]');
    if (!el) return;
    event.preventDefault();
    busy = true;
    if (el.tagName === "FORM") {
      el.requestSubmit();
    } else {
      el.click();
    }
  });
})();
