"""Judging a gateway by who serves its /data, against the real storage service."""

from toolkit.faults import set_fault
from toolkit.serving import instances_served, serves_from_all


def test_every_answer_names_its_instance(storage: str) -> None:
    assert instances_served(storage, 3) == {"s1": 3}
    assert serves_from_all(storage, 1)
    # One instance cannot be a rotation over two.
    assert not serves_from_all(storage, 2)


def test_one_failed_answer_means_not_serving(storage: str) -> None:
    set_fault("s1", storage, "unavailable")
    assert instances_served(storage, 3) is None
    assert not serves_from_all(storage, 1)


def test_nothing_answering_means_not_serving(closed_port_url: str) -> None:
    assert instances_served(closed_port_url, 1, timeout=1.0) is None
