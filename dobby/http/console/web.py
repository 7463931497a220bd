"""How every console answer is made: templates (escaping everything), security headers, the CSRF cookie."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dobby.engine.kernel.errors import DobbyError
from dobby.http.auth import Principal
from dobby.http.sessions import CSRF_COOKIE, CSRF_FIELD, csrf_matches, new_csrf_token

CONSOLE = "/console"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _pretty(value: Any) -> str:
    """A JSON value as indented text; the template escapes it like any other text."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _short(value: str | None, size: int = 12) -> str:
    if not value:
        return ""
    return value.removeprefix("sha256:")[:size]


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def _when(value: str | None) -> str:
    """A stored RFC 3339 time as people read it: to the second, in UTC ("2026-12-05 23:34:50 UTC")."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _metric_value(value: Any) -> str:
    """A metric value as an operator reads it: a number, `x/n (share)` or `mean (sd, n)`."""
    if not isinstance(value, dict):
        return _number(value)
    if "successes" in value:
        return f"{value['successes']}/{value['n']} ({_number(value['successes'] / value['n'])})"
    return f"{_number(value['mean'])} (sd {_number(value['sd'])}, n {value['n']})"


def _interval(bounds: list[float] | None) -> str:
    return "—" if bounds is None else f"[{_number(bounds[0])}, {_number(bounds[1])}]"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dobby.http.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pretty=_pretty, short=_short, number=_number, metric_value=_metric_value, interval=_interval, when=_when
    )
    env.globals["query"] = lambda **values: urlencode({k: v for k, v in values.items() if v})
    return env


def static_files() -> dict[str, tuple[bytes, str]]:
    """The console's own assets, read once from the package: name → (content, media type)."""
    found = {}
    for entry in resources.files("dobby.http.console").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in STATIC_TYPES:
            found[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return found


def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@dataclass
class Renderer:
    env: Environment
    tokens_configured: bool

    def page(
        self, request: Request, template: str, status: int = 200, principal: Principal | None = None, **values: Any
    ) -> Response:
        """A page, with the CSRF token its forms carry (set as a cookie the first time)."""
        csrf = request.cookies.get(CSRF_COOKIE)
        fresh = None if csrf else new_csrf_token()
        body = self.env.get_template(template).render(
            principal=principal,
            is_operator=principal is not None and "operator" in principal.roles,
            tokens_configured=self.tokens_configured,
            csrf_field=CSRF_FIELD,
            csrf_token=csrf or fresh,
            path=request.url.path,
            **values,
        )
        response = secured(HTMLResponse(body, status_code=status))
        if fresh is not None:
            set_cookie(request, response, CSRF_COOKIE, fresh)
        return response


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=CONSOLE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def redirect(location: str) -> Response:
    return secured(RedirectResponse(location, status_code=303))


async def form_of(request: Request, max_fields: int = 20) -> dict[str, str]:
    """A posted form (application/x-www-form-urlencoded, what the console's forms send); anything else is empty.
    More than `max_fields` fields is refused."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return {}
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields))
    except ValueError:
        raise RefusedError(422, f"Refused: the form has more than {max_fields} fields. Nothing was changed.") from None


def csrf_refusal(request: Request, form: dict[str, str]) -> str | None:
    """Why a posted form is refused (None: it is not): a foreign Origin, or a CSRF token that does not match."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return "the form was posted from another site"
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD)):
        return "the form's CSRF token is missing or does not match this browser's; reload the page and try again"
    return None


Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Message:
    """The outcome of an action in plain words; a refusal lists every failed rule or guard."""

    ok: bool
    text: str
    details: tuple[str, ...] = ()


class RefusedError(Exception):
    """A page refused by the console itself (a bad filter, a missing CSRF token)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def refusal_of(error: DobbyError) -> Message:
    details = []
    for detail in error.details:
        guard = detail.get("guard")
        details.append(f"{guard}: {detail['message']}" if guard else str(detail["message"]))
    return Message(False, f"Refused ({error.code}): {error.message}", tuple(details))
