"""Synthetic packets for DVR tests: an H.264 + AAC stream (FLV tag bodies) at
25 fps and ~43 audio frames a second, with a keyframe every ``gop`` frames."""

from __future__ import annotations

from srs_twisted.codec import flv
from srs_twisted.live.packet import AUDIO, DATA, VIDEO, MediaPacket

# A real 320x240 SPS/PPS (FFmpeg's libx264) as an AVCDecoderConfigurationRecord,
# and an AAC-LC 44.1 kHz stereo AudioSpecificConfig.
AVC_CONFIG = bytes.fromhex(
    "0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8"
)
AAC_CONFIG = bytes.fromhex("1210")


def metadata(dts: int = 0, **props) -> MediaPacket:
    obj = {"width": 320.0, "height": 240.0, "videocodecid": 7.0, "audiocodecid": 10.0,
           "duration": 0.0, "filesize": 0.0}
    obj.update(props)
    return MediaPacket(DATA, dts, flv.encode_metadata(obj))


def video_sh(dts: int = 0, config: bytes = AVC_CONFIG) -> MediaPacket:
    return MediaPacket(VIDEO, dts, b"\x17\x00\x00\x00\x00" + config, codec="h264", keyframe=True,
                       sequence_header=True)


def audio_sh(dts: int = 0) -> MediaPacket:
    return MediaPacket(AUDIO, dts, b"\xaf\x00" + AAC_CONFIG, codec="aac", sequence_header=True)


def video(dts: int, key: bool) -> MediaPacket:
    nalu_type = 5 if key else 1
    nalu = bytes((0x60 | nalu_type if key else 0x40 | nalu_type,)) + b"\x88" * 40
    body = (b"\x17" if key else b"\x27") + b"\x01\x00\x00\x00" + len(nalu).to_bytes(4, "big") + nalu
    return MediaPacket(VIDEO, dts, body, codec="h264", keyframe=key)


def audio(dts: int) -> MediaPacket:
    return MediaPacket(AUDIO, dts, b"\xaf\x01" + b"\x21" * 20, codec="aac")


def stream(seconds: float, gop: int = 25, start: int = 0, headers: bool = True, audio_on: bool = True,
           video_on: bool = True) -> list[MediaPacket]:
    """Headers then interleaved media in dts order for ``seconds``."""
    out: list[MediaPacket] = []
    if headers:
        out.append(metadata(start))
        if video_on:
            out.append(video_sh(start))
        if audio_on:
            out.append(audio_sh(start))
    end = start + int(seconds * 1000)
    frames = []
    if video_on:
        i = 0
        while start + i * 40 < end:
            frames.append((start + i * 40, 0, video(start + i * 40, i % gop == 0)))
            i += 1
    if audio_on:
        j = 0
        while start + (j * 1024 * 1000) // 44100 < end:
            dts = start + (j * 1024 * 1000) // 44100
            frames.append((dts, 1, audio(dts)))
            j += 1
    frames.sort(key=lambda t: (t[0], t[1]))
    out.extend(f[2] for f in frames)
    return out
