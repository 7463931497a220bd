"""GET /openapi.json, generated from the route table and the types of every body and answer."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from dobby import __version__
from dobby.http.answer_examples import ANSWERS
from dobby.http.ofrep import EvaluationFailure
from dobby.http.operation import Operation
from dobby.http.parameters import MIN_POSITION
from dobby.http.route_docs import DOCS
from dobby.http.routes import OPERATIONS

REF = "#/components/schemas/{name}"
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
OFREP_ERROR_REF = {"$ref": "#/components/schemas/EvaluationFailure"}


def _page(item: Any) -> Any:
    """A keyset page of `item`s (SPEC §4.8)."""
    return msgspec.defstruct(f"{item.__name__}Page", [("items", list[item]), ("next_cursor", str | None)])


def _json(schema: dict[str, Any], description: str, example: Any = None) -> dict[str, Any]:
    media = {"schema": schema} | ({"example": example} if example is not None else {})
    return {"description": description, "content": {"application/json": media}}


def _operation(operation: Operation, schemas: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    tag, summary, description, refusals, example = DOCS[operation.handler]
    parameters = list(operation.params)
    if operation.role is not None and operation.method == "GET" and MIN_POSITION not in parameters:
        parameters.append(MIN_POSITION)
    spec: dict[str, Any] = {
        "operationId": operation.handler,
        "summary": summary,
        "description": description + (f" Role: {operation.role.replace('|', ' or ')}." if operation.role else ""),
        "tags": [tag],
        "parameters": [{"name": p.name, "in": p.where, "required": p.required, "schema": p.schema} for p in parameters],
        "responses": {},
    }
    answers = [schemas[kind] for kind in operation.answers]
    if operation.list_item is not None:
        answers.append(schemas[("page", operation.list_item)])
    answer = answers[0] if len(answers) == 1 else {"anyOf": answers} if answers else {"type": "object"}
    responses = spec["responses"]
    examples = ANSWERS[operation.handler]
    if operation.protocol == "ofrep":
        spec = _ofrep_operation(operation, spec, answer, schemas)
        spec["requestBody"]["content"]["application/json"]["example"] = example
        return spec
    if operation.body is not None:
        body = {"schema": schemas[operation.body]} | ({"example": example} if example is not None else {})
        spec["requestBody"] = {"required": True, "content": {"application/json": body}}
        responses["200"] = _json(answer, "done, or found (a duplicate)", examples.get(200))
        if operation.created:
            responses["201"] = _json(answer, "created", examples[201])
        if operation.accepted is not None:
            scheduled = "scheduled: it activates at `scheduled_for`"
            responses["202"] = _json(schemas[operation.accepted], scheduled, examples[202])
    elif operation.handler == "metrics":
        text = {"schema": {}, "example": examples[200]}
        responses["200"] = {"description": "Prometheus text format", "content": {"text/plain": text}}
    else:
        responses["200"] = _json(answer, "found", examples[200])
    if operation.role is not None:
        spec["security"] = [{"bearer": []}]
    for status, codes in sorted(refusals.items()):
        said = "refused: " + ", ".join(f"`{code}`" for code in codes)
        if MIN_POSITION in parameters:
            said += {
                422: "; `min_position` beyond the log's head is refused at once",
                503: "; `projection_lagging` when projections have not reached `min_position` within 2 s",
            }.get(status, "")
        responses[str(status)] = _json(ERROR_REF, said)
    return spec


def _ofrep_operation(
    operation: Operation, spec: dict[str, Any], answer: Any, schemas: dict[Any, dict[str, Any]]
) -> dict[str, Any]:
    """OFREP's own answers (SPEC §15): its failure shape for every refusal the route makes itself; a 413 or a
    backpressure 503 from the edge keeps dobby's."""
    spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas[operation.body]}}}
    spec["security"] = [{"bearer": []}]
    responses = spec["responses"]
    responses["200"] = _json(answer, "evaluated", ANSWERS[operation.handler][200])
    if operation.handler == "ofrep_bulk":
        responses["304"] = {"description": "not modified: the ETag given in If-None-Match is still current"}
    for status in (400, 401, 403, 404, 422, 503):
        responses[str(status)] = _json(OFREP_ERROR_REF, "refused")
    responses["413"] = _json(ERROR_REF, "body too large")
    return spec


@cache
def openapi_document() -> dict[str, Any]:
    failure = (EvaluationFailure,)
    types = list(
        dict.fromkeys(
            kind for o in OPERATIONS for kind in (o.body, *o.answers, o.accepted, *failure) if kind is not None
        )
    )
    pages = {o.list_item: _page(o.list_item) for o in OPERATIONS if o.list_item is not None}
    generated, components = msgspec.json.schema_components([*types, *pages.values()], ref_template=REF)
    schemas: dict[Any, dict[str, Any]] = dict(
        zip([*types, *(("page", item) for item in pages)], generated, strict=True)
    )
    paths: dict[str, Any] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dobby",
            "version": __version__,
            "description": "Governed adaptive-learning engine (service jhf-dobby).",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, **components},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
