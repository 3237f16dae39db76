"""ListQueues' filter and the page tokens of the List calls."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from emulator.errors import InvalidArgument
from emulator.model import QueueRecord, QueueState

_FILTER_CLAUSE = re.compile(r"^\s*(?P<field>[A-Za-z_.]+)\s*(?P<op>!=|=|:)\s*(?P<value>.+?)\s*$")
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
# A filter's state, by name or number.
_FILTER_STATES: Final[dict[str, str]] = {state.name: state.name for state in QueueState} | {
    str(state.value): state.name for state in QueueState
}


@dataclass(frozen=True, slots=True)
class _Clause:
    field: str
    op: str
    value: str

    def matches(self, record: QueueRecord) -> bool:
        if self.field == "state":
            equal = record.state.name == _FILTER_STATES[self.value.upper()]
        else:  # name
            equal = self.value in record.name if self.op == ":" else record.name == self.value
        return not equal if self.op == "!=" else equal


def parse_queue_filter(text: str) -> Callable[[QueueRecord], bool]:
    """ListQueues' filter, the subset that makes sense for a local queue set:
    ``state: PAUSED``, ``state = RUNNING``, ``state != PAUSED``, ``name: image`` (substring),
    joined with AND. Anything else is INVALID_ARGUMENT rather than silently ignored."""
    if not text.strip():
        return lambda record: True
    clauses: list[_Clause] = []
    for part in _AND.split(text.strip()):
        match = _FILTER_CLAUSE.match(part)
        if match is None or match["field"] not in ("state", "name"):
            raise InvalidArgument(f"Invalid filter: {text!r}. Supported: state and name.")
        value = match["value"].strip("\"'")
        if match["field"] == "state" and value.upper() not in _FILTER_STATES:
            raise InvalidArgument(f"Invalid filter: unknown queue state {value!r}.")
        clauses.append(_Clause(match["field"], match["op"], value))
    return lambda record: all(clause.matches(record) for clause in clauses)


def encode_page_token(scope: str, after: str) -> str:
    """Opaque token: the filter it belongs to and the last name returned (names are sorted,
    so paging is stable under concurrent inserts and deletes)."""
    raw = f"{scope}\x00{after}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, scope: str) -> str:
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("Invalid page token.") from None
    token_scope, sep, after = raw.partition("\x00")
    if not sep:
        raise InvalidArgument("Invalid page token.")
    if token_scope != scope:
        raise InvalidArgument("The filter must not change between pages of a list request.")
    return after


def page_size(requested: int, maximum: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative.")
    return maximum if requested == 0 else min(requested, maximum)
