"""Contracts between the live core and everything that plugs into it.

Other Twisted applications publish to the server through an
:class:`IStreamRegistry` and a source's ``registerProducer``/``write``/
``unregisterProducer`` (the :class:`twisted.internet.interfaces.IConsumer`
shape, carrying :class:`~srs_twisted.live.packet.MediaPacket` objects instead
of bytes), and consume through :class:`IMediaSink` objects that a
:class:`~srs_twisted.live.consumer.Consumer` (an ``IPushProducer``) feeds.
"""

from zope.interface import Attribute, Interface


class IMediaSink(Interface):
    """Where one player's wire bytes go (an RTMP connection, an HTTP response...)."""

    wire_key = Attribute(
        "Hashable name of this sink's wire format (e.g. ('rtmp', 60000)). "
        "Sinks with equal keys must encode packets identically, so the bytes "
        "are computed once per packet and shared."
    )

    def encode(packet):
        """Return the wire bytes of one MediaPacket."""

    realtime = Attribute(
        "Optional: true for a sink that must get every packet at once (WebRTC: "
        "RTP has its own pacing and the players' jitter buffers are short). While "
        "such a player is subscribed, the source does no merged writes "
        "(mw_latency/mw_msgs) for that stream."
    )

    retime = Attribute(
        "Optional: ``retime(packet, ts)`` returns bytes-like pieces that join to "
        "the packet's wire form stamped ``ts`` ms instead of its dts, reusing "
        "the shared payload.  A sink that has it gets its own timeline with "
        "``time_jitter full`` (it starts near 0 whenever it joins); without it "
        "the player gets the stream's timestamps."
    )

    chained = Attribute(
        "Optional: ``chained(packet)`` returns a wire form that is valid after "
        "the previous packet of the same kind (``packet.prev_dts``) whatever "
        "the player's timeline (RTMP fmt 1), shared by every player, or None."
    )

    def write(data):
        """Write already-encoded bytes to the player."""

    def stream_unpublished():
        """The publisher went away; the player stays subscribed, waiting."""

    def stream_published():
        """A (new) publisher started; called before its packets arrive."""


class ILiveSource(Interface):
    """One live stream: at most one publisher, any number of consumers."""

    url = Attribute("'vhost/app/stream'")

    def registerProducer(producer, streaming):
        """Start publishing; raises StreamBusy if another publisher is active."""

    def unregisterProducer():
        """Stop publishing."""

    def write(packet):
        """Deliver one MediaPacket from the publisher."""

    def subscribe(sink, gop_cache=True):
        """Return a Consumer (IPushProducer) feeding ``sink``, from the GOP
        cache's keyframe (``gop_cache=False``: from the next keyframe)."""


class IStreamRegistry(Interface):
    """vhost/app/stream -> ILiveSource."""

    def fetch_or_create(vhost, app, stream):
        """Return the source for the stream, creating it if needed."""

    def get(vhost, app, stream):
        """Return the source or None."""

    def sources():
        """All current sources."""


class IStreamObserver(Interface):
    """Told when any stream starts or stops publishing (HLS, DASH, DVR,
    forward, edge, transcode/exec/snapshot workers): what goes in
    :class:`~srs_twisted.live.registry.StreamRegistry`'s ``observers``.

    An observer may also have ``source_players_changed(source)``, called
    when a source gains or loses a player (the edge starts and stops its
    pulls with it); the registry calls it only where it exists.
    """

    def source_published(source):
        """A publisher started on ``source`` (its ClientInfo, if any, is
        already in ``source.publisher_info``)."""

    def source_unpublished(source):
        """The publisher of ``source`` stopped; called before the source
        forgets its producer.  A returned value (some workers return the
        Deferred of their children's exit) is ignored by the registry."""
