"""Make the golden log of a release: `python tests/golden/make_golden.py COMMIT [--name NAME] [--extras]`.

Exports the release's tree with `git archive COMMIT` into a temporary directory and runs tests/golden/scenario.py
through that release's own code (PYTHONPATH at the export) on a fresh SQLite file and a fresh PostgreSQL database.
Writes tests/golden/NAME/ (NAME defaults to COMMIT): `sqlite.db`, `postgres.sql` (a plain-SQL pg_dump that
psycopg can load into an empty database), and `views-sqlite.json`, `views-postgres.json` (every view the release
served). `--extras` runs the SPEC §12 part of the scenario (releases from c517a40 on). PostgreSQL comes from
DOBBY_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres); pg_dump must be on PATH.
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def export(commit: str, into: Path) -> Path:
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="tar")
    return tree


def run_scenario(tree: Path, work: Path, database_url: str, views: Path, extras: bool) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOBBY_")},
        "PYTHONPATH": str(tree),
        "DOBBY_DATABASE_URL": database_url,
        "DOBBY_SERVICE_MODE": "promotion_enabled",
        "DOBBY_WARP_APPROVALS_DIR": str(work / "approvals"),
        "DOBBY_BOBBIN_PATH": str(work / "bobbin.jsonl"),
        "DOBBY_PROMOTION_VELOCITY_MAX": "50",
        "DOBBY_PROCESSOR_INTERVAL_SECONDS": "3600",  # the scenario ticks the processor itself
        "GOLDEN_EXTRAS": "1" if extras else "0",
    }
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(HERE / "scenario.py"), str(views)], cwd=work, env=env, check=True)


def make_sqlite(tree: Path, temp: Path, out: Path, extras: bool) -> None:
    database = temp / "sqlite" / "golden.db"
    run_scenario(tree, temp / "sqlite", f"sqlite:///{database}", out / "views-sqlite.json", extras)
    target = out / "sqlite.db"
    target.unlink(missing_ok=True)
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("VACUUM INTO ?", (str(target),))


def make_postgres(tree: Path, temp: Path, out: Path, extras: bool) -> None:
    admin = os.environ.get("DOBBY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    name = f"dobby_golden_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{admin.rpartition('/')[0]}/{name}"
    try:
        run_scenario(tree, temp / "postgres", url, out / "views-postgres.json", extras)
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--inserts", "--dbname", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        lines = [line for line in dump.splitlines() if not line.startswith("\\")]  # psql meta-commands
        (out / "postgres.sql").write_text("\n".join(lines) + "\n")
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit")
    parser.add_argument("--name", help="the folder under tests/golden (default: the commit as given)")
    parser.add_argument("--extras", action="store_true", help="also freezes, stop, schedules, observations, quorum")
    args = parser.parse_args()
    out = HERE / (args.name or args.commit)
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dobby-golden-") as temp:
        tree = export(args.commit, Path(temp))
        make_sqlite(tree, Path(temp), out, args.extras)
        make_postgres(tree, Path(temp), out, args.extras)
    print(f"golden log of {args.commit} written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
