/* gunicorn-pyinstrument: what the serve page's scripts share (loaded before them). */
var GunicornPyinstrument = (function () {
  "use strict";

  // Seconds as milliseconds, with as many decimals as the size needs.
  function ms(seconds) {
    var v = seconds * 1000;
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
  }

  // A page's data, from this server only.
  function fetchJSON(url, what) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(what + ": HTTP " + response.status);
      return response.json();
    });
  }

  // The error in place of the picture, and the element marked (the tests wait for data-ready).
  function fail(element, error) {
    var message = document.createElement("p");
    message.className = "error";
    message.textContent = String(error.message || error);
    element.appendChild(message);
    element.setAttribute("data-ready", "error");
  }

  return { ms: ms, fetchJSON: fetchJSON, fail: fail };
})();
