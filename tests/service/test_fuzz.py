"""Fuzzing the HTTP API from its own OpenAPI schema: no request gets a 5xx.

Schemathesis generates requests for every operation in ``/openapi.json`` (valid ones, and
invalid ones that break the schema: bodies, query strings and paths) and sends them in-process
to the session's app (on the registry fake) with an admin key, so they reach the deepest code
paths. The only check is "not a server error": a hostile or confused caller must always get a
2xx/4xx that says what is wrong. The number of examples is bounded so the test stays a test;
promotion is left out because it moves aliases in the real registry (it is covered there by
tests/service/test_promote.py and test_people.py).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES_PER_OPERATION = 60  # valid and invalid mixed
SKIPPED = ("/promote",)  # moves aliases in the real registry


def test_no_request_gets_a_server_error(served: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", served.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    headers = served.auth("admin")
    tried = 0
    for operation in operations:
        if operation.path.endswith(SKIPPED):
            continue

        @given(
            case=st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE),
                operation.as_strategy(GenerationMode.NEGATIVE),
            )
        )
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        run()
        tried += 1
    assert tried == len(operations) - 1
