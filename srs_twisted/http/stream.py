"""Live HTTP streams: HTTP-FLV, HTTP-TS, HTTP-AAC, HTTP-MP3 (and the same
over WebSocket), each a consumer of the live source.

Mounts follow SRS's ``http_remux.mount`` (default ``[vhost]/[app]/[stream].flv``).
As in SRS, the mount's extension is the one format it serves: a ``.flv``
mount answers ``/live/s.flv`` only, so ``/live/s-1.ts`` stays a static file
(an HLS segment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zope.interface import implementer

from ..codec import aac, flv, mpegts
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


def mount_format(mount: str) -> str | None:
    """The extension (``.flv``, ``.ts``, ``.aac``, ``.mp3``) a mount serves,
    or None when it ends in none of them (then it serves nothing)."""
    for ext in FORMATS:
        if mount.endswith(ext):
            return ext
    return None


def mount_regex(mount: str) -> re.Pattern | None:
    """``[vhost]/[app]/[stream].flv`` -> a regex over the request path, with
    the mount's own extension only (None for a mount without one).  The
    ``[vhost]/`` part is matched against the Host header instead (SRS's
    vhost-aware mux)."""
    ext = mount_format(mount)
    if ext is None:
        return None
    template = mount[: -len(ext)]
    if template.startswith("[vhost]"):
        template = template[len("[vhost]") :]
    template = "/" + template.lstrip("/")
    out = []
    for part in re.split(r"(\[app\]|\[stream\])", template):
        if part == "[app]":
            out.append(r"(?P<app>[^/]+(?:/[^/]+)*?)")
        elif part == "[stream]":
            out.append(r"(?P<stream>[^/]+?)")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "(?P<ext>" + re.escape(ext) + ")$")


_REGEX_CACHE: dict[str, re.Pattern | None] = {}


def match_request(ctx, host: str, path: str) -> StreamMatch | None:
    """Which live stream (if any) an HTTP path names on this server."""
    conf = ctx.vhost(host) or ctx.vhost(DEFAULT_VHOST)
    if conf is None or not conf.enabled or not conf.http_remux.enabled:
        return None
    mount = conf.http_remux.mount
    if mount not in _REGEX_CACHE:
        _REGEX_CACHE[mount] = mount_regex(mount)
    regex = _REGEX_CACHE[mount]
    m = regex.match(path) if regex is not None else None
    if m is None:
        return None
    groups = m.groupdict()
    app = groups.get("app") or _literal_app(mount)
    stream = groups.get("stream") or ""
    fmt, ctype = FORMATS[groups["ext"]]
    return StreamMatch(conf.name, app, stream, fmt, ctype)


_SAMPLE = {"[app]": "live", "[stream]": "livestream", "[seq]": "1", "[timestamp]": "1700000000000",
           "[2006]": "2026", "[01]": "01", "[02]": "02", "[15]": "15", "[04]": "04", "[05]": "05",
           "[999]": "999", "[duration]": "10000"}


def _written_files(vhost) -> list[tuple[str, str]]:
    """(what, file path template) of the files a vhost writes for players."""
    out = []
    hls = vhost.hls
    if hls.enabled:
        media = [("hls_fmp4_file", hls.hls_fmp4_file), ("hls_init_file", hls.hls_init_file)] if hls.hls_use_fmp4 \
            else [("hls_ts_file", hls.hls_ts_file)]
        for what, name in [("hls_m3u8_file", hls.hls_m3u8_file)] + media:
            out.append((what, hls.hls_path.rstrip("/") + "/" + name))
    if vhost.dash.enabled:
        out.append(("dash_mpd_file", vhost.dash.dash_path.rstrip("/") + "/" + vhost.dash.dash_mpd_file))
    if vhost.dvr.enabled:
        out.append(("dvr_path", vhost.dvr.dvr_path))
    return out


def mount_warnings(config) -> list[str]:
    """What ``srs -t`` warns about the live mounts: a mount that serves
    nothing, and a mount that would also take files the server writes under
    ``http_server.dir`` (HLS, DASH, DVR of any vhost, as every file there
    can be asked for with any Host), which players then never get."""
    import os.path

    server = config.http_server
    if not server.enabled:
        return []
    root = os.path.abspath(server.dir)
    files = []
    for owner in config.vhosts.values():
        for what, template in _written_files(owner):
            path = template.replace("[vhost]", owner.name)
            for key, value in _SAMPLE.items():
                path = path.replace(key, value)
            path = os.path.abspath(path)
            if os.path.commonpath([root, path]) == root:
                files.append((owner.name, what, "/" + os.path.relpath(path, root)))
    warnings = []
    for vhost in config.vhosts.values():
        remux = vhost.http_remux
        if not (vhost.enabled and remux.enabled):
            continue
        regex = mount_regex(remux.mount)
        if regex is None:
            warnings.append(f"vhost {vhost.name}: http_remux mount {remux.mount} ends in none of "
                            f"{' '.join(FORMATS)}, so it serves nothing")
            continue
        for owner, what, url in files:
            if regex.match(url):
                warnings.append(f"vhost {vhost.name}: http_remux mount {remux.mount} overlaps {what} of vhost "
                                f"{owner} (e.g. {url}): such requests get the live stream, not the file")
    return warnings


def audio_codec(source) -> str | None:
    """The audio codec the stream is known to carry (``aac``, ``mp3``...),
    from its sequence header, its first described frame, or its metadata;
    None while nothing tells."""
    if source.audio_sh is not None:
        return source.audio_sh.codec
    described = getattr(source.stats, "audio", None)
    if described and described.get("codec"):
        return str(described["codec"]).lower()
    if source.metadata is not None:
        try:
            _, meta = flv.parse_script(source.metadata.payload)
        except CodecError:
            return None
        codec_id = meta.get("audiocodecid") if isinstance(meta, dict) else None
        if isinstance(codec_id, (int, float)) and not isinstance(codec_id, bool):
            return flv._LEGACY_AUDIO.get(int(codec_id))
        if isinstance(codec_id, str):
            return {"mp4a": "aac", ".mp3": "mp3", "mp3": "mp3"}.get(codec_id)
    return None


class Unplayable(ValueError):
    """The stream cannot be played in the asked format (HTTP 415)."""


def unplayable(source, fmt: str) -> str:
    """Why ``source`` cannot be played as ``fmt`` at all (an audio-only
    format of a stream with other audio), else ''.  Such a player would
    otherwise wait forever for a frame it can use."""
    if fmt not in ("aac", "mp3"):
        return ""
    codec = audio_codec(source)
    if codec is None or codec == fmt:
        return ""
    return (f"{source.app}/{source.stream} has {codec.upper()} audio, so it cannot be played as "
            f".{fmt}; play .flv or .ts instead")


def _literal_app(mount: str) -> str:
    parts = mount.replace("[vhost]", "").strip("/").split("/")
    return "/".join(p for p in parts[:-1] if p)


# ---- encoders shared by every player of one format ---------------------------
def encode_flv(pkt: MediaPacket) -> bytes:
    return flv.encode_tag(pkt.kind, pkt.dts & 0xFFFFFFFF, pkt.payload)


def retime_flv(pkt: MediaPacket, ts: int) -> tuple:
    """A player's own tag header over the shared payload (``time_jitter full``)."""
    return flv.tag_pieces(pkt.kind, ts, pkt.payload)


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
    file header, or TS PAT/PMT) is written before the first data.  ``direct(sink)``,
    when given, is asked once that is out for a faster ``write`` (counting into
    ``sent_bytes`` itself, see :func:`srs_twisted.directwrite.body_writer`), which
    then takes this one's place."""

    def __init__(self, source, fmt: str, write_raw, remux_conf=None, on_unpublish=None, direct=None) -> None:
        self.source = source
        self._on_unpublish = on_unpublish
        self.fmt = fmt
        self.wire_key, self.encode = shared_encoder(source, fmt)
        # A player's own timeline (time_jitter full): FLV restamps the tag
        # header over the shared payload, TS the PES header and PCR over the
        # shared packets; AAC and MP3 carry no timestamps.
        self.retime = retime_flv if fmt == "flv" else self._retime_ts if fmt == "ts" else None
        self._write_raw = write_raw
        self._direct = direct
        self._conf = remux_conf
        self.header_sent = False
        self.sent_bytes = 0

    def _retime_ts(self, pkt: MediaPacket, ts: int) -> list:
        data = pkt.wire(self.wire_key, self.encode)
        shift = pkt.dts - ts
        return mpegts.shift_timestamps(data, shift * 90) if shift and data else [data]

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
        if self._direct is not None and self.sent_bytes:  # once something (the headers) is out
            fast, self._direct = self._direct(self), None
            if fast is not None:
                self.write = fast

    def stream_published(self) -> None:
        pass

    def stream_unpublished(self) -> None:
        # SRS ends its HTTP streams when the publisher leaves; the player
        # reconnects to whatever publishes next.  Not when a cluster pull hands
        # the stream over to a local publisher (cluster/relay.py): it goes on.
        if self._on_unpublish is not None and not getattr(self.source, "handing_over", False):
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
    "Unplayable",
    "VIDEO",
    "configure_consumer",
    "match_request",
    "mount_regex",
    "audio_codec",
    "mount_format",
    "mount_warnings",
    "shared_encoder",
    "stream_tracks",
    "unplayable",
]
