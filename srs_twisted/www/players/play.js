// Play any stream URL in a <video>: the URL's scheme and extension pick the library
// (mpegts.js, hls.js, dash.js, or WebRTC through whep.js). Used by the player and the latency meter.
(function () {
  "use strict";

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

  function mpegtsPlayer(url, type, video, fail) {
    mpegts.LoggingControl.enableVerbose = false;
    mpegts.LoggingControl.enableDebug = false;
    mpegts.LoggingControl.enableInfo = false;
    var p = mpegts.createPlayer({ type: type, url: url, isLive: true },
      { enableStashBuffer: false, liveBufferLatencyChasing: true });
    p.on(mpegts.Events.ERROR, function (type, detail) { fail("mpegts.js: " + type + " " + detail); });
    p.attachMediaElement(video);
    p.load();
    video.play().catch(function () {});
    return function () { p.pause(); p.unload(); p.detachMediaElement(); p.destroy(); };
  }

  function nativePlayer(url, video) {
    video.src = url;
    video.play().catch(function () {});
    return function () { video.removeAttribute("src"); video.load(); };
  }

  // lowLatency: hls.js's LL-HLS mode (parts, blocking reloads, the playlist's PART-HOLD-BACK behind the
  // end, played up to 1.5x to get back there after a stall). Off, a low-latency playlist plays as plain
  // HLS: three target durations behind its end (RFC 8216's floor), a jump back there when more than six
  // behind. (hls.js takes liveSyncDurationCount, needed with liveMaxLatencyDurationCount, over
  // PART-HOLD-BACK: not in LL mode.)
  function hlsPlayer(url, video, fail, lowLatency) {
    if (!Hls.isSupported()) return nativePlayer(url, video); // Safari plays HLS natively
    var config = lowLatency ? { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 }
      : { lowLatencyMode: false, liveSyncDurationCount: 3, liveMaxLatencyDurationCount: 6 };
    var hls = new Hls(config);
    hls.on(Hls.Events.ERROR, function (_, data) {
      if (data.fatal) fail("hls.js: " + data.type + " " + data.details);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(function () {});
    return function () { hls.destroy(); };
  }

  function dashPlayer(url, video, fail) {
    var p = dashjs.MediaPlayer().create();
    p.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    p.on(dashjs.MediaPlayer.events.ERROR, function (e) {
      fail("dash.js: " + JSON.stringify(e.error || e).slice(0, 200));
    });
    p.initialize(video, url, true);
    return function () { p.reset(); };
  }

  function whepPlayer(url, video, fail) {
    var session = null;
    var stopped = false;
    SrsRtc.play(url, video).then(function (s) {
      session = s;
      if (stopped) s.close();
      video.play().catch(function () {});
    }).catch(function (e) { fail("WHEP: " + e.message); });
    return function () {
      stopped = true;
      if (session) session.close();
      video.srcObject = null;
    };
  }

  // Start playing; returns {kind, stop()}.  options: {fail(message), lowLatency (HLS, default on)}.
  function start(url, video, options) {
    options = options || {};
    var fail = options.fail || function () {};
    var kind = kindOf(url);
    var stop;
    if (kind === "flv" || kind === "mpegts") stop = mpegtsPlayer(url, kind, video, fail);
    else if (kind === "hls") stop = hlsPlayer(url, video, fail, options.lowLatency !== false);
    else if (kind === "dash") stop = dashPlayer(url, video, fail);
    else if (kind === "whep") stop = whepPlayer(url, video, fail);
    else stop = nativePlayer(url, video);
    return { kind: kind, stop: stop };
  }

  window.SrsPlay = { kindOf: kindOf, start: start };
})();
