// The console: reads the SRS HTTP API only (summaries, streams, clients, vhosts), once a second.
// The API base is ?api=, else the one saved from the last Connect, else this origin when it serves
// the API, else this host's API port from /server.json (1985 when unknown).
// State for automation: window.srsConsole = {api, polls, error, needAuth}.
(function () {
  "use strict";
  var POLL_MS = 1000;
  var CHART_SECONDS = 300;
  var state = window.srsConsole = { api: "", polls: 0, error: "", needAuth: false };
  var auth = sessionStorage.getItem("srs-console-auth") || "";
  var info = null; // /server.json
  var pages = ""; // base URL of the HTTP server's pages
  var rows = {}; // stream id -> {tr, chart, last: {t, recv, frames}}
  var lastSummary = null;
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function human(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24, m = Math.floor(seconds / 60) % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (seconds % 60) + "s";
    return seconds + "s";
  }

  function kbps(n) { return n >= 10000 ? (n / 1000).toFixed(1) + " Mbps" : Math.round(n) + " kbps"; }

  // GET or DELETE on the API; resolves with the JSON body, rejects with Error("401") etc.
  function api(method, path) {
    var headers = {};
    if (auth) headers.Authorization = "Basic " + auth;
    return fetch(state.api + path, { method: method, headers: headers, credentials: "omit", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) throw new Error("401");
        if (!r.ok) throw new Error("HTTP " + r.status + " for " + path);
        return r.json();
      });
  }

  function showLogin(message) {
    state.needAuth = true;
    $("login").classList.remove("hidden");
    $("login-error").textContent = message || "";
    $("api-state").textContent = "needs credentials";
  }

  function renderSummary(s) {
    var self = s.self, sys = s.system;
    $("version").textContent = "SRS API " + self.version + " at " + (state.api || window.location.host);
    $("s-cpu").textContent = self.cpu_percent.toFixed(1) + "% / " + sys.cpu_percent.toFixed(1) + "%";
    $("s-mem").textContent = (self.mem_kbyte / 1024).toFixed(0) + " MB";
    $("s-conn").textContent = sys.conn_srs;
    $("s-uptime").textContent = human(self.srs_uptime);
    if (lastSummary && sys.srs_sample_time > lastSummary.srs_sample_time) {
      var dt = (sys.srs_sample_time - lastSummary.srs_sample_time) / 1000;
      $("s-in").textContent = kbps((sys.srs_recv_bytes - lastSummary.srs_recv_bytes) * 8 / 1000 / dt);
      $("s-out").textContent = kbps((sys.srs_send_bytes - lastSummary.srs_send_bytes) * 8 / 1000 / dt);
    }
    lastSummary = sys;
  }

  function kickButton(id, label) {
    var b = el("button", label || "Kick", "danger kick");
    b.dataset.client = id;
    b.addEventListener("click", function () {
      b.disabled = true;
      api("DELETE", "/api/v1/clients/" + encodeURIComponent(id))
        .then(function (r) { if (r.code !== 0) b.textContent = "error " + r.code; })
        .catch(function (e) { b.textContent = e.message; });
    });
    return b;
  }

  function videoText(v) {
    if (!v) return "-";
    return [v.codec, v.profile, v.width && v.height ? v.width + "x" + v.height : ""].filter(Boolean).join(" ");
  }

  function audioText(a) {
    if (!a) return "-";
    return [a.codec, a.sample_rate ? a.sample_rate + " Hz" : "", a.channel ? a.channel + " ch" : ""].filter(Boolean).join(" ");
  }

  function playUrl(stream, vhostName) {
    var http = info && info.http.length ? info.http[0] : 8080;
    var q = vhostName && vhostName !== "__defaultVhost__" ? "?vhost=" + encodeURIComponent(vhostName) : "";
    return window.location.protocol + "//" + window.location.hostname + ":" + http + stream.url + ".flv" + q;
  }

  function renderStreams(streams, clients, vhostNames, nowMs) {
    var body = $("streams").tBodies[0];
    var seen = {};
    var byId = {};
    clients.forEach(function (c) { byId[c.id] = c; });
    if (!streams.length) {
      body.innerHTML = "";
      body.appendChild(el("tr")).appendChild(el("td", "no stream", "empty")).colSpan = 10;
      rows = {};
      return;
    }
    var empty = body.querySelector("td.empty");
    if (empty) body.innerHTML = "";
    streams.forEach(function (s) {
      seen[s.id] = true;
      var row = rows[s.id];
      if (!row) {
        var tr = el("tr");
        tr.dataset.stream = s.id;
        for (var i = 0; i < 10; i++) tr.appendChild(el("td"));
        var canvas = el("canvas", null, "chart");
        canvas.width = 240;
        canvas.height = 44;
        tr.cells[5].appendChild(canvas);
        row = rows[s.id] = { tr: tr, chart: new SrsChart(canvas, CHART_SECONDS), last: null };
        body.appendChild(tr);
      }
      var t = nowMs / 1000;
      var rate = s.kbps.recv_30s, fps = "";
      if (row.last && t > row.last.t) {
        rate = (s.recv_bytes - row.last.recv) * 8 / 1000 / (t - row.last.t);
        fps = ((s.frames - row.last.frames) / (t - row.last.t)).toFixed(0);
      }
      row.last = { t: t, recv: s.recv_bytes, frames: s.frames };
      row.chart.add(t, Math.max(0, rate));
      var pub = s.publish && s.publish.cid ? byId[s.publish.cid] : null;
      var cells = row.tr.cells;
      var name = s.app + "/" + s.name;
      if (cells[0].dataset.name !== name) {
        cells[0].dataset.name = name;
        cells[0].innerHTML = "";
        var link = el("a", name);
        link.href = pages + "/players/?url=" + encodeURIComponent(playUrl(s, vhostNames[s.vhost])) + "&autostart=1";
        link.target = "_blank";
        cells[0].appendChild(link);
      }
      cells[1].textContent = videoText(s.video);
      cells[2].textContent = audioText(s.audio);
      cells[3].textContent = fps;
      cells[4].textContent = Math.round(rate);
      cells[6].textContent = pub ? pub.type + " " + pub.ip : (s.publish.active ? "yes" : "none");
      cells[7].textContent = Math.max(0, s.clients - (s.publish.active ? 1 : 0));
      cells[8].textContent = pub ? human(pub.alive) : "-";
      var cid = s.publish && s.publish.active ? s.publish.cid : "";
      if ((cells[9].dataset.client || "") !== cid) {
        cells[9].dataset.client = cid;
        cells[9].innerHTML = "";
        if (cid) cells[9].appendChild(kickButton(cid, "Kick publisher"));
      }
    });
    Object.keys(rows).forEach(function (id) {
      if (!seen[id]) { rows[id].tr.remove(); delete rows[id]; }
    });
  }

  function renderClients(clients) {
    var body = $("clients").tBodies[0];
    body.innerHTML = "";
    if (!clients.length) {
      body.appendChild(el("tr")).appendChild(el("td", "no client", "empty")).colSpan = 8;
      return;
    }
    clients.forEach(function (c) {
      var tr = el("tr");
      tr.dataset.client = c.id;
      [c.id, c.type, c.ip, c.url, c.publish ? "publisher" : "player", human(c.alive),
        c.kbps.recv_30s + " / " + c.kbps.send_30s].forEach(function (v) { tr.appendChild(el("td", v)); });
      tr.appendChild(el("td")).appendChild(kickButton(c.id));
      body.appendChild(tr);
    });
  }

  function renderVhosts(vhosts) {
    var body = $("vhosts").tBodies[0];
    body.innerHTML = "";
    vhosts.forEach(function (v) {
      var tr = el("tr");
      [v.name, v.enabled ? "yes" : "no", v.streams, v.clients, v.kbps.recv_30s + " / " + v.kbps.send_30s,
        v.hls && v.hls.enabled ? "on" : "off"].forEach(function (x) { tr.appendChild(el("td", x)); });
      body.appendChild(tr);
    });
  }

  function renderConfig() {
    // The last reload's result, when the raw API is on (SRS's rpc=reload-fetch).
    api("GET", "/api/v1/raw?rpc=reload-fetch").then(function (r) {
      var cell = $("s-config");
      if (r.code === 0 && r.data) {
        cell.textContent = r.data.err ? "reload failed" : "ok";
        cell.title = r.data.msg || "";
        cell.className = "value " + (r.data.err ? "error" : "ok");
      } else {
        cell.textContent = "loaded";
        cell.title = "raw API off: no reload result (code " + r.code + ")";
      }
    }).catch(function () {});
  }

  function poll() {
    Promise.all([
      api("GET", "/api/v1/summaries"),
      api("GET", "/api/v1/streams/?count=100"),
      api("GET", "/api/v1/clients/?count=200"),
      api("GET", "/api/v1/vhosts/"),
    ]).then(function (r) {
      state.polls += 1;
      state.error = "";
      state.needAuth = false;
      $("login").classList.add("hidden");
      $("api-state").textContent = "connected";
      $("api-state").className = "ok";
      var vhostNames = {};
      r[3].vhosts.forEach(function (v) { vhostNames[v.id] = v.name; });
      renderSummary(r[0].data);
      renderStreams(r[1].streams, r[2].clients, vhostNames, r[0].data.now_ms);
      renderClients(r[2].clients);
      renderVhosts(r[3].vhosts);
      if (state.polls % 10 === 1) renderConfig();
    }).catch(function (e) {
      state.error = e.message;
      if (e.message === "401") {
        showLogin(auth ? "wrong username or password" : "");
        stopPolling();
        return;
      }
      $("api-state").textContent = "cannot read " + (state.api || "this origin") + ": " + e.message;
      $("api-state").className = "error";
    });
  }

  function stopPolling() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  function connect(base) {
    stopPolling();
    state.api = base.replace(/\/+$/, "");
    $("api").value = state.api || window.location.origin;
    lastSummary = null;
    poll();
    timer = setInterval(poll, POLL_MS);
  }

  $("api-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var base = $("api").value.trim();
    localStorage.setItem("srs-console-api", base);
    connect(base === window.location.origin ? "" : base);
  });

  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    auth = btoa($("username").value + ":" + $("password").value);
    sessionStorage.setItem("srs-console-auth", auth);
    connect(state.api);
  });

  function here() {
    return Number(window.location.port || (window.location.protocol === "https:" ? 443 : 80));
  }

  function defaultApi() {
    var given = new URLSearchParams(window.location.search).get("api");
    if (given) return given;
    var saved = localStorage.getItem("srs-console-api");
    if (saved) return saved === window.location.origin ? "" : saved;
    if (!info) return window.location.protocol + "//" + window.location.hostname + ":1985";
    var ports = window.location.protocol === "https:" ? info.api_https : info.api;
    if (!ports.length) ports = info.api;
    if (ports.indexOf(here()) >= 0) return "";
    var scheme = info.api_https.length && window.location.protocol === "https:" ? "https:" : "http:";
    return scheme + "//" + window.location.hostname + ":" + (ports[0] || 1985);
  }

  fetch("/server.json", { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; })
    .catch(function () { return null; })
    .then(function (got) {
      info = got;
      // On the API's own port the other pages are on the HTTP server's.
      if (info && info.http.length && info.http.indexOf(here()) < 0) {
        pages = window.location.protocol + "//" + window.location.hostname + ":" + info.http[0];
        document.querySelectorAll("header a.pages").forEach(function (a) {
          a.href = pages + a.getAttribute("href");
        });
      }
      connect(defaultApi());
    });
})();
