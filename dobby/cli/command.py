"""The `dobby` command (SPEC §7)."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import uvicorn
from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

from dobby.adapters.settings import SettingsError, database_display
from dobby.adapters.store_errors import refuses_writes
from dobby.adapters.tokens_file import TokenRefusedError, TokensFileError
from dobby.asgi import BACKGROUND_VARIABLE
from dobby.bootstrap import system_from_environment
from dobby.cli.audit import add_audit_parser
from dobby.cli.demo import run_demo
from dobby.cli.projections import projections_rebuild, projections_status, projections_verify
from dobby.cli.store import MissingStoreError
from dobby.cli.tokens import tokens_add, tokens_list, tokens_revoke
from dobby.engine.kernel.errors import DobbyError, describe
from dobby.engine.schemas import exported
from dobby.http.app import create_app
from dobby.http.auth import load_tokens
from dobby.http.protocol import BoundedHttpToolsProtocol
from dobby.http.routes import command_bodies
from dobby.runtime.read_side import ReadSideSupervisor, parent_gone, wants_child

KEEP_ALIVE_SECONDS = 5  # SPEC §16: idle keep-alive connections close after 5 s
EXPECTED_FAILURES = (PersistenceError, SQLAlchemyError, psycopg.Error, sqlite3.Error, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Every expected failure is one line on stderr and a non-zero exit; `--debug` shows the traceback too."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result: int = args.handler(args)
    except (SettingsError, TokensFileError) as error:
        return _fail(args, f"bad setting: {error}", 2)
    except MissingStoreError as error:
        return _fail(args, str(error), 2)
    except TokenRefusedError as error:
        return _fail(args, str(error), 1)
    except DobbyError as error:
        return _fail(args, f"{error.code}: {error.message}", 1)
    except EXPECTED_FAILURES as error:
        cause = "the database refuses writes (full disk, read-only, recovery): " if refuses_writes(error) else ""
        return _fail(args, cause + describe(error), 1)
    return result


def _fail(args: argparse.Namespace, line: str, status: int) -> int:
    if args.debug:
        traceback.print_exc()
    print(f"dobby: {line}", file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dobby", description="A governed adaptive-learning engine.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure too")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API (with projections and the expiry processor)")
    serve.add_argument("--host", default=None, help="listen on this address (overrides DOBBY_HOST)")
    serve.add_argument("--port", default=None, help="listen on this port (overrides DOBBY_PORT)")
    serve.add_argument(
        "--fd", type=int, default=None, help="serve on this inherited, listening socket (instead of host and port)"
    )
    serve.add_argument("--no-background", action="store_true", help="serve the API only")
    serve.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    serve.set_defaults(handler=_serve)

    tokens = commands.add_parser("tokens", help="bearer tokens in DOBBY_API_TOKENS_FILE (SPEC §8)")
    token_commands = tokens.add_subparsers(required=True, metavar="ACTION")
    add = token_commands.add_parser("add", help="make a token; it is printed once, only its hash is kept")
    add.add_argument("name")
    add.add_argument("--roles", required=True, help="comma-separated: submitter, proposer, operator, auditor")
    add.add_argument("--tenants", required=True, help="comma-separated tenant ids, or '*' for every tenant")
    add.set_defaults(handler=tokens_add)
    token_commands.add_parser("list", help="names, roles and tenants").set_defaults(handler=tokens_list)
    revoke = token_commands.add_parser("revoke", help="remove a token")
    revoke.add_argument("name")
    revoke.set_defaults(handler=tokens_revoke)

    demo = commands.add_parser(
        "demo", help="one whole proposal lifecycle, on a fresh SQLite file of its own unless --database says otherwise"
    )
    demo.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="run it on this database instead (DOBBY_DATABASE_URL is ignored)",
    )
    demo.set_defaults(handler=_demo)

    db = commands.add_parser("db", help="database administration")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser("init", help="create the event store and projection tables").set_defaults(handler=_db_init)

    process = commands.add_parser("process", help="run the projections and the expiry processor (no API)")
    process.add_argument("--seconds", type=float, default=None, help="stop after this long (default: run until killed)")
    process.set_defaults(handler=_process)

    projections = commands.add_parser("projections", help="status, rebuild and verify of the query tables")
    projection_commands = projections.add_subparsers(required=True, metavar="ACTION")
    projection_commands.add_parser("status", help="position, lag and last error per projection").set_defaults(
        handler=projections_status
    )
    rebuild_command = projection_commands.add_parser("rebuild", help="rebuild from position 0 and swap in")
    rebuild_command.add_argument("name", nargs="?", default=None)
    rebuild_command.set_defaults(handler=projections_rebuild)
    projection_commands.add_parser("verify", help="compare live tables with a fresh fold").set_defaults(
        handler=projections_verify
    )

    add_audit_parser(commands)

    schemas = commands.add_parser("schemas", help="JSON Schemas of the command bodies")
    schema_commands = schemas.add_subparsers(required=True, metavar="ACTION")
    export = schema_commands.add_parser("export", help="write schemas/*.json from the engine's schemas")
    export.add_argument("--directory", type=Path, default=Path("schemas"))
    export.set_defaults(handler=_export_schemas)
    return parser


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("dobby: --workers must be at least 1", file=sys.stderr)
        return 2
    flags = {"DOBBY_HOST": args.host, "DOBBY_PORT": args.port}
    system = system_from_environment({**os.environ, **{name: value for name, value in flags.items() if value}})
    settings = system.settings
    if settings.api_tokens_file is None:
        if not _is_loopback(settings.host):
            print(f"dobby: refusing to serve on {settings.host} without DOBBY_API_TOKENS_FILE", file=sys.stderr)
            return 2
        print(
            "dobby: WARNING: no DOBBY_API_TOKENS_FILE — every /api/v1 route is open; serving on loopback only",
            file=sys.stderr,
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "fd": args.fd,
        # uvicorn bounds idle keep-alive itself; the header block's bound is the protocol's, the body's the app's
        "http": functools.partial(BoundedHttpToolsProtocol, request_timeout=settings.body_timeout_seconds),
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,  # nothing reads the client address: one ASGI layer less per request
    }
    if args.workers > 1:
        system.close()  # each worker builds its own, and waits for the database by itself
        if settings.api_tokens_file is not None:
            load_tokens(settings.api_tokens_file)  # a bad file stops the start here, not every worker, again and again
        child = ReadSideSupervisor() if wants_child(args.no_background) else None
        os.environ[BACKGROUND_VARIABLE] = "0" if args.no_background or child else "1"
        _stop_quietly()
        print(_start_line(args, settings), flush=True)
        if child is not None:  # one read side for every worker, supervised by the process that starts them
            child.start()
        try:
            uvicorn.run("dobby.asgi:app", factory=True, workers=args.workers, **options)
        finally:
            if child is not None:
                child.stop()
        return 0
    if wants_child(args.no_background):
        app = create_app(system, background=False, read_side=ReadSideSupervisor())
    else:  # --no-background, or a one-core machine: the read side runs here (or nowhere)
        app = create_app(system, background=not args.no_background)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    _stop_quietly(server)
    print(_start_line(args, settings), flush=True)
    server.run()
    return 0 if server.started else 1


def _start_line(args: argparse.Namespace, settings: Any) -> str:
    """The one line `serve` prints at start (SPEC §7): where, in which mode, on which database, tokens or not."""
    where = f"inherited socket {args.fd}" if args.fd is not None else f"http://{settings.host}:{settings.port}"
    tokens = f"on ({settings.api_tokens_file})" if settings.api_tokens_file is not None else "off"
    return (
        f"dobby: serving {where} (console at /console) — requested mode {settings.service_mode.name}, "
        f"database {database_display(settings.database_url)}, tokens {tokens}"
    )


def _stop_quietly(server: uvicorn.Server | None = None) -> None:
    """SIGTERM and Ctrl-C stop the server cleanly and the process exits 0. uvicorn handles them itself while it
    serves, then raises the signal again under the handler it found: that must not be the default (death by the
    signal, 143, or a KeyboardInterrupt traceback), nor ignore one that arrives before uvicorn listens for it. A
    signal that comes before uvicorn listens asks the server to stop as uvicorn's own handler would, so its start
    and clean stop still run (an exception raised at that moment could land anywhere and leave threads behind)."""

    def stop(*_: object) -> None:
        if server is None:
            raise SystemExit(0)
        server.should_exit = True

    for caught in (signal.SIGTERM, signal.SIGINT):
        signal.signal(caught, stop)


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _db_init(_: argparse.Namespace) -> int:
    system = system_from_environment()
    wait = system.settings.db_wait_seconds
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                system.init_storage()
                break
            except EXPECTED_FAILURES as error:
                left = deadline - time.monotonic()
                if left <= 0:
                    print(f"dobby: the database did not answer within {wait:g} s: {describe(error)}", file=sys.stderr)
                    return 1
                print(f"waiting for the database ({left:.0f} s left): {describe(error)}", file=sys.stderr, flush=True)
                time.sleep(min(1.0, left))
        print(f"event store and projection tables ready; log at position {system.engine.position()}")
    finally:
        system.close()
    return 0


def _process(args: argparse.Namespace) -> int:
    system = system_from_environment()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        system.start(background=True)
        print(f"dobby process: projections and expiry processor starting on {system.settings.backend}", flush=True)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while not stop.wait(1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))):
            if parent_gone():
                print("dobby process: the dobby serve that started it is gone: stopping", file=sys.stderr, flush=True)
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        system.close()
    return 0


def _export_schemas(args: argparse.Namespace) -> int:
    (args.directory / "events").mkdir(parents=True, exist_ok=True)
    for filename, schema in exported(command_bodies()).items():
        path = args.directory / f"{filename}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    return run_demo(args.database)
