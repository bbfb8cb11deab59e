"""Validation of a parsed (and transformed) configuration tree, as ``srs -t`` does.

Two kinds of checks, each failing with a :class:`ConfigError` at the offending directive:

* names: a strict whitelist of directives at the root, in the global blocks and in the vhost
  blocks (``illegal directive "foo" in vhost.play``).  It is the union of what SRS 7 accepts
  (its ``check_normal_config`` and full.conf), written below in the config syntax itself;
* values SRS validates: listen endpoints, chunk_size, max_connections, heartbeat interval,
  ``daemon`` with ``asprocess``, HTTPS without HTTP, one ``http_remux`` per vhost, HLS with
  HTTP-TS, forward with ``kickoff_for_idle``, unique ingest ids, and ``is_full``.

Numbers that do not parse at all (``queue_length abc``) are reported when the typed model is
built (:mod:`srs_twisted.config.model`), which knows the type of every key.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Mapping

from .env import env_lookup
from .parser import ConfigError, Directive, parse_string
from .rtc import black_hole_problem, candidate_problem, expand_candidate

__all__ = ["check", "SCHEMA", "parse_endpoint", "atoi", "atof"]

_ENGINE = """engine {
    enabled; iformat; perfile; vfilter; vcodec; vbitrate; vfps; vwidth; vheight; vthreads;
    vprofile; vpreset; vparams; acodec; abitrate; asample_rate; achannels; aparams; oformat;
    output;
}"""

# A block with children is checked against them; a leaf's contents are not checked.
_SCHEMA_TEXT = """
listen; chunk_size; pid; daemon; max_connections; http_header_timeout; work_dir; server_id; asprocess; utc_time;
srs_log_tank; srs_log_level; srs_log_level_v2; srs_log_file; ff_log_dir; ff_log_level;
pithy_print_ms; grace_start_wait; grace_final_wait; force_grace_quit; empty_ip_ok; in_docker;
disable_daemon_for_docker; inotify_auto_reload; auto_reload_for_docker; tcmalloc_release_rate;
query_latest_version; first_wait_for_qlv; is_full; workers;
rtmp { listen; chunk_size; }
rtmps { enabled; listen; key; cert; }
http_api {
    enabled; listen; crossdomain;
    raw_api { enabled; allow_reload; allow_query; allow_update; }
    auth { enabled; username; password; type; token; rtc_bearer_enabled; }
    https { enabled; listen; key; cert; }
}
http_server { enabled; listen; dir; crossdomain; https { enabled; listen; key; cert; } }
rtc_server {
    enabled; listen; dir; candidate; ecdsa; encrypt; reuseport; merge_nalus; protocol; ip_family;
    api_as_candidates; resolve_api_domain; keep_api_domain; use_auto_detect_network_ip;
    tcp { enabled; listen; }
    black_hole { enabled; addr; }
}
srt_server {
    enabled; listen; maxbw; mss; latency; recvlatency; peerlatency; connect_timeout;
    peer_idle_timeout; sendbuf; recvbuf; payloadsize; default_app; default_streamid; sei_filter;
    mix_correct; tlpktdrop; tsbpdmode; passphrase; pbkeylen;
}
rtsp_server { enabled; listen; }
stream_caster {
    enabled; caster; output; listen;
    sip { enabled; listen; timeout; reinvite; candidate; }
}
exporter { enabled; listen; label; tag; }
heartbeat { enabled; interval; url; device_id; summaries; ports; auth { enabled; type; token; } }
stats { enabled; network; disk; }
circuit_breaker {
    enabled; high_threshold; high_pulse; critical_threshold; critical_pulse; dying_threshold;
    dying_pulse;
}
threads { interval; }
tencentcloud_cls {
    enabled; label; tag; secret_id; secret_key; endpoint; topic_id; debug_logging; stat_heartbeat;
    heartbeat_ratio; stat_streams; streams_ratio;
}
tencentcloud_apm { enabled; team; token; endpoint; service_name; debug_logging; }
vhost {
    enabled; chunk_size; min_latency; tcp_nodelay; in_ack_size; out_ack_size; bandcheck;
    play {
        time_jitter; mix_correct; atc; atc_auto; mw_latency; mw_msgs; gop_cache;
        gop_cache_max_frames; queue_length; send_min_interval; reduce_sequence_header;
    }
    publish {
        mr; mr_latency; firstpkt_timeout; normal_timeout; parse_sps; try_annexb_first;
        kickoff_for_idle;
    }
    cluster {
        mode; origin; token_traverse; vhost; debug_srs_upnode; coworkers; origin_cluster; protocol;
        follow_client;
        # srs-twisted extension (the Redis origin cluster), not in SRS:
        redis { enabled; host; port; password; db; }
    }
    security { enabled; allow; deny; }
    refer { enabled; all; publish; play; }
    http_hooks {
        enabled; on_connect; on_close; on_publish; on_unpublish; on_play; on_stop; on_dvr; on_hls;
        on_hls_notify;
    }
    forward { enabled; destination; backend; }
    http_remux { enabled; mount; fast_cache; drop_if_not_match; has_audio; has_video; guess_has_av; }
    http_static { enabled; mount; dir; }
    hls {
        enabled; hls_entry_prefix; hls_path; hls_fragment; hls_window; hls_on_error; hls_storage;
        hls_mount; hls_td_ratio; hls_aof_ratio; hls_acodec; hls_vcodec; hls_m3u8_file; hls_ts_file;
        hls_ts_floor; hls_cleanup; hls_nb_notify; hls_wait_keyframe; hls_dispose; hls_keys;
        hls_fragments_per_key; hls_key_file; hls_key_file_path; hls_key_url; hls_dts_directly;
        hls_ctx; hls_ts_ctx; hls_use_fmp4; hls_fmp4_file; hls_init_file; hls_recover;
        hls_master_m3u8_path_relative;
        # srs-twisted extensions (LL-HLS), not in SRS:
        hls_low_latency; hls_part_duration;
    }
    hds { enabled; hds_fragment; hds_window; hds_path; }
    dash {
        enabled; dash_fragment; dash_update_period; dash_timeshift; dash_path; dash_mpd_file;
        dash_window_size; dash_dispose; dash_cleanup;
    }
    dvr { enabled; dvr_apply; dvr_path; dvr_plan; dvr_duration; dvr_wait_keyframe; time_jitter; }
    exec { enabled; publish; }
    ingest { enabled; input { type; url; } ffmpeg; ENGINE }
    transcode { enabled; ffmpeg; ENGINE }
    rtc {
        enabled; nack; nack_no_copy; twcc; stun_timeout; stun_strict_check; dtls_role; dtls_version;
        drop_for_pt; rtmp_to_rtc; rtc_to_rtmp; pli_for_rtmp; keep_bframe; keep_avc_nalu_sei;
        opus_bitrate; aac_bitrate; init_rate_from_sdp; keep_original_ssrc; bframe; aac;
    }
    srt { enabled; srt_to_rtmp; }
    rtsp { enabled; rtmp_to_rtsp; }
}
""".replace("ENGINE", _ENGINE)

#: The whitelist, as a tree: a node with children lists the names allowed inside it.
SCHEMA: Directive = parse_string(_SCHEMA_TEXT, "<schema>")

# Directive paths whose arguments are listen endpoints ([ip:]port).
_LISTEN_PATHS = frozenset(
    tuple(p.split("."))
    for p in (
        "listen rtmp.listen rtmps.listen http_api.listen http_api.https.listen http_server.listen "
        "http_server.https.listen rtc_server.listen rtc_server.tcp.listen srt_server.listen "
        "rtsp_server.listen exporter.listen stream_caster.listen stream_caster.sip.listen"
    ).split()
)

_MIN_CHUNK_SIZE, _MAX_CHUNK_SIZE = 128, 65536
_INT = re.compile(r"[+-]?\d+$")
_INT_PREFIX = re.compile(r"\s*[+-]?\d+")
_FLOAT_PREFIX = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def atoi(text: str | None) -> int | None:
    """C ``atoi`` on the leading number of ``text`` ("10s" -> 10), or None if there is none."""
    m = _INT_PREFIX.match(text or "")
    return int(m.group()) if m else None


def atof(text: str | None) -> float | None:
    """C ``atof`` on the leading number of ``text`` ("2.5s" -> 2.5), or None if there is none."""
    m = _FLOAT_PREFIX.match(text or "")
    return float(m.group()) if m else None


def parse_endpoint(text: str) -> tuple[str, int]:
    """Split ``[ip:]port`` (IPv6 in brackets) into ``(ip, port)``; ``ip`` is '' when absent.

    Raises ValueError with a readable reason if the endpoint is invalid.
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not an integer in 1..65535")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv4 or IPv6 address") from None
    return host, int(port)


def check(root: Directive, environ: Mapping[str, str] | None = None, env_only: bool = False) -> None:
    """Raise :class:`ConfigError` for the first problem in ``root``; ``environ`` supplies the
    ``SRS_*`` overrides that SRS also takes into account while checking."""
    if not env_only and not root.children:
        raise ConfigError(root.path, 1, 1, "conf is empty")
    _check_names(root, SCHEMA, ())
    _check_values(root, environ)


def _check_names(node: Directive, schema: Directive, path: tuple[str, ...]) -> None:
    for child in node.children:
        rule = schema.get(child.name)
        if rule is None and child.name != "include":
            where = f" in {'.'.join(path)}" if path else ""
            raise ConfigError.at(child, f'illegal directive "{child.name}"{where}')
        if rule is not None and rule.children:
            _check_names(child, rule, path + (child.name,))


def _first(node: Directive | None, *names: str) -> Directive | None:
    for name in names:
        if node is None:
            return None
        node = node.get(name)
    return node


def _value(node: Directive | None, keys: tuple[str, ...], environ, env_path=None):
    """The effective raw value of ``keys`` under ``node``: (value, directive, env name)."""
    found = env_lookup(env_path or keys, environ)
    if found is not None:
        name, value = found
        return value, None, name
    d = _first(node, *keys)
    if d is not None and d.arg():
        return d.arg(), d, None
    return None, d, None


def _flag(node, keys, environ, default: bool, env_path=None) -> bool:
    """A boolean with SRS's reading: ``on`` is true when the default is false, and anything
    but ``off`` is true when the default is true."""
    value, _, _ = _value(node, keys, environ, env_path)
    if value is None:
        return default
    return value != "off" if default else value == "on"


def _fail(directive: Directive | None, env_name: str | None, message: str, root: Directive):
    if env_name is not None:
        return ConfigError(f"<env {env_name}>", 0, 0, message)
    if directive is not None:
        return ConfigError.at(directive, message)
    return ConfigError(root.path, 1, 1, message)


def _listens(node, keys, environ, default: list[str], env_path=None) -> list[str]:
    found = env_lookup(env_path or keys, environ)
    if found is not None:
        return list(found[1]) if isinstance(found[1], list) else found[1].split()
    d = _first(node, *keys)
    return list(d.args) if d is not None else list(default)


def _check_values(root: Directive, environ) -> None:
    for node, path in _walk(root, ()):
        if path in _LISTEN_PATHS:
            _check_listen(node, ".".join(path))
        elif path in (("chunk_size",), ("rtmp", "chunk_size"), ("vhost", "chunk_size")):
            _check_int(node, ".".join(path), _MIN_CHUNK_SIZE, _MAX_CHUNK_SIZE)
        elif path == ("max_connections",):
            _check_int(node, "max_connections", 1, None)
        elif path == ("workers",) and node.arg() != "auto":
            _check_int(node, "workers", 1, 1024)
        elif path == ("stats", "network"):
            _check_int(node, "stats.network", 0, None)
        elif path == ("heartbeat", "interval"):
            if (atoi(node.arg()) or 0) <= 0:
                raise ConfigError.at(node, "heartbeat.interval must be at least 1 (seconds)", 0)
        elif path == ("vhost",) and not node.args:
            raise ConfigError.at(node, "vhost needs a name")
    _check_env_values(environ)
    _check_rtc(root, environ)

    if _flag(root, ("is_full",), None, False):
        raise ConfigError.at(root.get("is_full"), "never use full.conf: it is an example of every directive")
    if _flag(root, ("asprocess",), environ, False) and _flag(root, ("daemon",), environ, True):
        raise _fail(root.get("asprocess"), None, "daemon conflicts with asprocess (set daemon off)", root)
    _check_https(root, environ)
    for vhost in root.get_all("vhost"):
        _check_vhost(vhost, environ)


def _walk(node: Directive, path: tuple[str, ...]):
    for child in node.children:
        sub = path + (child.name,)
        yield child, sub
        yield from _walk(child, sub)


def _check_listen(node: Directive, what: str) -> None:
    if not node.args:
        raise ConfigError.at(node, f"{what} needs at least one [ip:]port")
    for i, arg in enumerate(node.args):
        try:
            parse_endpoint(arg)
        except ValueError as e:
            raise ConfigError.at(node, f"invalid {what} {arg!r}: {e}", i) from None


def _check_int(node: Directive, what: str, low: int, high: int | None) -> None:
    arg = node.arg()
    if arg is None or not _INT.match(arg):
        raise ConfigError.at(node, f"{what} must be an integer, got {arg!r}", 0 if arg else None)
    value = int(arg)
    if value < low or (high is not None and value > high):
        bounds = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ConfigError.at(node, f"{what} {value} out of range: must be {bounds}", 0)


def _check_env_values(environ) -> None:
    if not environ:
        return
    for path in _LISTEN_PATHS:
        found = env_lookup(path, environ)
        if found is None:
            continue
        name, values = found
        for value in values if isinstance(values, list) else values.split():
            try:
                parse_endpoint(value)
            except ValueError as e:
                raise ConfigError(f"<env {name}>", 0, 0, f"invalid {value!r}: {e}") from None
    found = env_lookup(("rtmp", "chunk_size"), environ)
    if found is not None:
        name, value = found
        if not _INT.match(value) or not _MIN_CHUNK_SIZE <= int(value) <= _MAX_CHUNK_SIZE:
            raise ConfigError(
                f"<env {name}>", 0, 0,
                f"chunk_size {value!r} must be an integer in {_MIN_CHUNK_SIZE}..{_MAX_CHUNK_SIZE}",
            )
    found = env_lookup(("workers",), environ)
    if found is not None and found[1] != "auto" and not (_INT.match(found[1]) and 1 <= int(found[1]) <= 1024):
        raise ConfigError(f"<env {found[0]}>", 0, 0, f"workers {found[1]!r} must be auto or an integer in 1..1024")


def _check_rtc(root: Directive, environ) -> None:
    """``rtc_server.candidate`` (``*``, an address or name with an optional port, ``$NAME``)
    and ``black_hole.addr`` (IPv4 ``ip:port``), in the file and from the environment."""
    server = root.get("rtc_server")
    candidate = _first(server, "candidate")
    if candidate is not None and candidate.arg():
        problem = candidate_problem(candidate.arg())
        if problem:
            raise ConfigError.at(candidate, f"invalid rtc_server.candidate: {problem}", 0)
    override = (environ or {}).get("SRS_RTC_SERVER_CANDIDATE") or ""
    if override.startswith("$") and candidate_problem(override):
        raise ConfigError("<env SRS_RTC_SERVER_CANDIDATE>", 0, 0,
                          f"invalid rtc_server.candidate: {candidate_problem(override)}")
    value, variable = expand_candidate(candidate.arg() if candidate is not None else None, environ)
    problem = candidate_problem(value, allow_variable=False) if variable else None
    if problem:
        raise ConfigError(f"<env {variable}>", 0, 0, f"invalid rtc_server.candidate: {problem}")

    addr, addr_dir, addr_env = _value(server, ("black_hole", "addr"), environ, ("rtc_server", "black_hole", "addr"))
    problem = black_hole_problem(addr) if addr else None
    if problem:
        message = f"invalid rtc_server.black_hole.addr: {problem}"
        if addr_dir is not None:
            raise ConfigError.at(addr_dir, message, 0)
        raise ConfigError(f"<env {addr_env}>", 0, 0, message)


def _check_https(root: Directive, environ) -> None:
    api, server = root.get("http_api"), root.get("http_server")
    for block, name in ((api, "http_api"), (server, "http_server")):
        https_on = _flag(block, ("https", "enabled"), environ, False, (name, "https", "enabled"))
        if https_on and not _flag(block, ("enabled",), environ, False, (name, "enabled")):
            where = _first(block, "https", "enabled") or _first(block, "https") or block
            raise _fail(where, None, f"{name}.https needs {name} enabled", root)

    api_listen = _listens(api, ("listen",), environ, ["1985"], ("http_api", "listen"))
    server_listen = _listens(server, ("listen",), environ, ["8080"], ("http_server", "listen"))
    server_https = _listens(
        server, ("https", "listen"), environ, ["8088"], ("http_server", "https", "listen")
    )
    # When API and server share the HTTP port, the API's HTTPS port follows the server's.
    api_https_default = server_https if api_listen == server_listen else ["1990"]
    api_https = _listens(api, ("https", "listen"), environ, api_https_default, ("http_api", "https", "listen"))
    if api_listen == server_listen and api_https != server_https:
        where = _first(api, "https", "listen") or _first(server, "https", "listen") or api
        raise _fail(where, None, "http_api and http_server share the HTTP port, so their https "
                    f"listen must match too ({' '.join(api_https)} != {' '.join(server_https)})", root)
    if api_https == server_https and api_listen != server_listen:
        where = _first(api, "listen") or _first(server, "listen") or api
        raise _fail(where, None, "http_api and http_server share the HTTPS port, so their listen "
                    f"must match too ({' '.join(api_listen)} != {' '.join(server_listen)})", root)


def _check_vhost(vhost: Directive, environ) -> None:
    name = vhost.arg()
    remuxes = vhost.get_all("http_remux")
    if len(remuxes) > 1:
        raise ConfigError.at(remuxes[1], f"vhost {name}: only one http_remux is allowed")
    # Like SRS, read the raw "enabled on" here, not the environment.
    hls_on = any(_is_on(hls.get("enabled")) for hls in vhost.get_all("hls"))
    for remux in remuxes:
        mount = remux.get("mount")
        if hls_on and _is_on(remux.get("enabled")) and mount and (mount.arg() or "").endswith(".ts"):
            raise ConfigError.at(mount, f"vhost {name}: hls conflicts with http_remux to .ts")

    forward_on = _flag(vhost, ("forward", "enabled"), environ, False, ("vhost", "forward", "enabled"))
    kickoff, kick_dir, kick_env = _value(
        vhost, ("publish", "kickoff_for_idle"), environ, ("vhost", "publish", "kickoff_for_idle")
    )
    if forward_on and (atof(kickoff) or 0) > 0:
        raise _fail(kick_dir, kick_env, f"vhost {name}: forward conflicts with publish.kickoff_for_idle", vhost)

    seen: set[str] = set()
    for ingest in vhost.get_all("ingest"):
        ident = ingest.arg() or ""
        if ident in seen:
            raise ConfigError.at(ingest, f"vhost {name}: ingest id {ident!r} is used twice")
        seen.add(ident)


def _is_on(node: Directive | None) -> bool:
    return node is not None and node.arg() == "on"
