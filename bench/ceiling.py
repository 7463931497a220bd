"""The parse-only ceiling: a Starlette endpoint that parses the JSON body and answers 201, nothing more.

.venv/bin/python bench/ceiling.py PORT
"""

from __future__ import annotations

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def intake(request: Request) -> Response:
    body = json.loads(await request.body())
    return JSONResponse({"accepted": True, "trace_id": body.get("trace_id")}, status_code=201)


app = Starlette(routes=[Route("/api/v1/learning/signals/intake", intake, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools", log_level="warning", access_log=False)
