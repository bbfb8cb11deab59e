// The WHIP publisher page: camera and microphone, or a canvas test pattern with a tone.
// State for automation: window.srsPublisher = {state, error, url}.
(function () {
  "use strict";
  var video = document.getElementById("video");
  var input = document.getElementById("url");
  var session = null;
  var media = null;
  var pattern = null;
  window.srsPublisher = { state: "idle", error: "", url: "" };

  function setState(state, error) {
    window.srsPublisher.state = state;
    document.getElementById("state").textContent = state;
    var el = document.getElementById("status");
    el.textContent = error || "";
    el.className = error ? "error" : "";
    if (error) window.srsPublisher.error = error;
  }

  // A moving test pattern (color bars, a clock and a sweeping bar) and a 440 Hz tone.
  function testPattern() {
    var canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 360;
    var g = canvas.getContext("2d");
    var colors = ["#c0c0c0", "#c0c000", "#00c0c0", "#00c000", "#c000c0", "#c00000", "#0000c0"];
    var t0 = performance.now();
    var timer = setInterval(function () {
      var t = performance.now() - t0;
      colors.forEach(function (c, i) {
        g.fillStyle = c;
        g.fillRect(i * canvas.width / colors.length, 0, canvas.width / colors.length + 1, canvas.height);
      });
      g.fillStyle = "#111";
      g.fillRect(0, canvas.height - 90, canvas.width, 90);
      g.fillStyle = "#fff";
      g.fillRect((t / 5) % canvas.width, canvas.height - 90, 12, 90);
      g.font = "bold 40px monospace";
      g.fillText(new Date().toISOString().slice(11, 23), 20, canvas.height - 30);
    }, 1000 / 30);
    var stream = canvas.captureStream(30);
    var sound = SrsRtc.tone();
    stream.addTrack(sound.track);
    pattern = function () { clearInterval(timer); sound.stop(); };
    return Promise.resolve(stream);
  }

  function source() {
    if (document.getElementById("source").value === "camera") {
      return navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
    }
    return testPattern();
  }

  function stop() {
    if (session) session.close();
    if (media) media.getTracks().forEach(function (t) { t.stop(); });
    if (pattern) pattern();
    session = media = pattern = null;
    video.srcObject = null;
    setState("idle");
  }

  function watchLink(url) {
    var m = /[?&]app=([^&]+).*?[&]stream=([^&]+)/.exec(url) || /^webrtc:\/\/[^/]+\/(.+)\/([^/?]+)/.exec(url);
    if (!m) return;
    var play = "webrtc://" + window.location.hostname + "/" + m[1] + "/" + m[2];
    document.getElementById("watch").href = "/players/?url=" + encodeURIComponent(play) + "&autostart=1";
  }

  function publish(url) {
    stop();
    url = url.trim();
    if (!url) return;
    window.srsPublisher.url = url;
    setState("starting");
    watchLink(url);
    source().then(function (stream) {
      media = stream;
      video.srcObject = stream;
      return SrsRtc.publish(url, stream);
    }).then(function (s) {
      session = s;
      s.pc.addEventListener("connectionstatechange", function () {
        setState(s.pc.connectionState, s.pc.connectionState === "failed" ? "the WebRTC connection failed" : "");
      });
      setState("publishing");
    }).catch(function (e) { setState("failed", e.message || String(e)); });
  }

  document.getElementById("form").addEventListener("submit", function (e) {
    e.preventDefault();
    publish(input.value);
  });
  document.getElementById("stop").addEventListener("click", stop);

  var q = SrsQuery.query();
  if (q.source === "camera") document.getElementById("source").value = "camera";
  // Without ?url= or SRS's ?api=, this server's own API port (SRS's pages assume 1985).
  fetch("/server.json", { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; })
    .catch(function () { return null; })
    .then(function (info) {
      if (info && !q.api && info.api.length) q.api = String(info.api[0]);
      input.value = q.url || SrsQuery.whipWhepUrl(q, "/rtc/v1/whip/");
      if (info && !info.rtc.length) setState("idle", "WebRTC is off on this server (rtc_server)");
      if (/^(1|true)$/.test(q.autostart || "")) publish(input.value);
    });
})();
