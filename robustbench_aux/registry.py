"""One small generic registry: models, methods and corruptions all use it.

>>> MODELS = Registry("model")
>>> @MODELS.register("resnet18", tags=("resnet",))
... def resnet18(**kw): ...
>>> MODELS.get("resnet18")        # the registered object
>>> MODELS.names("resnet*")       # wildcard listing
>>> MODELS.names(tag="resnet")    # by tag
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from robustbench_aux.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    tags: frozenset[str] = field(default_factory=frozenset)
    info: dict = field(default_factory=dict)


class Registry:
    """Name -> object, with tags, wildcard listing and "did you mean" errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str | None = None, *, tags: Iterable[str] = (), **info) -> Callable:
        """Decorator registering a function or class under ``name`` (default: its ``__name__``)."""

        def decorator(obj):
            key = name or obj.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = Entry(key, obj, frozenset(tags), dict(info))
            return obj

        return decorator

    def add(self, name: str, obj: Any, *, tags: Iterable[str] = (), **info) -> None:
        """Register ``obj`` directly (for data entries that are not functions)."""
        self.register(name, tags=tags, **info)(obj)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UserError(self.unknown_message(name)) from None

    def get(self, name: str) -> Any:
        """The object registered as ``name``; a UserError with suggestions if there is none."""
        return self.entry(name).obj

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._entries, n=3, cutoff=0.5)
        known = ", ".join(sorted(self._entries))
        return f"unknown {self.kind} {name!r}{hint} (known: {known})"

    def names(self, pattern: str = "*", *, tag: str | None = None) -> list[str]:
        """Sorted names matching a shell-style ``pattern`` and, if given, carrying ``tag``."""
        return sorted(
            n
            for n, e in self._entries.items()
            if fnmatch.fnmatchcase(n, pattern) and (tag is None or tag in e.tags)
        )

    def tags(self, name: str) -> frozenset[str]:
        return self.entry(name).tags

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
