// The player page: one <video>, the URL's scheme and extension pick the library.
// State for automation: window.srsPlayer = {url, kind, error}.
(function () {
  "use strict";
  var video = document.getElementById("video");
  var input = document.getElementById("url");
  var current = null; // {kind, stop()}
  window.srsPlayer = { url: "", kind: "", error: "" };

  // "flv" | "mpegts" | "hls" | "dash" | "whep" | "native"
  function kindOf(url) {
    if (/^webrtc:/i.test(url) || /\/whep\/?(\?|$)/i.test(url) || /\/rtc\/v1\/(whep|play)\//i.test(url)) return "whep";
    var path = url.split(/[?#]/)[0].toLowerCase();
    if (/\.flv$/.test(path)) return "flv";
    if (/\.ts$/.test(path)) return "mpegts";
    if (/\.m3u8$/.test(path)) return "hls";
    if (/\.mpd$/.test(path)) return "dash";
    return "native";
  }

  function status(text, isError) {
    var el = document.getElementById("status");
    el.textContent = text;
    el.className = isError ? "error" : "";
    if (isError) window.srsPlayer.error = text;
  }

  function startMpegts(url, type) {
    mpegts.LoggingControl.enableVerbose = false;
    mpegts.LoggingControl.enableDebug = false;
    mpegts.LoggingControl.enableInfo = false;
    var p = mpegts.createPlayer({ type: type, url: url, isLive: true },
      { enableStashBuffer: false, liveBufferLatencyChasing: true });
    p.on(mpegts.Events.ERROR, function (type, detail) { status("mpegts.js: " + type + " " + detail, true); });
    p.attachMediaElement(video);
    p.load();
    video.play().catch(function () {});
    return function () { p.pause(); p.unload(); p.detachMediaElement(); p.destroy(); };
  }

  function startHls(url) {
    if (!Hls.isSupported()) {
      video.src = url; // Safari plays HLS natively
      video.play().catch(function () {});
      return function () { video.removeAttribute("src"); video.load(); };
    }
    var hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, function (_, data) {
      if (data.fatal) status("hls.js: " + data.type + " " + data.details, true);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(function () {});
    return function () { hls.destroy(); };
  }

  function startDash(url) {
    var p = dashjs.MediaPlayer().create();
    p.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    p.on(dashjs.MediaPlayer.events.ERROR, function (e) {
      status("dash.js: " + JSON.stringify(e.error || e).slice(0, 200), true);
    });
    p.initialize(video, url, true);
    return function () { p.reset(); };
  }

  function startWhep(url) {
    var session = null;
    var stopped = false;
    SrsRtc.play(url, video).then(function (s) {
      session = s;
      if (stopped) s.close();
      video.play().catch(function () {});
    }).catch(function (e) { status("WHEP: " + e.message, true); });
    return function () {
      stopped = true;
      if (session) session.close();
      video.srcObject = null;
    };
  }

  function stop() {
    if (current) current.stop();
    current = null;
    video.removeAttribute("src");
    document.getElementById("kind").textContent = "-";
  }

  function start(url) {
    stop();
    url = url.trim();
    if (!url) return;
    var kind = kindOf(url);
    window.srsPlayer = { url: url, kind: kind, error: "" };
    document.getElementById("kind").textContent = kind;
    status("");
    var halt;
    if (kind === "flv") halt = startMpegts(url, "flv");
    else if (kind === "mpegts") halt = startMpegts(url, "mpegts");
    else if (kind === "hls") halt = startHls(url);
    else if (kind === "dash") halt = startDash(url);
    else if (kind === "whep") halt = startWhep(url);
    else {
      video.src = url;
      video.play().catch(function () {});
      halt = function () { video.removeAttribute("src"); video.load(); };
    }
    current = { kind: kind, stop: halt };
  }

  // Keep the URL in the address bar, so the page can be linked to.
  function remember(url) {
    var query = new URLSearchParams(window.location.search);
    query.set("url", url);
    history.replaceState(null, "", "?" + query.toString());
  }

  document.getElementById("form").addEventListener("submit", function (e) {
    e.preventDefault();
    remember(input.value);
    start(input.value);
  });
  document.getElementById("stop").addEventListener("click", stop);

  setInterval(function () {
    document.getElementById("time").textContent = video.currentTime.toFixed(1);
    var q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    document.getElementById("frames").textContent = q ? q.totalVideoFrames : "?";
    document.getElementById("size").textContent = video.videoWidth ? video.videoWidth + "x" + video.videoHeight : "-";
  }, 500);

  var query = new URLSearchParams(window.location.search);
  input.value = query.get("url") || "";
  if (input.value && /^(1|true)$/.test(query.get("autostart") || "")) {
    video.muted = true; // browsers only autoplay muted media
    start(input.value);
  }
  window.srsKindOf = kindOf;
})();
