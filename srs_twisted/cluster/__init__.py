"""Clusters: forwarding a stream to other servers (``forward``) and edge
servers that pull from, and push to, origin servers (``cluster { mode
remote; }``).  See docs/cluster.md."""
