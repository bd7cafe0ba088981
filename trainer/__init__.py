"""edgerank trainer."""
