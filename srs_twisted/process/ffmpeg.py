"""FFmpeg command lines, built the way SRS builds them.

Pure functions (no Twisted, no I/O but :func:`find_ffmpeg`'s lookups): the
argument list of a transcode or ingest engine (SRS's ``SrsFFMPEG``), the
variables of ``output`` and ``exec`` lines, the ``>`` redirects of an
``exec`` line, and the ff_log_dir file names.

The argument order is SRS's::

    ffmpeg <iparams> <perfile> -f <iformat> -i <input> <vfilter>
           -vcodec <vcodec> -b:v <vbitrate*1000> -r <vfps> -s WxH -aspect W:H
           -threads <vthreads> -profile:v <vprofile> -preset <vpreset> <vparams>
           -acodec <acodec> -b:a <abitrate*1000> -ar <asample_rate> -ac <achannels> <aparams>
           -f <oformat> -y <output>

``vcodec vn``/``acodec an`` write ``-vn``/``-an``; ``copy`` drops the codec
options (for audio copy only ``-bsf:a aac_adtstoasc`` is kept from aparams).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable

from ..url import DEFAULT_VHOST, discover

NULL_FILE = "/dev/null"
LOCALHOST = "127.0.0.1"
COPY = "copy"
NO_VIDEO = "vn"
NO_AUDIO = "an"
# Image encoders need no x264 profile/preset (SRS exempts png; mjpeg is ours).
IMAGE_VCODECS = ("png", "mjpeg")


class EngineError(ValueError):
    """An engine SRS would refuse (the message is SRS's)."""


class FFmpegNotFound(RuntimeError):
    pass


@dataclass
class FFmpegJob:
    """One FFmpeg child: its argv (argv[0] is the binary), where it writes,
    and its ff_log_dir file ('' when ``ff_log_dir`` is /dev/null)."""

    argv: list[str]
    output: str
    log_file: str = ""
    input: str = ""


# ---- the binary -----------------------------------------------------------------
def _imageio_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # noqa: BLE001 - no binary for this platform, a broken install...
        from ..log import ContextLogger

        ContextLogger().warn(f"imageio-ffmpeg has no usable FFmpeg: {type(e).__name__}: {e}")
        return None


def find_ffmpeg(
    configured: str = "",
    which: Callable[[str], str | None] = shutil.which,
    bundled: Callable[[], str | None] = _imageio_ffmpeg,
    executable: Callable[[str], bool] = lambda p: os.path.isfile(p) and os.access(p, os.X_OK),
) -> str:
    """The FFmpeg to run: the configured ``ffmpeg`` if it is an executable
    file (or a name found on PATH), else ``ffmpeg`` on PATH, else the binary
    bundled with imageio-ffmpeg.  SRS configs name ./objs/ffmpeg/bin/ffmpeg,
    which usually does not exist here: then the fallbacks are used."""
    if configured:
        if executable(configured):
            return configured
        if os.sep not in configured:
            found = which(configured)
            if found:
                return found
    found = which("ffmpeg") or bundled()
    if not found:
        raise FFmpegNotFound(
            f"no FFmpeg: {configured or 'ffmpeg'} is not executable, none on PATH, imageio-ffmpeg absent"
        )
    return found


# ---- variables --------------------------------------------------------------------
def build_timestamp(template: str, now: float | None = None, utc: bool = False) -> str:
    """SRS's date variables: [2006] [01] [02] [15] [04] [05] [999] [timestamp]."""
    if "[" not in template:
        return template
    now = time.time() if now is None else now
    tm = time.gmtime(now) if utc else time.localtime(now)
    ms = int(now * 1000)
    for key, value in (
        ("[2006]", f"{tm.tm_year:04d}"),
        ("[01]", f"{tm.tm_mon:02d}"),
        ("[02]", f"{tm.tm_mday:02d}"),
        ("[15]", f"{tm.tm_hour:02d}"),
        ("[04]", f"{tm.tm_min:02d}"),
        ("[05]", f"{tm.tm_sec:02d}"),
        ("[999]", f"{ms % 1000:03d}"),
        ("[timestamp]", str(ms)),
    ):
        template = template.replace(key, value)
    return template


def replace_vars(template: str, values: list[tuple[str, str]]) -> str:
    """Replace ``[name]`` variables in the given order (SRS's order matters
    when a value contains another variable's name)."""
    for name, value in values:
        template = template.replace(f"[{name}]", value)
    return template


def rtmp_endpoint(config) -> tuple[str, int]:
    """Where the server's own RTMP listener is reachable from this host:
    the first ``listen`` (127.0.0.1 unless it names one address)."""
    listens = list(getattr(config, "listen", None) or ["1935"])
    listen = listens[0].strip()
    host = ""
    if listen.startswith("["):
        host, _, port = listen[1:].partition("]")
        port = port.lstrip(":")
    elif ":" in listen:
        host, _, port = listen.rpartition(":")
    else:
        port = listen
    if host in ("", "0.0.0.0", "::"):
        host = LOCALHOST
    elif ":" in host:
        host = f"[{host}]"
    return host, int(port)


def transcode_input(port: int, vhost: str, app: str, stream: str, host: str = LOCALHOST) -> str:
    """Where a transcoder reads the stream: SRS's
    ``rtmp://127.0.0.1:PORT/APP?vhost=VHOST/STREAM``."""
    return f"rtmp://{host}:{port}/{app}?vhost={vhost}/{stream}"


def transcode_output(
    template: str,
    *,
    vhost: str,
    port: int,
    app: str,
    stream: str,
    param: str = "",
    engine: str = "",
    now: float | None = None,
    utc: bool = False,
) -> str:
    """An engine's ``output`` for a published stream (SrsEncoder)."""
    out = replace_vars(
        template,
        [("vhost", vhost), ("port", str(port)), ("app", app), ("stream", stream), ("param", param), ("engine", engine)],
    )
    return build_timestamp(out, now, utc)


def ingest_output(template: str, *, vhost: str, port: int, now: float | None = None, utc: bool = False) -> str:
    """An ingest engine's ``output`` (SrsIngester): only [vhost], [port] and
    the dates are replaced; ``vhost=__defaultVhost__`` is dropped from the
    query and the URL tidied as SRS does."""
    out = replace_vars(template, [("vhost", vhost), ("port", str(port))])
    out = build_timestamp(out, now, utc)
    out = out.replace("vhost=" + DEFAULT_VHOST, "")
    out = out.replace("?&", "?")
    out = out.replace("?/", "/")  # params over the app: rtmp://h/app?/stream
    return out.rstrip("?")


def rtmp_identity(url: str) -> tuple[str, str, str] | None:
    """(vhost, app, stream) an RTMP URL names, SRS's way (the stream is after
    the last slash; ``?vhost=`` wins over the host); None if not RTMP."""
    if not url.startswith(("rtmp://", "rtmps://")):
        return None
    tc_url, _, stream = url.rpartition("/")
    if "://" not in tc_url:
        return None
    # Both rtmp://h/app/stream?vhost=v and rtmp://h/app?vhost=v/stream.
    req = discover(tc_url, stream)
    return req.vhost, req.app, req.stream


# ---- engines ----------------------------------------------------------------------
def _even(value: int) -> int:
    """SRS's ``v -= v % 2`` with C's remainder sign."""
    return value - int(math.fmod(value, 2))


def check_engine(engine, input_url: str, output: str) -> str:
    """Refuse what SRS's ``initialize_transcode`` refuses; return the input
    format to pass with ``-f`` ('' for a non-RTMP input, as SRS)."""
    vcodec, acodec = engine.vcodec, engine.acodec
    if vcodec == NO_VIDEO and acodec == NO_AUDIO:
        raise EngineError("video and audio disabled")
    if vcodec not in (COPY, NO_VIDEO) and vcodec not in IMAGE_VCODECS:
        for name, value in (
            ("vbitrate", engine.vbitrate),
            ("vfps", engine.vfps),
            ("vwidth", engine.vwidth),
            ("vheight", engine.vheight),
            ("vthreads", engine.vthreads),
        ):
            if value < 0:
                raise EngineError(f"invalid {name}: {value}")
        if not engine.vprofile:
            raise EngineError(f"invalid vprofile: {engine.vprofile}")
        if not engine.vpreset:
            raise EngineError(f"invalid vpreset: {engine.vpreset}")
    if acodec == "libaacplus" and engine.abitrate != 0 and not 16 <= engine.abitrate <= 72:
        raise EngineError(f"invalid abitrate for aac: {engine.abitrate}, must in [16, 72]")
    if acodec not in (COPY, NO_AUDIO):
        if engine.abitrate < 0:
            raise EngineError(f"invalid abitrate: {engine.abitrate}")
        if engine.asample_rate < 0:
            raise EngineError(f"invalid sample rate: {engine.asample_rate}")
        if engine.achannels not in (0, 1, 2):
            raise EngineError(f"invalid achannels, must be 1 or 2, actual {engine.achannels}")
    if not output:
        raise EngineError("invalid empty output")
    return engine.iformat if input_url.startswith("rtmp://") else ""


def _words(values) -> list[str]:
    return [v for v in values if v]


def ffmpeg_args(
    binary: str,
    input_url: str,
    output: str,
    engine=None,
    *,
    iparams: list[str] = (),
    copy: bool = False,
) -> list[str]:
    """The argv SRS's ``SrsFFMPEG::start`` builds.  ``engine`` is an
    :class:`~srs_twisted.config.model.EngineConfig` (checked with
    :func:`check_engine`); ``copy=True`` is SRS's ``initialize_copy`` (copy
    both streams, no input format, oformat flv)."""
    if copy:
        perfile, iformat, vfilter = [], "", []
        vcodec = acodec = COPY
        oformat = "flv"
        vparams = aparams = []
    else:
        iformat = check_engine(engine, input_url, output)
        perfile, vfilter = engine.perfile, engine.vfilter
        vcodec, acodec, oformat = engine.vcodec, engine.acodec, engine.oformat
        vparams, aparams = engine.vparams, engine.aparams
    if not output:
        raise EngineError("invalid empty output")
    args = [binary, *_words(iparams), *_words(perfile)]
    if iformat and iformat != "off":
        args += ["-f", iformat]
    args += ["-i", input_url, *_words(vfilter)]
    args += ["-vcodec", vcodec] if vcodec != NO_VIDEO else ["-vn"]
    if vcodec not in (COPY, NO_VIDEO):
        width, height = _even(engine.vwidth), _even(engine.vheight)
        if engine.vbitrate > 0:
            args += ["-b:v", str(engine.vbitrate * 1000)]
        if engine.vfps > 0:
            args += ["-r", f"{engine.vfps:.2f}"]
        if width > 0 and height > 0:
            args += ["-s", f"{width}x{height}", "-aspect", f"{width}:{height}"]
        if engine.vthreads > 0:
            args += ["-threads", str(engine.vthreads)]
        if engine.vprofile:
            args += ["-profile:v", engine.vprofile]
        if engine.vpreset:
            args += ["-preset", engine.vpreset]
        args += _words(vparams)
    args += ["-acodec", acodec] if acodec != NO_AUDIO else ["-an"]
    if acodec not in (COPY, NO_AUDIO):
        if engine.abitrate > 0:
            args += ["-b:a", str(engine.abitrate * 1000)]
        if engine.asample_rate > 0:
            args += ["-ar", str(engine.asample_rate)]
        if engine.achannels > 0:
            args += ["-ac", str(engine.achannels)]
        args += _words(aparams)
    elif acodec == COPY:
        # Audio copy keeps only the ADTS->ASC bitstream filter.
        i = 0
        while i < len(aparams):
            name = aparams[i]
            i += 1
            if name == "-bsf:a" and i < len(aparams):
                value = aparams[i]
                i += 1
                if value == "aac_adtstoasc":
                    args += [name, value]
    if oformat and oformat != "off":
        args += ["-f", oformat]
    return args + ["-y", output]


def _file_part(name: str) -> str:
    return name.replace("/", "-")


def log_file_path(ff_log_dir: str, kind: str, vhost: str, app: str, stream: str, engine: str = "") -> str:
    """SRS's ff_log_dir file: ``DIR/ffmpeg-KIND-VHOST-APP-STREAM[-ENGINE].log``
    ('' when ff_log_dir is /dev/null).  A slash in a multi-level app becomes
    a dash here (SRS would fail to open the file)."""
    if not ff_log_dir or ff_log_dir == NULL_FILE:
        return ""
    name = "-".join(["ffmpeg", kind, vhost, _file_part(app), _file_part(stream)] + ([engine] if engine else []))
    return f"{ff_log_dir}/{name}.log"


def transcode_job(
    binary: str,
    engine,
    *,
    vhost: str,
    app: str,
    stream: str,
    param: str = "",
    port: int = 1935,
    host: str = LOCALHOST,
    ff_log_dir: str = NULL_FILE,
    now: float | None = None,
    utc: bool = False,
) -> FFmpegJob:
    """One transcode engine for one published stream (SrsEncoder)."""
    input_url = transcode_input(port, vhost, app, stream, host)
    output = transcode_output(
        engine.output, vhost=vhost, port=port, app=app, stream=stream, param=param, engine=engine.id, now=now, utc=utc
    )
    argv = ffmpeg_args(binary, input_url, output, engine)
    log_file = log_file_path(ff_log_dir, "encoder", vhost, app, stream, engine.id)
    return FFmpegJob(argv, output, log_file, input_url)


def ingest_job(
    binary: str,
    ingest,
    engine=None,
    *,
    vhost: str,
    port: int = 1935,
    ff_log_dir: str = NULL_FILE,
    ff_log_level: str = "info",
    now: float | None = None,
    utc: bool = False,
    loop_files: bool = True,
) -> FFmpegJob:
    """One ingest engine (SrsIngester).  ``engine=None`` is an ingest without
    an engine, which SRS refuses for lack of an output.  Inputs of type file
    are looped in FFmpeg (``-stream_loop -1``) unless ``loop_files`` is
    false; SRS restarts FFmpeg at the end of the file instead."""
    output = ingest_output(engine.output if engine is not None else "", vhost=vhost, port=port, now=now, utc=utc)
    if not output:
        raise EngineError(f"empty output url, ingest={ingest.id}")
    identity = rtmp_identity(output)
    app, stream = (identity[1], identity[2]) if identity else ("", "")
    log_file = log_file_path(ff_log_dir, "ingest", vhost, app, stream)
    iparams = ["-loglevel", ff_log_level] if ff_log_level else []
    kind = ingest.input.type
    if not kind:
        raise EngineError(f"empty intput type, ingest={ingest.id}")
    if kind not in ("file", "stream"):
        raise EngineError(f"invalid ingest={ingest.id} type={kind}")
    if not ingest.input.url:
        raise EngineError(f"empty intput url, ingest={ingest.id}")
    iparams.append("-re")
    if kind == "file" and loop_files:
        iparams += ["-stream_loop", "-1"]
    copy = engine is None or not engine.enabled or not engine.vcodec or not engine.acodec
    argv = ffmpeg_args(binary, ingest.input.url, output, engine, iparams=iparams, copy=copy)
    return FFmpegJob(argv, output, log_file, ingest.input.url)


# ---- exec -------------------------------------------------------------------------
def stream_with_query(host: str, vhost: str, stream: str, param: str) -> str:
    """SRS's ``srs_generate_stream_with_query`` (with the vhost)."""
    query = param
    if "vhost=" not in query:
        guess = vhost if vhost != DEFAULT_VHOST else (host if host and not _is_ipv4(host) else "")
        if guess:
            query += "&vhost=" + guess
    query = query.lstrip("&?")
    return f"{stream}?{query}" if query else stream


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def exec_vars(
    template: str,
    *,
    vhost: str,
    port: int,
    app: str,
    stream: str,
    tc_url: str = "",
    swf_url: str = "",
    page_url: str = "",
    host: str = "",
    param: str = "",
    now: float | None = None,
    utc: bool = False,
) -> str:
    """An ``exec publish`` word with SRS's variables: [vhost] [port] [app]
    [stream] [tcUrl] [swfUrl] [pageUrl], the dates, and [url] (the RTMP URL
    of the stream)."""
    out = replace_vars(
        template,
        [
            ("vhost", vhost),
            ("port", str(port)),
            ("app", app),
            ("stream", stream),
            ("tcUrl", tc_url),
            ("swfUrl", swf_url),
            ("pageUrl", page_url),
        ],
    )
    out = build_timestamp(out, now, utc)
    if "[url]" in out:
        url = f"rtmp://{host}:{port}/{app}/{stream_with_query(host, vhost, stream, param)}"
        out = out.replace("[url]", url)
    return out


def split_redirects(words: list[str]) -> tuple[list[str], str, str]:
    """Take the shell-style redirects out of a command line, as SRS's
    ``SrsProcess`` does: ``>file``, ``1>file``, ``2>file``, ``> file``,
    ``1 > file``, ``2 >file``...  Returns (argv, stdout file, stderr file);
    ``2>&1`` sends stderr where stdout goes."""
    argv: list[str] = []
    out = err = ""
    err_to_out = False
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        fd = None
        target = None
        if word in ("1", "2") and i < len(words) and words[i].startswith(">"):
            fd = int(word)
            target = words[i][1:]
            i += 1
        elif ">" in word and word.split(">", 1)[0] in ("", "1", "2"):
            left, target = word.split(">", 1)
            fd = int(left) if left else 1
        if fd is None:
            argv.append(word)
            continue
        if not target and i < len(words):
            target = words[i]
            i += 1
        if target == "&1" and fd == 2:
            err_to_out = True
        elif fd == 1:
            out = target or ""
        else:
            err = target or ""
    if err_to_out:
        err = out
    return argv, out, err


__all__ = [
    "EngineError",
    "FFmpegJob",
    "FFmpegNotFound",
    "build_timestamp",
    "check_engine",
    "exec_vars",
    "ffmpeg_args",
    "find_ffmpeg",
    "ingest_job",
    "ingest_output",
    "log_file_path",
    "replace_vars",
    "rtmp_endpoint",
    "rtmp_identity",
    "split_redirects",
    "stream_with_query",
    "transcode_input",
    "transcode_job",
    "transcode_output",
]
