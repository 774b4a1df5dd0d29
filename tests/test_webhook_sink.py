"""`runpod-testkit webhook-sink` as a user runs it: a child process on a free loopback port that
prints each POST and refuses the first K to each path."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from queue import Empty, Queue

import httpx
import pytest

from runpod_testkit.webhook_receiver import WebhookReceiver, parse_listen_address

SINK = [sys.executable, "-m", "runpod_testkit", "webhook-sink"]
LISTENING = re.compile(r"webhook sink listening on (http://\S+)")


def _lines(process: subprocess.Popen[str]) -> Queue[str]:
    lines: Queue[str] = Queue()
    stdout = process.stdout
    assert stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    return lines


@pytest.mark.slow
def test_webhook_sink_prints_deliveries_and_refuses_the_first_k() -> None:
    process = subprocess.Popen(
        [*SINK, "--port", "0", "--refuse-first", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = _lines(process)
        match = LISTENING.search(lines.get(timeout=20))
        assert match, "no listening line"
        url = match.group(1) + "/hook-a"
        envelope = {"id": "job-1", "status": "COMPLETED", "output": {"x": 1}}
        answers = [httpx.post(url, json=envelope, timeout=5).status_code for _ in range(2)]
        assert answers == [503, 200]
        printed = [json.loads(lines.get(timeout=10)) for _ in range(2)]
        assert [line["answered"] for line in printed] == [503, 200]
        assert all(line["path"] == "/hook-a" and line["body"] == envelope for line in printed)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    try:
        extra = lines.get_nowait()
    except Empty:
        extra = ""
    assert "Traceback" not in extra


def test_a_taken_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from runpod_testkit.cli import main

    with WebhookReceiver() as taken:
        assert main(["webhook-sink", "--port", str(taken.port)]) == 2
    assert "cannot listen on" in capsys.readouterr().err


def test_receiver_names_deliveries_by_their_last_path_segment() -> None:
    receiver = WebhookReceiver(public_url="https://tunnel.example.test/prefix")
    url = receiver.url_for("job-7")
    assert url == "https://tunnel.example.test/prefix/job-7"
    receiver.refuse(url, 1)
    # A tunnel may drop the prefix or keep it: both count for the name.
    assert receiver.receive("/job-7", b"{}") == 503
    assert receiver.receive("/prefix/job-7", b"{}") == 200
    assert [d.answered for d in receiver.deliveries(url)] == [503, 200]
    with pytest.raises(ValueError, match="one path segment"):
        receiver.url_for("a/b")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:9", ("::1", 9)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_listen_addresses_parse(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(value) == expected


@pytest.mark.parametrize("value", ["8080", "host:", ":80", "host:99999", "host:x"])
def test_bad_listen_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen_address(value)
