"""HTTP side: live HTTP streams, static files, the SRS HTTP API, metrics."""
