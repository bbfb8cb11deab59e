// SRS's player page queries (srs_player.html, rtc_player.html, whep.html, whip.html),
// turned into stream URLs with SRS's rules, so links made for SRS keep working.
(function () {
  "use strict";
  var OWN = ["app", "autostart", "dir", "filename", "host", "hostname", "http_port", "pathname", "port",
    "server", "stream", "buffer", "schema", "vhost", "api", "path", "url", "source"];

  function query() {
    var out = {};
    new URLSearchParams(window.location.search).forEach(function (v, k) { out[k] = v; });
    return out;
  }

  // vhost= when it differs from the server, then the user's own extra params (e.g. a token).
  function extras(q, server) {
    var params = [];
    var vhost = q.vhost || window.location.hostname;
    if (server !== vhost && vhost !== "__defaultVhost__") params.push("vhost=" + vhost);
    Object.keys(q).forEach(function (k) {
      if (OWN.indexOf(k) < 0 && q[k]) params.push(k + "=" + q[k]);
    });
    return params;
  }

  function join(base, params) {
    return params.length ? base + (base.indexOf("?") >= 0 ? "&" : "?") + params.join("&") : base;
  }

  // srs_player.html: schema (http), server, port (8080 for http, else 1935), app (live), stream (livestream.flv).
  function flvUrl(q) {
    var schema = q.schema || "http";
    var server = q.server || window.location.hostname;
    var port = Number(q.port || (schema === "http" ? 8080 : 1935));
    var defaults = { http: 80, https: 443, rtmp: 1935 };
    var base = schema + "://" + server + (defaults[schema] === port ? "" : ":" + port) +
      "/" + (q.app || "live") + "/" + (q.stream || "livestream.flv");
    return join(base, extras(q, server));
  }

  // rtc_player.html: webrtc://server[:api]/app/stream.
  function rtcUrl(q) {
    var server = q.server || window.location.hostname;
    var params = extras(q, server);
    if (q.schema && window.location.protocol !== q.schema + ":") params.unshift("schema=" + q.schema);
    var base = "webrtc://" + server + (q.api ? ":" + q.api : "") + "/" + (q.app || "live") + "/" + (q.stream || "livestream");
    return join(base, params);
  }

  // whip.html / whep.html: the page's protocol, server, api (1985, 1990 over https), path.
  function whipWhepUrl(q, apiPath) {
    var server = q.server || window.location.hostname;
    var api = q.api || (window.location.protocol === "http:" ? "1985" : "1990");
    var params = ["app=" + (q.app || "live"), "stream=" + (q.stream || "livestream")].concat(extras(q, server));
    if (q.schema && window.location.protocol !== q.schema + ":") params.push("schema=" + q.schema);
    return window.location.protocol + "//" + server + ":" + api + (q.path || apiPath) + "?" + params.join("&");
  }

  // The player page with `url`, started when SRS's autostart=true (or 1) was given.
  function toPlayer(url, q) {
    var target = "/players/?url=" + encodeURIComponent(url);
    if (/^(1|true)$/.test(q.autostart || "")) target += "&autostart=1";
    window.location.replace(target);
  }

  window.SrsQuery = { query: query, flvUrl: flvUrl, rtcUrl: rtcUrl, whipWhepUrl: whipWhepUrl, toPlayer: toPlayer };
})();
