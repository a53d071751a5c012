"""The one clock: what "now" is for every decision relance takes.

Time is an input. A run has its logical `as_of`, a delivery its `now`, a sync its load
moment; each is given by the caller (a CLI `--as-of`, a flow parameter, the simulator's
tick) or, when none is, read here. `now()` is the wall clock unless a caller set the
clock (`at(moment)`), so a whole command or a simulated season runs "as of" a moment
without every function having to pass it on; `wall()` is always the machine's clock, for
what must record when something really happened (a provider's acceptance, a lock's age,
durations) and is stored beside the logical columns under its own name (`*_wall_at`).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterator

_fixed: ContextVar[datetime | None] = ContextVar("relance_clock", default=None)


def wall() -> datetime:
    """The machine's clock, in UTC: never the logical one."""
    return datetime.now(timezone.utc)


def now() -> datetime:
    """The logical now, in UTC: the moment a caller set (`at`), else the wall clock."""
    return _fixed.get() or wall()


def or_now(moment: datetime | None) -> datetime:
    """`moment` as an aware UTC datetime, or the clock's now when it is None."""
    return (moment or now()).astimezone(timezone.utc)


@contextmanager
def at(moment: datetime | None) -> Iterator[datetime]:
    """Inside the block, `now()` is `moment` (unchanged when it is None)."""
    if moment is None:
        yield now()
        return
    token = _fixed.set(moment.astimezone(timezone.utc))
    try:
        yield moment
    finally:
        _fixed.reset(token)
