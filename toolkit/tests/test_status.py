import pytest

from toolkit.status import StatusError, fetch_status, parse_status, read_status
from toolkit.tests.conftest import Server

# docs/contract.md's example, as our gateway sends it (name, address, settings).
OURS = {
    "available": 2,
    "total": 3,
    "services": [
        {
            "url": "http://storage1:8000",
            "name": "storage1",
            "address": "172.20.0.2:8000",
            "status": "available",
            "last_checked": "2026-11-24T07:30:00.123Z",
            "last_check_latency_ms": 1.7,
            "consecutive_failures": 0,
            "requests_served": 10,
        },
        {
            "url": "http://storage2:8000",
            "name": "storage2",
            "address": "172.20.0.3:8000",
            "status": "unavailable",
            "last_checked": None,
            "last_check_latency_ms": None,
            "consecutive_failures": 4,
            "requests_served": 0,
        },
    ],
    "settings": {"READ_TIMEOUT": 5.0},
}
# nginx: no name, address or settings, and no request counts.
NGINX = {
    "available": 1,
    "total": 1,
    "services": [
        {
            "url": "http://storage1:8000",
            "status": "available",
            "last_checked": "2026-11-24T07:30:00Z",
            "last_check_latency_ms": 2,
            "consecutive_failures": 0,
            "requests_served": None,
        }
    ],
}


def _entry(**fields: object) -> dict[str, object]:
    return {"url": "http://storage1:8000", "status": "available", **fields}


class TestParse:
    def test_reads_every_field_of_our_gateways_document(self) -> None:
        status = parse_status(OURS)

        assert (status.available, status.total, status.all_available) == (2, 3, False)
        first, second = status.services
        assert first.url == "http://storage1:8000"
        assert first.available
        assert first.host == "storage1"
        assert first.address == "172.20.0.2:8000"
        assert first.last_check_latency_ms == 1.7
        assert first.requests_served == 10
        assert not second.available
        assert second.consecutive_failures == 4
        assert second.last_checked is None
        assert status.settings == {"READ_TIMEOUT": 5.0}
        assert status.document is OURS

    def test_nginx_document_has_no_counts_and_no_settings(self) -> None:
        status = parse_status(NGINX)

        assert status.all_available
        assert status.services[0].requests_served is None
        assert status.services[0].name is None
        assert status.settings is None

    def test_a_service_is_found_by_host_or_url(self) -> None:
        status = parse_status(OURS)

        assert status.service("storage2") is status.services[1]
        assert status.service("http://storage1:8000") is status.services[0]
        assert status.service("storage9") is None

    def test_no_service_at_all_is_not_all_available(self) -> None:
        assert not parse_status({"available": 0, "total": 0, "services": []}).all_available

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            ([], "not a JSON object"),
            ({"available": 1, "services": []}, "total is missing"),
            ({"available": "1", "total": 1, "services": []}, "available='1' is not of type int"),
            ({"available": True, "total": 1, "services": []}, "available=True"),
            ({"available": 1, "total": 1, "services": {}}, "services="),
            ({"available": 1, "total": 1, "services": [3]}, "not an object"),
            ({"available": 1, "total": 1, "services": [{"url": "u"}]}, "status is missing"),
            (
                {"available": 1, "total": 1, "services": [_entry(last_check_latency_ms="1")]},
                "last_check_latency_ms='1' is not of type int or float",
            ),
        ],
    )
    def test_a_wrong_document_is_refused_in_one_line(self, document: object, message: str) -> None:
        with pytest.raises(StatusError, match=message) as raised:
            parse_status(document)

        assert "\n" not in str(raised.value)


class TestFetch:
    def test_reads_the_gateways_status(self, server: Server) -> None:
        server.answers.json("/status", NGINX)

        assert fetch_status(server.url + "/").total == 1

    def test_another_answer_than_200_is_an_error_naming_it(self, server: Server) -> None:
        server.answers.json("/status", NGINX, status=500)

        with pytest.raises(StatusError, match="answered 500"):
            fetch_status(server.url)
        assert read_status(server.url) is None

    def test_a_body_that_is_not_json_is_an_error(self, server: Server) -> None:
        server.answers.routes["/status"] = (200, b"<html>")

        with pytest.raises(StatusError, match="not JSON"):
            fetch_status(server.url)

    def test_no_gateway_listening_reads_as_none(self, closed_port_url: str) -> None:
        with pytest.raises(StatusError, match="/status"):
            fetch_status(closed_port_url)
        assert read_status(closed_port_url) is None
