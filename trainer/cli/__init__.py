"""The trainer's commands for the ``edgerank`` command line."""
