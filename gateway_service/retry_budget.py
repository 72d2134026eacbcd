"""The retry budget: retries limited to a share of the requests in flight (Envoy's retry budget).

A storage-wide brown-out makes every request fail once and retry; with retries unbounded the
gateway then sends the storage services up to three attempts per client request, just when they
can take the fewest. With `RETRY_BUDGET_PERCENT` under 100, a request may start retrying only
while the requests already retrying, all workers together, stay within that percentage of the
requests in flight (and at least `RETRY_BUDGET_MIN` may always retry). A retry beyond the budget
is not made: the client gets the answer it would get with no backend left to try.

At 100 % no retry is ever refused (a retrying request is itself in flight, so the retrying ones
never outnumber those in flight), so the proxy builds no budget at all and counts nothing.
"""

from gateway_service.board import G_ACTIVE, G_RETRIES_REFUSED, G_RETRYING, Board


class RetryBudget:
    """Counts this worker's requests in its own area of the board; reads every worker's."""

    __slots__ = ("_active_at", "_board", "_q", "_refused_at", "_retrying_at", "minimum", "percent")

    def __init__(self, board: Board, percent: float, minimum: int) -> None:
        self._board = board
        self._q = board.q
        base = board.global_base(board.worker)
        self._active_at = base + G_ACTIVE
        self._retrying_at = base + G_RETRYING
        self._refused_at = base + G_RETRIES_REFUSED
        self.percent = percent
        self.minimum = minimum

    def begin(self) -> None:
        """A request for /data is in flight."""
        self._q[self._active_at] += 1

    def end(self, retried: bool) -> None:
        """That request is over; `retried`: it had been allowed a retry."""
        self._q[self._active_at] -= 1
        if retried:
            self._q[self._retrying_at] -= 1

    def allows(self, retried: bool) -> bool:
        """Whether this request may retry now; `retried`: it has retried already (it is then
        counted among the retrying ones). A refusal is counted for /metrics.

        No lock: workers deciding at the same instant may each take the last place, going over
        by at most one per worker, which is cheaper to allow than a lock taken on every retry."""
        active, retrying = self._board.sum_words([G_ACTIVE, G_RETRYING])
        others = retrying - 1 if retried else retrying
        if others + 1 <= max(self.minimum, self.percent * active / 100):
            if not retried:
                self._q[self._retrying_at] += 1
            return True
        self._q[self._refused_at] += 1
        return False

    @property
    def refused(self) -> int:
        """Retries not made since start-up, all workers together."""
        return self._board.sum_words([G_RETRIES_REFUSED])[0]

    @property
    def in_flight(self) -> tuple[int, int]:
        """(requests in flight, of which retrying), all workers together."""
        active, retrying = self._board.sum_words([G_ACTIVE, G_RETRYING])
        return active, retrying
