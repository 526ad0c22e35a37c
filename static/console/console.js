/* Console behaviour: draws Plotly charts from embedded JSON (works offline) and redraws them
   after htmx swaps. Every chart is a <div data-figure="ID"> next to <script id="ID"> JSON. */
(function () {
  "use strict";
  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  // on a phone the chart toolbar would sit on the chart's title: leave it out there
  if (window.matchMedia && window.matchMedia("(max-width: 700px)").matches) { config.displayModeBar = false; }

  function draw(root) {
    if (!window.Plotly) { return; }
    (root || document).querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) { return; }
      var fig = JSON.parse(source.textContent);
      window.Plotly.react(el, fig.data || [], fig.layout || {}, config);
      el.setAttribute("data-drawn", "true");
    });
  }

  function whenPlotly(callback, tries) {
    if (window.Plotly) { callback(); return; }
    if ((tries || 0) > 200) { return; }
    setTimeout(function () { whenPlotly(callback, (tries || 0) + 1); }, 25);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-figure]")) { whenPlotly(function () { draw(document); }); }
    // after a failed submit the page comes back with an error summary: read it out first
    var summary = document.querySelector("[data-error-summary]");
    if (summary) { summary.focus(); }
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    whenPlotly(function () { draw(event.target); });
  });
  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (token) { event.detail.headers["X-CSRFToken"] = token.value; }
  });
})();
