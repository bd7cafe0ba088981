"""Start a hub and two regions on loopback: the same as ``edgerank up`` (see replicator/launcher.py)."""

import sys

from node.cli import main

if __name__ == "__main__":
    sys.exit(main(["up", *sys.argv[1:]]))
