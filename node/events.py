"""Accepted interaction events, on their way to the JetStream events stream.

:meth:`EventSink.log` returns once each event is acked by JetStream or
durably spooled (:class:`node.publisher.DurablePublisher`). The event id is
the ``Nats-Msg-Id``: a client's retry of the same event is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.gen.edgerank.v1 import events_pb2
from node.nats_link import EVENTS
from node.publisher import DurablePublisher
from node.spool import Record


class EventSink:
    def __init__(self, publisher: DurablePublisher, region: str):
        self.publisher = publisher
        self.subject = EVENTS.subject(region)

    def log(self, events: Sequence[events_pb2.Event]) -> bool:
        """Deliver validated events; True if published, False if spooled."""
        return self.publisher.publish([Record(self.subject, e.event_id, e.SerializeToString()) for e in events])
