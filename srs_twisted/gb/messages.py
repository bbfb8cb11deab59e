"""The SIP messages the GB28181 server builds and reads, as pure functions (no state, no I/O).

:class:`SipSettings` is what the server puts in them (its id, the candidate address, ports
and timers); :func:`dialog_request` builds a request in a device's call (INVITE, ACK, BYE),
:func:`query_message` a MANSCDP query in its own dialog, :func:`invite_sdp` the INVITE's
offer; :func:`make_ssrc` draws an SSRC as SRS does; :func:`device_info` reads what a
device's MANSCDP MESSAGE tells about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..codec.sip import SipMessage

__all__ = ["SipSettings", "make_ssrc", "invite_sdp", "user_host", "dialog_request", "query_message", "device_info"]

_XML_TAG = re.compile(r"<(CmdType|DeviceID|Manufacturer|Model|Firmware|DeviceName|Status)>\s*([^<]{0,128}?)\s*</\1>",
                      re.I)


@dataclass
class SipSettings:
    server_id: str = "34020000002000000001"  # our SIP id (the realm's first ten digits + 200 + serial)
    candidate: str = "127.0.0.1"  # the address in our Via, Contact and SDP
    sip_port: int = 5060
    media_port: int = 9000
    timeout: float = 60.0
    reinvite: float = 5.0
    max_devices: int = 1000


def make_ssrc(realm_user: str, taken, rng) -> int:
    """A GB28181 SSRC: "0" (real time), digits 4-8 of the domain, four random digits
    (as SRS makes them), unique among ``taken``; 0 when none is free after 16 tries."""
    domain = realm_user[3:8] if len(realm_user) >= 8 and realm_user[3:8].isdigit() else "00000"
    for _ in range(16):
        ssrc = int("0%s%04d" % (domain, rng.randrange(10000)))
        if ssrc and ssrc not in taken:
            return ssrc
    return 0


def invite_sdp(settings: SipSettings, ssrc: int, tcp: bool) -> bytes:
    """The INVITE's offer: receive only, PS over RTP at 90 kHz on the media port."""
    ip = settings.candidate
    lines = [
        "v=0", "o=%s 0 0 IN IP4 %s" % (settings.server_id, ip), "s=Play", "c=IN IP4 %s" % ip, "t=0 0",
        "m=video %d %s 96" % (settings.media_port, "TCP/RTP/AVP" if tcp else "RTP/AVP"),
        "a=recvonly", "a=rtpmap:96 PS/90000",
    ]
    if tcp:
        lines += ["a=setup:passive", "a=connection:new"]
    lines.append("y=%010d" % ssrc)
    return ("\r\n".join(lines) + "\r\n").encode()


def user_host(uri_header: str) -> tuple:
    """(user, host) of a ``<sip:user@host>`` From/To/Request-URI."""
    v = uri_header.split(">")[0].split("<")[-1].split(";")[0].strip()
    if v.startswith("sip:"):
        v = v[4:]
    user, _, host = v.partition("@")
    return user, host


def dialog_request(s: SipSettings, device, method: str, cseq: int, branch: str, body: bytes = b"") -> SipMessage:
    """A request in ``device``'s call (its Call-ID and tags); a body is the INVITE's SDP."""
    uri = "sip:%s@%s" % (device.id, device.host)
    req = SipMessage(method=method, uri=uri)
    req.add("Via", "SIP/2.0/%s %s:%d;rport;branch=%s" % (device.transport, s.candidate, s.sip_port, branch))
    req.add("From", "<sip:%s@%s>;tag=%s" % (s.server_id, s.server_id[:10], device.local_tag))
    req.add("To", "<%s>%s" % (uri, ";tag=" + device.remote_tag if device.remote_tag and method != "INVITE" else ""))
    req.add("Call-ID", device.call_id)
    req.add("CSeq", "%d %s" % (cseq, method))
    req.add("Max-Forwards", "70")
    req.add("Contact", "<sip:%s@%s:%d>" % (s.server_id, s.candidate, s.sip_port))
    req.add("User-Agent", "srs-twisted")
    if body:
        req.add("Subject", "%s:%010d,%s:0" % (device.id, device.ssrc, s.server_id))
        req.add("Content-Type", "Application/SDP")
        req.body = body
    return req


def query_message(s: SipSettings, device, cmd: str, branch: str, tag: str, call_id: str, cseq: int,
                  sn: int) -> SipMessage:
    """A MANSCDP ``<Query>`` of ``cmd`` (DeviceInfo, Catalog...) to ``device`` in a dialog of its own."""
    uri = "sip:%s@%s" % (device.id, device.host)
    req = SipMessage(method="MESSAGE", uri=uri)
    req.add("Via", "SIP/2.0/%s %s:%d;rport;branch=%s" % (device.transport, s.candidate, s.sip_port, branch))
    req.add("From", "<sip:%s@%s>;tag=%s" % (s.server_id, s.server_id[:10], tag))
    req.add("To", "<%s>" % uri)
    req.add("Call-ID", call_id)
    req.add("CSeq", "%d MESSAGE" % cseq)
    req.add("Max-Forwards", "70")
    req.add("User-Agent", "srs-twisted")
    req.add("Content-Type", "Application/MANSCDP+xml")
    req.body = ('<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>%s</CmdType>\r\n'
                '<SN>%d</SN>\r\n<DeviceID>%s</DeviceID>\r\n</Query>\r\n' % (cmd, sn, device.id)).encode()
    return req


def device_info(body: bytes) -> dict:
    """What a MANSCDP body says about its device (``manufacturer``, ``model``, ``firmware``,
    ``devicename``, ``status``), each value at most 128 characters."""
    return {tag.lower(): value for tag, value in _XML_TAG.findall(body.decode("utf-8", "replace"))
            if tag.lower() not in ("cmdtype", "deviceid")}
