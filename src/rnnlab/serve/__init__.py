"""`rnnlab serve`: trained runs behind an HTTP API (FastAPI on uvicorn) and one web page.

    models.py    one adapter per task: a run read back, its batched inference, its /models entry
    batching.py  a worker thread per model that gathers concurrent requests into micro-batches
    schemas.py   request and response bodies (pydantic), with the limits of ServeLimits
    app.py       the ASGI app: routes per model, errors as one line, token, body size, CORS
    static/      index.html, the web page (no build step)
"""

from rnnlab.serve.limits import ServeLimits

__all__ = ["ServeLimits", "create_app", "load_models"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: fastapi is the optional [serve] extra
    if name == "create_app":
        from rnnlab.serve.app import create_app

        return create_app
    if name == "load_models":
        from rnnlab.serve.models import load_models

        return load_models
    raise AttributeError(name)
