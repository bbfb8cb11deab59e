// The player page: one <video>, SrsPlay (play.js) picks the library from the URL.
// State for automation: window.srsPlayer = {url, kind, error}.
(function () {
  "use strict";
  var video = document.getElementById("video");
  var input = document.getElementById("url");
  var current = null; // {kind, stop()}
  window.srsPlayer = { url: "", kind: "", error: "" };
  window.srsKindOf = SrsPlay.kindOf;

  function status(text, isError) {
    var el = document.getElementById("status");
    el.textContent = text;
    el.className = isError ? "error" : "";
    if (isError) window.srsPlayer.error = text;
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
    window.srsPlayer = { url: url, kind: SrsPlay.kindOf(url), error: "" };
    document.getElementById("kind").textContent = window.srsPlayer.kind;
    status("");
    current = SrsPlay.start(url, video, { fail: function (message) { status(message, true); } });
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
})();
