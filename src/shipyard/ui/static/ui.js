/* Shipyard UI: the one page script (the Content-Security-Policy allows no inline script).
 *
 * Plots: every element with data-plot="ID" is drawn with Plotly from the JSON in
 * <script type="application/json" id="ID">; a click on a point whose customdata is a
 * /ui/ link opens it (a flagged window's detail). */
(function () {
  "use strict";

  function drawPlots() {
    if (typeof window.Plotly === "undefined") {
      return;
    }
    document.querySelectorAll("[data-plot]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-plot"));
      if (!source) {
        return;
      }
      var figure;
      try {
        figure = JSON.parse(source.textContent);
      } catch (error) {
        return;
      }
      if (!figure.data || figure.data.length === 0) {
        element.classList.add("empty");
        return;
      }
      window.Plotly.newPlot(element, figure.data, figure.layout || {}, {
        displayModeBar: false,
        responsive: true,
      });
      element.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var link = point && point.customdata;
        if (typeof link === "string" && link.indexOf("/ui/") === 0) {
          window.location.assign(link);
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawPlots);
  } else {
    drawPlots();
  }
})();
