// The start form of locustfiles/decompose.py (added by locustfiles/cockpit.py): unfold "Custom parameters",
// which holds what a run of this tool is (stages or arrivals and rates, cases, target, SLO, calibration).
(function () {
  var tries = 0;
  var timer = setInterval(function () {
    tries += 1;
    var buttons = document.querySelectorAll("form button[aria-expanded]");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].textContent.trim() === "Custom parameters") {
        if (buttons[i].getAttribute("aria-expanded") === "false") buttons[i].click();
        clearInterval(timer);
        return;
      }
    }
    if (tries > 100) clearInterval(timer);   // no start form on this page (a run is going on)
  }, 100);
})();
