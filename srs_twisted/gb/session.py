"""One GB28181 media session: an SSRC whose PS over RTP becomes a live stream.

A session is made when a device accepts our INVITE (embedded SIP) or by
``POST /gb/v1/publish/`` (external SIP).  Its first RTP packet starts the
publish into the stream the output template names (``[stream]`` is the
device id) through the policy chain as for RTMP (``on_connect``, then
``on_publish`` hooks, client type ``gb28181-publish``); while the policy
decides at most :data:`PENDING_LIMIT` bytes of packets are held.

The publish outlives a media gap: when the media stops (its TCP connection
closes or no RTP for :data:`MEDIA_IDLE` s) the SIP side says BYE and
re-invites, and the next media continues the same stream.  It ends (with
``on_unpublish``) when the device unregisters, expires, says BYE, is removed
by the API, or when no media came for ``timeout`` seconds.
"""

from __future__ import annotations

from ..codec.rtp import RtpError, RtpPacket
from ..context import ClientInfo
from ..errors import Denied, StreamBusy
from ..url import discover
from .media import PsIngest, ReorderBuffer

__all__ = ["GbSession", "MEDIA_IDLE", "PENDING_LIMIT", "output_request"]

MEDIA_IDLE = 5.0  # seconds without RTP after which the media is taken as stopped
PENDING_LIMIT = 4 * 1024 * 1024


def output_request(output: str, device_id: str):
    """The StreamRequest of the output template for ``device_id``."""
    url = output.replace("[stream]", device_id)
    tc_url, _, stream = url.rpartition("/")
    return discover(tc_url, stream)


class GbSession:
    """See the module docstring.  ``caster`` is the :class:`~.service.GbCaster`."""

    def __init__(self, caster, device_id: str, ssrc: int, external: bool = False) -> None:
        self.caster = caster
        self.ctx = caster.ctx
        self.device_id = device_id
        self.ssrc = ssrc
        self.external = external
        self.log = caster.device_log(device_id)  # one context id per device
        now = self.ctx.clock.seconds()
        self.created = now
        self.last_media = now  # for the `timeout` without any media
        self.media_peer = None  # protocol (TCP) or address (UDP) sending the media
        self.media_addr = ""
        self.media_transport = ""
        self.media_on = False
        self.ingest = None
        self.reorder = None
        self.bytes = 0
        self.packets = 0
        self.foreign = 0  # packets with our SSRC from another peer while the media is on
        self.client = None
        self.source = None
        self.published = False
        self.allowed = False
        self.ended = False
        self._pending: list = []
        self._pending_bytes = 0

    # --- media in ---

    def media(self, peer, data, transport: str, addr: str) -> bool:
        """One RTP packet from ``peer``; False when it is not the session's media peer (another
        peer is taken only once the current one stopped: an SSRC is guessable)."""
        now = self.ctx.clock.seconds()
        if peer is not self.media_peer and peer != self.media_peer:
            if self.media_on:
                self.foreign += 1
                if self.foreign <= 10 or self.foreign % 1000 == 0:
                    self.log.warn(f"GB media {transport} {addr} with the SSRC {self.ssrc} of device {self.device_id}, "
                                  f"whose media comes from {self.media_addr}: dropped ({self.foreign} so far)")
                return False
            self.media_peer, self.media_addr, self.media_transport = peer, addr, transport
            if self.ingest is None:
                self.ingest = PsIngest()
            else:
                self.ingest.restart()
            self.reorder = ReorderBuffer() if transport == "udp" else None
            self.log.trace(f"GB media {transport} {addr} -> device {self.device_id} ssrc={self.ssrc}")
        if not self.media_on:
            self.media_on = True
            if self.caster.sip is not None:
                self.caster.sip.media_started(self.device_id)
        self.last_media = now
        self.packets += 1
        self.bytes += len(data)
        if self.client is None:
            self._start(addr)
        if self.reorder is not None:
            try:
                pkts = self.reorder.push(RtpPacket.parse(data), now)
            except RtpError:
                return True
        else:
            pkts = (data,)
        self._ingest(pkts)
        return True

    def _ingest(self, pkts) -> None:
        out = []
        for pkt in pkts:
            out += self.ingest.rtp(pkt)
        if out:
            self._write(out)

    def _write(self, packets: list) -> None:
        if self.allowed:
            write = self.source.write
            for p in packets:
                write(p)
        elif not self.ended:
            for p in packets:
                if self._pending_bytes + len(p.payload) <= PENDING_LIMIT:
                    self._pending.append(p)
                    self._pending_bytes += len(p.payload)

    def media_stopped(self, reason: str) -> None:
        """The media peer went away or fell silent (the publish stays for a re-invite)."""
        if not self.media_on:
            return
        self.media_on = False
        self.media_peer = None
        if self.ingest is not None and self.allowed:
            for p in self.ingest.flush():
                self.source.write(p)
        self.log.trace(f"GB media of device {self.device_id} stopped: {reason}"
                       f"{'' if self.external else '; re-invite in %gs' % self.caster.conf.sip.reinvite}")
        if self.caster.sip is not None:
            self.caster.sip.media_stopped(self.device_id, self.ctx.clock.seconds())
            self.caster.pump()

    def poll(self, now: float) -> None:
        if self.reorder is not None and self.media_on:
            late = self.reorder.release(now)
            if late:
                self._ingest(late)
        if self.media_on and now - self.last_media >= MEDIA_IDLE:
            self.media_stopped(f"no RTP for {now - self.last_media:.1f}s")
        if not self.media_on and now - self.last_media >= self.caster.conf.sip.timeout:
            self.end(f"no media for {now - self.last_media:.0f}s")

    # --- publish ---

    def _start(self, addr: str) -> None:
        req = output_request(self.caster.conf.output, self.device_id)
        vhost = self.ctx.vhost(req.vhost)
        if vhost is not None:
            req.vhost = vhost.name
        host, _, port = addr.rpartition(":")
        self.client = ClientInfo(ip=host, port=int(port or 0), id=self.log.cid, type="gb28181-publish",
                                 protocol="gb28181", request=req, publish=True)
        self.client.recv_bytes = lambda: self.bytes
        self.client.kick = lambda: self.caster.remove(self.device_id, "kicked by the API")
        self.source = self.client.source = self.ctx.registry.fetch_or_create(req.vhost, req.app, req.stream)
        self.ctx.add_client(self.client)
        policy = self.ctx.policy
        d = policy.on_connect(self.client)
        d.addCallback(lambda _: policy.on_publish(self.client))
        d.addCallbacks(self._allowed, self._denied)

    def _allowed(self, _) -> None:
        if self.ended:
            return
        try:
            self.ctx.registry.publish(self.source, self, self.client)
        except StreamBusy as e:
            self.client.publish = False
            self.end(f"stream busy: {e}")
            return
        self.published = self.allowed = True
        pending, self._pending = self._pending, []
        self._pending_bytes = 0
        self._write(pending)
        req = self.client.request
        self.log.trace(f"GB publish {req.vhost}/{req.app}/{req.stream} from device {self.device_id} "
                       f"ssrc={self.ssrc} media {self.media_transport} {self.media_addr}")

    def _denied(self, failure) -> None:
        if self.ended:
            return
        reason = failure.getErrorMessage() if failure.check(Denied) else repr(failure.value)
        self.client.publish = False
        self.end(f"publish denied: {reason}")

    # IPushProducer for the source
    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        self.caster.remove(self.device_id, "stopped by the stream")

    # --- end ---

    def info(self) -> dict:
        ingest = self.ingest
        return {
            "ssrc": self.ssrc, "media": self.media_on, "media_transport": self.media_transport,
            "media_peer": self.media_addr, "recv_bytes": self.bytes, "rtp_packets": self.packets,
            "lost": ingest.lost if ingest else 0, "errors": ingest.errors if ingest else 0,
            "codecs": dict(ingest.codecs) if ingest else {},
            "stream": self.client.request.stream_url if self.client else "", "publishing": self.published,
            "client_id": self.log.cid,
        }

    def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        ctx = self.ctx
        peer = self.media_peer
        self.media_peer = None
        if peer is not None and hasattr(peer, "close"):
            peer.close(reason)
        if self.ingest is not None:
            if self.published:
                for p in self.ingest.flush():
                    self.source.write(p)
            self.ingest.close()
        if self.published:
            self.published = False
            self.client.publish = False
            ctx.registry.unpublish(self.source)
            ctx.policy.on_unpublish(self.client)
        elif self.source is not None:
            self.source.release_if_idle()
        if self.client is not None:
            ctx.remove_client(self.client)
            ctx.policy.on_close(self.client)
        self.log.trace(f"GB session of device {self.device_id} ssrc={self.ssrc} ended ({reason}), "
                       f"recv={self.bytes} bytes in {self.packets} RTP packets")
        self.caster.session_ended(self)
