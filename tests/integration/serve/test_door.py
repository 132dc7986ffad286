"""The server as a door: hostile pages, rebinding hosts, foreign bodies and requests that ask too much are refused
with one line, before any work; the server's own page and clients on this machine still get in."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from decoderlens import DecoderLens
from decoderlens.cli.app import app as cli
from decoderlens.logic import shipped_model_path
from decoderlens.serve.door import allowed_hosts, host_name
from decoderlens.testing import sample_waveforms, tiny_model, tiny_processor
from support.serving import serving


@pytest.fixture(scope="module")
def server(logic_lens: DecoderLens) -> Iterator[str]:
    with serving(logic_lens, max_body_bytes=5000, max_work=2000,
                 allowed_origins=["http://notebook.example:8888"]) as (url, _):
        yield url


def _post(url: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}{path}", timeout=60, **kwargs)


@pytest.mark.parametrize(("headers", "status", "message"), [
    ({"Host": "evil.example"}, 403, "answers requests for"),
    ({"Host": "evil.example:8000"}, 403, "not evil.example"),
    ({"Origin": "http://evil.example"}, 403, "requests from the page at http://evil.example are refused"),
    ({"Origin": "null"}, 403, "requests from the page at null are refused"),
    ({"Content-Type": "text/plain"}, 415, "application/json"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "not application/x-www-form-urlencoded"),
])
def test_foreign_hosts_origins_and_bodies_are_refused(server: str, headers: dict[str, str], status: int,
                                                      message: str) -> None:
    body = json.dumps({"inputs": ["& a b"]})
    response = _post(server, "/api/readout", content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status and message in response.json()["error"], response.text


def test_the_servers_own_origin_and_allowed_origins_get_in(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    for origin in (f"http://127.0.0.1:{port}", "http://notebook.example:8888"):
        response = _post(server, "/api/readout", json={"inputs": ["& a b"], "max_new_tokens": 4},
                         headers={"Origin": origin})
        assert response.status_code == 200, (origin, response.text)
    assert httpx.get(f"http://localhost:{port}/api/info", timeout=30).status_code == 200


def test_a_chunked_body_is_bounded_like_any_other(server: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": ["'
        for _ in range(400):  # 400 KB against a limit of 5,000 bytes, without a Content-Length
            yield b"a" * 1000
        yield b'"]}'

    response = _post(server, "/api/readout", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "over 5,000 bytes" in response.json()["error"]
    score = _post(server, "/api/score", content=chunks(), headers={"Content-Type": "application/json"})
    assert score.status_code == 413


@pytest.mark.parametrize(("body", "message"), [
    ('{"inputs": ["\\ud800 a"]}', "not valid Unicode"),
    (b'{"inputs": ["\xff\xfe"]}', "not valid UTF-8"),
    ('{"inputs": ["& a b"], "layers": []}', "selects no layer"),
    ('{"inputs": ["& a b"], "layers": true}', "layers"),
    ('{"inputs": ["& a b"], "layers": [true]}', "selects no layer"),
    ('{"inputs": ["& a b"], "max_new_tokens": true}', "max_new_tokens"),
    ('{"inputs": ["& a b"], "num_beams": 1.5}', "num_beams"),
    ('{"inputs": ["& a b"], "num_beams": 64, "max_new_tokens": 32}', "generated tokens"),
    ('{"inputs": ["& a b", "| c d", "! e", "& a c"], "max_new_tokens": 32, "num_beams": 4}', "at most 2,000"),
])
def test_request_values_are_checked_with_the_clis_rules(server: str, body: str | bytes, message: str) -> None:
    content = body.encode() if isinstance(body, str) else body
    response = _post(server, "/api/readout", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422) and message in response.json()["error"], response.text


@pytest.mark.parametrize(("body", "message"), [
    ({"inputs": ["& a b"], "targets": ["a 1"], "top_k": 0}, "top_k (--top-k) must be a whole number of at least 1"),
    ({"inputs": ["& a b"], "targets": ["a 1"], "top_k": -1}, "top_k (--top-k) must be a whole number of at least 1"),
    ({"inputs": ["& a b"], "targets": ["a 1"], "top_k": True}, "top_k"),
    ({"inputs": ["& a b"], "targets": ["\ud800"]}, "not valid Unicode"),
])
def test_score_values_are_checked_too(server: str, body: dict[str, Any], message: str) -> None:
    response = _post(server, "/api/score", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422) and message in response.json()["error"], response.text


def test_a_speech_server_never_reads_a_path_from_a_request(tmp_path: Path) -> None:
    import soundfile as sf

    lens = DecoderLens(tiny_model("whisper"), tiny_processor("whisper"), name="tiny-whisper")
    clip = tmp_path / "secret.wav"
    sf.write(clip, sample_waveforms(1)[0], 16000)
    with serving(lens) as (url, _):
        for path in (str(clip), str(tmp_path / "missing.wav"), "/etc/passwd"):
            response = _post(url, "/api/readout", json={"inputs": [path], "language": "en"})
            assert response.status_code == 400, response.text
            assert "never reads paths" in response.json()["error"] and path not in response.json()["error"]


def test_host_names() -> None:
    assert host_name("LOCALHOST:8000") == "localhost" and host_name("[::1]:8000") == "::1"
    assert host_name("::1") == "::1" and host_name("127.0.0.1") == "127.0.0.1"
    assert allowed_hosts("0.0.0.0", None) == {"127.0.0.1", "localhost", "::1"}
    assert "box.lan" in allowed_hosts("0.0.0.0", ["box.lan:9000"])


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "70000"], "port (--port) must be a number from 0 to 65535"),
    (["--port", "-1"], "port (--port) must be a number from 0 to 65535"),
    (["--token", ""], "token (--token) must not be empty"),
    (["--token", "   "], "token (--token) must not be empty"),
    (["--max-work", "0"], "max_work (--max-work) must be a whole number of at least 1"),
    (["--max-wait-ms", "nan"], "max_wait_ms (--max-wait-ms) must be a finite number"),
    (["--allow-origin", "evil"], "must look like http://host:port"),
    (["--host", "0.0.0.0"], "--token"),
])
def test_serve_options_are_checked_before_the_model_loads(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "/no/such/model", *args])
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_a_port_in_use_is_said_before_the_model_loads() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "/no/such/model", "--port", str(port)])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr


def test_sigterm_with_work_in_flight_stops_within_the_grace_period(tmp_path: Path) -> None:
    """A real ``decoderlens serve`` process on a free port: a long request is running when SIGTERM arrives, and
    the process ends within the grace period (plus start-up slack), not when the request would have finished."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import threading
    import time

    from decoderlens.cli.serve import GRACE_SECONDS

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "decoderlens", "serve", str(shipped_model_path()), "--port", "0",
                             "--max-work", "10000000", "--max-inputs", "64"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"on http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}"
        body = {"inputs": ["& a | b ! c xor d e"] * 64, "num_beams": 32, "max_new_tokens": 80, "layers": "all"}
        answers: list[Any] = []

        def ask() -> None:
            try:
                answers.append(httpx.post(f"{url}/api/readout", json=body, timeout=120).status_code)
            except httpx.HTTPError as err:
                answers.append(type(err).__name__)

        client = threading.Thread(target=ask)
        client.start()
        time.sleep(2.0)  # the request is being decoded
        assert not answers, "the long request finished too soon to test anything"
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=GRACE_SECONDS + 20)
        assert time.monotonic() - stopped < GRACE_SECONDS + 10
        client.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
