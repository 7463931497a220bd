"""Files that ship inside the package: the Fabric manifest."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from dobby.engine.rules.modes import Manifest


@cache
def manifest_json() -> bytes:
    return (files("dobby") / "fabric-manifest.json").read_bytes()


def read_manifest() -> Manifest:
    return Manifest.from_json(json.loads(manifest_json()))
