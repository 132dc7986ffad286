"""The live explorer: a real server on an ephemeral port of 127.0.0.1, bounded requests, stopped by each test's
fixture. Answers equal the command line's, streams end in the same answer, concurrent requests are batched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from decoderlens import DecoderLens
from decoderlens.cli.app import app as cli
from decoderlens.logic import shipped_model_path
from decoderlens.testing import sample_waveforms, tiny_model, tiny_processor
from support.browser import needs_browser, open_url
from support.serving import serving

FORMULAS = ["& a b", "| ! c d", "xor a <-> b c", "! ! e", "& | a b ! c", "<-> d e", "| a | b c", "& ! a ! b"]


@pytest.fixture(scope="module")
def server(logic_lens: DecoderLens) -> Iterator[tuple[str, Any]]:
    with serving(logic_lens, max_wait_ms=40.0, max_inputs=8, max_input_chars=200, max_new_tokens_limit=32,
                 max_body_bytes=5000) as running:
        yield running


def _post_json(url: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{url}{path}", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def cli_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["run", str(shipped_model_path()), *args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_info_and_readout_equal_the_command_line(server: tuple[str, Any]) -> None:
    url, _ = server
    info = httpx.get(f"{url}/api/info").json()
    assert info["num_encoder_layers"] == 6 and info["input"] == "text" and info["lens"] == "raw"
    answer = httpx.post(f"{url}/api/readout", json={"inputs": FORMULAS[:3]}, timeout=60)
    assert answer.status_code == 200
    assert answer.json() == cli_json(*FORMULAS[:3])
    some = httpx.post(f"{url}/api/readout", json={"inputs": FORMULAS[3:4], "layers": "0,-1", "max_new_tokens": 5},
                      timeout=60).json()
    assert some == cli_json(FORMULAS[3], "--layers", "0,-1", "--max-new-tokens", "5")
    assert "openapi" in httpx.get(f"{url}/openapi.json").json()


def test_the_stream_ends_in_the_same_answer(server: tuple[str, Any]) -> None:
    url, _ = server
    with httpx.stream("POST", f"{url}/api/readout/stream", json={"inputs": FORMULAS[:2]}, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert events[-1]["event"] == "done" and sum(e["event"] == "tokens" for e in events) > 7
    final = events[-1]["result"]
    assert final == httpx.post(f"{url}/api/readout", json={"inputs": FORMULAS[:2]}, timeout=60).json()
    last: dict[tuple[int, int], list[int]] = {}
    for event in events[:-1]:
        key = (event["input"], event["layer"])
        assert event["token_ids"][: len(last.get(key, []))] == last.get(key, [])  # tokens only grow
        last[key] = event["token_ids"]
    for (index, layer), ids in last.items():
        assert final["examples"][index]["readouts"][layer]["token_ids"] == ids


def test_concurrent_clients_are_batched_and_answered_exactly(server: tuple[str, Any]) -> None:
    url, application = server
    alone = {f: httpx.post(f"{url}/api/readout", json={"inputs": [f]}, timeout=60).json() for f in FORMULAS}
    stats = application.state.batcher.stats
    calls, requests = stats.engine_calls, stats.requests

    def ask(formula: str) -> dict[str, Any]:
        return httpx.post(f"{url}/api/readout", json={"inputs": [formula]}, timeout=60).json()  # type: ignore[no-any-return]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, FORMULAS))
    assert answers == [alone[f] for f in FORMULAS]
    assert stats.requests - requests == 8 and stats.engine_calls - calls < 8, "no two requests were batched"
    assert stats.largest_batch > 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [(b"{not json", 400, "malformed JSON"),
     ({"inputs": ["& a b"], "colour": "red"}, 422, "unknown field 'colour'"),
     ({"inputs": []}, 422, "inputs"),
     ({"inputs": ["& a b"], "layers": "9"}, 400, "layer 9 does not exist"),
     ({"inputs": ["& a b"], "layers": "a:b"}, 400, "cannot parse layer selection"),
     ({"inputs": ["& a b"], "tgt_lang": "de"}, 400, "take no target language"),
     ({"inputs": ["& a b"], "language": "en"}, 400, "Whisper-style speech models only"),
     ({"inputs": ["& a b"], "num_beams": 0}, 400, "num_beams (--num-beams)"),
     ({"inputs": ["& a b"] * 9}, 400, "at most 8 inputs per request"),
     ({"inputs": ["a " * 150]}, 400, "at most 200"),
     ({"inputs": ["& a b"], "max_new_tokens": 99}, 400, "over this server's limit of 32"),
     ({"inputs": ["   "]}, 400, "input #0 is empty"),
     ({"inputs": ["& a b"], "lens": "tuned"}, 400, "no translators"),
     ({"inputs": ["& a b"], "token_scores": "yes"}, 422, "token_scores"),
     ({"inputs": ["& a b"], "token_scores": 1}, 422, "token_scores"),
     ({"inputs": ["x" * 190] * 30}, 413, "over 5,000 bytes")],
)
def test_bad_requests_get_a_4xx_with_one_line(server: tuple[str, Any], body: Any, status: int, message: str) -> None:
    url, _ = server
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {
        "json": body}
    response = httpx.post(f"{url}/api/readout", timeout=60, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error


def test_score_grid_and_files_to_a_text_model(server: tuple[str, Any], logic_lens: DecoderLens) -> None:
    url, _ = server
    score = httpx.post(f"{url}/api/score", json={"inputs": ["& a b"], "targets": ["a 1 b 1 c 0 d 0 e 0"],
                                                 "top_k": 3}, timeout=60)
    assert score.status_code == 200
    assert score.json() == json.loads(logic_lens.score(["& a b"], ["a 1 b 1 c 0 d 0 e 0"], top_k=3).to_json())
    grid = httpx.post(f"{url}/api/grid", json={"inputs": ["& a b"], "layers": "0,-1"}, timeout=60)
    assert grid.status_code == 200
    assert grid.json() == json.loads(logic_lens.grid(["& a b"], layers="0,-1").to_json())
    assert len(grid.json()["examples"][0]["cells"]) == 2 * 6
    from decoderlens.presentation.report import grid_sections, score_views

    views = _post_json(url, "/api/score?view=true", {"inputs": ["& a b"], "targets": ["a 1 b 1 c 0 d 0 e 0"]})
    assert views == {"examples": score_views(logic_lens.score(["& a b"], ["a 1 b 1 c 0 d 0 e 0"]))}
    sections = _post_json(url, "/api/grid?view=true", {"inputs": ["& a b"], "layers": "0,-1"})
    assert sections == json.loads(json.dumps({"sections": grid_sections(logic_lens.grid(["& a b"], layers="0,-1"))}))
    files = httpx.post(f"{url}/api/readout", files={"files": ("a.wav", b"RIFF")}, timeout=60)
    assert files.status_code == 400 and "text model" in files.json()["error"]
    mismatch = httpx.post(f"{url}/api/score", json={"inputs": ["& a b"], "targets": ["a 1", "b 1"]}, timeout=60)
    assert mismatch.status_code == 400 and "one per input" in mismatch.json()["error"]


def test_attribution_equals_the_library_and_bad_requests_say_why(server: tuple[str, Any],
                                                                 logic_lens: DecoderLens) -> None:
    url, _ = server
    body = {"inputs": ["& a b"], "layers": "0,-1", "method": "ig", "steps": 4}
    answer = _post_json(url, "/api/attribute", body)
    assert answer == json.loads(logic_lens.attribute(["& a b"], layers="0,-1", method="ig", steps=4).to_json())
    from decoderlens.presentation.attribution_view import attribution_sections

    sections = _post_json(url, "/api/attribute?view=true", {**body, "targets": ["a 1 b 1"]})
    expected = attribution_sections(logic_lens.attribute(["& a b"], layers="0,-1", method="ig", steps=4,
                                                         target=["a 1 b 1"]))
    assert sections == json.loads(json.dumps({"sections": expected}))
    for bad, message in [({"method": "shap"}, "method (--method) must be one of"),
                         ({"steps": 0}, "steps (--steps) must be"), ({"baseline": "noise"}, "baseline"),
                         ({"occlusion_window": 0}, "occlusion_window"), ({"targets": ["a", "b"]}, "one per input"),
                         ({"targets": ["  "]}, "is empty"), ({"layers": "9"}, "layer 9 does not exist"),
                         ({"steps": "4"}, "steps"), ({"path": "/etc/passwd"}, "unknown field 'path'"),
                         ({"method": "ig", "steps": 10_000, "max_new_tokens": 32}, "this server takes at most")]:
        response = httpx.post(f"{url}/api/attribute", json={"inputs": ["& a b"], **bad}, timeout=60)
        assert response.status_code in (400, 422), (bad, response.text)
        assert message in response.json()["error"], (bad, response.text)


def test_a_full_queue_answers_503_with_retry_after(logic_lens: DecoderLens) -> None:
    with serving(logic_lens, queue_size=0) as (url, _):
        response = httpx.post(f"{url}/api/readout", json={"inputs": ["& a b"]}, timeout=60)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


def test_the_token_is_enforced(logic_lens: DecoderLens) -> None:
    with serving(logic_lens, token="s3cret") as (url, _):
        assert httpx.get(f"{url}/api/info").status_code == 401
        assert httpx.get(f"{url}/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(f"{url}/api/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    refused = CliRunner().invoke(cli, ["serve", str(shipped_model_path()), "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "--token" in refused.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--max-batch", "0"], "max_batch (--max-batch) must be a whole number of at least 1, got 0"),
    (["--queue-size", "0"], "queue_size (--queue-size) must be a whole number of at least 1, got 0"),
    (["--max-wait-ms", "-5"], "max_wait_ms (--max-wait-ms) must be a number of at least 0"),
])
def test_server_limits_are_checked_before_loading(args: list[str], message: str) -> None:
    refused = CliRunner().invoke(cli, ["serve", "/no/such/folder", *args])
    assert refused.exit_code == 2 and message in refused.stderr and "Traceback" not in refused.stderr


def test_audio_uploads(tmp_path: Path) -> None:
    import soundfile as sf

    lens = DecoderLens(tiny_model("whisper"), tiny_processor("whisper"), name="tiny-whisper")
    path = tmp_path / "clip.wav"
    wave = sample_waveforms(1, seed=2)[0]
    sf.write(path, wave, 16000)
    with serving(lens) as (url, _):
        ok = httpx.post(f"{url}/api/readout", files={"files": ("clip.wav", path.read_bytes())},
                        data={"settings": json.dumps({"max_new_tokens": 4, "language": "en"})}, timeout=60)
        broken = httpx.post(f"{url}/api/readout", files={"files": ("bad.wav", b"RIFF0000WAVEjunk")}, timeout=60)
        settings = httpx.post(f"{url}/api/readout", files={"files": ("clip.wav", path.read_bytes())},
                              data={"settings": "{oops"}, timeout=60)
    assert ok.status_code == 200, ok.text
    expected = lens.generate([str(path)], max_new_tokens=4, language="en")
    assert ok.json()["examples"][0]["readouts"] == expected.to_dict()["examples"][0]["readouts"]
    assert ok.json()["examples"][0]["input"] == "clip.wav"
    assert broken.status_code == 400 and "cannot read the audio upload 'bad.wav'" in broken.json()["error"]
    assert settings.status_code == 400 and "malformed JSON" in settings.json()["error"]


def test_a_reader_that_leaves_stops_its_rows(logic_lens: DecoderLens) -> None:
    class Leaves:
        def __init__(self) -> None:
            self.seen: dict[int, int] = {}

        def tokens(self, item: int, layer: int, token_ids: list[int]) -> None:
            self.seen[item] = max(self.seen.get(item, 0), len(token_ids))

        def cancelled(self, item: int) -> bool:
            return item == 0 and self.seen.get(0, 0) >= 2

    watcher = Leaves()
    out = logic_lens.generate(FORMULAS[:2], watcher=watcher)
    alone = logic_lens.generate(FORMULAS[1:2])
    assert all(len(r.token_ids) <= 3 for r in out[0].readouts), "the left reader's rows ran on"
    assert out[1].readouts == alone[0].readouts


@needs_browser
def test_the_page_in_a_real_browser(server: tuple[str, Any], tmp_path: Path) -> None:
    url, _ = server
    manager, browser, page, errors, requests = open_url(f"{url}/", wait_for="#subtitle:has-text('encoder layers')")
    try:
        page.fill("#inputs", "& a | b ! c")
        page.press("#inputs", "Control+Enter")
        page.wait_for_selector("#status:has-text('done')", timeout=60_000)
        rows = page.locator("article.example table.grid tr[data-layer]")
        assert rows.count() == 7
        top = page.locator("article.example tr.top td.readout").inner_text()
        expected = cli_json("& a | b ! c")["examples"][0]["readouts"][-1]["text"]
        assert top.split() == expected.split()
        page.select_option("#colouring", "probability")  # every readout token shaded by its probability
        shaded = page.locator("article.example tr.top td.readout .tok.shade")
        assert shaded.count() == len(cli_json("& a | b ! c")["examples"][0]["readouts"][-1]["token_ids"])
        assert shaded.first.get_attribute("title").startswith("p = ")
        page.select_option("#colouring", "entropy")
        assert "entropy" in page.locator("article.example tr.top .tok.shade").first.get_attribute("title")
        page.fill("#target", expected)
        page.click("#score")
        page.wait_for_selector("#extras .heat table")
        shown = page.locator("#extras .heat table tr").count()
        assert shown == 1 + 7, "the score heatmap has a row per layer under its header"
        page.select_option("#colouring", "rank")  # the scored target's tokens, shaded by each layer's rank
        assert "ranked" in page.locator("article.example tr.top .tok.shade").first.get_attribute("title")
        page.click("#grid")
        page.wait_for_selector("#extras table.heatmap")
        assert page.locator("#extras section.analysis-section").count() == 1  # the grid --html page's section
        page.select_option("#method", "occlusion")
        page.click("#attribute")
        page.wait_for_selector("#extras .attribution-row button")
        page.locator(".attribution-row").nth(6).locator("button").first.click()  # a token of the top layer
        assert "Layer 6" in page.locator(".attribution-focus h3").inner_text()
        positions = len(["&", "a", "|", "b", "!", "c"]) + 1  # and </s>
        assert page.locator(".attribution-focus rect").count() == 7 * positions, "the target's token at every layer"
        page.screenshot(path=str(tmp_path / "explorer.png"))
        assert errors == []
        assert all(r.startswith(url) for r in requests), requests
    finally:
        browser.close()
        manager.stop()


@needs_browser
def test_the_api_description_page_works_offline(server: tuple[str, Any]) -> None:
    url, _ = server
    manager, browser, page, errors, requests = open_url(f"{url}/docs", wait_for=".route")
    try:
        routes = page.locator(".route h3").all_inner_texts()
        assert any("POST /api/readout" in r for r in routes) and any("GET /api/info" in r for r in routes)
        assert "max_new_tokens" in page.locator("#routes").inner_text()  # request fields are listed
        assert errors == []
        assert all(r.startswith(url) for r in requests), requests  # no CDN: nothing outside this server
    finally:
        browser.close()
        manager.stop()
