"""JSON Schemas generated from the types: command bodies, event payloads and views (SPEC §4: `schemas/`)."""

from __future__ import annotations

from typing import Any

import msgspec

from dobby.engine.model.payloads import EVENT_PAYLOADS

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def document(name: str, kind: Any) -> dict[str, Any]:
    """`kind` as a standalone draft 2020-12 document, its nested types under `$defs`."""
    (root,), components = msgspec.json.schema_components([kind], ref_template="#/$defs/{name}")
    body = components.pop(root["$ref"].rsplit("/", 1)[-1]) if "$ref" in root else root
    return {"$schema": DRAFT, "$id": f"https://dobby.local/schemas/{name}.json", **body, "$defs": components}


def exported(commands: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every file of `schemas/` by its path: the command bodies (by their names in the route table) and
    `events/<Type>`."""
    files = {name: document(name, kind) for name, kind in commands.items()}
    files |= {f"events/{name}": _event_document(name, kind) for name, kind in EVENT_PAYLOADS.items()}
    return files


def _event_document(name: str, kind: Any) -> dict[str, Any]:
    """An event payload's schema as published before its Struct carried the event's docstring: the docstring
    (what the event means) is the code's, not yet part of the published schema."""
    schema = document(f"event-{name}", kind)
    del schema["description"]
    return schema
