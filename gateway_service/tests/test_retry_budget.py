"""RETRY_BUDGET_PERCENT / RETRY_BUDGET_MIN: requests retrying at once bounded by a share of the
requests in flight, all workers together; a retry over the budget is not made."""

import asyncio
import os

import pytest

from gateway_service.board import Board
from gateway_service.retry_budget import RetryBudget
from gateway_service.tests.conftest import Stack, StackFactory
from gateway_service.tests.fakes import eventually
from gateway_service.tests.test_board import in_child, wait_ok


def budget_in(board: Board, worker: int, percent: float = 20, minimum: int = 1) -> RetryBudget:
    """What a worker builds after the fork (a budget made before attach counts in area 0)."""
    board.attach(worker)
    return RetryBudget(board, percent, minimum)


class TestBudget:
    def test_a_share_of_the_requests_in_flight_may_retry(self) -> None:
        budget = budget_in(Board(1), 0)
        for _ in range(10):
            budget.begin()
        assert [budget.allows(retried=False) for _ in range(3)] == [True, True, False]
        assert budget.in_flight == (10, 2)
        assert budget.refused == 1

    def test_a_request_already_retrying_may_go_on(self) -> None:
        budget = budget_in(Board(1), 0)
        for _ in range(5):
            budget.begin()
        assert budget.allows(retried=False)  # 1 of 20 % of 5: the minimum
        assert budget.allows(retried=True)  # its next retry takes no more of the budget
        assert not budget.allows(retried=False)

    def test_the_minimum_holds_whatever_the_share(self) -> None:
        budget = budget_in(Board(1), 0, percent=0, minimum=2)
        budget.begin()
        assert [budget.allows(retried=False) for _ in range(3)] == [True, True, False]

    def test_ended_requests_give_their_share_back(self) -> None:
        budget = budget_in(Board(1), 0, percent=0, minimum=1)
        budget.begin()
        assert budget.allows(retried=False)
        budget.end(retried=True)
        budget.begin()
        assert budget.allows(retried=False)


class TestSeveralWorkers:
    def test_the_budget_is_one_for_all_workers(self) -> None:
        board = Board(3)
        read_end, write_end = os.pipe()

        def busy() -> None:  # 10 requests in flight, 2 of them retrying, left so
            budget = budget_in(board, 1)
            for _ in range(10):
                budget.begin()
            assert budget.allows(retried=False)
            assert budget.allows(retried=False)

        def another() -> None:  # 5 more: 20 % of 15 is 3, so one more retry
            budget = budget_in(board, 2)
            for _ in range(5):
                budget.begin()
            verdicts = [budget.allows(retried=False) for _ in range(2)]
            os.write(write_end, repr(verdicts).encode())

        wait_ok(in_child(busy))
        wait_ok(in_child(another))
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            assert pipe.read() == b"[True, False]"
        reader = budget_in(board, 0)
        assert (reader.in_flight, reader.refused) == ((15, 3), 1)
        budget_in(board, 1)  # a replacement for worker 1: its predecessor's requests are gone
        assert reader.in_flight == (5, 1)


@pytest.mark.anyio
class TestProxy:
    async def test_a_retry_over_the_budget_is_not_made(self, make_stack: StackFactory) -> None:
        stack = make_stack(retry_budget_percent=0, retry_budget_min=1, max_fails=100)
        storage1, storage2, storage3 = stack.storages
        storage1.behaviour = 500
        storage3.behaviour = 500
        storage2.gate = asyncio.Event()
        # The first request fails on storage1 and retries on storage2, where it waits...
        first = asyncio.create_task(stack.client.get("/data"))
        await eventually(lambda: len(storage2.data_requests) == 1)
        # ...so the second, failing on storage3, finds the one retry allowed taken.
        second = await stack.client.get("/data")
        assert second.status_code == 503
        assert second.json()["detail"] == (
            "no storage service could answer: http://storage3:8000: HTTP 500"
        )
        assert len(storage2.data_requests) == 1
        storage2.gate.set()
        assert (await first).json()["instance"] == "storage2"
        text = (await stack.client.get("/metrics")).text
        assert "gateway_retries_refused_total 1.0" in text
        assert "gateway_retries_total 1.0" in text
        status = (await stack.client.get("/status")).json()
        assert status["retry_budget"] == {
            "requests_in_flight": 0,  # both over: what they counted was given back
            "retrying": 0,
            "retries_allowed": 1,
            "retries_refused": 1,
        }

    async def test_by_default_there_is_no_budget(self, stack: Stack) -> None:
        assert stack.gateway.retry_budget is None
        assert "retry_budget" not in (await stack.client.get("/status")).json()
