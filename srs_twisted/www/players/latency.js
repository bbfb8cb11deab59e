// The latency meter: publish this page's clock as a pattern over WHIP, play it back over
// several protocols, read the pattern from every decoded frame, and subtract.
// For automation: window.srsLatency = {webrtc: {current, p50, p95, n}, flv: {...}, ...} (ms),
// and window.srsLatencyState = {state, error}.
(function () {
  "use strict";
  // The pattern: 27 blocks in the top fifth of a 640x360 frame: white and black guards,
  // 24 bits of the clock (ms, modulo 2^24, most significant first), and an even-parity block.
  var W = 640, H = 360, BAND = 72, X0 = 9, BLOCK = 23, BITS = 24, MOD = 1 << BITS;
  var MAX_LATENCY = 60000; // a reading further off is not our pattern
  var KEEP = 3000; // samples per protocol
  var NAMES = { webrtc: "WebRTC", flv: "HTTP-FLV", llhls: "LL-HLS", hls: "HLS", dash: "DASH" };

  var state = window.srsLatencyState = { state: "idle", error: "" };
  var results = window.srsLatency = {};
  var players = {}; // protocol -> {video, handle, samples, fig, lastRead, restarts}
  var publisher = null, drawTimer = null, statsTimer = null, sound = null;
  var chart = new SrsChart(document.getElementById("chart"), 300, "ms");

  function clock() { return Math.floor(performance.timeOrigin + performance.now()); }

  function setState(s, error) {
    state.state = s;
    if (error) state.error = error;
    document.getElementById("pub-state").textContent = s;
    var el = document.getElementById("status");
    el.textContent = error || "";
    el.className = error ? "error" : "muted";
  }

  // ---- the pattern ----
  function drawPattern(g, t) {
    var value = t % MOD, ones = 0;
    g.fillStyle = "#404040";
    g.fillRect(0, 0, W, H);
    for (var i = 0; i < BITS + 3; i++) {
      var white;
      if (i === 0) white = true;
      else if (i === 1) white = false;
      else if (i < BITS + 2) {
        white = ((value >> (BITS + 1 - i)) & 1) === 1;
        if (white) ones++;
      } else white = ones % 2 === 1;
      g.fillStyle = white ? "#ffffff" : "#000000";
      g.fillRect(X0 + i * BLOCK, 0, BLOCK, BAND);
    }
    g.fillStyle = "#ffffff";
    g.font = "bold 56px monospace";
    g.fillText(String(t % 100000).padStart(5, "0") + " ms", 150, 190);
    g.fillRect((t / 4) % W, 250, 16, 80); // motion, so every frame differs
  }

  // The clock value in `video`'s current frame, or null when no pattern is readable.
  function readPattern(video, g) {
    if (!video.videoWidth) return null;
    g.drawImage(video, 0, 0, video.videoWidth, video.videoHeight * BAND / H, 0, 0, W, BAND);
    var lum = [];
    for (var i = 0; i < BITS + 3; i++) {
      var d = g.getImageData(X0 + i * BLOCK + 7, 16, 9, 40).data, sum = 0;
      for (var k = 0; k < d.length; k += 4) sum += d[k] + d[k + 1] + d[k + 2];
      lum.push(sum / (d.length / 4) / 3);
    }
    if (lum[0] - lum[1] < 60) return null;
    var cut = (lum[0] + lum[1]) / 2, value = 0, ones = 0;
    for (var b = 2; b < BITS + 2; b++) {
      var bit = lum[b] > cut ? 1 : 0;
      value = value * 2 + bit;
      ones += bit;
    }
    if ((ones % 2 === 1) !== (lum[BITS + 2] > cut)) return null;
    return value;
  }

  // ---- the players ----
  function percentile(sorted, p) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))];
  }

  function addPlayer(protocol, url) {
    var panel = document.createElement("div");
    panel.className = "panel";
    panel.innerHTML = "<b></b> <span class='figures'></span>";
    panel.querySelector("b").textContent = NAMES[protocol] || protocol;
    var video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    panel.appendChild(video);
    document.getElementById("grid").appendChild(panel);
    var scratch = document.createElement("canvas");
    scratch.width = W;
    scratch.height = BAND;
    var p = players[protocol] = {
      url: url, video: video, samples: [], fig: panel.querySelector(".figures"), handle: null,
      lastRead: performance.now(), restarts: 0, g: scratch.getContext("2d", { willReadFrequently: true }),
    };
    var onFrame = function () {
      if (players[protocol] !== p) return;
      var value = readPattern(video, p.g);
      if (value !== null) {
        var latency = ((clock() % MOD) - value + MOD) % MOD;
        if (latency < MAX_LATENCY) {
          p.samples.push(latency);
          if (p.samples.length > KEEP) p.samples.shift();
          p.lastRead = performance.now();
        }
      }
      schedule();
    };
    var schedule = function () {
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
      else setTimeout(onFrame, 20);
    };
    schedule();
    startPlayer(protocol);
  }

  function startPlayer(protocol) {
    var p = players[protocol];
    if (p.handle) p.handle.stop();
    p.lastRead = performance.now();
    p.handle = SrsPlay.start(p.url, p.video, {
      lowLatency: protocol !== "hls",
      fail: function (message) { p.error = message; },
    });
  }

  // Once a second: the figures, the chart, and a restart of a player that read nothing for 15 s
  // (a playlist not written yet, a player that gave up), at most 20 times.
  function tick() {
    var now = performance.now();
    var row = [];
    Object.keys(players).forEach(function (protocol) {
      var p = players[protocol];
      var recent = p.samples.slice(-30);
      var sorted = p.samples.slice().sort(function (a, b) { return a - b; });
      var current = recent.length ? recent.slice().sort(function (a, b) { return a - b; })[recent.length >> 1] : null;
      var r = results[protocol] = { current: current, p50: percentile(sorted, 50), p95: percentile(sorted, 95), n: sorted.length };
      p.fig.textContent = r.n ? "now " + r.current + " p50 " + r.p50 + " p95 " + r.p95 + " (n=" + r.n + ")" : (p.error || "waiting");
      if (current !== null && now - p.lastRead < 2000) chart.add(now / 1000, current, NAMES[protocol] || protocol);
      if (now - p.lastRead > 15000 && p.restarts < 20) {
        p.restarts += 1;
        p.error = "";
        startPlayer(protocol);
      }
      row.push([NAMES[protocol] || protocol, r.current, r.p50, r.p95, r.n, p.url]);
    });
    var body = document.getElementById("table").tBodies[0];
    body.innerHTML = "";
    row.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) {
        var td = document.createElement("td");
        td.textContent = c === null ? "-" : c;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  // ---- start and stop ----
  function urls(info, path) {
    var host = window.location.hostname;
    var http = "http://" + host + ":" + (info.http[0] || 8080) + "/" + path;
    return {
      webrtc: "webrtc://" + host + ":" + (info.api[0] || 1985) + "/" + path,
      flv: http + ".flv", llhls: http + ".m3u8", hls: http + ".m3u8", dash: http + ".mpd",
    };
  }

  function stop() {
    Object.keys(players).forEach(function (k) {
      if (players[k].handle) players[k].handle.stop();
      players[k].video.parentNode.remove();
    });
    players = {};
    if (publisher) publisher.close();
    if (sound) sound.stop();
    clearInterval(drawTimer);
    clearInterval(statsTimer);
    publisher = sound = null;
    setState("idle");
  }

  function start() {
    stop();
    var path = document.getElementById("stream").value.replace(/^\/+|\/+$/g, "");
    var protocols = document.getElementById("protocols").value.split(",").map(function (s) { return s.trim(); })
      .filter(function (s) { return NAMES[s]; });
    var canvas = document.getElementById("source");
    var g = canvas.getContext("2d");
    drawPattern(g, clock());
    drawTimer = setInterval(function () { drawPattern(g, clock()); }, 1000 / 60);
    var media = canvas.captureStream(30);
    sound = SrsRtc.tone();
    media.addTrack(sound.track);
    setState("starting");
    fetch("/server.json", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (info) {
      var u = urls(info, path);
      var parts = path.split("/");
      var whip = "http://" + window.location.hostname + ":" + (info.api[0] || 1985) + "/rtc/v1/whip/?app=" +
        encodeURIComponent(parts.slice(0, -1).join("/")) + "&stream=" + encodeURIComponent(parts[parts.length - 1]);
      return SrsRtc.publish(whip, media).then(function (session) {
        publisher = session;
        setState("publishing");
        session.pc.addEventListener("connectionstatechange", function () {
          if (state.state !== "failed") setState(session.pc.connectionState); // keep a failure's message
        });
        protocols.forEach(function (protocol) { addPlayer(protocol, u[protocol]); });
        statsTimer = setInterval(tick, 1000);
      });
    }).catch(function (e) { setState("failed", e.message || String(e)); });
  }

  document.getElementById("form").addEventListener("submit", function (e) { e.preventDefault(); start(); });
  document.getElementById("stop").addEventListener("click", stop);
  var q = new URLSearchParams(window.location.search);
  if (q.get("stream")) document.getElementById("stream").value = q.get("stream");
  if (q.get("protocols")) document.getElementById("protocols").value = q.get("protocols");
  if (/^(1|true)$/.test(q.get("autostart") || "")) start();
  window.srsLatencyPattern = { draw: drawPattern, read: readPattern, MOD: MOD };
})();
