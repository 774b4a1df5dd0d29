"""The request side of the bare HTTP/1.1 servers that child processes of the load-suite tests run
(gevent StreamServers answering from a script, where a real framework would hide what was sent):
keep-alive connections, bodies sized by Content-Length.

    def serve(sock, _address):
        for head, body in requests_on(sock):
            sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n")
"""

from __future__ import annotations

import socket
from collections.abc import Iterator


def requests_on(sock: socket.socket) -> Iterator[tuple[bytes, bytes]]:
    """(head, body) of each request on `sock` until the client closes it; the head is the
    request line and headers, without the blank line that ends them."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(data) < length:
            data += sock.recv(65536)
        body, data = data[:length], data[length:]
        yield head, body
