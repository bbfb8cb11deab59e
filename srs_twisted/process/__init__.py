"""External processes: FFmpeg for ingest, transcode and snapshots, and the
``exec`` programs, each supervised (restarted with a backoff, stopped with
SIGTERM then SIGKILL).  See docs/workers.md."""
