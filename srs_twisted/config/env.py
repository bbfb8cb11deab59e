"""Environment variables that override the configuration file, the SRS way.

A directive at path ``a.b.c`` is overridden by ``SRS_A_B_C`` (upper case, dots become
underscores), e.g. ``http_api.listen`` by ``SRS_HTTP_API_LISTEN`` and ``vhost.play.gop_cache``
by ``SRS_VHOST_PLAY_GOP_CACHE``.  A variable only counts when it is set and non-empty, and then
it beats the file.  ``SRS_VHOST_*`` variables have no vhost name in them: they apply to every
vhost.

Only the variables SRS itself reads are honoured (the table below, taken from the getters of
SRS 7), plus a few of our own marked as extensions.  Some names are not mechanical and follow
SRS: the RTMP ``listen`` is ``SRS_LISTEN``, the global ``chunk_size`` is
``SRS_VHOST_CHUNK_SIZE`` (or ``SRS_CHUNK_SIZE``, the name full.conf documents), the log keys
accept both ``SRS_SRS_LOG_TANK`` and ``SRS_LOG_TANK`` forms, and ``vhost.srt.srt_to_rtmp`` also
reads ``SRS_VHOST_SRT_TO_RTMP``.

Values of list-valued keys (listen endpoints, HTTP hook URLs) are split on whitespace.
"""

from __future__ import annotations

from typing import Mapping

__all__ = [
    "env_name",
    "env_names",
    "env_lookup",
    "env_value",
    "getenv",
    "expand_dollar",
    "config_file",
    "is_env_only",
    "KNOWN_PATHS",
    "LIST_PATHS",
]

Path = tuple[str, ...]

# Directive paths SRS reads from the environment, grouped as ``block: keys`` ("" is the root).
_KNOWN = """
: asprocess auto_reload_for_docker daemon disable_daemon_for_docker empty_ip_ok ff_log_dir
  ff_log_level first_wait_for_qlv force_grace_quit grace_final_wait grace_start_wait in_docker
  http_header_timeout inotify_auto_reload max_connections pid pithy_print_ms query_latest_version server_id
  srs_log_file srs_log_level srs_log_level_v2 srs_log_tank tcmalloc_release_rate utc_time work_dir workers
rtmp: listen chunk_size
circuit_breaker: critical_pulse critical_threshold dying_pulse dying_threshold enabled high_pulse
  high_threshold
exporter: enabled label listen tag
heartbeat: device_id enabled interval ports summaries url
http_api: crossdomain enabled listen
http_api.auth: enabled password username type token rtc_bearer_enabled
http_api.https: cert enabled key listen
http_api.raw_api: allow_reload enabled
http_server: crossdomain dir enabled listen
http_server.https: cert enabled key listen
rtc_server: api_as_candidates candidate ecdsa enabled encrypt ip_family keep_api_domain listen
  merge_nalus protocol resolve_api_domain reuseport use_auto_detect_network_ip
rtc_server.black_hole: addr enabled
rtc_server.tcp: enabled listen
rtmps: cert enabled key listen
rtsp_server: enabled listen
srt_server: connect_timeout default_app default_streamid enabled latency listen maxbw mss
  passphrase payloadsize pbkeylen peer_idle_timeout peerlatency recvbuf recvlatency sei_filter
  sendbuf tlpktdrop tsbpdmode
tencentcloud_apm: debug_logging enabled endpoint service_name team token
tencentcloud_cls: debug_logging enabled endpoint heartbeat_ratio label secret_id secret_key
  stat_heartbeat stat_streams streams_ratio tag topic_id
threads: interval
vhost: chunk_size in_ack_size min_latency out_ack_size tcp_nodelay
vhost.cluster.redis: enabled host port password db
vhost.dash: dash_cleanup dash_dispose dash_fragment dash_mpd_file dash_path dash_timeshift
  dash_update_period dash_window_size enabled
vhost.dvr: dvr_duration dvr_path dvr_plan dvr_wait_keyframe enabled time_jitter
vhost.forward: backend enabled
vhost.hds: enabled hds_fragment hds_path hds_window
vhost.hls: enabled hls_acodec hls_aof_ratio hls_cleanup hls_ctx hls_dispose hls_dts_directly
  hls_entry_prefix hls_fmp4_file hls_fragment hls_fragments_per_key hls_init_file hls_key_file
  hls_key_file_path hls_key_url hls_keys hls_m3u8_file hls_master_m3u8_path_relative
  hls_nb_notify hls_on_error hls_path hls_recover hls_td_ratio hls_ts_ctx hls_ts_file
  hls_ts_floor hls_use_fmp4 hls_vcodec hls_wait_keyframe hls_window
  hls_low_latency hls_part_duration
vhost.http_hooks: enabled on_close on_connect on_dvr on_hls on_hls_notify on_play on_publish
  on_stop on_unpublish
vhost.http_remux: drop_if_not_match enabled fast_cache guess_has_av has_audio has_video mount
vhost.http_static: dir enabled mount
vhost.play: atc atc_auto gop_cache gop_cache_max_frames mix_correct mw_latency mw_msgs
  queue_length reduce_sequence_header send_min_interval time_jitter
vhost.publish: firstpkt_timeout kickoff_for_idle mr mr_latency normal_timeout parse_sps
  try_annexb_first
vhost.rtc: aac_bitrate drop_for_pt dtls_role dtls_version enabled init_rate_from_sdp
  keep_avc_nalu_sei keep_bframe keep_original_ssrc nack nack_no_copy opus_bitrate pli_for_rtmp
  rtc_to_rtmp rtmp_to_rtc stun_strict_check stun_timeout twcc
vhost.rtsp: enabled rtmp_to_rtsp
vhost.srt: enabled srt_to_rtmp
"""
# srs-twisted extensions in the table above: vhost.hls.hls_low_latency and
# vhost.hls.hls_part_duration (our LL-HLS keys), vhost.cluster.redis.* (the Redis
# origin cluster).


def _parse_known(text: str) -> frozenset[Path]:
    paths: set[Path] = set()
    block: Path = ()
    for raw in text.strip("\n").splitlines():
        if not raw.startswith(" "):
            head, _, raw = raw.partition(":")
            block = tuple(head.split(".")) if head else ()
        paths.update(block + (key,) for key in raw.split())
    return frozenset(paths)


#: Every directive path that an environment variable can override.
KNOWN_PATHS: frozenset[Path] = _parse_known(_KNOWN)

#: Paths whose value is a list: the variable is split on whitespace.
LIST_PATHS: frozenset[Path] = frozenset(
    [
        ("listen",),
        ("rtmp", "listen"),
        ("http_api", "listen"),
        ("http_api", "https", "listen"),
        ("http_server", "listen"),
        ("http_server", "https", "listen"),
        ("rtc_server", "listen"),
        ("rtc_server", "tcp", "listen"),
        ("srt_server", "listen"),
        ("rtsp_server", "listen"),
        ("rtmps", "listen"),
    ]
    + [
        ("vhost", "http_hooks", hook)
        for hook in "on_connect on_close on_publish on_unpublish on_play on_stop on_dvr on_hls "
        "on_hls_notify".split()
    ]
)

# Where SRS's variable name is not the mechanical one (first name wins when both are set).
_ALIASES: dict[Path, tuple[str, ...]] = {
    ("rtmp", "listen"): ("SRS_LISTEN",),
    ("rtmp", "chunk_size"): ("SRS_VHOST_CHUNK_SIZE", "SRS_CHUNK_SIZE"),
    ("srs_log_tank",): ("SRS_SRS_LOG_TANK", "SRS_LOG_TANK"),
    ("srs_log_level",): ("SRS_SRS_LOG_LEVEL", "SRS_LOG_LEVEL"),
    ("srs_log_level_v2",): ("SRS_SRS_LOG_LEVEL_V2", "SRS_LOG_LEVEL_V2"),
    ("srs_log_file",): ("SRS_SRS_LOG_FILE", "SRS_LOG_FILE"),
    ("vhost", "srt", "srt_to_rtmp"): ("SRS_VHOST_SRT_SRT_TO_RTMP", "SRS_VHOST_SRT_TO_RTMP"),
}
# Legacy root-level spellings read the same variables as their rtmp {} form.
_ALIASES[("listen",)] = _ALIASES[("rtmp", "listen")]
_ALIASES[("chunk_size",)] = _ALIASES[("rtmp", "chunk_size")]


def env_name(path: Path | str) -> str:
    """The mechanical variable name of a dotted path: ``http_api.listen`` -> ``SRS_HTTP_API_LISTEN``."""
    dotted = path if isinstance(path, str) else ".".join(path)
    return "SRS_" + dotted.replace(".", "_").upper()


def env_names(path: Path) -> tuple[str, ...]:
    """The variables (in priority order) that override ``path``; empty if none does."""
    path = tuple(path)
    if path in _ALIASES:
        return _ALIASES[path]
    if path in KNOWN_PATHS:
        return (env_name(path),)
    return ()


def env_lookup(path: Path, environ: Mapping[str, str] | None) -> tuple[str, str | list[str]] | None:
    """``(variable name, value)`` of the variable overriding ``path``, or None."""
    if not environ:
        return None
    for name in env_names(path):
        value = environ.get(name)
        if value:
            if tuple(path) in LIST_PATHS:
                return name, value.split()
            return name, value
    return None


def env_value(path: Path, environ: Mapping[str, str] | None) -> str | list[str] | None:
    """The override for the directive at ``path`` (a list for list-valued keys), or None."""
    found = env_lookup(path, environ)
    return None if found is None else found[1]


def getenv(key: str, environ: Mapping[str, str] | None) -> str:
    """SRS's ``srs_getenv``: strip a leading ``$``, upper-case, dots to underscores."""
    if not environ:
        return ""
    name = key[1:] if key.startswith("$") else key
    if not name:
        return ""
    return environ.get(name.upper().replace(".", "_"), "") or ""


def expand_dollar(value: str, environ: Mapping[str, str] | None, default: str) -> str:
    """``$NAME`` expansion as SRS does for ``candidate``: the variable's value if set; an
    unset ``$NAME`` gives ``default``; other values are returned as they are."""
    found = getenv(value, environ)
    if found:
        return found
    if value.startswith("$"):
        return default
    return value


def config_file(environ: Mapping[str, str] | None) -> str | None:
    """``SRS_CONFIG_FILE``, which overrides ``-c``, when set and non-empty."""
    return (environ or {}).get("SRS_CONFIG_FILE") or None


def is_env_only(environ: Mapping[str, str] | None) -> bool:
    """Whether ``SRS_ENV_ONLY`` is set (to anything), which means the same as ``-e``."""
    return "SRS_ENV_ONLY" in (environ or {})
