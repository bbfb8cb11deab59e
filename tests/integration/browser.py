"""Chromium as a WebRTC client of the real server, driven by Playwright for Python.

Used by test_rtc_chromium.py.  The test writes :data:`PAGE` (one HTML page with the
publisher's and the player's JavaScript) into the server's ``http_server`` dir, so
Chromium loads it from ``http://127.0.0.1:<http port>/rtc.html`` (a secure context,
as ``getUserMedia`` needs) and signals cross-origin to the HTTP API port, through
the server's CORS headers and OPTIONS preflight, as SRS's own players do.

The page publishes Chromium's fake camera and microphone (``--use-fake-device-for-media-stream``)
over WHIP (``POST /rtc/v1/whip/?app=&stream=``, ``application/sdp``) or SRS's legacy
JSON API (``POST /rtc/v1/publish/`` with ``{api, tid, streamurl, clientip: null, sdp}``
as SRS's ``srs.sdk.js`` sends it), and plays over WHEP or ``/rtc/v1/play/``.  It offers
Chromium's default codecs (VP8, VP9, H.264, AV1...): the server's answer picks H.264.

Run as a script (``python browser.py SPEC``, by :func:`run_driver` from a test) it
launches /usr/bin/chromium headless with fake media devices and a fresh profile,
publishes (when SPEC has ``publish``), plays, polls the player's ``getStats()`` until
``frames`` video frames are decoded and audio packets arrived (or SPEC's ``timeout``),
DELETEs the WHIP/WHEP sessions, and prints one line ``RESULT <json>``.  Every wait has
a deadline; the test kills the driver's process group (Chromium included) in cleanup.

SPEC is JSON: ``{"page": URL, "api": "http://127.0.0.1:PORT", "app": "live",
"publish": {"stream", "mode": "whip"|"legacy", "width", "height"[, "vhost"]} or null,
"play": {"stream", "mode": "whep"|"legacy"[, "vhost"][, "eip": "IP:PORT" (WHIP/WHEP)]} or null, "frames": 100, "timeout": 90}``, optionally
``"play_after"`` (seconds between publishing and playing), ``"play_seconds"`` (play at least
that long), ``"trace": true`` (the player's inbound stats every half second) and ``"sync": true``
(the player measures A/V sync on a stream whose picture flashes white when its audio beeps:
``result["sync"]`` has the page times, ms, of every flash shown and every beep heard).  The
result has the pages' signalling (``publish``, ``play``: offer, answer, status, Location...),
their final ``getStats()`` (``player``, ``publisher``; ``publisher_before_play`` just before
the player starts), the DELETE statuses, the pages' console and any ``error``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic",
]
PAGE_NAME = "rtc.html"

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>srs-twisted WebRTC test page</title></head>
<body>
<video id="video" autoplay muted playsinline width="320" height="240"></video>
<script>
"use strict";
// One RTCPeerConnection per page: window.publish(spec) or window.play(spec), then window.stats().
let pc = null, session = null;

function tid() {  // as srs.sdk.js makes it
  return Number(parseInt(new Date().getTime() * Math.random() * 100)).toString(16).slice(0, 7);
}

async function signal(spec, publish) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const out = {offer: offer.sdp};
  if (spec.mode === "legacy") {  // SRS's /rtc/v1/publish/ and /rtc/v1/play/, as srs.sdk.js
    const api = `${spec.api}/rtc/v1/${publish ? "publish" : "play"}/`;
    const vhost = spec.vhost ? `?vhost=${spec.vhost}` : "";
    const streamurl = `webrtc://${new URL(spec.api).hostname}/${spec.app}/${spec.stream}${vhost}`;
    const body = {api: api, tid: tid(), streamurl: streamurl, clientip: null, sdp: offer.sdp};
    const r = await fetch(api, {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify(body)});
    const reply = await r.json();
    Object.assign(out, {status: r.status, code: reply.code, sessionid: reply.sessionid, server: reply.server});
    if (reply.code !== 0) throw new Error(`code ${reply.code}: ${JSON.stringify(reply)}`);
    out.answer = reply.sdp;
  } else {  // WHIP / WHEP
    const vhost = (spec.vhost ? `&vhost=${spec.vhost}` : "") + (spec.eip ? `&eip=${spec.eip}` : "");
    const url = `${spec.api}/rtc/v1/${publish ? "whip" : "whep"}/?app=${spec.app}&stream=${spec.stream}${vhost}`;
    const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/sdp"}, body: offer.sdp});
    const text = await r.text();
    Object.assign(out, {status: r.status, contentType: r.headers.get("Content-Type")});
    if (r.status !== 201) throw new Error(`status ${r.status}: ${text}`);
    out.location = new URL(r.headers.get("Location"), url).href;
    out.answer = text;
  }
  session = out;
  await pc.setRemoteDescription({type: "answer", sdp: out.answer});
  return out;
}

function connected(ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not connected after ${ms} ms: ${pc.connectionState}`)), ms);
    const check = () => {
      if (pc.connectionState === "connected") { clearTimeout(timer); resolve(); }
      if (pc.connectionState === "failed") { clearTimeout(timer); reject(new Error("connection failed")); }
    };
    pc.addEventListener("connectionstatechange", check);
    check();
  });
}

window.publish = async (spec) => {
  const media = await navigator.mediaDevices.getUserMedia(
      {audio: true, video: {width: {exact: spec.width}, height: {exact: spec.height}, frameRate: 30}});
  pc = new RTCPeerConnection();
  if (spec.mode === "legacy") {  // srs.sdk.js: sendonly transceivers, then addTrack
    pc.addTransceiver("audio", {direction: "sendonly"});
    pc.addTransceiver("video", {direction: "sendonly"});
    media.getTracks().forEach((track) => pc.addTrack(track));
  } else {
    media.getTracks().forEach((track) => pc.addTransceiver(track, {direction: "sendonly", streams: [media]}));
  }
  // The published size, not a smaller one when bandwidth or CPU look short.
  for (const sender of pc.getSenders()) {
    if (sender.track && sender.track.kind === "video") {
      const params = sender.getParameters();
      params.degradationPreference = "maintain-resolution";
      await sender.setParameters(params);
    }
  }
  const out = await signal(spec, true);
  await connected(spec.connectMs);
  out.settings = media.getVideoTracks()[0].getSettings();
  return out;
};

window.play = async (spec) => {
  pc = new RTCPeerConnection();
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.addTransceiver("video", {direction: "recvonly"});
  const remote = new MediaStream();
  pc.ontrack = (event) => {
    remote.addTrack(event.track);
    const video = document.getElementById("video");
    video.srcObject = remote;
    video.play().catch(() => {});
  };
  const out = await signal(spec, false);
  await connected(spec.connectMs);
  return out;
};

// A/V sync as Chromium plays it: when each white flash is shown (the frame's expected display
// time, requestVideoFrameCallback) and when each beep reaches Web Audio, in page time (ms).
window.syncMeter = async () => {
  const meter = {video: [], audio: [], frames: 0};
  const video = document.getElementById("video");
  const canvas = document.createElement("canvas");
  canvas.width = 16;
  canvas.height = 12;
  const g = canvas.getContext("2d", {willReadFrequently: true});
  let bright = false;
  const onFrame = (now, md) => {
    g.drawImage(video, 0, 0, 16, 12);
    const px = g.getImageData(0, 0, 16, 12).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += px[i] + px[i + 1] + px[i + 2];
    const on = sum / (px.length / 4) / 765 > 0.5;
    if (on && !bright) meter.video.push(md.expectedDisplayTime || now);
    bright = on;
    meter.frames++;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  // Beeps are found on the audio thread (an AudioWorklet: the main thread's lag does not
  // count); a beep's context time becomes page time through the output timestamp, so it is
  // when the sample reaches the audio output.
  const ctx = new AudioContext();
  const tapCode = `registerProcessor("srs-tap", class extends AudioWorkletProcessor {
    constructor() { super(); this.loud = false; }
    process(inputs) {
      const x = inputs[0][0];
      if (x) {
        let sum = 0;
        for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
        const on = Math.sqrt(sum / x.length) > 0.05;
        if (on && !this.loud) this.port.postMessage(currentTime);
        this.loud = on;
      }
      return true;
    }
  });`;
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([tapCode], {type: "application/javascript"})));
  const tap = new AudioWorkletNode(ctx, "srs-tap");
  tap.port.onmessage = (e) => {
    const out = ctx.getOutputTimestamp();
    meter.audio.push(out.performanceTime + (e.data - out.contextTime) * 1000);
  };
  const source = ctx.createMediaStreamSource(new MediaStream(video.srcObject.getAudioTracks()));
  source.connect(tap);
  tap.connect(ctx.destination);
  await ctx.resume();
  meter.outputLatency = ctx.outputLatency;
  window.srsSync = meter;
};

window.stats = async () => {
  const out = {inbound: {}, outbound: {}, transport: null, pair: null};
  const report = await pc.getStats();
  const codecs = {};
  report.forEach((r) => { if (r.type === "codec") codecs[r.id] = {mimeType: r.mimeType, fmtp: r.sdpFmtpLine || ""}; });
  const pick = (r, names) => Object.fromEntries(names.filter((n) => r[n] !== undefined).map((n) => [n, r[n]]));
  report.forEach((r) => {
    if (r.type === "inbound-rtp") {
      out.inbound[r.kind] = pick(r, ["packetsReceived", "packetsLost", "bytesReceived", "framesDecoded",
          "framesReceived", "framesDropped", "keyFramesDecoded", "frameWidth", "frameHeight", "nackCount",
          "pliCount", "firCount", "freezeCount", "totalFreezesDuration", "jitterBufferDelay",
          "jitterBufferEmittedCount", "totalSamplesReceived", "concealedSamples", "jitter", "lastPacketReceivedTimestamp"]);
      out.inbound[r.kind].codec = codecs[r.codecId] || null;
    } else if (r.type === "outbound-rtp") {
      out.outbound[r.kind] = pick(r, ["packetsSent", "bytesSent", "framesEncoded", "keyFramesEncoded",
          "frameWidth", "frameHeight", "nackCount", "pliCount", "firCount", "retransmittedPacketsSent",
          "encoderImplementation", "qualityLimitationReason"]);
      out.outbound[r.kind].codec = codecs[r.codecId] || null;
    } else if (r.type === "candidate-pair" && r.nominated) {
      out.pair = pick(r, ["availableOutgoingBitrate", "currentRoundTripTime", "bytesSent", "bytesReceived"]);
    } else if (r.type === "transport") {
      out.transport = pick(r, ["dtlsState", "dtlsRole", "iceState", "srtpCipher", "tlsVersion", "packetsSent",
          "packetsReceived"]);
    }
  });
  // The selected ICE pair's candidates (UDP or TCP, the addresses).
  let pairId = null;
  report.forEach((r) => { if (r.type === "transport") pairId = r.selectedCandidatePairId; });
  const pair = pairId && report.get(pairId);
  if (pair) {
    const names = ["protocol", "candidateType", "tcpType", "address", "port"];
    out.pair = {local: pick(report.get(pair.localCandidateId) || {}, names),
                remote: pick(report.get(pair.remoteCandidateId) || {}, names)};
  }
  out.connectionState = pc.connectionState;
  return out;
};

window.hangup = async () => {
  let status = null;
  if (session && session.location) {
    status = (await fetch(session.location, {method: "DELETE"})).status;
  }
  if (pc) pc.close();
  return status;
};
</script>
</body></html>
"""


def write_page(directory: str) -> str:
    """Write the test page into ``directory`` (the server's http_server dir); its file name."""
    with open(os.path.join(directory, PAGE_NAME), "w") as f:
        f.write(PAGE)
    return PAGE_NAME


def need_chromium() -> None:
    """Skip the test locally (fail it in CI) without /usr/bin/chromium or Playwright."""
    from tests.optional import IN_CI, missing

    if not os.access(CHROMIUM, os.X_OK):
        reason = f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            raise AssertionError(reason)
        from twisted.trial.unittest import SkipTest

        raise SkipTest(reason)
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        raise missing("playwright") from None  # the Debian chromium is used: never `playwright install`


# ---- the test side: run this file as a subprocess, without blocking the reactor ----

class Driver:
    """``python browser.py SPEC`` in its own process group (Chromium is its child);
    :meth:`result` is a Deferred polled on the reactor clock; :meth:`kill` (a test
    cleanup) ends the whole group."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.out = tempfile.NamedTemporaryFile(prefix="srs-chromium-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), json.dumps(spec)],
                                     stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        with open(self.out.name, errors="replace") as f:
            return f.read()

    def result(self, deadline: float):
        """A Deferred firing with the driver's RESULT dict once it exits (AssertionError
        with its output when it exits without one, or is still running after ``deadline`` s)."""
        from twisted.internet import reactor, task

        end = time.monotonic() + deadline

        def poll():
            if self.proc.poll() is None:
                if time.monotonic() > end:
                    self.kill()
                    raise AssertionError(f"the Chromium driver ran over {deadline:.0f}s:\n{self.output()[-6000:]}")
                return task.deferLater(reactor, 0.25, poll)
            text = self.output()
            for line in text.splitlines():
                if line.startswith("RESULT "):
                    found = json.loads(line[len("RESULT "):])
                    found["log"] = text
                    return found
            raise AssertionError(f"the Chromium driver exited {self.proc.returncode} without a result:\n{text[-6000:]}")

        return task.deferLater(reactor, 0, poll)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)
        else:  # the driver is gone; a Chromium it left behind would still be in the group
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.out.close()
        try:
            os.unlink(self.out.name)
        except OSError:
            pass


# ---- the driver itself (this file run as a script) ----

async def _drive(spec: dict, result: dict) -> None:
    from playwright.async_api import async_playwright

    timeout_ms = int(spec["timeout"] * 1000)
    common = {"api": spec["api"], "app": spec.get("app", "live"), "connectMs": timeout_ms}
    profile = tempfile.mkdtemp(prefix="srs-chromium-profile-")
    try:
        async with async_playwright() as p:
            context = await p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=timeout_ms)
            context.set_default_timeout(timeout_ms)
            pages = {}

            async def open_page(role):
                page = await context.new_page()
                page.on("console", lambda msg: result["console"].append(f"{role} {msg.type}: {msg.text}"))
                page.on("pageerror", lambda err: result["console"].append(f"{role} pageerror: {err}"))
                await page.goto(spec["page"])
                pages[role] = page
                return page

            async def publish(role):
                page = await open_page(role)
                out = await page.evaluate("spec => window.publish(spec)", {**common, **spec["publish"]})
                print("PUBLISHING", role, flush=True)
                return out

            async def wait_frames(page, frames, started):
                end = started + spec["timeout"] + spec.get("play_seconds", 0)
                while True:
                    stats = await page.evaluate("() => window.stats()")
                    video, audio = stats["inbound"].get("video", {}), stats["inbound"].get("audio", {})
                    if video.get("framesDecoded", 0) >= frames and audio.get("packetsReceived", 0) > 0 \
                            and time.monotonic() >= started + spec.get("play_seconds", 0):
                        return stats
                    if time.monotonic() > end:
                        result["error"] = f"not {frames} frames decoded and audio after {spec['timeout']}s"
                        return stats
                    if spec.get("trace"):
                        result.setdefault("trace", []).append([round(time.monotonic() - started, 2), stats["inbound"]])
                    await asyncio.sleep(0.5)

            try:
                if spec.get("publish") and not spec.get("play_first"):
                    result["publish"] = await publish("publisher")
                    await asyncio.sleep(spec.get("play_after", 0))
                    result["publisher_before_play"] = await pages["publisher"].evaluate("() => window.stats()")
                if not spec.get("play"):  # publish only, for play_seconds
                    await asyncio.sleep(spec.get("play_seconds", 0))
                    result["publisher"] = await pages["publisher"].evaluate("() => window.stats()")
                    result["publisher_delete"] = await pages["publisher"].evaluate("() => window.hangup()")
                    return
                page = await open_page("player")
                result["play"] = await page.evaluate("spec => window.play(spec)", {**common, **spec["play"]})
                print("PLAYING", flush=True)
                if spec.get("sync"):
                    await page.wait_for_function("() => document.getElementById('video').srcObject"
                                                 " && document.getElementById('video').srcObject.getAudioTracks().length")
                    await page.evaluate("() => window.syncMeter()")
                if spec.get("play_first"):
                    await asyncio.sleep(spec.get("play_after", 0))
                    result["publish"] = await publish("publisher")
                stats = await wait_frames(page, spec["frames"], time.monotonic())
                if spec.get("republish") and "error" not in result:
                    # The publisher leaves (DELETE); another page publishes the same stream.
                    result["player_first"] = stats
                    result["publisher_first_delete"] = await pages["publisher"].evaluate("() => window.hangup()")
                    await pages.pop("publisher").close()
                    result["republish"] = await publish("publisher")
                    frames = stats["inbound"]["video"]["framesDecoded"] + spec["frames"]
                    stats = await wait_frames(page, frames, time.monotonic())
                result["player"] = stats
                if spec.get("sync"):
                    result["sync"] = await page.evaluate("() => window.srsSync")
                if "publisher" in pages:
                    result["publisher"] = await pages["publisher"].evaluate("() => window.stats()")
                for role in ("player", "publisher"):
                    if role in pages:
                        result[f"{role}_delete"] = await pages[role].evaluate("() => window.hangup()")
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def _main(spec: dict) -> dict:
    result: dict = {"console": []}
    try:
        await asyncio.wait_for(_drive(spec, result),
                               spec["timeout"] * 3 + spec.get("play_after", 0) + spec.get("play_seconds", 0))
    except Exception as exc:  # reported to the test, which fails with it
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


if __name__ == "__main__":
    found = asyncio.run(_main(json.loads(sys.argv[1])))
    print("RESULT " + json.dumps(found), flush=True)
