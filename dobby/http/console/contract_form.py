"""The what-if form's threshold contract (SPEC §4.3a, §9): fields per metric of the stored contract, or its JSON.

The JSON textarea wins when the operator edited it (its text differs from what the page rendered, which the form
carries as a digest); otherwise the contract is built from the fields. Either way the engine's own decoding turns
it into a `ThresholdContract`, so every refusal is the engine's message.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace
from typing import Any, get_args, get_type_hints

import msgspec

from dobby.engine.commands.boundary import convert, decode
from dobby.engine.kernel.errors import InvalidInputError, Violation
from dobby.engine.kernel.shapes import UNSET
from dobby.engine.rules.judgement import MetricRule, ThresholdContract
from dobby.http.sessions import CSRF_FIELD

MODES: tuple[str, ...] = get_args(get_type_hints(ThresholdContract)["mode"])
DIRECTIONS: tuple[str, ...] = get_args(get_type_hints(MetricRule)["direction"])
NUMBERS = ("min_improvement", "max_regression", "confidence")
"""MetricRule's numeric fields; `direction` and `relative` are the others (tests hold the list to MetricRule's)."""
RENDERED = "contract_rendered"
"""The hidden field holding the digest of the JSON text the page rendered."""
_PER_METRIC = ("direction", *NUMBERS, "relative", "veto")
_FIXED = (CSRF_FIELD, "workload_similar", "mode", "threshold_contract", RENDERED)
_LONGEST = 400
"""Longer text is not taken for a number (Python refuses to read integers of thousands of digits)."""
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _max_metrics() -> int:
    info = msgspec.inspect.type_info(ThresholdContract)
    assert isinstance(info, msgspec.inspect.StructType)
    metrics = next(field.type for field in info.fields if field.name == "metrics")
    assert isinstance(metrics, msgspec.inspect.DictType) and metrics.max_length is not None
    return metrics.max_length


MAX_FIELDS = len(_FIXED) + len(_PER_METRIC) * _max_metrics()
"""How many fields a what-if form may post: the fixed ones and every field of the largest contract."""


@dataclass(frozen=True)
class MetricFields:
    """One contract metric's inputs, as text the way the page shows them (numbers as typed; "" is not set)."""

    index: int
    name: str
    summary: bool
    direction: str = ""
    min_improvement: str = ""
    max_regression: str = ""
    confidence: str = ""
    relative: bool = False
    veto: bool = False

    def field_id(self, field: str) -> str:
        return f"metric-{self.index}-{field}"

    def rule(self) -> dict[str, Any]:
        """The metric's rule as the contract's JSON holds it: empty numbers left out, an unticked box left out."""
        found: dict[str, Any] = {} if not self.direction else {"direction": self.direction}
        for field in NUMBERS:
            text = getattr(self, field).strip()
            if text:
                found[field] = _number(self.name, field, text)
        if self.relative:
            found["relative"] = True
        return found


@dataclass(frozen=True)
class ContractForm:
    """The what-if form's contract: the mode, one `MetricFields` per metric of the stored contract, the JSON text."""

    mode: str
    metrics: tuple[MetricFields, ...]
    text: str
    from_json: bool = False
    """The JSON was edited, so it is judged (and the page opens it again); else the fields are."""

    @property
    def digest(self) -> str:
        return _digest(self.text)

    def contract(self) -> dict[str, Any]:
        """The contract the fields describe; a field that is not a number is refused naming metric and field."""
        found: dict[str, Any] = {} if not self.mode else {"mode": self.mode}
        found["metrics"] = {m.name: m.rule() for m in self.metrics}
        vetoes = [m.name for m in self.metrics if m.veto]
        if vetoes:
            found["veto"] = vetoes
        return found


def stored_form(contract: dict[str, Any], metrics: dict[str, Any]) -> ContractForm:
    """The form as a replay page first shows it: every field from the stored contract."""
    typed = convert(contract, ThresholdContract)
    baseline = metrics.get("baseline", {})
    fields = tuple(
        _fields(index, name, typed.metrics[name], name in typed.vetoes, isinstance(baseline.get(name), dict))
        for index, name in enumerate(sorted(typed.metrics))
    )
    return ContractForm(typed.mode, fields, contract_text(typed))


def posted_form(form: dict[str, str], stored: ContractForm) -> ContractForm:
    """The form as it was posted, for the stored contract's metrics (fields absent from the post are empty)."""

    def posted(metric: MetricFields) -> MetricFields:
        def text(field: str) -> str:
            return form.get(metric.field_id(field), "")

        return replace(
            metric,
            direction=text("direction"),
            min_improvement=text("min_improvement"),
            max_regression=text("max_regression"),
            confidence=text("confidence"),
            relative=text("relative") == "true",
            veto=text("veto") == "true",
        )

    text = form.get("threshold_contract", "")
    metrics = tuple(posted(metric) for metric in stored.metrics)
    return ContractForm(form.get("mode", ""), metrics, text, from_json=json_edited(form))


def json_edited(form: dict[str, str]) -> bool:
    """Whether the posted JSON differs from what the page rendered (a post without the digest sent only JSON)."""
    return _digest(form.get("threshold_contract", "")) != form.get(RENDERED)


def judged_contract(posted: ContractForm) -> ThresholdContract:
    """The contract a what-if post asks for, through the engine's own decoding (its refusals are the messages)."""
    if posted.from_json:
        return decode(posted.text.encode("utf-8"), ThresholdContract)
    return convert(posted.contract(), ThresholdContract)


def contract_text(contract: ThresholdContract) -> str:
    return msgspec.json.format(msgspec.json.encode(contract)).decode()


def _fields(index: int, name: str, rule: MetricRule, veto: bool, summary: bool) -> MetricFields:
    def shown(value: object) -> str:
        return "" if value is UNSET else str(value)

    return MetricFields(
        index=index,
        name=name,
        summary=summary,
        direction=rule.direction,
        min_improvement=shown(rule.min_improvement),
        max_regression=shown(rule.max_regression),
        confidence=shown(rule.confidence),
        relative=rule.relative is True,
        veto=veto,
    )


def _number(name: str, field: str, text: str) -> int | float:
    value: int | float | None = None
    if len(text) <= _LONGEST and _NUMBER.fullmatch(text):
        value = int(text) if text.lstrip("+-").isdigit() else float(text)
    if value is None or not math.isfinite(value):
        message = f"metric {name!r}: {field} must be a finite number, not {text[:40]!r}"
        raise InvalidInputError(message, [Violation("not_a_number", message, f"metrics.{name}.{field}")])
    return value


def _digest(text: str) -> str:
    """Of the text as a browser posts it back: line breaks as CRLF and the textarea's leading newline dropped."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()
