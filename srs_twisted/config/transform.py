"""Rewrite legacy SRS layouts into the current one, in place, before checking.

SRS keeps reading configs written for its older versions by renaming and moving their
directives (``srs_config_transform_vhost``).  We do the same moves so that check and model
only ever see the current layout:

* root ``listen`` / ``chunk_size`` go into ``rtmp {}`` (the v7 layout); the root-level value
  replaces one given inside ``rtmp {}``, and the first root-level one wins;
* ``http_stream`` becomes ``http_server``;
* ``rtc_server``: ``perf_stat`` and ``queue_length`` are dropped;
* ``srt_server``: the misspelt ``tlpkdrop`` becomes ``tlpktdrop``;
* ``stream_caster``: unused GB28181 keys are dropped and ``host`` moves to ``sip.candidate``;
* in a vhost: ``http`` becomes ``http_static``; ``http_remux.hstrs`` is dropped; flat
  ``refer``/``refer_play``/``refer_publish`` move into ``refer {}``; ``mr {enabled; latency}``,
  ``publish_1stpkt_timeout`` and ``publish_normal_timeout`` move into ``publish {}`` (as
  ``mr``, ``mr_latency``, ``firstpkt_timeout``, ``normal_timeout``); the play keys
  (``gop_cache``, ``queue_length``, ``time_jitter``...) move into ``play {}``; a flat
  ``forward DEST...;`` becomes ``forward { enabled on; destination DEST...; }``; the cluster
  keys (``mode``, ``origin``...) move into ``cluster {}``; ``nack {}``/``twcc {}`` move into
  ``rtc {}``; ``rtc.aac`` and ``rtc.bframe`` become ``rtc.rtmp_to_rtc``/``rtc.keep_bframe``.

A moved directive keeps the file/line/column it was written at, so later errors still point
at what the user wrote.  When the target already exists, the legacy value replaces it (the
same precedence SRS gives it).
"""

from __future__ import annotations

from .parser import Directive

__all__ = ["transform"]

_RTMP_KEYS = ("listen", "chunk_size")

_GB_UNUSED = frozenset(
    "tcp_enable rtp_port_min rtp_port_max wait_keyframe rtp_idle_timeout audio_enable "
    "auto_create_channel".split()
)
_GB_SIP_UNUSED = frozenset(
    "serial realm ack_timeout keepalive_timeout invite_port_fixed query_catalog_interval "
    "auto_play".split()
)

# Flat vhost keys of SRS 1/2 and the block they now live in.
_MOVE_INTO = {
    **{
        name: "play"
        for name in (
            "time_jitter mix_correct atc atc_auto mw_latency gop_cache gop_cache_max_frames "
            "queue_length send_min_interval reduce_sequence_header"
        ).split()
    },
    **{name: "cluster" for name in "mode origin token_traverse vhost debug_srs_upnode".split()},
}
_RENAME_INTO_PUBLISH = {
    "publish_1stpkt_timeout": "firstpkt_timeout",
    "publish_normal_timeout": "normal_timeout",
}
_REFER_FLAT = {"refer": "all", "refer_play": "play", "refer_publish": "publish"}


def _child(parent: Directive, name: str, like: Directive) -> Directive:
    """The first child ``name`` of ``parent``, created (positioned at ``like``) if missing."""
    found = parent.get(name)
    if found is None:
        found = Directive(name, line=like.line, col=like.col, path=like.path)
        parent.children.append(found)
    return found


def _set(parent: Directive, name: str, source: Directive, args: list[str] | None = None) -> None:
    """Give ``parent.name`` the arguments (and position) of ``source``."""
    target = _child(parent, name, source)
    if args is None:
        target.args, target.arg_pos = list(source.args), list(source.arg_pos)
    else:
        target.args, target.arg_pos = list(args), [(source.line, source.col)] * len(args)
    target.line, target.col, target.path = source.line, source.col, source.path


def _drop(parent: Directive, names: frozenset[str]) -> None:
    parent.children = [c for c in parent.children if c.name not in names]


def transform(root: Directive) -> Directive:
    """Apply every legacy rewrite to ``root`` (in place) and return it."""
    _move_rtmp(root)
    for node in list(root.children):
        if node.name == "http_stream":
            node.name = "http_server"
        elif node.name == "rtc_server":
            _drop(node, frozenset(("perf_stat", "queue_length")))
        elif node.name == "srt_server":
            for c in node.children:
                if c.name == "tlpkdrop":
                    c.name = "tlpktdrop"
        elif node.name == "stream_caster":
            _stream_caster(node)
        elif node.name == "vhost":
            _vhost(node)
    return root


def _move_rtmp(root: Directive) -> None:
    flat = [c for c in root.children if c.name in _RTMP_KEYS]
    if not flat:
        return
    rtmp = _child(root, "rtmp", flat[0])
    # Last first, so that the first root-level occurrence is the one left standing.
    for node in reversed(flat):
        _set(rtmp, node.name, node)
    root.children = [c for c in root.children if c.name not in _RTMP_KEYS]


def _stream_caster(caster: Directive) -> None:
    _drop(caster, _GB_UNUSED)
    sip = caster.get("sip")
    if sip is not None:
        _drop(sip, _GB_SIP_UNUSED)
    for host in caster.get_all("host"):
        sip = _child(caster, "sip", host)
        sip.children.append(
            Directive("candidate", host.args, None, host.line, host.col, host.path, host.arg_pos)
        )
    _drop(caster, frozenset(("host",)))


def _vhost(vhost: Directive) -> None:
    kept: list[Directive] = []
    moved: list[tuple[Directive, str]] = []  # (legacy directive, block it moves into)
    for conf in vhost.children:
        n = conf.name
        if n == "http":
            conf.name = "http_static"
        elif n == "http_remux":
            _drop(conf, frozenset(("hstrs",)))
        elif n == "forward" and not conf.children and conf.args:
            conf.children.append(Directive("enabled", ["on"], None, conf.line, conf.col, conf.path))
            conf.children.append(
                Directive("destination", conf.args, None, conf.line, conf.col, conf.path, conf.arg_pos)
            )
            conf.args, conf.arg_pos = [], []
        elif n == "rtc":
            _rtc_legacy(conf)

        if (n == "refer" and not conf.children) or n in ("refer_play", "refer_publish"):
            moved.append((conf, "refer"))
        elif n == "mr" or n in _RENAME_INTO_PUBLISH:
            moved.append((conf, "publish"))
        elif n in _MOVE_INTO:
            moved.append((conf, _MOVE_INTO[n]))
        elif n in ("nack", "twcc"):
            moved.append((conf, "rtc"))
        else:
            kept.append(conf)
    vhost.children = kept

    for conf, block_name in moved:
        block = _child(vhost, block_name, conf)
        n = conf.name
        if block_name == "refer":
            if block.get("enabled") is None:
                block.children.append(Directive("enabled", ["on"], None, conf.line, conf.col, conf.path))
            _set(block, _REFER_FLAT[n], conf)
        elif n == "mr":
            for old, new in (("enabled", "mr"), ("latency", "mr_latency")):
                sub = conf.get(old)
                if sub is not None:
                    _set(block, new, sub)
        elif n in _RENAME_INTO_PUBLISH:
            _set(block, _RENAME_INTO_PUBLISH[n], conf)
        elif n in ("nack", "twcc"):
            pairs = (("enabled", n), ("no_copy", "nack_no_copy")) if n == "nack" else (("enabled", n),)
            for old, new in pairs:
                sub = conf.get(old)
                if sub is not None:
                    _set(block, new, sub)
        else:
            _set(block, n, conf)


def _rtc_legacy(rtc: Directive) -> None:
    for old, new, yes in (("aac", "rtmp_to_rtc", "transcode"), ("bframe", "keep_bframe", "keep")):
        legacy = rtc.get(old)
        if legacy is None:
            continue
        rtc.children.remove(legacy)
        _set(rtc, new, legacy, ["on" if legacy.arg() == yes else "off"])
