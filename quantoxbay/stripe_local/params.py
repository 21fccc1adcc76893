"""Decoding of Stripe's form-encoded bracket parameters, and typed accessors.

stripe-python sends ``line_items[0][price_data][currency]=usd`` and
``expand[0]=line_items``; :func:`decode_pairs` turns such pairs into nested
dicts and lists. The ``get_*`` helpers read one value with Stripe's error
messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid_request, missing_param, unknown_param

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def split_key(key: str) -> list[str]:
    """Split ``a[b][0][]`` into ``["a", "b", "0", ""]``."""
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    return [head, *_KEY_PART.findall("[" + rest)]


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn form pairs with bracket keys into nested dicts and lists.

    Dicts whose keys are all digits become lists (in index order); an empty
    bracket (``expand[]``) appends.

    Args:
        pairs: ``(key, value)`` pairs in request order.

    Returns:
        The nested parameters.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


_METADATA_KEY = re.compile(r"(?:^metadata|\[metadata\])\[(.*)$")


def check_metadata_keys(pairs: Iterable[tuple[str, str]]) -> None:
    """Refuse metadata keys holding ``[`` or ``]`` (``metadata[a[b]]``), as Stripe does.

    Checked on the raw pairs: once decoded, such a key reads as a nested hash.

    Raises:
        StripeLocalError: 400 naming the parameter.
    """
    for key, _value in pairs:
        match = _METADATA_KEY.search(key)
        if match and not re.fullmatch(r"[^\[\]]*\]", match.group(1)):
            raise invalid_request("Metadata keys may not contain square brackets ('[' and ']').", param=key)


def decode_body(body: bytes) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Decode a form body into its raw pairs and nested parameters."""
    pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    return pairs, decode_pairs(pairs)


def check_allowed(params: Mapping[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    """Refuse keys outside ``allowed`` like Stripe does.

    Raises:
        StripeLocalError: ``parameter_unknown`` for the first unknown key.
    """
    allowed_set = set(allowed)
    for key in params:
        if key not in allowed_set:
            raise unknown_param(f"{prefix}[{key}]" if prefix else key)


def get_str(
    params: Mapping[str, Any],
    key: str,
    *,
    param: str | None = None,
    required: bool = False,
    max_length: int | None = None,
) -> str | None:
    """Read a string parameter (empty string counts as unset)."""
    name = param or key
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(value, str):
        raise invalid_request(f"Invalid string: {value!r}", param=name)
    if max_length is not None and len(value) > max_length:
        raise invalid_request(
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            param=name,
        )
    return value


def get_int(
    params: Mapping[str, Any],
    key: str,
    *,
    param: str | None = None,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """Read an integer parameter."""
    name = param or key
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid_request(f"Invalid integer: {value}", param=name)
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid_request(f"This value must be greater than or equal to {minimum}.", param=name)
    if maximum is not None and number > maximum:
        raise invalid_request(f"This value must be less than or equal to {maximum}.", param=name)
    return number


def get_bool(params: Mapping[str, Any], key: str, *, param: str | None = None) -> bool | None:
    """Read a boolean parameter (``true``/``false``)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if value in ("true", "True", "1"):
        return True
    if value in ("false", "False", "0"):
        return False
    raise invalid_request(f"Invalid boolean: {value}", param=param or key)


def get_dict(params: Mapping[str, Any], key: str, *, param: str | None = None) -> dict[str, Any]:
    """Read a hash parameter (an empty string means an empty hash)."""
    value = params.get(key)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid_request(f"Invalid object: {key} must be a hash", param=param or key)
    return value


def get_list(params: Mapping[str, Any], key: str, *, param: str | None = None) -> list[Any]:
    """Read an array parameter (a single value counts as a one-element array)."""
    value = params.get(key)
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise invalid_request(f"Invalid array: {key} must be an array", param=param or key)


def get_metadata(params: Mapping[str, Any], key: str = "metadata") -> dict[str, str]:
    """Read and check a ``metadata`` hash (50 keys, 40-char keys, 500-char values)."""
    metadata = get_dict(params, key)
    if len(metadata) > 50:
        raise invalid_request("Metadata can have up to 50 keys.", param=key)
    cleaned: dict[str, str] = {}
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise invalid_request(f"Invalid metadata value for {k}", param=f"{key}[{k}]")
        if "[" in k or "]" in k:
            raise invalid_request(
                "Metadata keys may not contain square brackets ('[' and ']').", param=f"{key}[{k}]"
            )
        if len(k) > 40:
            raise invalid_request("Metadata keys can have up to 40 characters.", param=f"{key}[{k}]")
        if len(v) > 500:
            raise invalid_request("Metadata values can have up to 500 characters.", param=f"{key}[{k}]")
        if v != "":
            cleaned[k] = v
    return cleaned


def update_metadata(
    current: Mapping[str, str], params: Mapping[str, Any], key: str = "metadata"
) -> dict[str, str]:
    """Apply a ``metadata`` update the way Stripe does.

    Keys with a value are set, keys posted with an empty value are removed,
    other keys are kept; ``metadata=""`` removes every key.

    Returns:
        The new metadata (``current`` when ``key`` is absent).

    Raises:
        StripeLocalError: Invalid keys or values, or more than 50 keys after the update.
    """
    if key not in params:
        return dict(current)
    if params.get(key) == "":
        return {}
    merged = dict(current)
    merged.update(get_metadata(params, key))
    for k, v in get_dict(params, key).items():
        if v == "":
            merged.pop(k, None)
    if len(merged) > 50:
        raise invalid_request("Metadata can have up to 50 keys.", param=key)
    return merged


def get_expand(params: Mapping[str, Any]) -> set[str]:
    """Read ``expand[]`` into a set of dotted paths."""
    return {str(v) for v in get_list(params, "expand") if v}


def check_expand(params: Mapping[str, Any], expandable: Iterable[str]) -> set[str]:
    """Read ``expand[]`` and refuse a path outside ``expandable`` as Stripe does.

    Raises:
        StripeLocalError: 400 "This property cannot be expanded (path)." for the first unknown path.
    """
    expand = get_expand(params)
    unknown = sorted(expand - set(expandable))
    if unknown:
        raise invalid_request(f"This property cannot be expanded ({unknown[0]}).", param="expand")
    return expand


def created_filter(params: dict[str, Any]) -> Callable[[int], bool]:
    """Read a list's ``created`` filter (an exact time or ``gt``/``gte``/``lt``/``lte``) into a
    predicate over a creation time."""
    created = params.get("created")
    bounds: dict[str, int] = {}
    if isinstance(created, dict):
        check_allowed(created, {"gt", "gte", "lt", "lte"}, "created")
        for op in ("gt", "gte", "lt", "lte"):
            value = get_int(created, op, param=f"created[{op}]")
            if value is not None:
                bounds[op] = value
    elif created not in (None, ""):
        value = get_int(params, "created")
        if value is not None:
            bounds["gte"] = bounds["lte"] = value

    def accept(when: int) -> bool:
        return not (
            ("gt" in bounds and when <= bounds["gt"])
            or ("gte" in bounds and when < bounds["gte"])
            or ("lt" in bounds and when >= bounds["lt"])
            or ("lte" in bounds and when > bounds["lte"])
        )

    return accept
