"""WebRTC: sans-I/O cores (DTLS, SRTP, ICE-lite sessions) and their Twisted adapters.

Modules here follow the rtmp/ pattern: a state machine that takes bytes and a
time and gives bytes and events back, and a thin adapter that owns sockets and
timers.  Nothing in this package imports the reactor at module level.
"""
