"""The app factory uvicorn imports in each worker process when `dobby serve --workers N` runs several."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from dobby.bootstrap import system_from_environment
from dobby.http.app import create_app

BACKGROUND_VARIABLE = "DOBBY_SERVE_BACKGROUND"


def app() -> Starlette:
    return create_app(system_from_environment(), background=os.environ.get(BACKGROUND_VARIABLE, "1") == "1")
