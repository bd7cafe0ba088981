"""Command-line front ends of the replicator, registered by ``node.cli``."""
