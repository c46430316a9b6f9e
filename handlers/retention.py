"""The daily retention run: closed tips lose their contact link, then their content."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from handlers.context import Services
from storage import retention
from storage.db import unit_of_work

log = logging.getLogger(__name__)

# The longest abuse window is a day (tips per day); a counter twice as old counts nothing.
COUNTERS_KEPT: Final = timedelta(days=2)


async def purge_closed(services: Services) -> retention.Purged:
    """Apply ``[security]`` retention to closed tips; return what was deleted."""
    now = services.clock()
    security = services.settings.security
    async with unit_of_work(services.sessions) as session:
        links = await retention.forget_contacts(
            session=session, closed_before=now - timedelta(days=security.contact_retention_days)
        )
        tips = await retention.purge_content(
            session=session, closed_before=now - timedelta(days=security.retention_days), now=now
        )
        counters = await retention.forget_counters(
            session=session, started_before=now - COUNTERS_KEPT
        )
    if links or tips:
        log.info("Retention: %d contact link(s) deleted, %d tip(s) purged", links, tips)
    return retention.Purged(contact_links=links, tips=tips, counters=counters)
