// The landing page: the server's version and this host's publish and play URLs.
(function () {
  "use strict";
  var info = null;

  function row(table, name, url) {
    var tr = document.createElement("tr");
    var th = document.createElement("th");
    th.textContent = name;
    var td = document.createElement("td");
    td.className = "url";
    td.textContent = url;
    var act = document.createElement("td");
    if (SrsUrls.playable(url) && table.id === "play") {
      var a = document.createElement("a");
      a.href = "/players/?url=" + encodeURIComponent(url) + "&autostart=1";
      a.textContent = "play";
      act.appendChild(a);
    } else if (name === "WHIP") {
      var w = document.createElement("a");
      w.href = "/players/whip.html?url=" + encodeURIComponent(url);
      w.textContent = "publish from this browser";
      act.appendChild(w);
    }
    tr.append(th, td, act);
    table.tBodies[0].appendChild(tr);
  }

  function render() {
    if (!info) return;
    var urls = SrsUrls.streamUrls(info, document.getElementById("stream").value.replace(/^\/+|\/+$/g, ""));
    ["publish", "play"].forEach(function (kind) {
      var table = document.getElementById(kind);
      table.tBodies[0].innerHTML = "";
      urls[kind].forEach(function (pair) { row(table, pair[0], pair[1]); });
    });
  }

  document.getElementById("stream").addEventListener("input", render);
  SrsUrls.serverInfo().then(function (got) {
    info = got;
    var version = document.getElementById("version");
    if (!info) {
      version.textContent = "server info unavailable";
      return;
    }
    version.textContent = info.server + " " + info.version + " (SRS " + info.srs_version + ")";
    render();
  });
})();
