"""Synthetic streams for the HLS tests: valid H.264/AAC/MP3 FLV bodies with
chosen timestamps, so the TS muxer accepts them and a demuxer reads them back."""

from __future__ import annotations

from srs_twisted.codec import flv
from srs_twisted.config import load_string
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket

# -profile:v baseline, 320x240 (tests/codec/test_avc.py)
AVCC_320x240 = bytes.fromhex(
    "0142c01effe100186742c01ed90141fb011000000300100000030320f162e48001000568cb83cb20")
ASC_44100_STEREO = bytes.fromhex("1210")
MP3_FRAME = bytes.fromhex("fffb9064") + b"\x55" * 413


def video_sh(dts: int = 0, record: bytes = AVCC_320x240) -> MediaPacket:
    return MediaPacket(VIDEO, dts, b"\x17\x00\x00\x00\x00" + record, codec="h264",
                       keyframe=True, sequence_header=True)


def video(dts: int, key: bool = False, size: int = 300) -> MediaPacket:
    nal = bytes((0x65 if key else 0x41,)) + bytes((dts + i) % 255 + 1 for i in range(size - 1))
    body = bytes((0x17 if key else 0x27, 1, 0, 0, 0)) + len(nal).to_bytes(4, "big") + nal
    return MediaPacket(VIDEO, dts, body, codec="h264", keyframe=key)


def audio_sh(dts: int = 0) -> MediaPacket:
    return MediaPacket(AUDIO, dts, b"\xaf\x00" + ASC_44100_STEREO, codec="aac", sequence_header=True)


def audio(dts: int, size: int = 40) -> MediaPacket:
    return MediaPacket(AUDIO, dts, b"\xaf\x01" + bytes((dts + i) % 251 + 1 for i in range(size)), codec="aac")


def mp3(dts: int) -> MediaPacket:
    return MediaPacket(AUDIO, dts, b"\x2f" + MP3_FRAME, codec="mp3")


def metadata(videocodecid=7, audiocodecid=10) -> MediaPacket:
    meta = {"width": 320.0, "height": 240.0}
    if videocodecid is not None:
        meta["videocodecid"] = float(videocodecid)
    if audiocodecid is not None:
        meta["audiocodecid"] = float(audiocodecid)
    return MediaPacket(DATA, 0, flv.encode_metadata(meta))


def stream(seconds: float, start: int = 0, gop_ms: int = 1000, fps: int = 25, video_on: bool = True,
           audio_on: bool = True, keyframes: bool = True, headers: bool = True, audio_ms: int = 23):
    """Headers, then video frames every 1000/fps ms (a keyframe every gop_ms)
    interleaved with AAC frames every audio_ms ms, from ``start`` for ``seconds``."""
    out = []
    if headers:
        out.append(metadata(7 if video_on else None, 10 if audio_on else None))
        if video_on:
            out.append(video_sh(start))
        if audio_on:
            out.append(audio_sh(start))
    end = start + int(seconds * 1000)
    frame_ms = 1000 // fps
    frames = []
    if video_on:
        for t in range(start, end, frame_ms):
            frames.append((t, 0, video(t, key=keyframes and (t - start) % gop_ms == 0)))
    if audio_on:
        for t in range(start, end, audio_ms):
            frames.append((t, 1, audio(t)))
    frames.sort(key=lambda f: (f[0], f[1]))
    return out + [f[2] for f in frames]


def hls_conf(body: str = "", vhost: str = "__defaultVhost__", path: str = "/hls", extra: str = ""):
    """The VhostConfig of ``vhost __defaultVhost__ { hls { enabled on; hls_path PATH; BODY } EXTRA }``."""
    text = f"vhost {vhost} {{ hls {{ enabled on; hls_path {path}; {body} }} {extra} }}"
    return load_string(text).vhost(vhost)


def feed(segmenter, packets) -> list:
    events = []
    for pkt in packets:
        events.extend(segmenter.on_packet(pkt))
    return events
