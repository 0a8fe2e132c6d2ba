"""A fuzz pass over the OpenAPI description (schemathesis): generated requests, valid and not,
to every operation; none may get a 5xx, and answers must match the documented schemas."""

from __future__ import annotations

import pytest
import schemathesis
import torch
from hypothesis import HealthCheck, settings

from rnnlab.serve.app import create_app
from rnnlab.serve.limits import ServeLimits

# Small limits keep each generated request cheap (a 1000-token sample of a tiny LM still takes
# a moment); the fuzz pass is about what the server accepts, not about how much.
LIMITS = ServeLimits(max_items=4, max_text_chars=200, max_sample_length=20, max_beam=3)


@pytest.fixture(scope="module")
def api_schema(models):
    torch.set_num_threads(1)
    app = create_app(models, LIMITS)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.close()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_answers_match_the_schema(case):
    case.call_and_validate()
