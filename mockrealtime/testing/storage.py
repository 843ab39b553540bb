"""Where a test's cassette lives on disk: names, dialect variants, sidecars, atomic install and removal.

A test's cassette is ``<cassette dir>/<name>.yaml`` (GA) and/or ``<name>.beta.yaml`` (beta), each
with its WAV sidecars ``<name>.s<session>.<client|server>.<format>.wav`` beside it. A recording is
written to a private temporary directory first and moved into place only when the test passes
(:func:`install_recording`), so a failed run never leaves a half-recorded cassette behind.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re
import shutil

from mockrealtime.core import cassette as _cassette
from mockrealtime.core.events import BETA
from mockrealtime.core.library import bundled_cassette_dir, cassette_files
from mockrealtime.errors import CassetteError
from mockrealtime.testing.report import display_path

EXTENSIONS = (".yaml", ".yml")
_VARIANT_SUFFIXES = ("", ".ga", ".beta")
_SIDECAR = r"\.s\d+\.(client|server)\.(pcm16|g711_ulaw|g711_alaw)\.wav$"


@dataclasses.dataclass(frozen=True)
class CassetteLocation:
    #: Where the test's cassette is, or would be recorded (``<dir>/<stem>.yaml``, ``.beta.yaml`` for beta).
    path: str
    #: The files that exist: the dialect variants to serve.
    files: tuple[str, ...]
    #: The files are bundled with mockrealtime (found by name, not in the cassette directory).
    bundled: bool = False
    #: The scenario file the files were compiled from (they sit in the compile cache); never recorded over.
    scenario: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.files)

    def variants(self, dialect: str | None) -> list[str]:
        """The files to serve: every variant, or the one of ``dialect`` (CassetteError if none)."""
        files = list(self.files)
        if dialect is not None:
            files = [f for f in files if _cassette.load(f).dialect == dialect]
            if not files:
                found = ", ".join(display_path(f) for f in self.files)
                raise CassetteError(f"mockrealtime: the cassette has no {dialect} variant (found {found})")
        return files

    def path_for(self, dialect: str) -> str:
        """Where this cassette's variant in ``dialect`` goes (``<stem>.yaml`` or ``<stem>.beta.yaml``)."""
        stem = self.path
        for suffix in (".beta.yaml", ".yaml", ".yml"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        return stem + (".beta.yaml" if dialect == BETA else ".yaml")


def default_cassette_name(test_name: str, class_name: str | None = None) -> str:
    """pytest-recording's default: ``Class.test_name`` with characters unsafe in file names replaced."""
    name = f"{class_name}.{test_name}" if class_name else test_name
    for ch in "<>?%*:|\"'/\\":
        name = name.replace(ch, "-")
    if len(name) > 200:  # file names are limited (255 bytes); keep it unique
        name = name[:160] + "..." + hashlib.md5(name.encode()).hexdigest()
    return name


def locate_cassette(
    cassette: str | None,
    dialect: str | None,
    *,
    cassette_dir: str,
    default_name: str,
    bundled_dir: str | None = None,
) -> CassetteLocation:
    """Find a test's cassette by the conventions (see the README's "pytest plugin" section).

    None: ``<cassette_dir>/<default_name>.yaml``. A path (it has a ``/`` or ends in ``.yaml``):
    relative to ``cassette_dir`` unless absolute. A bare name: ``<cassette_dir>/<name>.yaml``,
    else the bundled cassette of that name.
    """
    return _compiled(_locate(cassette, dialect, cassette_dir=cassette_dir, default_name=default_name, bundled_dir=bundled_dir))


def _compiled(location: CassetteLocation) -> CassetteLocation:
    """A scenario where a cassette was looked for: the cassettes it compiles to (compiled now, cached)."""
    for path in location.files:
        expanded = cassette_files(path)
        if expanded != [path]:
            return dataclasses.replace(location, files=tuple(expanded), scenario=path)
    return location


def _locate(cassette: str | None, dialect: str | None, *, cassette_dir: str, default_name: str,
            bundled_dir: str | None) -> CassetteLocation:
    suffix = ".beta.yaml" if dialect == BETA else ".yaml"
    if cassette is None:
        stem = os.path.join(cassette_dir, default_name)
        return CassetteLocation(stem + suffix, _variants(stem))
    if "/" in cassette or os.sep in cassette or cassette.endswith(EXTENSIONS):
        path = cassette if os.path.isabs(cassette) else os.path.join(cassette_dir, cassette)
        path = os.path.normpath(path)
        if path.endswith(EXTENSIONS):
            return CassetteLocation(path, (path,) if os.path.isfile(path) else ())
        return CassetteLocation(path + suffix, _variants(path))
    stem = os.path.join(cassette_dir, cassette)
    files = _variants(stem)
    if not files and bundled_dir is not None:
        bundled = _variants(os.path.join(bundled_dir, cassette))
        if bundled:
            return CassetteLocation(stem + suffix, bundled, bundled=True)
    return CassetteLocation(stem + suffix, files)


def close_names(path: str) -> list[str]:
    """Cassette names near the one at ``path`` (beside it, or bundled): what a typo meant."""
    wanted = os.path.basename(path).split(".")[0]
    names: set[str] = set()
    for folder in (os.path.dirname(path), bundled_cassette_dir()):
        if os.path.isdir(folder):
            names.update(f.split(".")[0] for f in os.listdir(folder) if f.endswith(EXTENSIONS))
    return difflib.get_close_matches(wanted, sorted(names - {wanted}), n=3)


def _variants(stem: str) -> tuple[str, ...]:
    return tuple(
        stem + variant + ext
        for variant in _VARIANT_SUFFIXES
        for ext in EXTENSIONS
        if os.path.isfile(stem + variant + ext)
    )


def _stem(name: str) -> str:
    for ext in EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def remove_cassette(location: CassetteLocation) -> None:
    """Delete a test's cassette: every variant and its audio (never a bundled one)."""
    if location.bundled:
        return
    for path in location.files:
        directory, stem = os.path.dirname(path), _stem(os.path.basename(path))
        pattern = re.compile(re.escape(stem) + _SIDECAR)
        for entry in os.listdir(directory):
            if pattern.match(entry):
                os.unlink(os.path.join(directory, entry))
        os.unlink(path)


def install_recording(source_dir: str, target_dir: str) -> list[str]:
    """Move a recorded cassette (YAML files and their WAV sidecars) into ``target_dir``.

    Sidecars first and each YAML last, each file atomically (copied beside its target, then
    renamed), so the YAML there never names audio that is missing; sidecars of the previous
    version of the same cassette that are no longer named are removed.
    """
    os.makedirs(target_dir, exist_ok=True)
    names = sorted(os.listdir(source_dir), key=lambda n: n.endswith(EXTENSIONS))
    written = []
    for name in names:
        target = os.path.join(target_dir, name)
        partial = os.path.join(target_dir, f".{name}.{os.getpid()}.tmp")
        shutil.copyfile(os.path.join(source_dir, name), partial)
        os.replace(partial, target)
        written.append(target)
    for name in names:
        if not name.endswith(EXTENSIONS):
            continue
        pattern = re.compile(re.escape(_stem(name)) + _SIDECAR)
        for entry in os.listdir(target_dir):
            if pattern.match(entry) and entry not in names:
                os.unlink(os.path.join(target_dir, entry))
    return written


def bundled_dir() -> str:
    return bundled_cassette_dir()
