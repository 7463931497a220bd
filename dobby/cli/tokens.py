"""`dobby tokens add | list | revoke` (SPEC §7): the bearer tokens in DOBBY_API_TOKENS_FILE."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dobby.adapters.settings import load_settings
from dobby.adapters.tokens_file import TokensFileError, add_token, read_entries, revoke_token


def _tokens_path() -> Path:
    path = load_settings(os.environ).api_tokens_file
    if path is None:
        raise TokensFileError("set DOBBY_API_TOKENS_FILE to the tokens file to use")
    return path


def tokens_add(args: argparse.Namespace) -> int:
    roles = [role.strip() for role in args.roles.split(",") if role.strip()]
    tenants = "*" if args.tenants.strip() == "*" else [t.strip() for t in args.tenants.split(",") if t.strip()]
    path = _tokens_path()
    token = add_token(path, args.name, roles, tenants)
    print(token)
    print(f"dobby: token {args.name!r} added to {path}; it is shown this once", file=sys.stderr)
    return 0


def tokens_list(_: argparse.Namespace) -> int:
    path = _tokens_path()
    print(f"{'name':<24} {'roles':<36} tenants")
    for entry in read_entries(path):
        tenants = entry.get("tenants")
        shown = tenants if isinstance(tenants, str) else ",".join(map(str, tenants or []))
        print(f"{entry.get('name', '?')!s:<24} {','.join(entry.get('roles') or []):<36} {shown}")
    return 0


def tokens_revoke(args: argparse.Namespace) -> int:
    path = _tokens_path()
    revoke_token(path, args.name)
    print(f"dobby: token {args.name!r} revoked", file=sys.stderr)
    return 0
