"""The node's side of the feedback loop, wired from the settings: events and exposures to NATS.

Without ``nats_url`` there is no feedback: events are validated and counted,
exposures are not logged (the embedded default).
"""

from __future__ import annotations

from node.events import EventSink
from node.exposures import ExposureLog
from node.nats_link import NatsLink
from node.publisher import DurablePublisher
from node.settings import Settings
from node.spool import Spool


class Feedback:
    def __init__(self, settings: Settings):
        self.link = NatsLink(settings.nats_url, settings.nats_timeout_ms / 1000.0).start()
        self.event_publisher = DurablePublisher(self.link, Spool(settings.spool_dir, "events"), "events")
        self.exposure_publisher = DurablePublisher(self.link, Spool(settings.spool_dir, "exposures"), "exposures")
        self.events = EventSink(self.event_publisher, settings.region)
        self.exposures = ExposureLog(self.exposure_publisher, settings.region, settings.exposure_queue)

    @classmethod
    def from_settings(cls, settings: Settings) -> Feedback | None:
        return cls(settings) if settings.nats_url else None

    def close(self) -> None:
        """Deliver queued exposures (published or spooled), then disconnect."""
        self.exposures.close()
        self.event_publisher.close()
        self.exposure_publisher.close()
        self.link.close()
