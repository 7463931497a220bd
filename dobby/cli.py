"""The `dobby` command (SPEC §7)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dobby.adapters.settings import SettingsError
from dobby.bootstrap import REPOSITORY_ROOT, bootstrap
from dobby.demo import run_demo
from dobby.engine.errors import DobbyError
from dobby.engine.schemas import COMMAND_SCHEMAS, document


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except SettingsError as error:
        print(f"dobby: bad setting: {error}", file=sys.stderr)
        return 2
    except DobbyError as error:
        print(f"dobby: {error.code}: {error.message}", file=sys.stderr)
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dobby", description="A governed adaptive-learning engine.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run one whole proposal lifecycle against the configured database")
    demo.set_defaults(handler=_demo)

    db = commands.add_parser("db", help="database administration")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser("init", help="create the event store tables").set_defaults(handler=_db_init)

    audit = commands.add_parser("audit", help="replay a proposal's full history from the event store")
    audit.add_argument("proposal_id")
    audit.add_argument("--as-of-version", type=int, default=None)
    audit.add_argument("--verify", action="store_true", help="exit 1 unless the hash chain verifies")
    audit.add_argument("--json", action="store_true", help="print the history as JSON")
    audit.set_defaults(handler=_audit)

    schemas = commands.add_parser("schemas", help="JSON Schemas of the command bodies")
    schema_commands = schemas.add_subparsers(required=True, metavar="ACTION")
    export = schema_commands.add_parser("export", help="write schemas/*.json from the engine's schemas")
    export.add_argument("--directory", type=Path, default=REPOSITORY_ROOT / "schemas")
    export.set_defaults(handler=_export_schemas)
    return parser


def _db_init(_: argparse.Namespace) -> int:
    engine = bootstrap()
    print(f"event store ready at position {engine.position()}")
    engine.log.close()
    return 0


def _audit(args: argparse.Namespace) -> int:
    engine = bootstrap()
    try:
        history = engine.get_history(args.proposal_id, as_of_version=args.as_of_version)
    finally:
        engine.log.close()
    if args.json:
        print(json.dumps(history, indent=2, ensure_ascii=False))
    else:
        _print_history(history)
    return 0 if history["chain_valid"] or not args.verify else 1


def _print_history(history: dict[str, Any]) -> None:
    print(f"proposal {history['proposal_id']}")
    for event in history["events"]:
        print(
            f"  v{event['version']:<3} {event['occurred_at']}  {event['type']:<22} "
            f"{event['state_before'] or '—':>16} → {event['state_after']:<16} by {event['actor']}"
        )
    print(f"chain {'valid' if history['chain_valid'] else 'BROKEN'}")


def _export_schemas(args: argparse.Namespace) -> int:
    args.directory.mkdir(parents=True, exist_ok=True)
    for name, schema in COMMAND_SCHEMAS.items():
        path = args.directory / f"{name}.json"
        path.write_text(json.dumps(document(name, schema), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


def _demo(_: argparse.Namespace) -> int:
    return run_demo()


if __name__ == "__main__":
    raise SystemExit(main())
