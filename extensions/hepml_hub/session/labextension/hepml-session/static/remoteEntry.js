// hepml-session: a JupyterLab 4 federated extension written by hand (no shared modules, so
// no build step). It polls <base>/hepml/notices (served by the hepml_hub.session server
// extension) and shows each new notice as a notification that stays until dismissed,
// through the "apputils:notify" command.
(function () {
  "use strict";
  var NAME = "hepml-session";
  var POLL_MS = 5000;

  function xsrfToken() {
    var match = document.cookie.match("\\b_xsrf=([^;]*)\\b");
    return match ? decodeURIComponent(match[1]) : "";
  }

  var notices = {
    id: "hepml-session:notices",
    description: "Show the hub's notices for this session (GPU culling warnings).",
    autoStart: true,
    activate: function (app) {
      var shown = {};
      var url = app.serviceManager.serverSettings.baseUrl + "hepml/notices";
      function poll() {
        return fetch(url, { credentials: "same-origin", headers: { "X-XSRFToken": xsrfToken() } })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (list) {
            list.forEach(function (n) {
              if (shown[n.id]) { return; }
              shown[n.id] = true;
              app.commands.execute("apputils:notify", {
                message: n.message,
                type: n.type,
                options: { autoClose: false, data: { hepmlNotice: n.id } }
              });
            });
          })
          .catch(function (e) { console.warn("hepml-session: notices unavailable", e); });
      }
      app.restored.then(poll);
      window.setInterval(poll, POLL_MS);
    }
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error(NAME + " has no module " + module));
      }
      return Promise.resolve(function () { return { __esModule: true, default: [notices] }; });
    }
  };
})();
