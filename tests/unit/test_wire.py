"""Frames captured next to the gateway are parsed into the requests each storage service got."""

import socket
import struct

from tests.harness.wire import Capture, parse_frame


def frame(dst: str, dst_port: int, payload: bytes, *, seq: int = 1, src_port: int = 40000) -> bytes:
    ethernet = b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", 0x0800)
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, 0, 5 << 4, 0x18, 512, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, total, 0, 0, 64, 6, 0,
        socket.inet_aton("10.0.0.2"), socket.inet_aton(dst),
    )  # fmt: skip
    # Ethernet pads short frames; the IP total length says where the payload ends.
    return ethernet + ip + tcp + payload + b"\x00" * 6


class TestParseFrame:
    def test_reads_destination_and_payload(self) -> None:
        segment = parse_frame(frame("10.0.0.11", 8000, b"GET /data HTTP/1.1\r\n\r\n"))

        assert segment is not None
        assert (segment.dst_ip, segment.dst_port) == ("10.0.0.11", 8000)
        assert segment.payload == b"GET /data HTTP/1.1\r\n\r\n"

    def test_ignores_bare_acks_and_non_ip(self) -> None:
        assert parse_frame(frame("10.0.0.11", 8000, b"")[:-6]) is None
        assert parse_frame(b"\x00" * 12 + struct.pack("!H", 0x0806) + b"\x00" * 28) is None


class TestCapture:
    def test_counts_requests_per_storage_once_per_segment(self) -> None:
        capture = Capture(targets={"10.0.0.11": "storage1", "10.0.0.12": "storage2"}, port=8000)
        request = frame("10.0.0.11", 8000, b"GET /data HTTP/1.1\r\n\r\n", seq=7)
        for raw in (request, request, frame("10.0.0.11", 8000, b"GET /health HTTP/1.1\r\n\r\n")):
            segment = parse_frame(raw)
            assert segment is not None
            capture.add(segment)

        assert len(capture.data_requests("storage1")) == 1
        assert capture.data_requests("storage2") == []

    def test_ignores_responses_and_other_ports(self) -> None:
        capture = Capture(targets={"10.0.0.11": "storage1"}, port=8000)
        for raw in (
            frame("10.0.0.11", 8000, b"HTTP/1.1 200 OK\r\n\r\n"),
            frame("10.0.0.11", 9000, b"GET /data HTTP/1.1\r\n\r\n"),
        ):
            segment = parse_frame(raw)
            assert segment is not None
            capture.add(segment)

        assert capture.data_requests("storage1") == []
