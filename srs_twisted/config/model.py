"""Typed, read-only view of an SRS configuration, with SRS's defaults.

Every field is declared once, with the directive it reads, how SRS reads it and SRS's default
(the default coded in SRS's getter, which wins over full.conf where they disagree).  The
builder walks these declarations; environment overrides (``SRS_*``, see
:mod:`srs_twisted.config.env`) are applied per field, before the file, exactly where SRS's
getters apply them.

Reading rules, as in SRS:

* ``_on(default)``: a "prefer-true" switch, ``off`` is false (SRS reads anything but ``off`` as
  true);
* ``_only_on(default)``: a "prefer-false" switch, ``on`` is true (SRS reads anything but ``on``
  as false);
* numbers read the leading number of the value (``10s`` is 10);
* an empty first argument means "use the default".

Values are checked by type and range, each error a :class:`ConfigError` at the argument
(``FILE:LINE:COL``) or at the variable (``<env NAME>``); SRS itself accepts any text and reads
it as above, so these are deliberate differences:

* a switch is ``on`` or ``off``;
* a number must have one (SRS silently reads ``lots`` as 0) and lie in its range (``low``,
  ``high``: durations, sizes and counts are never negative);
* an enumeration (``choices``) is one of the values SRS's code gives a meaning to.

Numbers SRS itself clamps or resets to the default (``mw_msgs``, ``opus_bitrate``,
``pli_for_rtmp``, ``tcmalloc_release_rate``...) are read the same way here and not rejected.

Units are the file's: milliseconds where SRS's key is in ms (``mw_latency``, ``mr_latency``,
``firstpkt_timeout``, ``grace_start_wait``...), seconds for the rest (``queue_length``,
``hls_fragment``...).  Each field's comment says which.
"""

from __future__ import annotations

import os
import random
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Callable, Mapping

from .check import atof, atoi, check
from .caster import SipConfig, StreamCasterConfig, check_stream_casters, finish_stream_caster
from .env import config_file, env_lookup, getenv, is_env_only
from .fields import _custom, _float, _int, _list, _on, _only_on, _opt, _raw, _section, _str
from .parser import ConfigError, Directive, parse_file, parse_string
from .rtc import expand_candidate
from .transform import transform

__all__ = [
    "load",
    "load_string",
    "build",
    "SrsConfig",
    "VhostConfig",
    "DEFAULT_VHOST",
    "DEFAULT_CONFIG_FILE",
]

DEFAULT_VHOST = "__defaultVhost__"
DEFAULT_CONFIG_FILE = "conf/srs.conf"

Env = Mapping[str, str] | None
Path = tuple[str, ...]

# Field declarations: see :mod:`.fields`.

class _Listens:
    """Sections whose ``listen`` takes several endpoints (SRS 7); ``listen`` is the first."""

    listens: list[str]

    @property
    def listen(self) -> str:
        return self.listens[0] if self.listens else ""


# --------------------------------------------------------------------------------------------
# Global sections


@dataclass(frozen=True)
class RawApiConfig:
    enabled: bool = _only_on(False)
    allow_reload: bool = _only_on(False)
    # SRS reads these two as always off (the features were removed); so do we.
    allow_query: bool = False
    allow_update: bool = False
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class AuthConfig:
    enabled: bool = _only_on(False)
    username: str = _str("")
    password: str = _str("")
    # SRS 7 (latest): Basic or Bearer, and whether Bearer also guards /rtc/.
    type: str = _str("basic")
    token: str = _str("")
    rtc_bearer_enabled: bool = _only_on(False)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HttpsConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list(["1990"], "listen")
    key: str = _str("./conf/server.key")
    cert: str = _str("./conf/server.crt")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HttpApiConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list(["1985"], "listen")
    crossdomain: bool = _on(True)
    raw_api: RawApiConfig = _section(RawApiConfig)
    auth: AuthConfig = _section(AuthConfig)
    # Its default listen follows http_server.https when API and server share a port.
    https: HttpsConfig = _section(HttpsConfig, listens=["1990"])
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HttpServerConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list(["8080"], "listen")
    dir: str = _str("./objs/nginx/html")
    crossdomain: bool = _on(True)
    https: HttpsConfig = _section(HttpsConfig, listens=["8088"])
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class RtcTcpConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list(["8000"], "listen")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class BlackHoleConfig:
    enabled: bool = _only_on(False)
    addr: str = _str("")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class RtcServerConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list(["8000"], "listen")  # UDP
    # ``*`` auto-detects; ``$NAME`` is replaced by that environment variable (``*`` if unset);
    # loaded expanded (see :mod:`srs_twisted.config.rtc`), checked by check.py.
    candidate: str = _str("*")
    protocol: str = _str("udp", choices=("udp", "tcp", "all"))
    ip_family: str = _str("ipv4", choices=("ipv4", "ipv6", "all"))
    api_as_candidates: bool = _on(True)
    resolve_api_domain: bool = _on(True)
    keep_api_domain: bool = _only_on(False)
    use_auto_detect_network_ip: bool = _on(True)
    ecdsa: bool = _on(True)
    encrypt: bool = _on(True)
    reuseport: int = _int(1, low=1)  # sockets on the UDP port (0 would listen on none)
    merge_nalus: bool = _only_on(False)
    tcp: RtcTcpConfig = _section(RtcTcpConfig)
    black_hole: BlackHoleConfig = _section(BlackHoleConfig)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class SrtServerConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list(["10080"], "listen")  # UDP
    maxbw: int = _int(-1, low=-1)  # bytes/s, -1 = unlimited
    mss: int = _int(1500)
    connect_timeout: int = _int(3000)  # ms
    peer_idle_timeout: int = _int(10000)  # ms
    default_app: str = _str("live")
    default_streamid: str = _str("#!::r=live/livestream,m=request")
    peerlatency: int = _int(0)  # ms
    recvlatency: int = _int(120)  # ms
    latency: int = _int(120)  # ms
    tsbpdmode: bool = _on(True)
    tlpktdrop: bool = _on(True)
    sendbuf: int = _int(8192 * (1500 - 28))
    recvbuf: int = _int(8192 * (1500 - 28))
    payloadsize: int = _int(1316)
    passphrase: str = _str("")
    pbkeylen: int = _int(0, choices=(0, 16, 24, 32))
    sei_filter: bool = _on(True)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class RtspServerConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list(["554"], "listen")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class RtmpsConfig(_Listens):
    enabled: bool = _only_on(False)
    listens: list[str] = _list([], "listen")
    key: str = _str("./conf/server.key")
    cert: str = _str("./conf/server.crt")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class ExporterConfig:
    enabled: bool = _only_on(False)
    listen: str = _str("9972")
    label: str = _str("")
    tag: str = _str("")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HeartbeatConfig:
    enabled: bool = _only_on(False)
    interval: int = _int(10, low=1)  # seconds (SRS reads it as an integer)
    url: str = _str("http://127.0.0.1:8085/api/v1/servers")
    device_id: str = _str("")
    summaries: bool = _only_on(False)
    ports: bool = _only_on(False)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class StatsConfig:
    enabled: bool = _on(True)
    network: int = _int(0)  # index of the local IP to report
    disk: list[str] = _list([])
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class CircuitBreakerConfig:
    enabled: bool = _on(True)
    high_threshold: int = _int(90)  # CPU percent
    high_pulse: int = _int(2)
    critical_threshold: int = _int(95)
    critical_pulse: int = _int(1)
    dying_threshold: int = _int(99)
    dying_pulse: int = _int(5)
    directive: Directive | None = _raw()


# --------------------------------------------------------------------------------------------
# Vhost sections


@dataclass(frozen=True)
class PlayConfig:
    gop_cache: bool = _on(True)
    gop_cache_max_frames: int = _int(2500)
    queue_length: float = _float(30.0)  # seconds
    time_jitter: str = _str("full", choices=("full", "zero", "off"))
    atc: bool = _only_on(False)
    atc_auto: bool = _only_on(False)
    mix_correct: bool = _only_on(False)
    mw_latency: int = _int(350)  # ms
    # Messages per merged write, at most 128; the default is 0 when the vhost has min_latency on.
    mw_msgs: int = _int(8)
    send_min_interval: float = _float(0.0)  # ms
    reduce_sequence_header: bool = _only_on(False)
    directive: Directive | None = _raw()
    # Not a directive: true when neither mw_latency nor mw_msgs is set (file or SRS_* variable)
    # and min_latency is off; players then get a merged write per video frame (our low-latency
    # default) instead of SRS's every mw_msgs messages or mw_latency ms.
    mw_by_frame: bool = False


@dataclass(frozen=True)
class PublishConfig:
    mr: bool = _only_on(False)  # merged read; SRS skips it when min_latency is on
    mr_latency: int = _int(350)  # ms
    firstpkt_timeout: int = _int(20000)  # ms
    normal_timeout: int = _int(5000)  # ms
    parse_sps: bool = _on(True)
    try_annexb_first: bool = _on(True)
    kickoff_for_idle: float = _float(0.0)  # seconds, 0 = never
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class SecurityRule:
    action: str  # allow or deny
    method: str  # play or publish
    target: str  # all, an IP or an IPv4 CIDR
    directive: Directive | None = field(default=None, compare=False, repr=False)


def _security_rules(node: Directive | None) -> list[SecurityRule]:
    if node is None:
        return []
    return [
        SecurityRule(rule.name, rule.arg(0, ""), rule.arg(1, ""), rule)
        for rule in node.children
        if rule.name in ("allow", "deny")
    ]


@dataclass(frozen=True)
class SecurityConfig:
    enabled: bool = _only_on(False)
    rules: list[SecurityRule] = _custom(_security_rules, list)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class ReferConfig:
    enabled: bool = _only_on(False)
    # Allowed page domains; None when the directive is absent (no check).
    all: list[str] | None = _opt("list", None)
    publish: list[str] | None = _opt("list", None)
    play: list[str] | None = _opt("list", None)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HttpHooksConfig:
    enabled: bool = _only_on(False)
    on_connect: list[str] = _list([])
    on_close: list[str] = _list([])
    on_publish: list[str] = _list([])
    on_unpublish: list[str] = _list([])
    on_play: list[str] = _list([])
    on_stop: list[str] = _list([])
    on_dvr: list[str] = _list([])
    on_hls: list[str] = _list([])
    on_hls_notify: list[str] = _list([])
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class ForwardConfig:
    enabled: bool = _only_on(False)
    destination: list[str] = _list([])
    backend: str = _str("")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class ClusterRedisConfig:
    """``cluster { redis { ... } }``: the origin cluster's stream directory
    in Redis (srs-twisted; SRS 7 has its origin cluster in a separate proxy)."""

    enabled: bool = _only_on(False)
    host: str = _str("127.0.0.1")
    port: int = _int(6379, low=1, high=65535)
    password: str = _str("")
    db: int = _int(0, low=0, high=1 << 20)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class ClusterConfig:
    mode: str = _str("local", choices=("local", "remote"))  # origin or edge
    origin: list[str] = _list([])
    token_traverse: bool = _only_on(False)
    vhost: str = _str("[vhost]")
    debug_srs_upnode: bool = _on(True)
    origin_cluster: bool = _only_on(False)
    coworkers: list[str] = _list([])
    protocol: str = _str("rtmp", choices=("rtmp", "flv", "flvs"))
    follow_client: bool = _only_on(False)
    redis: ClusterRedisConfig = _section(ClusterRedisConfig)
    directive: Directive | None = _raw()

    @property
    def is_edge(self) -> bool:
        return self.mode == "remote"

    @property
    def uses_redis(self) -> bool:
        """An origin of a Redis origin cluster (``origin_cluster on``), or an
        edge that answers HLS from the stream's origin."""
        return self.redis.enabled and (self.origin_cluster or self.is_edge)


@dataclass(frozen=True)
class HttpRemuxConfig:
    enabled: bool = _only_on(False)
    mount: str = _str("[vhost]/[app]/[stream].flv")
    fast_cache: float = _float(0.0)  # seconds
    drop_if_not_match: bool = _on(True)
    has_audio: bool = _on(True)
    has_video: bool = _on(True)
    guess_has_av: bool = _on(True)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HlsConfig:
    enabled: bool = _only_on(False)
    hls_fragment: float = _float(10.0)  # seconds
    hls_td_ratio: float = _float(1.0)
    hls_aof_ratio: float = _float(2.1)
    hls_window: float = _float(60.0)  # seconds
    hls_on_error: str = _str("continue", choices=("continue", "ignore", "disconnect"))
    hls_path: str = _str("./objs/nginx/html")
    hls_m3u8_file: str = _str("[app]/[stream].m3u8")
    hls_ts_file: str = _str("[app]/[stream]-[seq].ts")
    hls_entry_prefix: str = _str("")
    hls_acodec: str = _str("aac", choices=("aac", "mp3", "an"))
    hls_vcodec: str = _str("h264", choices=("h264", "h265", "vn"))
    hls_cleanup: bool = _on(True)
    hls_dispose: int = _int(120)  # seconds, 0 = never
    hls_wait_keyframe: bool = _on(True)
    hls_ts_floor: bool = _only_on(False)
    hls_nb_notify: int = _int(64)  # bytes read from on_hls_notify
    hls_ctx: bool = _on(True)
    hls_ts_ctx: bool = _on(True)
    hls_dts_directly: bool = _on(True)
    hls_keys: bool = _on(False)
    hls_fragments_per_key: int = _int(5)
    hls_key_file: str = _str("[app]/[stream]-[seq].key")
    # Both default to hls_path (filled in when loaded).
    hls_key_file_path: str | None = _str(None)
    hls_key_url: str | None = _str(None)
    hls_use_fmp4: bool = _only_on(False)
    hls_fmp4_file: str = _str("[app]/[stream]-[seq].m4s")
    hls_init_file: str = _str("[app]/[stream]/init.mp4")
    hls_recover: bool = _on(True)
    hls_master_m3u8_path_relative: bool = _only_on(False)
    # srs-twisted extensions (LL-HLS); SRS has no such keys.
    hls_low_latency: bool = _only_on(False)
    hls_part_duration: float = _float(1.0)  # seconds
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class DashConfig:
    enabled: bool = _only_on(False)
    dash_fragment: float = _float(10.0)  # seconds (full.conf shows 30; the code says 10)
    dash_update_period: float = _float(5.0)  # seconds
    dash_timeshift: float = _float(300.0)  # seconds
    dash_path: str = _str("./objs/nginx/html")
    dash_mpd_file: str = _str("[app]/[stream].mpd")
    dash_window_size: int = _int(5)
    dash_cleanup: bool = _on(True)
    dash_dispose: int = _int(120)  # seconds
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HdsConfig:
    enabled: bool = _only_on(False)
    hds_path: str = _str("./objs/nginx/html")
    hds_fragment: float = _float(10.0)  # seconds
    hds_window: float = _float(60.0)  # seconds
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class DvrConfig:
    enabled: bool = _only_on(False)
    dvr_apply: list[str] = _list(["all"])  # "all" or app/stream names
    dvr_plan: str = _str("session", choices=("session", "segment"))
    dvr_path: str = _str("./objs/nginx/html/[app]/[stream].[timestamp].flv")
    dvr_duration: int = _int(30)  # seconds
    dvr_wait_keyframe: bool = _on(True)
    time_jitter: str = _str("full", choices=("full", "zero", "off"))
    directive: Directive | None = _raw()


def _exec_publishes(node: Directive | None) -> list[list[str]]:
    return [list(d.args) for d in node.get_all("publish")] if node is not None else []


@dataclass(frozen=True)
class ExecConfig:
    enabled: bool = _only_on(False)
    # One command line (as a list of words) per ``publish`` directive.
    publish: list[list[str]] = _custom(_exec_publishes, list)
    directive: Directive | None = _raw()


def _ffmpeg_args(name: str) -> Callable[[Directive | None], list[str]]:
    """FFmpeg options written as a block (``vparams { preset fast; }``) -> ['-preset', 'fast']."""

    def read(engine: Directive | None) -> list[str]:
        block = engine.get(name) if engine is not None else None
        out: list[str] = []
        for option in block.children if block is not None else ():
            out.append(option.name if option.name.startswith("-") else "-" + option.name)
            if option.arg():
                out.append(option.arg())
        return out

    return read


@dataclass(frozen=True)
class EngineConfig:
    id: str = ""  # the engine's name, '' when it has none
    enabled: bool = _only_on(False)
    iformat: str = _str("flv")
    perfile: list[str] = _custom(_ffmpeg_args("perfile"), list)
    vfilter: list[str] = _custom(_ffmpeg_args("vfilter"), list)
    vcodec: str = _str("")
    vbitrate: int = _int(0)  # kbps
    vfps: float = _float(0.0)
    vwidth: int = _int(0)
    vheight: int = _int(0)
    vthreads: int = _int(1)
    vprofile: str = _str("")
    vpreset: str = _str("")
    vparams: list[str] = _custom(_ffmpeg_args("vparams"), list)
    acodec: str = _str("")
    abitrate: int = _int(0)  # kbps
    asample_rate: int = _int(0)
    achannels: int = _int(0, choices=(0, 1, 2))
    aparams: list[str] = _custom(_ffmpeg_args("aparams"), list)
    oformat: str = _str("flv")
    output: str = _str("")
    directive: Directive | None = _raw()


def _engines(node: Directive | None) -> list[EngineConfig]:
    if node is None:
        return []
    return [
        replace(_build(EngineConfig, engine, (), None), id=engine.arg() or "")
        for engine in node.get_all("engine")
    ]


@dataclass(frozen=True)
class IngestInputConfig:
    type: str = _str("file", choices=("file", "stream"))
    url: str = _str("")
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class IngestConfig:
    id: str = ""
    enabled: bool = _only_on(False)
    input: IngestInputConfig = _section(IngestInputConfig)
    ffmpeg: str = _str("")
    engines: list[EngineConfig] = _custom(_engines, list)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class TranscodeConfig:
    scope: str = ""  # '' (every stream), "app" or "app/stream"
    enabled: bool = _only_on(False)
    ffmpeg: str = _str("")
    engines: list[EngineConfig] = _custom(_engines, list)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class RtcConfig:
    enabled: bool = _only_on(False)
    nack: bool = _on(True)
    nack_no_copy: bool = _on(True)
    twcc: bool = _on(True)
    stun_timeout: int = _int(30, low=1)  # seconds (0 would end every session at once)
    stun_strict_check: bool = _only_on(False)
    dtls_role: str = _str("passive", choices=("passive", "active"))
    dtls_version: str = _str("auto", choices=("auto", "dtls1.0", "dtls1.2"))
    drop_for_pt: int = _int(0, high=127)  # an RTP payload type, 0 = none
    rtmp_to_rtc: bool = _only_on(False)
    keep_bframe: bool = _only_on(False)
    keep_avc_nalu_sei: bool = _on(True)
    opus_bitrate: int = _int(48000, low=None)  # bps, 8000..320000 (else the default)
    rtc_to_rtmp: bool = _only_on(False)
    pli_for_rtmp: float = _float(6.0, low=None)  # seconds, 0.5..30 (else the default)
    aac_bitrate: int = _int(48000, low=None)  # bps, 8000..320000 (else the default)
    init_rate_from_sdp: bool = _only_on(False)
    keep_original_ssrc: bool = _only_on(False)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class SrtConfig:
    enabled: bool = _only_on(False)
    srt_to_rtmp: bool = _only_on(True)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class RtspConfig:
    enabled: bool = _only_on(False)
    rtmp_to_rtsp: bool = _on(True)
    directive: Directive | None = _raw()


@dataclass(frozen=True)
class HttpStaticConfig:
    enabled: bool = _only_on(False)
    mount: str = _str("[vhost]/")
    dir: str = _str("./objs/nginx/html")
    directive: Directive | None = _raw()


def _ingests(vhost: Directive | None) -> list[IngestConfig]:
    if vhost is None:
        return []
    return [
        replace(_build(IngestConfig, node, (), None), id=node.arg() or "")
        for node in vhost.get_all("ingest")
    ]


def _transcodes(vhost: Directive | None) -> list[TranscodeConfig]:
    if vhost is None:
        return []
    return [
        replace(_build(TranscodeConfig, node, (), None), scope=node.arg() or "")
        for node in vhost.get_all("transcode")
    ]


@dataclass(frozen=True)
class VhostConfig:
    name: str = DEFAULT_VHOST
    enabled: bool = _on(True)
    chunk_size: int | None = _int(None, low=128, high=65536)  # None: the global rtmp chunk_size
    in_ack_size: int = _int(0)
    out_ack_size: int = _int(2500000)
    tcp_nodelay: bool = _only_on(False)
    min_latency: bool = _only_on(False)  # as read for RTMP/HTTP-FLV
    # min_latency as SRS reads it for WebRTC: there it defaults to on.
    rtc_min_latency: bool = _on(True, "min_latency")
    play: PlayConfig = _section(PlayConfig)
    publish: PublishConfig = _section(PublishConfig)
    security: SecurityConfig = _section(SecurityConfig)
    refer: ReferConfig = _section(ReferConfig)
    http_hooks: HttpHooksConfig = _section(HttpHooksConfig)
    forward: ForwardConfig = _section(ForwardConfig)
    cluster: ClusterConfig = _section(ClusterConfig)
    http_remux: HttpRemuxConfig = _section(HttpRemuxConfig)
    hls: HlsConfig = _section(HlsConfig)
    dash: DashConfig = _section(DashConfig)
    hds: HdsConfig = _section(HdsConfig)
    dvr: DvrConfig = _section(DvrConfig)
    exec: ExecConfig = _section(ExecConfig)
    ingests: list[IngestConfig] = _custom(_ingests, list)
    # Every ``transcode`` block; note SRS itself only ever consults the first one.
    transcodes: list[TranscodeConfig] = _custom(_transcodes, list)
    rtc: RtcConfig = _section(RtcConfig)
    srt: SrtConfig = _section(SrtConfig)
    rtsp: RtspConfig = _section(RtspConfig)
    http_static: HttpStaticConfig = _section(HttpStaticConfig)
    directive: Directive | None = _raw()

    @property
    def is_edge(self) -> bool:
        return self.cluster.is_edge

    @property
    def merged_read(self) -> bool:
        """Whether publishers use merged read: ``publish.mr`` unless ``min_latency`` is on."""
        return self.publish.mr and not self.min_latency


# --------------------------------------------------------------------------------------------
# The whole configuration


@dataclass(frozen=True)
class SrsConfig:
    # RTMP: ``rtmp { listen; chunk_size; }`` or, in the older layout, at the root.
    listen: list[str] = _list(["1935"], ("rtmp", "listen"))
    chunk_size: int = _int(60000, ("rtmp", "chunk_size"), low=128, high=65536)
    max_connections: int = _int(1000, low=1)
    # Ours (SRS has none): worker processes sharing the ports, "auto" = one per CPU
    # (srs_twisted/workers/; docs/scaling.md).
    workers: str = _str("1")
    # Ours (SRS has none): seconds an HTTP connection may take to send a
    # request's headers, from its opening or the previous response; 0 = no bound.
    http_header_timeout: float = _float(30.0)  # seconds
    pid: str = _str("./objs/srs.pid")
    work_dir: str = _str("./")
    daemon: bool = _on(True)  # parsed only: srs-twisted never daemonizes itself
    srs_log_tank: str = _str("console", choices=("console", "file"))  # SRS's own default is file
    srs_log_level: str = _str("trace", choices=("verbose", "info", "trace", "warn", "error"))
    srs_log_level_v2: str = _str("", choices=("trace", "debug", "info", "warn", "error"))
    srs_log_file: str = _str("./objs/srs.log")
    ff_log_dir: str = _str("./objs")
    ff_log_level: str = _str("info")
    utc_time: bool = _only_on(False)
    pithy_print_ms: int = _int(10000)  # ms
    asprocess: bool = _only_on(False)
    empty_ip_ok: bool = _on(True)
    in_docker: bool = _only_on(False)
    grace_start_wait: int = _int(2300)  # ms
    grace_final_wait: int = _int(3200)  # ms
    force_grace_quit: bool = _only_on(False)
    disable_daemon_for_docker: bool = _on(True)
    inotify_auto_reload: bool = _only_on(False)
    auto_reload_for_docker: bool = _on(True)
    tcmalloc_release_rate: float = _float(0.8, low=None)  # clamped to 0..10
    query_latest_version: bool = _on(False)
    first_wait_for_qlv: int = _int(300)  # seconds
    # SRS_SERVER_ID, else server_id, else a random "vid-xxxxxxx" made at load time.
    server_id: str = ""
    http_api: HttpApiConfig = _section(HttpApiConfig)
    http_server: HttpServerConfig = _section(HttpServerConfig)
    rtc_server: RtcServerConfig = _section(RtcServerConfig)
    srt_server: SrtServerConfig = _section(SrtServerConfig)
    rtsp_server: RtspServerConfig = _section(RtspServerConfig)
    rtmps: RtmpsConfig = _section(RtmpsConfig)
    exporter: ExporterConfig = _section(ExporterConfig)
    heartbeat: HeartbeatConfig = _section(HeartbeatConfig)
    stats: StatsConfig = _section(StatsConfig)
    circuit_breaker: CircuitBreakerConfig = _section(CircuitBreakerConfig)
    stream_casters: list[StreamCasterConfig] = field(default_factory=list)
    # Vhosts by name, in file order; a repeated name keeps its first block (as SRS).
    vhosts: dict[str, VhostConfig] = field(default_factory=dict)
    # The whole tree, after includes and legacy rewrites, for sections not typed here.
    root: Directive | None = field(default=None, compare=False, repr=False)
    path: str | None = None  # the file read; None for env-only or text configs

    def vhost(self, name: str) -> VhostConfig | None:
        """The vhost called ``name``, else ``__defaultVhost__``, else None."""
        found = self.vhosts.get(name)
        return found if found is not None else self.vhosts.get(DEFAULT_VHOST)

    def vhost_chunk_size(self, name: str) -> int:
        """The RTMP chunk size for a vhost: its own, else the global one."""
        found = self.vhost(name)
        if found is None or found.chunk_size is None:
            return self.chunk_size
        return found.chunk_size


# --------------------------------------------------------------------------------------------
# Builder


def _first(node: Directive | None, keys: Path) -> Directive | None:
    for key in keys:
        if node is None:
            return None
        node = node.get(key)
    return node


def _convert(kind: str, raw: str | list[str], key: str, where: Callable[[str], ConfigError], meta) -> Any:
    """The typed value of ``raw``, checked against the field's type and range."""
    if kind == "list":
        return list(raw) if isinstance(raw, list) else raw.split()
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    choices = meta.get("choices")
    if kind == "str":
        if choices and raw not in choices:
            raise where(f'"{key}" must be one of {", ".join(choices)}, got {raw!r}')
        return raw
    if kind in ("on", "only_on"):
        if raw not in ("on", "off"):
            raise where(f'"{key}" must be on or off, got {raw!r}')
        return raw == "on"
    value = atoi(raw) if kind == "int" else atof(raw)
    if value is None:
        raise where(f'"{key}" expects a number, got {raw!r}')
    if choices and value not in choices:
        raise where(f'"{key}" must be one of {", ".join(map(str, choices))}, got {raw!r}')
    low, high = meta.get("low"), meta.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"<= {high}" if low is None else f"in {low}..{high}"
        raise where(f'"{key}" must be {bounds}, got {raw!r}')
    return value


def _build(cls: type, node: Directive | None, path: Path, environ: Env, defaults: dict | None = None):
    """An instance of ``cls`` read from ``node`` (None when absent) at ``path``."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        kind = f.metadata.get("kind")
        if kind is None:
            continue
        if kind == "raw":
            values[f.name] = node
            continue
        if kind == "custom":
            values[f.name] = f.metadata["fn"](node)
            continue
        key = f.metadata["key"] or f.name
        keys = key if isinstance(key, tuple) else (key,)
        sub = _first(node, keys)
        if kind == "section":
            values[f.name] = _build(f.metadata["cls"], sub, path + keys, environ, f.metadata["defaults"])
            continue
        found = env_lookup(path + keys, environ)
        if found is not None:
            name, raw = found
            values[f.name] = _convert(
                kind, raw, name, lambda msg, n=name: ConfigError(f"<env {n}>", 0, 0, msg), f.metadata
            )
        elif sub is not None and (kind == "list" or sub.arg()):
            values[f.name] = _convert(
                kind, sub.args if kind == "list" else sub.arg(), keys[-1],
                lambda msg, d=sub: ConfigError.at(d, msg, 0), f.metadata,
            )
        elif defaults and f.name in defaults:
            values[f.name] = defaults[f.name]
        elif f.default is not MISSING:
            values[f.name] = f.default
    return cls(**values)


def _arg(node: Directive | None, keys: Path) -> str | None:
    """The first argument of the directive at ``keys`` as written in the file, or None."""
    found = _first(node, keys)
    return found.arg() if found is not None else None


def _given(node: Directive | None, keys: Path, path: Path, environ: Env) -> bool:
    """Whether ``keys`` was set explicitly (in the file or by a variable)."""
    if env_lookup(path + keys, environ) is not None:
        return True
    found = _first(node, keys)
    return found is not None and bool(found.arg())


def _in_range(value: float, low: float, high: float, default: float) -> float:
    return value if low <= value <= high else default


def _vhost(node: Directive, environ: Env) -> VhostConfig:
    v: VhostConfig = _build(VhostConfig, node, ("vhost",), environ)
    path = ("vhost",)
    play = v.play
    if v.min_latency and not _given(node, ("play", "mw_msgs"), path, environ):
        play = replace(play, mw_msgs=0)
    elif not v.min_latency and not any(_given(node, ("play", k), path, environ) for k in ("mw_latency", "mw_msgs")):
        play = replace(play, mw_by_frame=True)
    play = replace(play, mw_msgs=min(play.mw_msgs, 128))
    hls = replace(
        v.hls,
        hls_key_file_path=v.hls.hls_key_file_path or v.hls.hls_path,
        hls_key_url=v.hls.hls_key_url or v.hls.hls_path,
    )
    rtc = replace(
        v.rtc,
        opus_bitrate=int(_in_range(v.rtc.opus_bitrate, 8000, 320000, 48000)),
        aac_bitrate=int(_in_range(v.rtc.aac_bitrate, 8000, 320000, 48000)),
        pli_for_rtmp=_in_range(v.rtc.pli_for_rtmp, 0.5, 30.0, 6.0),
    )
    return replace(v, name=node.arg() or "", play=play, hls=hls, rtc=rtc)


def _stream_caster(node: Directive, environ: Env) -> StreamCasterConfig:
    return finish_stream_caster(_build(StreamCasterConfig, node, ("stream_caster",), environ), environ)


def _server_id(root: Directive, environ: Env) -> str:
    value = getenv("srs.server_id", environ)
    node = root.get("server_id")
    if not value and node is not None:
        value = node.arg() or ""
    if not value:
        alphabet = "0123456789" * 5 + "abcdefghijklmnopqrstuvwxyz"  # SRS's table
        value = "vid-" + "".join(random.choice(alphabet) for _ in range(7))
    return value


def build(root: Directive, environ: Env = None, path: str | None = None) -> SrsConfig:
    """The typed configuration for an already checked tree."""
    cfg: SrsConfig = _build(SrsConfig, root, (), environ)

    http_api = cfg.http_api
    if http_api.listens == cfg.http_server.listens and not _given(
        root, ("http_api", "https", "listen"), (), environ
    ):
        https = replace(http_api.https, listens=list(cfg.http_server.https.listens))
        http_api = replace(http_api, https=https)

    vhosts: dict[str, VhostConfig] = {}
    for node in root.get_all("vhost"):
        vhosts.setdefault(node.arg() or "", _vhost(node, environ))

    casters = [_stream_caster(n, environ) for n in root.get_all("stream_caster")]
    check_stream_casters(casters, root.path)

    return replace(
        cfg,
        server_id=_server_id(root, environ),
        tcmalloc_release_rate=min(10.0, max(0.0, cfg.tcmalloc_release_rate)),
        http_api=http_api,
        rtc_server=replace(cfg.rtc_server, candidate=expand_candidate(_arg(root, ("rtc_server", "candidate")), environ)[0]),
        stream_casters=casters,
        vhosts=vhosts,
        root=root,
        path=path,
    )


# --------------------------------------------------------------------------------------------
# Entry points


def load(
    path: str | None = None, environ: Mapping[str, str] | None = os.environ, env_only: bool = False
) -> SrsConfig:
    """Read, rewrite, check and type a configuration, as SRS does at start-up.

    ``path`` defaults to ``conf/srs.conf``; ``SRS_CONFIG_FILE`` overrides it.  With
    ``env_only`` (or ``SRS_ENV_ONLY`` set) no file is read: everything comes from ``SRS_*``
    variables, ``daemon`` defaults to off, logs go to the console and an empty configuration
    gets a ``vhost __defaultVhost__``.
    """
    environ = dict(environ or {})
    env_only = env_only or is_env_only(environ)
    if env_only:
        path = None
        root = Directive("", path="<env>", line=1, col=1)
        environ.setdefault("SRS_DAEMON", "off")
        if not environ.get("SRS_SRS_LOG_TANK") and not environ.get("SRS_LOG_TANK"):
            environ["SRS_SRS_LOG_TANK"] = "console"
    else:
        path = config_file(environ) or path or DEFAULT_CONFIG_FILE
        root = parse_file(path)
    transform(root)
    if env_only and root.get("vhost") is None:
        root.children.append(Directive("vhost", [DEFAULT_VHOST], line=1, col=1, path="<env>"))
    check(root, environ, env_only=env_only)
    return build(root, environ, path)


def load_string(text: str, environ: Mapping[str, str] | None = None, path: str = "<string>") -> SrsConfig:
    """Like :func:`load` for configuration text; ``environ=None`` applies no overrides."""
    root = transform(parse_string(text, path))
    check(root, environ)
    return build(root, environ, None)
