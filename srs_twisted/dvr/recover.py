"""Finishing the DVR files a killed server left behind.

A recording is written to ``<path>.tmp`` and renamed (with ``on_dvr``) when
it ends.  A server that was killed (``kill -9``, OOM, power) never gets
there: the ``.tmp`` file holds all but the last second or so, and nobody is
told.  At the next start :func:`recover_leftovers` finds the ``.tmp`` files
that every recording vhost's ``dvr_path`` could have made, and finishes
each as a clean stop would have:

* FLV: cut back to its last whole tag, the onMetaData ``duration`` and
  ``filesize`` set to what is left;
* MP4 (fragmented): cut back to its last whole ``moof`` + ``mdat``
  fragment (the ``moov`` comes first, so what is left plays);
* then fsynced, renamed to its path (``[duration]`` filled in from the
  media it holds) and announced with ``on_dvr`` (the stream's vhost, app and
  stream read back from the path through the template; no publisher).

A file with no whole media left is removed.  A recorder holds an exclusive
``flock`` on the file it writes, so a ``.tmp`` file another live server is
writing (a shared directory) is left alone.  The directory walk is bounded.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import struct

from ..codec import flv
from ..log import ContextLogger
from .plan import finish_path, full_template

__all__ = ["recover_leftovers", "repair_flv", "repair_mp4", "template_regex", "template_root", "MAX_ENTRIES"]

MAX_ENTRIES = 100_000  # directory entries looked at per template, at most
DEPTH_SLACK = 3  # directory levels looked into beyond the template's
_TIME_VARS = {"[2006]": r"\d{4}", "[01]": r"\d{2}", "[02]": r"\d{2}", "[15]": r"\d{2}", "[04]": r"\d{2}",
              "[05]": r"\d{2}", "[999]": r"\d{3}", "[timestamp]": r"\d+"}
_NAME_VARS = {"[vhost]": r"(?P<vhost>[^/]+?)", "[app]": r"(?P<app>[^/]+(?:/[^/]+)*?)",
              "[stream]": r"(?P<stream>[^/]+?)"}
_VAR = re.compile(r"\[(?:vhost|app|stream|duration|2006|01|02|15|04|05|999|timestamp)\]")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_DOUBLE = struct.Struct(">d")


# ---------------------------------------------------------------------------------------------
# Whose files

LABEL = "user.srs-twisted.dvr"  # the extended attribute naming a recording's stream and publisher
MAX_LABEL = 2048


def label_recording(fd: int, source, client=None) -> None:
    """Write on the file being recorded whose stream (and publisher) it is,
    for the ``on_dvr`` a later start sends if this process dies (a template
    without ``[app]`` says nothing of the app).  Best effort: a file system
    without user extended attributes goes without."""
    req = getattr(client, "request", None)
    label = {"vhost": source.vhost, "app": source.app, "stream": source.stream,
             "param": getattr(req, "param", "") or "", "tcUrl": getattr(req, "tc_url", "") or "",
             "client_id": getattr(client, "id", "") or "", "ip": getattr(client, "ip", "") or ""}
    data = json.dumps(label).encode()
    if len(data) > MAX_LABEL:
        label["param"] = ""
        data = json.dumps(label).encode()
    try:
        os.setxattr(fd, LABEL, data[:MAX_LABEL])
    except (OSError, AttributeError):
        pass


def _read_label(fd: int) -> dict:
    try:
        label = json.loads(os.getxattr(fd, LABEL))
    except (OSError, AttributeError, ValueError):
        return {}
    return label if isinstance(label, dict) else {}


# ---------------------------------------------------------------------------------------------
# Which files


def template_regex(template: str) -> re.Pattern:
    """A regex matching the ``.tmp`` files a ``dvr_path`` template names
    (``[duration]`` is still literal in them); groups ``vhost``, ``app``,
    ``stream`` for the variables it has."""
    out, pos, seen = [], 0, set()
    for m in _VAR.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        var = m.group(0)
        if var in _NAME_VARS and var not in seen:
            out.append(_NAME_VARS[var])
            seen.add(var)
        elif var in _NAME_VARS:  # the same name again: the same value
            out.append(f"(?P={var[1:-1]})")
        elif var == "[duration]":
            out.append(re.escape(var))
        else:
            out.append(_TIME_VARS[var])
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + r"\.tmp$")


def template_root(template: str) -> str:
    """The directory a template's files are all below: its path up to the
    last ``/`` before the first variable (``.`` for none)."""
    m = _VAR.search(template)
    head = template[: m.start()] if m else template
    root = head.rpartition("/")[0]
    if root == "" and head.startswith("/"):
        return "/"
    return root or "."


def _leftovers(template: str, log: ContextLogger):
    """``(tmp path, match)`` of each file the template could have made."""
    regex = template_regex(template)
    root = template_root(template)
    # Below the root, the template's directories (a few more for apps with a "/").
    depth = template.count("/") - root.count("/") + DEPTH_SLACK
    bare = root == "." and not template.startswith("./")
    seen = 0
    for directory, dirs, files in os.walk(root):
        if directory.count("/") - root.count("/") >= depth:
            dirs[:] = []
        for name in files:
            seen += 1
            if not name.endswith(".tmp"):
                continue
            path = os.path.join(directory, name)
            if bare and path.startswith("./"):
                path = path[2:]
            m = regex.match(path)
            if m is not None:
                yield path, m
        seen += len(dirs)
        if seen > MAX_ENTRIES:
            log.warn(f"dvr: looked at {MAX_ENTRIES} entries under {root} for unfinished recordings; stopped there")
            return


# ---------------------------------------------------------------------------------------------
# Repairs (on an open file)


def repair_flv(f) -> tuple[int, int]:
    """Cut an FLV file (open ``r+b``) back to its last whole tag and bring
    the onMetaData ``duration``/``filesize`` up to date.  Returns (size
    kept, duration in ms); size 0 when no audio or video tag is whole."""
    head = f.read(9)
    if len(head) < 9 or head[:3] != b"FLV" or _U32.unpack_from(head, 5)[0] < 9:
        return 0, 0  # not an FLV file (a data offset inside the header is not one)
    pos = _U32.unpack_from(head, 5)[0] + 4
    f.seek(pos)
    good = pos
    media = False
    duration = 0
    meta = None  # (offset of the body, body) of the first script tag
    while True:
        header = f.read(flv.TAG_HEADER_SIZE)
        if len(header) < flv.TAG_HEADER_SIZE:
            break
        kind = header[0] & 0x1F
        size = int.from_bytes(header[1:4], "big")
        stamp = int.from_bytes(header[4:7], "big") | (header[7] << 24)
        if header[0] & 0x20 or kind not in (flv.TAG_AUDIO, flv.TAG_VIDEO, flv.TAG_SCRIPT):
            break  # an encrypted (filtered) tag is not ours either: what is kept must read as FLV
        body_at = good + flv.TAG_HEADER_SIZE
        if kind == flv.TAG_SCRIPT and meta is None and size <= 1 << 20:
            body = f.read(size)
            if len(body) < size:
                break
            meta = (body_at, body)
        else:
            f.seek(size, os.SEEK_CUR)
        trailer = f.read(4)
        if len(trailer) < 4 or _U32.unpack(trailer)[0] != size + flv.TAG_HEADER_SIZE:
            break
        good = body_at + size + 4
        if kind != flv.TAG_SCRIPT:
            media = True
            duration = max(duration, stamp)
    if not media:
        return 0, 0
    f.truncate(good)
    if meta is not None:
        body_at, body = meta
        for key, value in ((b"\x00\x08filesize\x00", float(good)), (b"\x00\x08duration\x00", duration / 1000.0)):
            at = body.rfind(key)
            if at >= 0 and at + 11 + 8 <= len(body):
                f.seek(body_at + at + 11)
                f.write(_DOUBLE.pack(value))
    return good, duration


def _boxes(data: bytes, pos: int = 0, end: int | None = None):
    """(type, body start, box end) of each box in ``data[pos:end]``."""
    end = len(data) if end is None else end
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if size == 1:
            if pos + 16 > end:
                return
            size = _U64.unpack_from(data, body)[0]
            body += 8
        if size < body - pos or pos + size > end:
            return
        yield kind, body, pos + size
        pos += size


def _child(data: bytes, body: int, end: int, path: tuple):
    for kind, b, e in _boxes(data, body, end):
        if kind == path[0]:
            return (b, e) if len(path) == 1 else _child(data, b, e, path[1:])
    return None


def _timescales(moov: bytes) -> dict:
    """track id -> media timescale, from a moov body."""
    scales = {}
    for kind, body, end in _boxes(moov):
        if kind != b"trak":
            continue
        tkhd = _child(moov, body, end, (b"tkhd",))
        mdhd = _child(moov, body, end, (b"mdia", b"mdhd"))
        if tkhd is None or mdhd is None:
            continue
        version = moov[tkhd[0]]
        track_id = _U32.unpack_from(moov, tkhd[0] + (20 if version == 1 else 12))[0]
        version = moov[mdhd[0]]
        scales[track_id] = _U32.unpack_from(moov, mdhd[0] + (20 if version == 1 else 12))[0] or 1
    return scales


def _fragment_times(moof: bytes, scales: dict, spans: dict) -> None:
    """Widen ``spans`` (track id -> [start, end] in ms) with a moof's runs."""
    for kind, body, end in _boxes(moof):
        if kind != b"traf":
            continue
        tfhd = _child(moof, body, end, (b"tfhd",))
        tfdt = _child(moof, body, end, (b"tfdt",))
        if tfhd is None or tfdt is None:
            continue
        flags = int.from_bytes(moof[tfhd[0] + 1:tfhd[0] + 4], "big")
        track_id = _U32.unpack_from(moof, tfhd[0] + 4)[0]
        at = tfhd[0] + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
        default_duration = _U32.unpack_from(moof, at)[0] if flags & 0x08 else 0
        base = (_U64.unpack_from(moof, tfdt[0] + 4)[0] if moof[tfdt[0]] == 1
                else _U32.unpack_from(moof, tfdt[0] + 4)[0])
        total = 0
        for kind2, b2, _ in _boxes(moof, body, end):
            if kind2 != b"trun":
                continue
            tflags = int.from_bytes(moof[b2 + 1:b2 + 4], "big")
            count = _U32.unpack_from(moof, b2 + 4)[0]
            at = b2 + 8 + (4 if tflags & 0x01 else 0) + (4 if tflags & 0x04 else 0)
            row = 4 * bin(tflags & 0xF00).count("1")
            if not tflags & 0x100:
                total += count * default_duration
                continue
            for i in range(count):
                total += _U32.unpack_from(moof, at + i * row)[0]
        scale = scales.get(track_id, 1000)
        span = spans.setdefault(track_id, [base * 1000 // scale, 0])
        span[0] = min(span[0], base * 1000 // scale)
        span[1] = max(span[1], (base + total) * 1000 // scale)


def repair_mp4(f) -> tuple[int, int]:
    """Cut a fragmented MP4 file (open ``r+b``) back to its last whole
    ``moof`` + ``mdat``.  Returns (size kept, duration in ms); size 0 when
    there is no ``moov`` or no whole fragment."""
    size = os.fstat(f.fileno()).st_size
    pos = 0
    good = 0
    scales = None
    moof = None
    spans: dict = {}
    while pos + 8 <= size:
        f.seek(pos)
        head = f.read(16)
        box_size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if box_size == 1 and len(head) == 16:
            box_size, header = _U64.unpack_from(head, 8)[0], 16
        if box_size < header or pos + box_size > size:
            break
        if kind == b"moov":
            if scales is not None:
                break
            f.seek(pos + header)
            try:
                scales = _timescales(f.read(box_size - header))
            except (struct.error, IndexError):
                break
        elif kind == b"moof":
            f.seek(pos + header)
            moof = f.read(box_size - header)
        elif kind == b"mdat":
            if scales is None or moof is None:
                break
            try:
                _fragment_times(moof, scales, spans)
            except (struct.error, IndexError):
                break
            moof = None
            good = pos + box_size
        elif scales is not None and kind not in (b"free", b"skip", b"styp", b"sidx"):
            break
        pos += box_size
    if not good:
        return 0, 0
    f.truncate(good)
    start = min(s[0] for s in spans.values()) if spans else 0
    end = max(s[1] for s in spans.values()) if spans else 0
    return good, max(0, end - start)


# ---------------------------------------------------------------------------------------------
# Finishing


def _finish(tmp: str, log: ContextLogger) -> tuple[str | None, int, dict]:
    """Repair, fsync and rename one leftover; (final path or None, duration,
    its label)."""
    path = tmp[: -len(".tmp")]
    try:
        fd = os.open(tmp, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        log.warn(f"dvr: cannot open unfinished recording {tmp}: {e}")
        return None, 0, {}
    with os.fdopen(fd, "r+b") as f:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None, 0, {}  # a live recorder writes it
            raise
        kept, duration = (repair_mp4 if path.endswith(".mp4") else repair_flv)(f)
        if not kept:
            os.unlink(tmp)
            log.warn(f"dvr: unfinished recording {tmp} held no whole media; removed")
            return None, 0, {}
        f.flush()
        os.fsync(fd)
        label = _read_label(fd)
        final = finish_path(path, duration)
        if os.path.exists(final):
            log.error(f"dvr: cannot finish {tmp}: {final} exists; left as it is")
            return None, 0, {}
        os.rename(tmp, final)
    return final, duration, label


def recover_leftovers(ctx, hooks=None, log: ContextLogger | None = None) -> list[str]:
    """Finish every ``.tmp`` recording the DVR vhosts' ``dvr_path`` could
    have left; returns the final paths (each announced with ``on_dvr``)."""
    log = log or ContextLogger("dvr")
    done: list[str] = []
    looked: set = set()
    for conf in ctx.config.vhosts.values():
        if not conf.enabled or not conf.dvr.enabled or conf.is_edge:
            continue
        template = full_template(conf.dvr.dvr_path)
        if template in looked:
            continue
        looked.add(template)
        try:
            found = list(_leftovers(template, log))
        except OSError as e:
            log.warn(f"dvr: cannot look for unfinished recordings of {template}: {e}")
            continue
        for tmp, m in found:
            try:
                final, duration, label = _finish(tmp, log)
            except OSError as e:
                log.error(f"dvr: cannot finish unfinished recording {tmp}: {e}")
                continue
            if final is None:
                continue
            done.append(final)
            log.trace(f"dvr: finished {final}, left unfinished by a server that stopped, duration={duration}ms")
            if hooks is not None:
                _announce(hooks, _client_of(label, m.groupdict(), conf.name, ctx.config.vhosts), final, log)
    return done


def _client_of(label: dict, groups: dict, vhost: str, vhosts):
    """The publisher the hook names: the file's label, else what the path
    tells (the template's [vhost] [app] [stream])."""
    from ..context import ClientInfo
    from ..url import StreamRequest

    def text(key: str, default: str = "") -> str:
        value = label.get(key)
        return value if isinstance(value, str) else default

    named = groups.get("vhost")
    vhost = text("vhost", named if named in vhosts else vhost)
    request = StreamRequest(vhost=vhost, app=text("app", groups.get("app") or ""),
                            stream=text("stream", groups.get("stream") or ""), param=text("param"),
                            tc_url=text("tcUrl"))
    client = ClientInfo(text("ip"), request=request)
    client.id = text("client_id")
    return client


def _announce(hooks, client, final: str, log: ContextLogger) -> None:
    try:
        d = hooks.on_dvr(client, final)
    except Exception as e:  # noqa: BLE001 - the hook is fire-and-forget
        log.error(f"dvr: on_dvr for {final} failed: {e!r}")
        return
    if d is not None and hasattr(d, "addErrback"):
        d.addErrback(lambda f: log.warn(f"dvr: on_dvr for {final} failed: {f.getErrorMessage()}"))
