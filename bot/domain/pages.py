"""A page of a listing: what the list commands show, and how many there were in all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """The first `items` of a newest-first listing, and how many there were in all."""

    items: Sequence[T]
    total: int
