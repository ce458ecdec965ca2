// The character counter of long answers: "1234 of 20000 characters", kept up to date while the
// student types. The page works without it (the server checks the length and says so).
(function () {
  "use strict";

  function attach(counter) {
    var field = document.getElementById(counter.dataset.countFor);
    var limit = field ? field.getAttribute("maxlength") : null;
    if (!field || !limit) {
      return;
    }
    var template = counter.dataset.template || "{count}";
    function update() {
      // Count as the server does: a line break is one character, astral characters are one.
      var length = Array.from(field.value.replace(/\r\n/g, "\n")).length;
      counter.textContent = template.replace("{count}", String(length));
    }
    field.addEventListener("input", update);
    update();
  }

  function start() {
    document.querySelectorAll("[data-count-for]").forEach(attach);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
