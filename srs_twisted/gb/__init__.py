"""GB28181: an embedded SIP server (:mod:`.core`) that invites registered cameras, and the
media port (:mod:`.media`) where they send MPEG-PS over RTP (TCP RFC 4571 or UDP) into the
live core; :mod:`.service` wires both from ``stream_caster { caster gb28181; }``."""
