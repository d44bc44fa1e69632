"""Schemathesis against the MP API's ``openapi.json``, over HTTP through the local gateway: generated
requests (valid and invalid by the schema), with a real session token and without → 0 server errors,
0 responses outside the schema (status codes, content types, bodies).

A new JSON API (the partner API) adds its document to ``DOCUMENTS``.
"""

from __future__ import annotations

import json
from collections import Counter

from reliability.harness import MP, repo_path
from reliability.registry import Run, scenario

DOCUMENTS = {"mp_api": "openapi.json"}


def _load(name: str, base_url: str):
    import schemathesis

    doc = json.loads(repo_path(DOCUMENTS[name]).read_text(encoding="utf-8"))
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=base_url)
    return schema


@scenario("schemathesis_mp_api", "fuzz", "Generated MP API requests: no 5xx, every answer inside the schema")
def schemathesis_mp_api(run: Run) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    h = run.harness
    schema = _load("mp_api", h.gateway)
    token = h.login("oSchemathesis00000000000001")
    per_op = run.size(40, 150)
    statuses, failures, total = Counter(), [], 0
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    def explore(op) -> None:
        @settings(max_examples=per_op, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(), authed=st.booleans())
        def probe(case, authed) -> None:
            nonlocal total
            case.path_parameters = {**(case.path_parameters or {}), "app_id": MP}
            headers = {"Authorization": f"Bearer {token}"} if authed else {}
            response = case.call(headers=headers, timeout=15)
            total += 1
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except BaseException as exc:  # a check failed (schemathesis raises a group): record it, keep exploring
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                parts = getattr(exc, "exceptions", None) or [exc]
                what = "; ".join(f"{getattr(e, 'title', type(e).__name__)}: {str(getattr(e, 'message', '') or e).strip().splitlines()[0][:120]}"
                                 for e in parts)
                failures.append(f"{op.label} {response.status_code}: {what}")

        probe()

    for result in schema.get_all_operations():
        explore(result.ok())
    run.figures.update(cases=total, statuses=dict(sorted(statuses.items())), failures=len(failures))
    run.check(f"at least {run.size(200, 1000)} cases", total >= run.size(200, 1000), total)
    run.check("no server error", not any(s >= 500 for s in statuses), dict(statuses))
    run.check("every response inside the schema", not failures, sorted(set(failures))[:5])
    run.check("some requests were accepted (2xx)", any(200 <= s < 300 for s in statuses), dict(statuses))
