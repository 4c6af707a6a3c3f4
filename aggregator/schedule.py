"""When each source is due: its interval, backoff after errors, and the APScheduler wiring.

Due times live in the database (`sources.next_poll`), so a restart keeps the schedule.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

MAX_INTERVAL = 86400.0
JITTER = 0.10


def next_poll(now: datetime, interval: float, errors: int = 0, rng: random.Random | None = None) -> datetime:
    """now + interval (× 2^errors after failures, capped), ±10% so sources drift apart."""
    seconds = interval * (2 ** min(errors, 20)) if errors else interval
    seconds = min(seconds, max(MAX_INTERVAL, interval))
    jitter = (rng or random).uniform(-JITTER, JITTER)
    return now + timedelta(seconds=seconds * (1 + jitter))
