"""The link failure budget: at most ``link_failure_budget`` failed links per minute, then none at all.

Someone who calls in and types codes at random is guessing; so is anyone who
posts to ``/link_phone`` directly.  Failed links are counted in the store, per
fixed window (one minute), so that every instance on a shared database counts
into the same window.  Once a window's budget is spent, every link attempt is
refused with ``429`` until the window ends, the right code too: a lucky guess
during an attack must not succeed (fail closed).

The store refuses a link itself once the budget is spent (it reads the count
in the link's own statement), so no extra round trip is needed while the
budget holds.  Once this instance knows the window is spent it remembers, and
answers ``429`` without asking the store until the window ends.
"""

from __future__ import annotations

import logging
import math

from .errors import TooManyRequests
from .model import FailureWindow

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class LinkBudget:
    """This instance's view of the shared failure budget (counts live in the store)."""

    def __init__(self, budget: int, window: int = WINDOW_SECONDS) -> None:
        self.budget = budget
        self.window = window
        self._spent_until = 0
        self._warned_for = 0

    def window_at(self, now: float) -> FailureWindow:
        """The window ``now`` falls in; ``TooManyRequests`` if it is known to be spent."""
        if now < self._spent_until:
            raise TooManyRequests(math.ceil(self._spent_until - now))
        return FailureWindow(ends=(math.floor(now / self.window) + 1) * self.window, budget=self.budget)

    def failed(self, window: FailureWindow, count: int, now: float) -> None:
        """Note a failed link that made the window's count ``count``; ``TooManyRequests`` if over budget.

        The failure that spends the budget is still answered as what it was
        (``404``); every attempt after it gets ``429``.
        """
        if count < self.budget:
            return
        self._spent_until = max(self._spent_until, window.ends)
        if self._warned_for != window.ends:
            self._warned_for = window.ends
            # No code, no contact id: the count and when it resets are what an operator needs.
            log.warning("link failure budget spent: %d failed links this minute; every link is refused "
                        "with 429 for %d s (someone may be guessing codes)", count, math.ceil(window.ends - now))
        if count > self.budget:
            raise TooManyRequests(math.ceil(window.ends - now))
