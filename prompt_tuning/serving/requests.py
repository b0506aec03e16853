"""A request body, from bytes to checked fields: every way a client can get it wrong is one
`RequestError` (an HTTP status and a one-line message), never an exception of the server's own.

    fields = parse_object(body, SCORE_FIELDS)   # {"prompt": ..., "inputs": ..., "targets": ...}

Statuses: 422 for a body that is not the JSON object asked for (not UTF-8, malformed or too
deeply nested JSON, text that is not valid Unicode, a missing, unknown or mistyped field).
The values themselves (token ids, lengths, prompt names) are checked by the engine.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping, Optional


class RequestError(Exception):
    """A request the server refuses: `status` and a one-line `message` for `{"error": ...}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_or_ids(value: Any) -> bool:
    return _text(value) or (isinstance(value, list) and all(_integer(t) for t in value))


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


# field -> (check, what it must be, default; `REQUIRED` for none)
REQUIRED = object()
Fields = Mapping[str, tuple[Callable[[Any], bool], str, Any]]
TEXT_OR_IDS = (_text_or_ids, "text or a list of integer token ids", REQUIRED)
SCORE_FIELDS: Fields = {"prompt": (_text, "text", REQUIRED), "inputs": TEXT_OR_IDS,
                        "targets": TEXT_OR_IDS}
GENERATE_FIELDS: Fields = {"prompt": (_text, "text", REQUIRED), "inputs": TEXT_OR_IDS,
                           "max_decode_length": (_integer, "an integer", None)}
REGISTER_FIELDS: Fields = {"name": (_text, "text", REQUIRED), "path": (_text, "text", REQUIRED),
                           "replace": (_boolean, "true or false", False)}


def parse_object(body: bytes, fields: Fields) -> dict[str, Any]:
    """The body's fields as a dict (missing optional ones get their defaults)."""
    value = parse_json(body)
    if not isinstance(value, dict):
        raise RequestError(422, f"bad request: expected a JSON object, got "
                                f"{_json_type(value)}.")
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise RequestError(422, f"bad request: unknown field {unknown[0]!a}; expected "
                                f"{sorted(fields)}.")
    out = {}
    for name, (check, what, default) in fields.items():
        if name not in value:
            if default is REQUIRED:
                raise RequestError(422, f"bad request: {name}: Field required")
            out[name] = default
        elif not check(value[name]):
            raise RequestError(422, f"bad request: {name}: expected {what}, got "
                                    f"{_json_type(value[name])}.")
        else:
            out[name] = value[name]
    return out


def parse_json(body: bytes) -> Any:
    """JSON from UTF-8 bytes, every string valid Unicode (no lone surrogates)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(422, f"bad request: the body is not UTF-8 (byte {e.start}).") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise RequestError(422, "bad request: JSON nested too deeply.") from None
    except ValueError as e:  # JSONDecodeError, and integers of more than 4300 digits
        raise RequestError(422, f"bad request: malformed JSON ({_first_line(e)}).") from None
    # Strict UTF-8 holds no surrogates, so only \uD800-\uDFFF escapes can make them: the walk
    # over every string runs only for a body that has such an escape.
    bad = _lone_surrogate(value) if _SURROGATE_ESCAPE.search(text) else None
    if bad is not None:
        raise RequestError(422, f"bad request: text with a lone surrogate {bad!a} (JSON "
                                "\\uD800-\\uDFFF escapes must come in pairs).")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> Optional[str]:
    """The first string (key or value) of a parsed JSON value that UTF-8 cannot encode."""
    stack = [value]
    while stack:  # no recursion: the depth is whatever the parser accepted
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                return item[e.start]
    return None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    if isinstance(value, list) and not all(_integer(v) for v in value):
        return "a list with " + next(names.get(type(v), "a value")
                                     for v in value if not _integer(v))
    return names.get(type(value), "a value")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
