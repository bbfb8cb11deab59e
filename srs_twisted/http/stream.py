"""Live HTTP streams: HTTP-FLV, HTTP-TS, HTTP-AAC, HTTP-MP3 (and the same
over WebSocket), each a consumer of the live source.

Mounts follow SRS's ``http_remux.mount`` (default ``[vhost]/[app]/[stream].flv``).
The request's extension picks the format, so one mount serves ``.flv``,
``.ts``, ``.aac`` and ``.mp3``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zope.interface import implementer

from ..codec import aac, flv
from ..codec.errors import CodecError
from ..codec.info import metadata_tracks
from ..interfaces import IMediaSink
from ..live.packet import AUDIO, VIDEO, MediaPacket
from ..url import DEFAULT_VHOST

FORMATS = {
    ".flv": ("flv", b"video/x-flv"),
    ".ts": ("ts", b"video/MP2T"),
    ".aac": ("aac", b"audio/x-aac"),
    ".mp3": ("mp3", b"audio/mpeg"),
}
PLAY_TYPES = {"flv": "flv-play", "ts": "ts-play", "aac": "aac-play", "mp3": "mp3-play"}


@dataclass
class StreamMatch:
    vhost: str  # the config vhost serving it
    app: str
    stream: str
    fmt: str  # 'flv', 'ts', 'aac', 'mp3'
    content_type: bytes


def mount_regex(mount: str) -> re.Pattern:
    """``[vhost]/[app]/[stream].flv`` -> a regex over the request path, with
    any of the four extensions.  The ``[vhost]/`` part is matched against
    the Host header instead (SRS's vhost-aware mux)."""
    template = mount
    if template.startswith("[vhost]"):
        template = template[len("[vhost]") :]
    template = "/" + template.lstrip("/")
    root, dot, _ = template.rpartition(".")
    if dot:
        template = root
    out = []
    for part in re.split(r"(\[app\]|\[stream\])", template):
        if part == "[app]":
            out.append(r"(?P<app>[^/]+(?:/[^/]+)*?)")
        elif part == "[stream]":
            out.append(r"(?P<stream>[^/]+?)")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + r"(?P<ext>\.(?:flv|ts|aac|mp3))$")


_REGEX_CACHE: dict[str, re.Pattern] = {}


def match_request(ctx, host: str, path: str) -> StreamMatch | None:
    """Which live stream (if any) an HTTP path names on this server."""
    conf = ctx.vhost(host) or ctx.vhost(DEFAULT_VHOST)
    if conf is None or not conf.enabled or not conf.http_remux.enabled:
        return None
    mount = conf.http_remux.mount
    regex = _REGEX_CACHE.get(mount)
    if regex is None:
        regex = _REGEX_CACHE[mount] = mount_regex(mount)
    m = regex.match(path)
    if m is None:
        return None
    groups = m.groupdict()
    app = groups.get("app") or _literal_app(mount)
    stream = groups.get("stream") or ""
    fmt, ctype = FORMATS[groups["ext"]]
    return StreamMatch(conf.name, app, stream, fmt, ctype)


def _literal_app(mount: str) -> str:
    parts = mount.replace("[vhost]", "").strip("/").split("/")
    return "/".join(p for p in parts[:-1] if p)


# ---- encoders shared by every player of one format ---------------------------
def encode_flv(pkt: MediaPacket) -> bytes:
    return flv.encode_tag(pkt.kind, pkt.dts & 0xFFFFFFFF, pkt.payload)


def encode_mp3(pkt: MediaPacket) -> bytes:
    if pkt.kind == AUDIO and pkt.codec == "mp3" and len(pkt.payload) > 1:
        return pkt.payload[1:]
    return b""


class AdtsEncoder:
    """Raw AAC frames from FLV bodies to ADTS; one per source."""

    def __init__(self) -> None:
        self.info = None

    def encode(self, pkt: MediaPacket) -> bytes:
        if pkt.kind != AUDIO or pkt.codec != "aac":
            return b""
        try:
            tag = flv.parse_audio(pkt.payload)
            raw = pkt.payload[tag.data_offset :]
            if tag.sequence_header:
                self.info = aac.parse_audio_specific_config(raw)
                return b""
        except CodecError:
            return b""
        if self.info is None or not raw:
            return b""
        return aac.adts_header(self.info, len(raw)) + raw


def stream_tracks(source) -> tuple:
    """``(video, audio)``: the codec of each track the stream has, or None,
    decided as HLS does: a sequence header or a frame seen (MP3 has no
    sequence header), else what onMetaData announces."""
    video, audio = source.video_codec, source.audio_codec
    if (video is None or audio is None) and source.metadata is not None:
        try:
            _, meta = flv.parse_script(source.metadata.payload)
        except (CodecError, ValueError, IndexError):
            meta = None
        if isinstance(meta, dict):
            meta_video, meta_audio = metadata_tracks(meta)
            video, audio = video or meta_video, audio or meta_audio
    return video, audio


def shared_encoder(source, fmt: str):
    """The (wire_key, encode) pair every player of ``fmt`` on ``source`` uses.
    Stateful formats keep one encoder per source, primed with the current
    sequence headers, so all their players share its output.  A TS muxer is
    kept per set of tracks: a player that comes once the stream shows a
    track the first players' muxer left out gets a muxer with it."""
    if fmt == "flv":
        return "flv", encode_flv
    if fmt == "mp3":
        return "mp3", encode_mp3
    key = fmt
    if fmt == "ts":
        from ..codec.mpegts import AUDIO_STREAM_TYPES, VIDEO_STREAM_TYPES

        video, audio = stream_tracks(source)
        if video is None and audio is None:
            video, audio = "h264", "aac"  # nothing known yet: promise both
        # A codec TS cannot carry (AV1, Opus...) is left out, as HLS does.
        video = video if video in VIDEO_STREAM_TYPES else None
        audio = audio if audio in AUDIO_STREAM_TYPES else None
        key = ("ts", video, audio)
    encoder = source.outputs.get(key)
    if encoder is None:
        if fmt == "aac":
            encoder = AdtsEncoder()
            encode = encoder.encode
        else:
            from ..codec.mpegts import TsMuxer

            encoder = TsMuxer(
                has_video=video is not None,
                has_audio=audio is not None,
                video_codec=video or "h264",
                audio_codec=audio or "aac",
            )
            encode = encoder.mux
        for sh in (source.video_sh, source.audio_sh):
            if sh is not None:
                encode(sh)
        source.outputs[key] = encoder
    return key, (encoder.encode if fmt == "aac" else encoder.mux)


def _metadata_flags(source) -> tuple[bool, bool]:
    """(has_audio, has_video) for the FLV header: the tracks of :func:`stream_tracks`."""
    video, audio = stream_tracks(source)
    return audio is not None, video is not None


@implementer(IMediaSink)
class HttpStreamSink:
    """Writes one live format to one player (an HTTP response or a WebSocket).

    ``write_raw`` is what reaches the player; the format's header (the FLV
    file header, or TS PAT/PMT) is written before the first data."""

    def __init__(self, source, fmt: str, write_raw, remux_conf=None, on_unpublish=None) -> None:
        self.source = source
        self._on_unpublish = on_unpublish
        self.fmt = fmt
        self.wire_key, self.encode = shared_encoder(source, fmt)
        self._write_raw = write_raw
        self._conf = remux_conf
        self.header_sent = False
        self.sent_bytes = 0

    def header(self) -> bytes:
        if self.fmt == "flv":
            has_audio, has_video = _metadata_flags(self.source)
            if self._conf is not None:
                has_audio = has_audio and self._conf.has_audio
                has_video = has_video and self._conf.has_video
            if not has_audio and not has_video:
                has_audio = has_video = True  # nothing known yet: promise both
            return flv.file_header(has_audio, has_video)
        if self.fmt == "ts":
            return self.source.outputs[self.wire_key].pat_pmt()
        return b""

    def write(self, data: bytes) -> None:
        if not self.header_sent:
            self.header_sent = True
            head = self.header()
            if head:
                self.sent_bytes += len(head)
                self._write_raw(head)
        if data:
            self.sent_bytes += len(data)
            self._write_raw(data)

    def stream_published(self) -> None:
        pass

    def stream_unpublished(self) -> None:
        # SRS ends its HTTP streams when the publisher leaves; the player
        # reconnects to whatever publishes next.
        if self._on_unpublish is not None:
            self._on_unpublish()


def configure_consumer(consumer, fmt: str, remux_conf) -> None:
    """Per-player filtering SRS's ``has_audio``/``has_video`` ask for."""
    if remux_conf is not None and remux_conf.drop_if_not_match:
        if not remux_conf.has_audio:
            consumer.accept_audio = False
        if not remux_conf.has_video and fmt in ("flv", "ts"):
            consumer.accept_video = False


__all__ = [
    "AdtsEncoder",
    "FORMATS",
    "HttpStreamSink",
    "PLAY_TYPES",
    "StreamMatch",
    "VIDEO",
    "configure_consumer",
    "match_request",
    "mount_regex",
    "shared_encoder",
    "stream_tracks",
]
