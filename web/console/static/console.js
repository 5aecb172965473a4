// breachwatch console: live countdowns (amber under 24 h, red under 4 h or overdue).
(function () {
  "use strict";
  function fmt(ms) {
    var neg = ms < 0, s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    var t = (d ? d + "d " : "") + h + "h " + (m < 10 ? "0" : "") + m + "m";
    return neg ? "overdue by " + t : t + " left";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var left = due - now;
      el.textContent = fmt(left);
      el.classList.toggle("red", left < 4 * 3600e3);
      el.classList.toggle("amber", left >= 4 * 3600e3 && left < 24 * 3600e3);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 15000); });
})();
