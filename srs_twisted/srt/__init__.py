"""SRT (Secure Reliable Transport) in live mode: a sans-I/O core and its Twisted adapter.

* :mod:`.packet` -- wire formats; :mod:`.connection` -- one connection (TSBPD receiver,
  ARQ sender); :mod:`.handshake` -- listener (SYN cookies) and caller; :mod:`.streamid`
  -- SRS's stream ids.  These import nothing from Twisted.
* :mod:`.protocol` -- the UDP ``DatagramProtocol``; :mod:`.service` -- the server's
  ``srt_server`` (publish MPEG-TS into the live core, play it out).
"""
