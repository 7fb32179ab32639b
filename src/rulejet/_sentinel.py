"""MISSING: the value of a path that a document does not have."""

from __future__ import annotations

from typing import Final, final


@final
class Missing:
    """The type of MISSING; there is exactly one instance."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()
