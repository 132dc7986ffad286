"""The explorer's ASGI app: the page (``GET /``) and the HTTP API (``/api/...``; its description at ``/docs``, a
self-contained page, and ``/openapi.json``)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError

from decoderlens.attribution.occlusion import MAX_WINDOWS
from decoderlens.decoder_head import DecoderHead
from decoderlens.engine import DecoderLens
from decoderlens.errors import DecoderLensError, InputError
from decoderlens.lenses import RAW, Lens
from decoderlens.presentation.attribution_view import attribution_sections
from decoderlens.presentation.report import display_name, grid_sections, render_page, score_views
from decoderlens.serve.batcher import Batcher, Job, QueueFull
from decoderlens.serve.door import BodyTooLarge, Door, allowed_hosts
from decoderlens.serve.limits import ServeLimits
from decoderlens.serve.requests import (
    AttributeRequest,
    GridRequest,
    ReadoutRequest,
    ScoreRequest,
    attribution_of,
    generation_of,
)
from decoderlens.settings import RuntimeSettings
from decoderlens.version import __version__

log = logging.getLogger("decoderlens.serve")


def create_app(lens: DecoderLens, runtime: RuntimeSettings | None = None, limits: ServeLimits | None = None,
               host: str = "127.0.0.1") -> FastAPI:
    """The app over one loaded lens, behind the door (``serve.door``) for requests to ``host``; the batcher's worker
    runs for the app's lifetime."""
    limits = limits or ServeLimits()
    runtime = runtime or RuntimeSettings()
    batcher = Batcher(lens, runtime, limits.max_batch, limits.max_wait_ms, limits.queue_size)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    app = FastAPI(title="decoderlens", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Read out every encoder layer of an encoder-decoder model through its own decoder.")
    app.state.batcher = batcher
    app.state.limits = limits

    app.add_middleware(Door, hosts=allowed_hosts(host, limits.allowed_hosts),  # type: ignore[arg-type]
                       origins={o.rstrip("/").lower() for o in limits.allowed_origins or []},
                       max_body_bytes=limits.max_body_bytes, token=limits.token)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, err: BodyTooLarge) -> JSONResponse:
        return _error(413, f"the request body is over {limits.max_body_bytes:,} bytes")

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def invalid(request: Request, err: RequestValidationError | ValidationError) -> JSONResponse:
        errors = list(err.errors())
        first: dict[str, Any] = dict(errors[0]) if errors else {}
        if first.get("type") == "json_invalid":
            return _error(400, f"malformed JSON: {first.get('ctx', {}).get('error', 'cannot parse the body')}")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if first.get("type") == "extra_forbidden":
            return _error(422, f"unknown field {where!r}: see /docs for the fields of {request.url.path}")
        return _error(422, f"{where or 'body'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(DecoderLensError)
    async def refused(request: Request, err: DecoderLensError) -> JSONResponse:
        return _error(400, str(err))

    @app.exception_handler(QueueFull)
    async def busy(request: Request, err: QueueFull) -> JSONResponse:
        return _error(503, "the server is busy: try again in a moment", {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def crashed(request: Request, err: Exception) -> JSONResponse:
        log.exception("request failed")
        return _error(500, f"internal error ({type(err).__name__}); the server log has the details")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(render_page("explorer", {"title": f"DecoderLens: {display_name(lens.name)}",
                                                          "version": __version__}))

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        """The API description as a page of its own (no external assets: it works offline)."""
        return HTMLResponse(render_page("apidocs", {"title": "decoderlens API", "version": __version__,
                                                    "openapi": app.openapi()}))

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        """The model, its kind of input, its layers and the limits of this server."""
        spec = lens.adapter.spec
        decoder_layers = None
        with contextlib.suppress(DecoderLensError):
            decoder_layers = DecoderHead(lens.model).num_layers
        return {"model": lens.name, "family": spec.model_type, "input": spec.modality,
                "num_encoder_layers": lens.num_layers, "num_decoder_layers": decoder_layers,
                "layers": list(range(lens.num_layers + 1)), "target_language": spec.target_language,
                "speech_prompt": spec.speech_prompt, "lens": lens.lens.name,
                "limits": {"max_inputs": limits.max_inputs, "max_input_chars": limits.max_input_chars,
                           "max_new_tokens": limits.max_new_tokens_limit, "max_body_bytes": limits.max_body_bytes}}

    async def readout_job(request: Request) -> Job:
        """A readout job from a JSON body, or from a multipart upload of audio or images (``files`` and a
        ``settings`` field of the same JSON, without ``inputs``)."""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            try:
                settings = json.loads(str(form.get("settings") or "{}"))
            except json.JSONDecodeError as err:
                raise InputError(f"malformed JSON in the 'settings' field: {err.msg}") from None
            files = form.getlist("files")
            if not files:
                raise InputError("a multipart request needs one or more 'files' (audio or images)")
            items = [await _upload(lens, upload) for upload in files]
            names = [str(getattr(f, "filename", "") or f"upload {i}") for i, f in enumerate(files)]
            body: Any = ReadoutRequest.model_validate({**settings, "inputs": names})
        else:
            try:
                raw = await request.json()
            except json.JSONDecodeError as err:
                raise InputError(f"malformed JSON: {err.msg} at position {err.pos}") from None
            except UnicodeDecodeError:
                raise InputError("the request body is not valid UTF-8") from None
            body = ReadoutRequest.model_validate(raw)
            if lens.adapter.spec.modality != "text":
                raise InputError(f"this {lens.adapter.spec.modality} model takes its inputs as uploads: send audio or "
                                 "images as multipart 'files' (the server never reads paths on its own disk)")
            items, names = list(body.inputs), None
        _check(body.inputs, body.max_new_tokens, limits)  # type: ignore[attr-defined]
        generation = generation_of(body)
        _check_work(lens, generation, len(items), limits)  # also refuses a missing or unknown language, as a 400
        return Job("readout", items, generation, _lens(lens, body.lens), names=names)  # type: ignore[attr-defined]

    @app.post("/api/readout", openapi_extra={"requestBody": {"content": {"application/json": {
        "schema": ReadoutRequest.model_json_schema()}}}})
    async def readout(request: Request) -> dict[str, Any]:
        """Every selected layer's readout of every input: exactly the JSON of ``decoderlens run --format json``."""
        job = await readout_job(request)
        output = await batcher.submit(job)
        return _named(output, job.names).to_dict()  # type: ignore[no-any-return]

    @app.post("/api/readout/stream")
    async def readout_stream(request: Request) -> StreamingResponse:
        """The readout as NDJSON: ``tokens`` events (input, layer, token_ids, text) while decoding runs, then one
        ``done`` event whose ``result`` is the non-streamed answer."""
        job = await readout_job(request)
        job.events = asyncio.Queue()
        task = asyncio.ensure_future(batcher.submit(job))

        async def lines() -> AsyncIterator[str]:
            try:
                while True:
                    if await request.is_disconnected():
                        job.cancelled = True
                        return
                    if task.done() and job.events is not None and job.events.empty():
                        break
                    with contextlib.suppress(asyncio.TimeoutError):
                        event = await asyncio.wait_for(job.events.get(), 0.05)  # type: ignore[union-attr]
                        yield json.dumps(event, ensure_ascii=False) + "\n"
                try:
                    result = _named(task.result(), job.names).to_dict()
                    yield json.dumps({"event": "done", "result": result}, ensure_ascii=False) + "\n"
                except DecoderLensError as err:
                    yield json.dumps({"event": "error", "error": str(err)}) + "\n"
            finally:
                job.cancelled = job.cancelled or not task.done()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/api/score")
    async def score(body: ScoreRequest, view: bool = False) -> dict[str, Any]:  # type: ignore[valid-type]
        """Teacher-forced log-prob, rank, entropy and top-k of each target token at every selected layer
        (``?view=true``: as the pages draw them, the report's payload for each example)."""
        request: Any = body
        _check(request.inputs, None, limits, request.targets)
        if len(request.targets) != len(request.inputs):
            raise InputError(f"got {len(request.inputs)} inputs but {len(request.targets)} targets: give one per "
                             "input")
        generation = generation_of(request)
        lens.select(generation.layers)
        job = Job("score", list(request.inputs), generation, _lens(lens, request.lens), list(request.targets))
        output = await batcher.submit(job)
        return {"examples": score_views(output)} if view else output.to_dict()  # type: ignore[no-any-return]

    @app.post("/api/grid")
    async def grid(body: GridRequest, view: bool = False) -> dict[str, Any]:  # type: ignore[valid-type]
        """The 2-D lens: every encoder layer x decoder layer, for each input's target (``?view=true``: as the pages
        draw it, the sections of ``decoderlens grid --html``)."""
        request: Any = body
        _check(request.inputs, request.max_new_tokens, limits, request.targets)
        generation = generation_of(request)
        if request.targets is None:  # the model's own output is generated first
            _check_work(lens, generation, len(request.inputs), limits)
        lens.select(generation.layers)
        DecoderHead(lens.model)  # refuses unmapped decoders as a 400
        job = Job("grid", list(request.inputs), generation, _lens(lens, request.lens), request.targets)
        output = await batcher.submit(job)
        return {"sections": grid_sections(output)} if view else output.to_dict()  # type: ignore[no-any-return]

    @app.post("/api/attribute")
    async def attribute(body: AttributeRequest, view: bool = False) -> dict[str, Any]:  # type: ignore[valid-type]
        """Where each layer looks: every readout token (or target token) of every selected layer attributed to the
        source positions of that layer's states (``?view=true``: the sections of ``decoderlens attribute
        --html``)."""
        request: Any = body
        _check(request.inputs, request.max_new_tokens, limits, request.targets)
        if request.targets is not None and len(request.targets) != len(request.inputs):
            raise InputError(f"got {len(request.inputs)} inputs but {len(request.targets)} targets: give one per "
                             "input")
        generation, settings = generation_of(request), attribution_of(request)
        factor = {"ig": settings.steps, "occlusion": MAX_WINDOWS}.get(settings.method, 1)
        _check_work(lens, generation, len(request.inputs) * factor, limits)
        job = Job("attribute", list(request.inputs), generation, _lens(lens, request.lens), request.targets,
                  attribution=settings)
        output = await batcher.submit(job)
        return {"sections": attribution_sections(output)} if view else output.to_dict()  # type: ignore[no-any-return]

    return app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _lens(lens: DecoderLens, asked: str | None) -> Lens:
    """The lens a request reads through: raw, tuned (a server started with translators) or the server's default."""
    if asked == "raw":
        return RAW
    if asked == "tuned" and lens.lens is RAW:
        raise InputError("this server has no translators: start it with --translators DIR to read the tuned lens")
    return lens.lens


def _check_work(lens: DecoderLens, generation: Any, inputs: int, limits: ServeLimits) -> None:
    """Refuse a request whose generated tokens (inputs x layers x beams x new tokens) exceed the server's limit
    (attribution counts each input once per pass its method makes: ``steps`` for ig, up to 100 for occlusion)."""
    layers = len(lens.select(generation.layers))
    plan = lens.plan(generation)
    work = inputs * layers * plan.num_beams * plan.max_new_tokens
    if work > limits.max_work:
        raise InputError(f"this request asks for up to {work:,} generated tokens ({inputs} inputs x {layers} layers x "
                         f"{plan.num_beams} beams x {plan.max_new_tokens} new tokens); this server takes at most "
                         f"{limits.max_work:,}: ask for fewer inputs, layers, beams or tokens")


def _check(inputs: list[str], max_new_tokens: int | None, limits: ServeLimits,
           targets: list[str] | None = None) -> None:
    """Refuse requests over the server's limits, and text that is not valid Unicode."""
    for index, text in enumerate([*inputs, *(targets or [])]):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"text #{index} is not valid Unicode (it holds a lone surrogate)") from None
    if len(inputs) > limits.max_inputs:
        raise InputError(f"{len(inputs)} inputs: this server takes at most {limits.max_inputs} inputs per request")
    for text in [*inputs, *(targets or [])]:
        if len(text) > limits.max_input_chars:
            raise InputError(f"an input or target is {len(text):,} characters long; this server takes at most "
                             f"{limits.max_input_chars:,}")
    if max_new_tokens is not None and max_new_tokens > limits.max_new_tokens_limit:
        raise InputError(f"max_new_tokens {max_new_tokens} is over this server's limit of "
                         f"{limits.max_new_tokens_limit}")


def _named(output: Any, names: list[str] | None) -> Any:
    """Uploaded files are named by their file name in the answer, as the command line names files."""
    for example, name in zip(output.examples, names or [], strict=False):
        example.input = name
    return output


async def _upload(lens: DecoderLens, upload: Any) -> Any:
    """An uploaded audio file (decoded to samples) or image (opened), ready for the lens."""
    data = await upload.read()
    name = getattr(upload, "filename", "upload")
    if lens.adapter.spec.modality == "speech":
        import soundfile as sf

        try:
            wave, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as err:  # soundfile raises its own kinds for undecodable bytes
            raise InputError(f"cannot read the audio upload {name!r} ({err}); send a wav/flac/ogg/mp3 file") from None
        if not wave.shape[0]:
            raise InputError(f"the audio upload {name!r} holds no samples")
        return (wave.mean(axis=1), int(rate))
    if lens.adapter.spec.modality == "vision":
        from PIL import Image, UnidentifiedImageError

        try:
            return Image.open(io.BytesIO(data)).convert("RGB")
        except (UnidentifiedImageError, OSError) as err:
            raise InputError(f"cannot read the image upload {name!r} ({err}); send a PNG or JPEG") from None
    raise InputError("this is a text model: send inputs as JSON, not files")
