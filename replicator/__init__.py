"""edgerank replicator."""
