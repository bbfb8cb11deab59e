// URLs of this server's streams, shared by the landing page and the players.
// No dependencies; everything hangs off window.SrsUrls.
(function () {
  "use strict";

  // "[::1]" stays bracketed in URLs.
  function hostOf(loc) {
    return loc.hostname.indexOf(":") >= 0 ? "[" + loc.hostname + "]" : loc.hostname;
  }

  function withPort(scheme, host, port, defaultPort) {
    return scheme + "://" + host + (port && port !== defaultPort ? ":" + port : "");
  }

  // What /server.json says about this server (ports per service); null if it cannot be read.
  function serverInfo() {
    return fetch("/server.json", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  // The publish and play URLs of "app/stream" on this host, from /server.json's ports.
  function streamUrls(info, path, loc) {
    loc = loc || window.location;
    var host = hostOf(loc);
    var parts = path.split("/");
    var app = parts.slice(0, -1).join("/") || "live";
    var stream = parts[parts.length - 1] || "livestream";
    var http = loc.protocol === "https:" ? info.https[0] : info.http[0];
    var scheme = loc.protocol === "https:" ? "https" : "http";
    var api = info.api[0];
    var out = { publish: [], play: [] };
    if (info.rtmp.length) {
      out.publish.push(["RTMP", withPort("rtmp", host, info.rtmp[0], 1935) + "/" + app + "/" + stream]);
    }
    if (info.srt.length) {
      out.publish.push(["SRT", "srt://" + host + ":" + info.srt[0] + "?streamid=#!::r=" + app + "/" + stream + ",m=publish"]);
    }
    if (api && info.rtc.length) {
      var whip = "http://" + host + ":" + api + "/rtc/v1/whip/?app=" + app + "&stream=" + stream;
      out.publish.push(["WHIP", whip]);
    }
    if (http) {
      var base = withPort(scheme, host, http, scheme === "https" ? 443 : 80) + "/" + app + "/" + stream;
      out.play.push(["HTTP-FLV", base + ".flv"], ["HLS", base + ".m3u8"], ["DASH", base + ".mpd"]);
    }
    if (info.rtmp.length) {
      out.play.push(["RTMP", withPort("rtmp", host, info.rtmp[0], 1935) + "/" + app + "/" + stream]);
    }
    if (api && info.rtc.length) {
      out.play.push(["WebRTC (WHEP)", "webrtc://" + host + (api !== 1985 ? ":" + api : "") + "/" + app + "/" + stream]);
    }
    return out;
  }

  // Whether the player page can play this URL (RTMP and SRT are for other tools).
  function playable(url) {
    return /^(https?|wss?|webrtc):/i.test(url);
  }

  window.SrsUrls = { serverInfo: serverInfo, streamUrls: streamUrls, playable: playable, hostOf: hostOf };
})();
