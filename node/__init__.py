"""edgerank node."""
