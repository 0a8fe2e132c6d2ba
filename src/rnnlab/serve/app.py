"""The ASGI app of `rnnlab serve`: the routes of every loaded model, /health, /models, and the
web page at /.

Models are chosen when the app is made: a request names a model only by the name it was given
at start-up, never a file or a run folder. Every error is one line, `{"detail": "..."}`, with a
4xx status for the client's mistakes (400 malformed JSON, 401 token, 404 unknown path, 413 too
large, 422 wrong fields or values) and 503 when a model's queue is full.
"""


import dataclasses
import gc
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from rnnlab import __version__
from rnnlab.errors import RnnlabError
from rnnlab.serve import schemas
from rnnlab.serve.batching import ModelWorker, QueueFull
from rnnlab.serve.limits import ServeLimits
from rnnlab.serve.models import ServedModel
from rnnlab.serve.process import MODEL_WORKERS, start_processes

log = logging.getLogger(__name__)
# One server-sent event (OpenAPI 3.1 reads a stream's `schema` as the schema of each event).
SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["token", "end", "error"]},
    "data": {"type": "string", "description": "a JSON object"}}}
ERRORS = {code: {"model": schemas.ErrorBody} for code in (400, 401, 413, 422, 503)}


_running = 0  # apps of this process between start-up and shutdown (tests run several)


def create_app(models: dict[str, ServedModel], limits: ServeLimits | None = None, *,
               token: str | None = None, cors_origins: Sequence[str] = (),
               model_workers: str = "thread", model_threads: int | None = None) -> FastAPI:
    """The app over `models` (name -> adapter). `token`: require `Authorization: Bearer TOKEN`
    on every model route and /models. `cors_origins`: origins allowed to call from a browser
    (none by default: only the server's own page can). `model_workers`: where each model's
    batches run, "thread" (a thread of this process) or "process" (a child process of its own,
    free of this process's interpreter lock: process.py; `rnnlab serve`'s default; a script
    that asks for it guards its entry point with `if __name__ == "__main__":`, as
    multiprocessing's spawn needs). `model_threads`: torch threads of each model's process
    (default: the cores torch would use, less one for the event loop, shared among the
    models)."""
    if model_workers not in MODEL_WORKERS:
        raise RnnlabError(f"model workers must be one of {', '.join(MODEL_WORKERS)}, got "
                          f"{model_workers!r}")
    limits = limits or ServeLimits()
    processes = (start_processes(models, model_threads or default_model_threads(len(models)))
                 if model_workers == "process" else {})
    workers = {name: ModelWorker(name, processes[name].run_batch if name in processes
                                 else model.run_batch, limits)
               for name, model in models.items()}

    def close() -> None:
        for worker in workers.values():
            worker.close()
        for process in processes.values():
            process.close()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What is loaded by now (torch, the models, FastAPI's routes) lives as long as the
        # server. Left to the cyclic garbage collector, every full collection walks it all and
        # stops every request for ~90 ms, once or twice a second under load (the p99 of
        # micro-batched classify, benchmarks/results/serve_load_s30c.md); frozen, it is skipped.
        global _running
        gc.collect()
        gc.freeze()
        _running += 1
        try:
            yield
        finally:
            _running -= 1
            if _running == 0:  # the last app of this process: leave the collector as it was
                gc.unfreeze()
            close()

    app = FastAPI(title="rnnlab", version=__version__, lifespan=lifespan,
                  description="Trained rnnlab runs: classify, tag, translate, sample and score. "
                              "Models are chosen when the server starts; see /models.")
    app.state.models, app.state.workers, app.state.limits, app.state.close = (
        models, workers, limits, close)
    app.state.processes = processes
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    guard = [Depends(_bearer(token))] if token else []

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        html = resources.files("rnnlab.serve").joinpath("static/index.html")
        return HTMLResponse(html.read_text(encoding="utf-8"))

    @app.get("/health", response_model=schemas.Health, tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness: the server answers and which models it holds (no token needed)."""
        return {"status": "ok", "version": __version__, "models": list(models)}

    @app.get("/models", dependencies=guard, tags=["server"], responses=ERRORS)
    def list_models() -> dict[str, Any]:
        """Each model's task, corpus, dev metric with its signature, endpoints, and the
        server's limits."""
        return {"models": [model.describe() for model in models.values()],
                "limits": dataclasses.asdict(limits)}

    bodies = schemas.request_models(limits)
    for name, model in models.items():
        for action in model.actions:
            ROUTES[action](app, name, model, workers[name], bodies, guard)
    return app


def default_model_threads(models: int) -> int:
    """Torch threads per model process: torch's own default (the physical cores) less one core
    for the event loop, shared among the models. A model's threads spinning on the core the
    event loop needs cost more than they compute: on 2 cores, one SST-2 model at 2 threads
    answered 1,440-1,466 req/s at 32 clients, at 1 thread 2,040-2,136."""
    import torch

    return max(1, (torch.get_num_threads() - 1) // max(models, 1))


# -- routes per task ---------------------------------------------------------------------------


def _add_classify(app: FastAPI, name: str, model: Any, worker: ModelWorker, bodies: Any,
                  guard: list) -> None:
    @app.post(f"/models/{name}/classify", response_model=schemas.ClassifyResponse,
              operation_id=f"{name}_classify", tags=[name], dependencies=guard,
              responses=ERRORS, response_model_exclude_none=True)
    async def classify(body: bodies.classify) -> dict[str, Any]:  # type: ignore[name-defined]
        """Label, class probabilities and (with attention pooling) each word's weight, as
        `rnnlab predict --format json`."""
        return {"predictions": await worker.submit(None, body.texts)}


def _add_tag(app: FastAPI, name: str, model: Any, worker: ModelWorker, bodies: Any,
             guard: list) -> None:
    @app.post(f"/models/{name}/tag", response_model=schemas.TagResponse,
              operation_id=f"{name}_tag", tags=[name], dependencies=guard, responses=ERRORS,
              response_model_exclude_none=True)
    async def tag(body: bodies.tag) -> dict[str, Any]:  # type: ignore[name-defined]
        """Tags of each whitespace-tokenized sentence, as `rnnlab tag --format json`, and its
        entities with word and character spans."""
        return {"sentences": await worker.submit(body.output_scheme, body.sentences)}


def _add_translate(app: FastAPI, name: str, model: Any, worker: ModelWorker, bodies: Any,
                   guard: list) -> None:
    @app.post(f"/models/{name}/translate", response_model=schemas.TranslateResponse,
              operation_id=f"{name}_translate", tags=[name], dependencies=guard,
              responses=ERRORS)
    async def translate(body: bodies.translate) -> dict[str, Any]:  # type: ignore[name-defined]
        """Translation of each line with its log-probability and attention (one row per output
        token), as `rnnlab translate --format json`, and the n best of the beam."""
        config = model.run.config
        beam = config.beam if body.beam is None else body.beam
        # a beam of k keeps at most k hypotheses: n_best asks for "up to n"
        key = (beam, config.alpha if body.alpha is None else body.alpha, min(body.n_best, beam))
        return {"translations": await worker.submit(key, body.texts)}


def _add_score(app: FastAPI, name: str, model: Any, worker: ModelWorker, bodies: Any,
               guard: list) -> None:
    @app.post(f"/models/{name}/score", response_model=schemas.ScoreResponse,
              operation_id=f"{name}_score", tags=[name], dependencies=guard, responses=ERRORS)
    async def score(body: bodies.score) -> dict[str, Any]:  # type: ignore[name-defined]
        """Log-probability, perplexity and each token's log-probability, as `rnnlab score
        --format json --verbose`."""
        return {"scores": await worker.submit(None, body.texts)}


def _add_sample(app: FastAPI, name: str, model: Any, worker: ModelWorker, bodies: Any,
                guard: list) -> None:
    stream_doc = {200: {"description": "server-sent events: `token` ({\"text\"}) per token, "
                                       "then `end` ({\"tokens\", \"seconds\"}) or `error` "
                                       "({\"detail\"})",
                        "content": {"text/event-stream": {"schema": SSE_EVENT}}}}

    @app.post(f"/models/{name}/sample", response_class=StreamingResponse,
              operation_id=f"{name}_sample", tags=[name], dependencies=guard,
              responses={**ERRORS, **stream_doc})
    async def sample(body: bodies.sample) -> StreamingResponse:  # type: ignore[name-defined]
        """Generate text token by token, streamed as server-sent events (the prime is not
        repeated), as `rnnlab sample`."""
        options = {"seed": body.seed, "temperature": body.temperature, "top_k": body.top_k,
                   "top_p": body.top_p, "greedy": body.greedy}
        pieces = worker.open_stream(lambda: model.sample(body.prime, body.length, **options))
        return StreamingResponse(_events(pieces), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})


ROUTES: dict[str, Callable[..., None]] = {
    "classify": _add_classify, "tag": _add_tag, "translate": _add_translate,
    "score": _add_score, "sample": _add_sample,
}


async def _events(pieces: AsyncIterator[str]) -> AsyncIterator[str]:
    """Server-sent events (the WHATWG `text/event-stream` format) of a sample."""
    started, count = time.perf_counter(), 0
    try:
        async for piece in pieces:
            count += 1
            yield _event("token", {"text": piece})
    except RnnlabError as err:
        yield _event("error", {"detail": str(err)})
        return
    except Exception:  # noqa: BLE001 - the status is sent already: say it in the stream
        log.exception("sampling failed")
        yield _event("error", {"detail": "internal error while sampling"})
        return
    yield _event("end", {"tokens": count, "seconds": round(time.perf_counter() - started, 4)})


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


# -- security and errors -----------------------------------------------------------------------


def _bearer(token: str) -> Callable[..., None]:
    scheme = HTTPBearer(auto_error=False, description="the server's --token")

    def require(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                      Depends(scheme)]) -> None:
        # compare_digest: the time taken does not tell how much of a guess was right
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(),
                                                          token.encode()):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer "
                                     "TOKEN)", headers={"WWW-Authenticate": "Bearer"})

    return require


def _one_line(errors: Sequence[Any]) -> tuple[int, str]:
    """Pydantic's list of errors as one line; malformed JSON is a 400, wrong fields a 422."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        return 400, f"malformed JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return 422, f"{where}: {first.get('msg')}{more}"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        status, detail = _one_line(err.errors())
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(err.detail)}, status_code=err.status_code,
                            headers=getattr(err, "headers", None))

    @app.exception_handler(RnnlabError)
    async def refused(request: Request, err: RnnlabError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(QueueFull)
    async def busy(request: Request, err: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def crashed(request: Request, err: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse({"detail": f"internal error: {type(err).__name__}"},
                            status_code=500)


class BodyLimit:
    """Refuse (413) a request body over `max_bytes`, by its Content-Length or, for a chunked
    body, as soon as the bytes read pass the limit, so a huge body is never held in memory."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await JSONResponse({"detail": f"request body over {self.max_bytes} bytes"},
                               status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)
