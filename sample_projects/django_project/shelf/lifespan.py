"""A lifespan hook (listed in ASGISHIFT_LIFESPAN): records when the server started."""

import contextlib
import logging
from collections.abc import AsyncIterator, MutableMapping
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger("asgishift.sample")


@contextlib.asynccontextmanager
async def started_at(state: MutableMapping[str, Any]) -> AsyncIterator[None]:
    """Put the start time in ``state`` (``request.state.started_at`` in views)."""
    state["started_at"] = datetime.now(timezone.utc).isoformat()
    logger.warning("sample lifespan: started")
    yield
    logger.warning("sample lifespan: stopped")


@contextlib.asynccontextmanager
async def failing(state: MutableMapping[str, Any]) -> AsyncIterator[None]:
    """A hook that fails startup (used by the tests through SAMPLE_FAIL_STARTUP)."""
    raise RuntimeError("sample startup failure")
    yield
