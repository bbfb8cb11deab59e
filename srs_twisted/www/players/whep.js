// WebRTC play (WHEP) and publish (WHIP) with the browser's own RTCPeerConnection:
// one SDP offer POSTed to the server, its answer back. No library.
(function () {
  "use strict";

  // webrtc://host[:port]/app/stream?query -> the WHEP (or WHIP) URL on the server's API
  // (SRS's rule: the port is the API's, 1985 by default, 1990 for https; ?schema= overrides).
  function apiUrl(url, kind) {
    var m = /^webrtc:\/\/([^/?#]+)\/(.+)\/([^/?#]+?)(\?[^#]*)?$/i.exec(url);
    if (!m) return url;
    var query = new URLSearchParams((m[4] || "").slice(1));
    var schema = query.get("schema") || window.location.protocol.replace(":", "");
    query.delete("schema");
    var host = m[1];
    if (!/:\d+$/.test(host)) host += ":" + (schema === "https" ? 1990 : 1985);
    var params = new URLSearchParams({ app: m[2], stream: m[3] });
    query.forEach(function (v, k) { params.append(k, v); });
    return schema + "://" + host + "/rtc/v1/" + kind + "/?" + params.toString();
  }

  // Offer, POST, answer.  Returns {pc, close()}; close() also DELETEs the session resource.
  function exchange(pc, url) {
    return pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer).then(function () {
        return fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: offer.sdp });
      });
    }).then(function (res) {
      return res.text().then(function (text) {
        if (!res.ok) throw new Error("HTTP " + res.status + " from " + url + ": " + text.slice(0, 200));
        var location = res.headers.get("Location");
        return pc.setRemoteDescription({ type: "answer", sdp: text }).then(function () {
          return location ? new URL(location, url).toString() : null;
        });
      });
    }).then(function (resource) {
      return {
        pc: pc,
        // The session's DELETE first: a peer connection closed first may end the
        // session on the server (DTLS close) before the DELETE arrives.
        close: function () {
          if (!resource) return pc.close();
          fetch(resource, { method: "DELETE" }).catch(function () {}).then(function () { pc.close(); });
        },
      };
    });
  }

  // Play: audio and video receive-only, the tracks go to `video`.
  function play(url, video) {
    var pc = new RTCPeerConnection();
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    var stream = new MediaStream();
    pc.ontrack = function (event) {
      stream.addTrack(event.track);
      video.srcObject = stream;
    };
    return exchange(pc, apiUrl(url, "whep"));
  }

  // Publish `stream` (a MediaStream).
  function publish(url, stream) {
    var pc = new RTCPeerConnection();
    stream.getTracks().forEach(function (track) {
      pc.addTransceiver(track, { direction: "sendonly" });
    });
    return exchange(pc, apiUrl(url, "whip"));
  }

  // A quiet 440 Hz tone as a MediaStream audio track: {track, stop()}.
  function tone() {
    var audio = new AudioContext();
    var osc = audio.createOscillator();
    osc.frequency.value = 440;
    var gain = audio.createGain();
    gain.gain.value = 0.1;
    var dest = audio.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    return { track: dest.stream.getAudioTracks()[0], stop: function () { osc.stop(); audio.close(); } };
  }

  window.SrsRtc = { apiUrl: apiUrl, play: play, publish: publish, tone: tone };
})();
