"""See what the gateway sends to each storage service, on the gateway's network interface.

Some promises are only visible between the gateway and a storage service: that a failed
service stops receiving requests, that a request id reaches the storage service. The harness
watches the host side of the gateway container's veth with a raw packet socket (needs root on
the Docker host) and records the HTTP requests sent to each storage address.
"""

import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
IPPROTO_TCP = 6


@dataclass(frozen=True)
class Segment:
    dst_ip: str
    dst_port: int
    src: tuple[str, int]
    seq: int
    payload: bytes


def parse_frame(frame: bytes) -> Segment | None:
    """An Ethernet frame carrying IPv4/TCP with a payload, else None."""
    if len(frame) < 14 + 20 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    total_length = struct.unpack("!H", ip[2:4])[0]
    if ip[9] != IPPROTO_TCP or len(ip) < ihl + 20:
        return None
    tcp = ip[ihl:total_length]
    src_port, dst_port, seq = struct.unpack("!HHI", tcp[:8])
    data_offset = (tcp[12] >> 4) * 4
    payload = tcp[data_offset:]
    if not payload:
        return None
    return Segment(
        dst_ip=socket.inet_ntoa(ip[16:20]),
        dst_port=dst_port,
        src=(socket.inet_ntoa(ip[12:16]), src_port),
        seq=seq,
        payload=bytes(payload),
    )


@dataclass
class Capture:
    """HTTP requests seen going to each watched address, de-duplicated per TCP segment."""

    targets: dict[str, str]
    port: int
    requests: dict[str, list[bytes]] = field(default_factory=dict)
    _seen: set[tuple[tuple[str, int], int]] = field(default_factory=set)

    def add(self, segment: Segment) -> None:
        name = self.targets.get(segment.dst_ip)
        if name is None or segment.dst_port != self.port:
            return
        key = (segment.src, segment.seq)
        if key in self._seen or not segment.payload[:8].split(b" ")[0].isalpha():
            return
        self._seen.add(key)
        self.requests.setdefault(name, []).append(segment.payload)

    def data_requests(self, name: str) -> list[bytes]:
        """The `GET /data` / `HEAD /data` requests sent to one storage service."""
        return [
            r for r in self.requests.get(name, []) if r.startswith((b"GET /data ", b"HEAD /data "))
        ]


class Wire:
    """`with Wire(...) as capture:` records until the block ends."""

    def __init__(self, interface: str, targets: dict[str, str], port: int) -> None:
        self.interface = interface
        self.capture = Capture(targets=targets, port=port)
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self._sock.bind((interface, 0))
        self._sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._run, name=f"wire-{interface}", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                frame = self._sock.recv(65535)
            except TimeoutError:
                # Stop only once the socket is idle, so frames already queued are counted.
                if self._stop.is_set():
                    return
                continue
            except OSError:
                return
            segment = parse_frame(frame)
            if segment is not None:
                self.capture.add(segment)

    def __enter__(self) -> Capture:
        self._thread.start()
        return self.capture

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
