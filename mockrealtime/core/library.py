"""Finding cassettes by name: one file, or a directory of them, with GA and beta variants.

A cassette's name is its file stem without a dialect suffix: ``hello.yaml`` and ``hello.beta.yaml``
are both ``hello``; a connection gets the variant for the dialect it negotiated. Names are looked up
in an index of the directory, never joined into a path, so no name can escape it.

A *scenario* file (:mod:`mockrealtime.scenario`) may stand wherever a cassette file does: it is
compiled on load into one cassette per dialect (cached until it changes), and those are what get
indexed, served and shown. :func:`cassette_files` is that one step, for every caller.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any

from mockrealtime.core import cassette as _cassette
from mockrealtime.core.cassette import Cassette
from mockrealtime.errors import CassetteNotFoundError

DEFAULT_NAME = "hello"


def cassette_files(path: str) -> list[str]:
    """The cassette files ``path`` stands for: itself, or what the scenario it holds compiles to."""
    from mockrealtime.scenario import compiled_files, is_scenario_file

    return compiled_files(path) if is_scenario_file(path) else [path]


def bundled_cassette_dir() -> str:
    """The cassettes shipped with mockrealtime (inside the wheel, or the source checkout's)."""
    packaged = resources.files("mockrealtime").joinpath("_bundled_cassettes")
    if packaged.is_dir():
        return str(packaged)
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "cassettes")


_DIALECT_LINE = re.compile(r"^dialect: *(ga|beta) *$", re.MULTILINE)


def _header_dialect(path: str) -> str | None:
    """The ``dialect:`` a cassette file states near its top, without loading it (None if not found)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(8192)
    except OSError:
        return None
    found = _DIALECT_LINE.search(head)
    return found.group(1) if found else None


class CassetteLibrary:
    def __init__(self, source: str | None = None, default: str | None = None) -> None:
        self.source = os.path.abspath(source or bundled_cassette_dir())
        self._default = default
        self._index: dict[str, dict[str, str]] = {}
        #: Names given to single files (the pytest plugin's per-test routes); not listed by names().
        self._registered: dict[str, dict[str, str]] = {}
        self._stamp: int | None = None
        self.refresh()

    def refresh(self) -> None:
        """Re-read the directory if it changed; loads every cassette so broken ones fail now (but
        the bundled ones, checked by CI)."""
        if os.path.isdir(self.source):
            stamp = os.stat(self.source).st_mtime_ns
            if stamp == self._stamp:
                return
            paths = sorted(
                os.path.join(self.source, f)
                for f in os.listdir(self.source)
                if f.endswith((".yaml", ".yml")) and not f.startswith(".")
            )
        elif os.path.isfile(self.source):
            stamp, paths = -1, [self.source]
            if self._stamp == stamp:
                return
        else:
            raise CassetteNotFoundError(self.source, [], "no such file or directory")
        # The bundled cassettes are checked by CI: indexed by their header, loaded when first asked
        # for (parsing all of them was most of what `serve` did before its first /healthz).
        bundled = os.path.realpath(self.source) == os.path.realpath(bundled_cassette_dir())
        index: dict[str, dict[str, str]] = {}
        for source in paths:
            for path in cassette_files(source):
                dialect = _header_dialect(path) if bundled else None
                if dialect is None:
                    dialect = _cassette.load(path).dialect
                index.setdefault(_cassette.cassette_name(path), {})[dialect] = path
        self._index, self._stamp = index, stamp

    def names(self) -> list[str]:
        return sorted(self._index)

    def available(self) -> list[dict[str, Any]]:
        return [{"name": n, "dialects": sorted(self._index[n])} for n in self.names()]

    @property
    def default_name(self) -> str:
        if self._default:
            return self._default
        if DEFAULT_NAME in self._index or not self._index:
            return DEFAULT_NAME
        return self.names()[0]

    def check_default(self) -> None:
        """Fail now, listing what exists, when the default cassette is not there (a typo in
        ``--default`` would otherwise 404 every connection that names none)."""
        name = self.default_name
        if self._index and name not in self._index and name not in self._registered:
            raise CassetteNotFoundError(name, self.names(), "the default cassette")

    def register(self, name: str, paths: Iterable[str]) -> dict[str, str]:
        """Serve these cassette files (dialect variants of one cassette) under ``name``.

        Each file is loaded now, so a broken one fails here; returns {dialect: path}. A registered
        name takes precedence over a file of the same name in the directory.
        """
        variants: dict[str, str] = {}
        for path in (p for source in paths for p in cassette_files(source)):
            c = _cassette.load(path)
            variants[c.dialect] = os.path.abspath(path)
        self._registered[name] = variants
        return variants

    def unregister(self, name: str) -> None:
        self._registered.pop(name, None)

    def resolve(self, name: str | None, dialect: str) -> Cassette:
        """The cassette a connection asked for (None: the default) in the dialect it speaks."""
        name = name or self.default_name
        variants = self._registered.get(name) or self._index.get(name)
        if variants is None:
            self.refresh()
            variants = self._index.get(name)
        if variants is None:
            raise CassetteNotFoundError(name, self.names())
        path = variants.get(dialect)
        if path is None:
            raise CassetteNotFoundError(
                name, self.names(), f"it exists only in the {', '.join(sorted(variants))} dialect, the client speaks {dialect}"
            )
        return _cassette.load(path)
