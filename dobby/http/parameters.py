"""The parameters routes share, each with the schema the door checks it by (SPEC §4 input hygiene): positions, pages,
timestamps, list filters and path identifiers."""

from __future__ import annotations

from typing import get_args

import msgspec

from dobby.engine.kernel.shapes import CONTROL_FREE, Identifier, Moment
from dobby.engine.rules.judgement import Verdict
from dobby.http.operation import Param

INTEGER = {"type": "integer", "minimum": 0, "maximum": 2**62}
IDENTIFIER = msgspec.json.schema(Identifier)
"""An identifier or filter in a query or path (SPEC §4 input hygiene): not empty, no control characters."""
MIN_POSITION = Param("min_position", INTEGER)
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 500})
CURSOR = Param("cursor", {"type": "string", "pattern": "^[0-9]{1,18}$"})
MOMENT = msgspec.json.schema(Moment)
"""A timestamp in a query (SPEC §4): RFC 3339 with an explicit offset, in 1970–9999 UTC (dobby.engine.kernel.clock)."""
CREATED = (Param("since", MOMENT), Param("until", MOMENT))
PAGE = (LIMIT, CURSOR, Param("tenant_id", IDENTIFIER), MIN_POSITION, *CREATED)
TENANT_PAGE = (LIMIT, CURSOR, Param("tenant_id", IDENTIFIER, required=True), MIN_POSITION, *CREATED)
"""Lists of one tenant, held in memory by the engine (freezes, the decision queue); an offset is the cursor."""
RUN_FILTERS = (
    Param("outcome", IDENTIFIER),
    Param("trace_id", IDENTIFIER),
    Param("live_hash", {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}),
)
REPLAY_FILTERS = (
    Param("verdict", {"enum": list(get_args(Verdict))}),
    Param("target_type", IDENTIFIER),
    Param("target_id", IDENTIFIER),
)
PROPOSAL_FILTERS = (
    Param("state", IDENTIFIER),
    Param("target_type", IDENTIFIER),
    Param("target_id", IDENTIFIER),
    Param("revalidate_required", {"enum": ["true", "false"]}),
)


def path_param(name: str) -> Param:
    """A required path parameter: not empty, no control characters (a target id may hold slashes)."""
    return Param(name, {"type": "string", "minLength": 1, "pattern": CONTROL_FREE}, "path", True)
