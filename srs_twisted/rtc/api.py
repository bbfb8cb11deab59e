"""WebRTC signalling on the HTTP API: WHIP/WHEP and SRS's legacy ``/rtc/v1/publish/`` and ``/play/``.

* ``POST /rtc/v1/whip/?app=&stream=`` (publish), ``/rtc/v1/whep/`` or ``/rtc/v1/whip-play/``
  (play) with an SDP offer: 201, ``application/sdp``,
  ``Location: /rtc/v1/<route>/?action=delete&token=T&app=A&stream=S&session=U`` and the
  answer; ``DELETE`` (or ``?action=delete``) with that token and session ends it (200).
* ``POST /rtc/v1/publish/`` and ``/rtc/v1/play/`` with ``{sdp, streamurl, ...}``:
  ``{code:0, server, service, pid, sdp, sessionid}``.
* ``?codec=`` (``?vcodec=``) and ``?acodec=`` as SRS names them: H.264 and Opus are relayed;
  ``?codec=hevc`` plays an H.265 stream to a player that offers H.265 (SRS 7); HEVC to
  publish, AV1, VP9, PCMU and PCMA are refused (5018), and so is a play whose video codec
  is not the live stream's (an H.265 stream without ``?codec=hevc``, or the reverse).  ``?encrypt=false`` sends plain RTP
  (``?encrypt=true`` overrides ``rtc_server.encrypt off``); with it ``?dtls=false`` drops
  DTLS too (SRS's plaintext transport); the legacy publish always encrypts, as SRS's.
* ``?protocol=udp|tcp|all`` (ours; SRS reads only ``rtc_server.protocol``) chooses the
  answer's candidates: UDP, TCP (``tcptype passive``, WebRTC over TCP) or both.
* Errors, as SRS 7 answers them: a WHIP/WHEP route answers ``text/plain``
  ``<code>: <name>`` (SRS's error code and its name, e.g. ``1028: StreamBusy``) with HTTP
  400 for a bad request (5012 SDP decode, 5018 SDP negotiation, 5023 parameters, 5036
  session or token, 5037 ICE credentials, 5043 no SDP), 401 when the policy refuses
  (security rules or hooks: 1102), 409 when the stream is busy (1028) and 500 otherwise
  (5021 RTC disabled...); the legacy JSON routes answer HTTP 200 ``{"code": 400}`` for any
  failure (SRS's ``srs_api_response_code(w, r, 400)``).  The reason is in the log.

A publish goes through the same chain as RTMP's: the vhost must serve the stream
(``validate_names``), the policy (security rules, ``on_publish`` hooks with client
type ``rtc-publish``) must allow it, and the registry allows one publisher per stream,
whatever protocol the other one uses.  A play asks ``on_play`` (client type ``rtc-play``).
The session ends on DELETE, ``stun_timeout``, a DTLS failure or an API kick; then
``on_unpublish`` (or ``on_stop``) is sent and the stream released.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs, quote, urlsplit

from twisted.internet import defer

from ..codec import sdp
from ..codec.sdp import SDP_DECODE, SDP_EXCHANGE, SdpError
from ..codec.sdp_negotiate import check_offer, wanted_codec
from ..context import ClientInfo
from ..errors import Denied, InvalidStreamName, StreamBusy
from ..log import ContextLogger
from ..url import StreamRequest, validate_names
from .answer import build_answer
from .cert import FingerprintError
from .connection import RtcConnection
from .play import RtcPlayPeer, encoder_options
from .publisher import RtcPublishPeer

__all__ = ["RtcApi", "RtcApiError", "delete_location", "session_id"]

# What the legacy routes take from the API's own query string too (SRS reads them only there).
_API_QUERY = ("protocol", "codec", "vcodec", "acodec", "encrypt", "dtls", "eip", "candidate")

# SRS's error codes (srs_kernel_error.hpp) this API answers with.
ERROR_SYSTEM_STREAM_BUSY = 1028
ERROR_SYSTEM_AUTH = 1102           # SRS 7: a security or hook refusal, transformed to this code for WHIP
ERROR_RTC_API_BODY = 5019
ERROR_RTC_DISABLED = 5021
ERROR_RTC_NO_SESSION = 5022
ERROR_RTC_INVALID_PARAMS = 5023
ERROR_RTC_INVALID_SESSION = 5036
ERROR_RTC_INVALID_ICE = 5037
ERROR_RTC_INVALID_SDP = 5043
ERROR_NAMES = {
    ERROR_SYSTEM_STREAM_BUSY: "StreamBusy", ERROR_SYSTEM_AUTH: "SystemAuth", SDP_DECODE: "RtcSdpDecode",
    SDP_EXCHANGE: "RtcSdpNegotiate", ERROR_RTC_API_BODY: "RtcApiJson", ERROR_RTC_DISABLED: "RtcDisabled",
    ERROR_RTC_NO_SESSION: "RtcNoSession", ERROR_RTC_INVALID_PARAMS: "RtcInvalidParams",
    ERROR_RTC_INVALID_SESSION: "RtcInvalidSession", ERROR_RTC_INVALID_ICE: "RtcInvalidIce",
    ERROR_RTC_INVALID_SDP: "RtcInvalidSdp",
}
# The HTTP status of a WHIP/WHEP error (SRS 7.0.121: 400/401/409, anything else 500).
WHIP_STATUS = {SDP_DECODE: 400, SDP_EXCHANGE: 400, ERROR_RTC_API_BODY: 400, ERROR_RTC_INVALID_PARAMS: 400,
               ERROR_RTC_INVALID_SESSION: 400, ERROR_RTC_INVALID_ICE: 400, ERROR_RTC_INVALID_SDP: 400,
               ERROR_SYSTEM_AUTH: 401, ERROR_SYSTEM_STREAM_BUSY: 409}
LEGACY_ERROR = 400                 # the code of every legacy JSON failure: SRS answers {"code": 400}
ICE_UFRAG_LENGTHS, ICE_PWD_LENGTHS = (4, 32), (22, 32)   # SRS's limits on ?ice-ufrag= and ?ice-pwd=


class RtcApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _query(request) -> dict:
    return {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}


def delete_location(kind: str, token: str, app: str, stream: str, session: str) -> str:
    """The ``Location`` of a WHIP/WHEP session (``kind`` its route), each value
    percent-encoded: the session id holds the peer's ICE ufrag, whose ice-chars
    include ``+`` and ``/`` (Chromium's often have a ``+``), and a ``+`` left
    as is in a query reads back as a space."""
    def q(value: str) -> str:
        return quote(value, safe=":/")

    return f"/rtc/v1/{kind}/?action=delete&token={q(token)}&app={q(app)}&stream={q(stream)}&session={q(session)}"


def session_id(query: dict) -> str:
    """The session id of a DELETE's query.  A client that put the id in its URL
    unencoded sent a ``+`` that query decoding turned into a space; an ICE
    ufrag never holds a space, so a space is read back as ``+``."""
    return query.get("session", "").replace(" ", "+")


def _host(request) -> str:
    host = (request.getHeader(b"host") or b"").decode("latin-1")
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


class RtcApi:
    """The ``/rtc/v1/`` routes for one server; ``api`` is the SrsApi (envelope, reply)."""

    def __init__(self, api) -> None:
        self.api = api
        self.ctx = api.ctx
        self.log = ContextLogger()

    @property
    def server(self):
        return getattr(self.ctx, "rtc", None)

    # --- routes ---

    def render(self, request, path: str):
        kind = path.rstrip("/").rsplit("/", 1)[-1]
        query = _query(request)
        if kind in ("whip", "whep", "whip-play"):
            if request.method == b"DELETE" or query.get("action") == "delete":
                return self._delete(request, query)
            # any other method is a publish or play (SRS: a GET has no SDP, 5043)
            offer = request.content.read().decode("utf-8", "replace")
            d = self._publish(request, offer, query.get("app") or "live", query.get("stream") or "livestream",
                              query, publish=kind == "whip")
            return d.addCallbacks(lambda answer: self._whip_created(request, answer, query, kind),
                                  lambda f: self._whip_error(request, f))
        if kind in ("publish", "play"):  # any method: a GET has no JSON body, {"code": 400}
            return self._legacy(request, kind == "publish")
        request.setResponseCode(404)
        return b""

    def _fail(self, request, whip: bool, error: RtcApiError):
        self.log.warn(f"RTC API {request.path.decode('utf-8', 'replace')}: code {error.code}: {error}")
        if whip:
            body = f"{error.code}: {ERROR_NAMES.get(error.code, 'Error')}".encode("utf-8")
            request.setResponseCode(WHIP_STATUS.get(error.code, 500))
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.setHeader(b"connection", b"close")
            request.setHeader(b"content-length", b"%d" % len(body))
            return body
        return self.api.error(request, LEGACY_ERROR)

    def _whip_error(self, request, failure):
        failure.trap(RtcApiError)
        return self._fail(request, True, failure.value)

    def _whip_created(self, request, answer, query, kind):
        token = self.server.find(answer.username).token
        app, stream = query.get("app") or "live", query.get("stream") or "livestream"
        location = delete_location(kind, token, app, stream, answer.username)
        body = answer.sdp.encode("utf-8")
        request.setResponseCode(201)
        request.setHeader(b"content-type", b"application/sdp")
        request.setHeader(b"location", location.encode("utf-8"))
        request.setHeader(b"connection", b"close")
        request.setHeader(b"content-length", b"%d" % len(body))
        return body

    def _delete(self, request, query):
        # As SRS: no token is 5036, a wrong token for a session 5036, no such session 200.
        server = self.server
        token = query.get("token", "")
        if not token:
            return self._fail(request, True, RtcApiError(ERROR_RTC_INVALID_SESSION, "DELETE without a token"))
        entry = server.find(session_id(query)) if server is not None else None
        if entry is not None and not hmac.compare_digest(entry.token, token):
            return self._fail(request, True, RtcApiError(ERROR_RTC_INVALID_SESSION, "DELETE with a wrong token"))
        if entry is not None:
            server.end(entry.peer, "DELETE by the client")
        else:
            self.log.trace(f"RTC DELETE of no session {session_id(query)!r}")
        request.setHeader(b"connection", b"close")
        request.setResponseCode(200)
        request.setHeader(b"content-length", b"0")
        return b""

    def _legacy(self, request, publish: bool):
        try:
            body = json.loads(request.content.read().decode("utf-8"))
            offer, url = body["sdp"], body["streamurl"]
            if not isinstance(offer, str) or not isinstance(url, str):
                raise TypeError
            parts = urlsplit(url)
            host = parts.hostname or ""
        except (ValueError, KeyError, TypeError):
            return self._fail(request, False, RtcApiError(ERROR_RTC_API_BODY, "the body is not {sdp, streamurl} JSON"))
        app, _, stream = parts.path.strip("/").rpartition("/")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        api_query = _query(request)
        for key in _API_QUERY:  # SRS reads these from the API's URL (/rtc/v1/play/?codec=...); ours: either
            if key not in query and api_query.get(key):
                query[key] = api_query[key]
        d = self._publish(request, offer, app or "live", stream or "livestream", query, vhost=host, publish=publish,
                          whip=False)

        def ok(answer):
            return self.api.reply(request, self.api.envelope(sdp=answer.sdp, sessionid=answer.username))

        def failed(f):
            f.trap(RtcApiError)
            return self._fail(request, False, f.value)

        return d.addCallbacks(ok, failed)

    # --- publishing ---

    def _publish(self, request, offer: str, app: str, stream: str, query: dict, vhost: str = "",
                 publish: bool = True, whip: bool = True) -> defer.Deferred:
        try:
            return self._start(request, offer, app, stream, query, vhost, publish, whip)
        except RtcApiError as e:
            return defer.fail(e)

    def _start(self, request, offer, app, stream, query, vhost, publish, whip):
        # SRS's order: the ICE credentials and the SDP are checked before the server and vhost.
        for key, (shortest, longest) in (("ice-ufrag", ICE_UFRAG_LENGTHS), ("ice-pwd", ICE_PWD_LENGTHS)):
            value = query.get(key, "")
            if value and not (shortest <= len(value) <= longest
                              and all(c.isascii() and (c.isalnum() or c in "+/") for c in value)):
                raise RtcApiError(ERROR_RTC_INVALID_ICE, f"invalid {key} {value!r}: {shortest}-{longest} ice-chars")
        if not offer.strip():
            raise RtcApiError(ERROR_RTC_INVALID_SDP, "no SDP offer")
        try:
            offer = sdp.parse(offer)
            check_offer(offer, publish)
        except SdpError as e:
            raise RtcApiError(e.code, f"SDP offer refused: {e}") from None
        server = self.server
        if server is None or not self.ctx.config.rtc_server.enabled:
            raise RtcApiError(ERROR_RTC_DISABLED, "rtc_server is disabled")
        host = vhost or _host(request)
        conf = self.ctx.vhost(query.get("vhost") or query.get("domain") or host)
        if conf is None or not conf.enabled:
            raise RtcApiError(ERROR_RTC_INVALID_PARAMS, f"vhost {host} is not served")
        if not conf.rtc.enabled:
            raise RtcApiError(ERROR_RTC_DISABLED, f"rtc is disabled in vhost {conf.name}")
        try:
            validate_names(app, stream)
        except InvalidStreamName as e:
            raise RtcApiError(ERROR_RTC_INVALID_PARAMS, str(e)) from None
        rtc = conf.rtc
        if not publish and not rtc.rtmp_to_rtc:
            # SRS (#2728): with rtmp_to_rtc off a stream published by RTMP (SRT, ingest...) is not played over WebRTC.
            live = self.ctx.registry.get(conf.name, app, stream)
            if live is not None and live.active and not getattr(live.publisher, "rtc_publisher", False):
                raise RtcApiError(ERROR_RTC_DISABLED, f"rtmp_to_rtc is off in vhost {conf.name}: "
                                                      f"{app}/{stream} is not published over WebRTC")
        if not publish and any(media.kind == "video" for media in offer.media):
            self._check_video_codec(conf.name, app, stream, query.get("vcodec") or query.get("codec"))
        eip = query.get("eip") or query.get("candidate") or ""
        try:
            candidates = server.candidates(eip=eip, api_host=_host(request), protocol=query.get("protocol", ""))
        except ValueError as e:
            raise RtcApiError(ERROR_RTC_INVALID_PARAMS, str(e)) from None
        try:
            answer = build_answer(
                offer, publish=publish, fingerprint=server.certificate.fingerprint,
                candidates=candidates, app=app, stream=stream,
                dtls_role=rtc.dtls_role, nack=rtc.nack, twcc=rtc.twcc,
                ice_ufrag=query.get("ice-ufrag") or None, ice_pwd=query.get("ice-pwd") or None,
                vcodec=query.get("vcodec") or query.get("codec"), acodec=query.get("acodec"))
        except SdpError as e:
            raise RtcApiError(e.code, f"SDP offer refused: {e}") from None
        except ValueError as e:
            raise RtcApiError(ERROR_RTC_INVALID_PARAMS, str(e)) from None
        encrypt, dtls = self._security(query, publish and not whip)
        try:
            connection = RtcConnection(server.dtls_context(rtc.dtls_version), answer.setup == "active",
                                       answer.remote_fingerprints, encrypt, dtls)
        except FingerprintError as e:
            raise RtcApiError(SDP_EXCHANGE, f"SDP offer refused: {e}") from None
        if server.find(answer.username) is not None:
            raise RtcApiError(ERROR_RTC_INVALID_PARAMS, f"session {answer.username} exists")

        peer_ip = request.getClientAddress().host if request.getClientAddress() else ""
        param = "&".join(f"{k}={v}" for k, v in query.items() if k not in ("app", "stream"))
        req = StreamRequest(schema="webrtc", host=host, port=0, vhost=conf.name, app=app, stream=stream,
                            param=f"?{param}" if param else "", tc_url=f"webrtc://{host}/{app}")
        client = ClientInfo(ip=peer_ip, type="rtc-publish" if publish else "rtc-play", protocol="rtc", request=req,
                            publish=publish)
        self.ctx.add_client(client)
        source = client.source = self.ctx.registry.fetch_or_create(req.vhost, req.app, req.stream)
        now = self.ctx.clock.seconds()

        def on_close(peer, reason):
            self._ended(peer, client, source, reason)

        if publish:
            peer = RtcPublishPeer(answer, connection, source, server.protocol.send, on_close, now, nack=rtc.nack,
                                  aac_bitrate=rtc.aac_bitrate if rtc.rtc_to_rtmp else None,
                                  pli_for_rtmp=rtc.pli_for_rtmp if rtc.rtc_to_rtmp else None,
                                  breaker=self.ctx.breaker)
        else:
            peer = RtcPlayPeer(answer, connection, source, server.protocol.send, on_close, nack=rtc.nack,
                               encoder_options=encoder_options(rtc), breaker=self.ctx.breaker)
        peer.published = peer.playing = False
        client.recv_bytes = lambda: peer.recv_bytes
        client.send_bytes = lambda: peer.sent_bytes
        client.kick = lambda: server.end(peer, "kicked by the API")

        def allowed(_):
            if publish:
                try:
                    self.ctx.registry.publish(source, peer, client)
                except StreamBusy as e:
                    raise RtcApiError(ERROR_SYSTEM_STREAM_BUSY, str(e)) from None
                peer.published = True
            else:
                peer.playing = True
            try:
                server.add(answer, peer, client, rtc.stun_timeout, rtc.stun_strict_check)
            except ValueError as e:
                self._ended(peer, client, source, str(e))
                raise RtcApiError(ERROR_RTC_INVALID_PARAMS, str(e)) from None
            what = "publish" if publish else "play"
            if connection.plaintext:
                transport = "no dtls, plain rtp"
            else:
                transport = f"dtls {'client' if connection.client else 'server'}"
                transport += "" if encrypt else ", plain rtp out"
            self.log.trace(f"RTC {what} {req.vhost}/{app}/{stream} session {answer.username} {transport}, "
                           f"from {peer_ip}")
            return answer

        def denied(f):
            self.ctx.remove_client(client, error=True)
            client.publish = False
            source.release_if_idle()
            if f.check(RtcApiError):
                return f
            reason = f.getErrorMessage() if f.check(Denied) else repr(f.value)
            raise RtcApiError(ERROR_SYSTEM_AUTH, f"{'publish' if publish else 'play'} denied: {reason}")

        d = self.ctx.policy.on_publish(client) if publish else self.ctx.policy.on_play(client)
        d.addCallback(allowed)
        d.addErrback(denied)
        return d

    def _check_video_codec(self, vhost: str, app: str, stream: str, vcodec) -> None:
        """A play of a live H.265 stream must ask ``?codec=hevc`` and one of an H.264
        stream must not: refused (5018) rather than answered with a video track that
        would stay black.  A stream not published yet is not checked."""
        live = self.ctx.registry.get(vhost, app, stream)
        header = getattr(live, "video_sh", None) if live is not None and live.active else None
        codec = getattr(header, "codec", None)
        wanted = wanted_codec(vcodec, "video")
        if codec == "h265" and wanted != "hevc":
            raise RtcApiError(SDP_EXCHANGE, f"{app}/{stream} is H.265: play it with ?codec=hevc "
                                            f"(a player that offers H.265)")
        if codec == "h264" and wanted == "hevc":
            raise RtcApiError(SDP_EXCHANGE, f"{app}/{stream} is H.264: play it without ?codec=hevc")

    def _security(self, query: dict, legacy_publish: bool) -> tuple[bool, bool]:
        """(encrypt, dtls) as SRS decides them: ``?encrypt=`` when given, else ``rtc_server.encrypt``;
        ``?dtls=false`` (no DTLS, plain RTP both ways) counts only without encryption; SRS's legacy
        ``/rtc/v1/publish/`` always encrypts."""
        if legacy_publish:
            return True, True
        flag = query.get("encrypt")
        encrypt = self.ctx.config.rtc_server.encrypt if not flag else flag != "false"
        return encrypt, query.get("dtls") != "false"

    def _ended(self, peer, client, source, reason: str) -> None:
        server = self.server
        if server is not None:
            server.forget(peer)
        self.log.trace(f"RTC session {client.request.vhost}/{client.request.app}/{client.request.stream} "
                       f"ended: {reason}; {peer.summary()}")
        if peer.published:
            peer.published = False
            client.publish = False
            self.ctx.registry.unpublish(source)
            self.ctx.policy.on_unpublish(client)
        elif peer.playing:
            peer.playing = False
            self.ctx.policy.on_stop(client)
            source.release_if_idle()
        self.ctx.remove_client(client)
