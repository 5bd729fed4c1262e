"""Field types shared by the API's request and response models: bounded strings without NUL
(PostgreSQL cannot store it), JSON arrays and objects, filter lists from `a,b,c` queries."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue

T = TypeVar("T")


def _no_nul(value: Any) -> Any:
    """Refuse the NUL character and lone surrogates anywhere in a string, a list or an object
    (keys too): PostgreSQL cannot store them."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("may not contain the NUL character")
        if not value.isascii():
            try:  # a lone surrogate ("\ud800" in JSON) has no UTF-8 form to store
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("is not valid Unicode text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("not an id (a UUID)") from None


NoNul = AfterValidator(_no_nul)
# An id (uuid) sent as a string, in its canonical form.
Uuid = Annotated[
    str, Field(max_length=64, json_schema_extra={"format": "uuid"}), AfterValidator(_uuid)
]
Name50 = Annotated[str, Field(min_length=1, max_length=50), NoNul]
Name100 = Annotated[str, Field(min_length=1, max_length=100), NoNul]
Name255 = Annotated[str, Field(min_length=1, max_length=255), NoNul]
Text255 = Annotated[str, Field(max_length=255), NoNul]
LongText = Annotated[str, Field(max_length=100_000), NoNul]
JsonArray = Annotated[list[JsonValue], Field(max_length=10_000), NoNul]
JsonObject = Annotated[dict[str, JsonValue], NoNul]


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# `status=pending,in_progress` in a query: one or more values.
CommaList = Annotated[list[T], BeforeValidator(_comma_list), Field(min_length=1, max_length=50)]
