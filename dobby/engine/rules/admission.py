"""Which targets may be judged and proposed (SPEC §4.3, §4.4). Pure functions."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from dobby.engine.kernel.canonical import canonical_json
from dobby.engine.kernel.errors import InvalidInputError, Violation
from dobby.engine.kernel.ports import GovernanceDocument
from dobby.engine.kernel.shapes import TargetRef
from dobby.engine.rules.judgement import WEIGHT_TRAINING

TARGET_ID_PATTERN = r"^[A-Za-z0-9._:/-]{1,200}$"
MAX_CHANGE_BYTES = 64 * 1024


def check_sizes(**objects: Any) -> None:
    """A `change` or `baseline` is at most 64 KiB as canonical JSON (SPEC §4.3, §4.4); absent ones pass."""
    for name, value in objects.items():
        if isinstance(value, dict) and len(canonical_json(value)) > MAX_CHANGE_BYTES:
            message = f"{name} must be at most {MAX_CHANGE_BYTES} bytes as JSON"
            raise InvalidInputError(message, [Violation("too_large", message, name)])


def check_target(target: TargetRef, fabric: GovernanceDocument) -> list[Violation]:
    """Weight training is never learned; any other type must be one Fabric permits."""
    found = []
    target_type = target.type
    if target_type == WEIGHT_TRAINING:
        found.append(
            Violation("weight_training_forbidden", "weight training candidates are never learned", "target.type")
        )
    elif target_type not in fabric.target_types:
        found.append(
            Violation("target_not_permitted", f"Fabric does not permit target type {target_type!r}", "target.type")
        )
    return found


def check_admission(target: TargetRef, fabric: GovernanceDocument) -> list[Violation]:
    """What propose refuses beyond the replay's target checks: malformed ids and no-learn zones."""
    found = check_target(target, fabric)
    target_type = target.type
    if not re.fullmatch(TARGET_ID_PATTERN, target.id):
        found.append(Violation("invalid_target_id", f"target.id must match {TARGET_ID_PATTERN}", "target.id"))
    key = f"{target_type}:{target.id}"
    for pattern in fabric.no_learn_zones:
        if fnmatchcase(key, pattern):
            found.append(Violation("no_learn_zone", f"{key} is inside the no-learn zone {pattern!r}", "target"))
            break
    return found
