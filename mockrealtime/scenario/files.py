"""Scenario files: reading them, writing what they compile to, and a cache of compiled cassettes.

A scenario file is YAML whose first key is ``scenario: 1`` (a cassette's is ``version: 1``), so
anything that takes a cassette file can tell the two apart by reading it. The cassettes a scenario
compiles to are written under a cache directory keyed by a hash of the scenario, the WAV files it
names and the compiler's version: a scenario compiles once per change, whichever process asks, and
what it compiled to can be read, shown and validated like any cassette.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time

import yaml

from mockrealtime.core.cassette import CassetteLoader, _leading_comment, cassette_name
from mockrealtime.core.cassette_writer import save
from mockrealtime.errors import ScenarioError
from mockrealtime.scenario import model as m
from mockrealtime.scenario.compiler import compile_scenario

#: Bump when the compiler's output changes, so cached compilations are not reused.
COMPILER_VERSION = "1"
_FIRST_KEY = re.compile(r"^scenario\s*:", re.MULTILINE)
_memo: dict[str, tuple[tuple[int, int], list[str]]] = {}


def is_scenario_file(path: str) -> bool:
    """True when ``path`` is a YAML file holding a scenario rather than a cassette."""
    if not path.endswith((".yaml", ".yml")) or not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        head = f.read(4096)
    for line in head.splitlines():
        if line.strip() and not line.startswith("#") and line.rstrip() != "---":
            return bool(_FIRST_KEY.match(line))
    return False


def scenario_name(path: str) -> str:
    return cassette_name(path)


def load_scenario(path: str) -> m.Scenario:
    """Parse a scenario file; its leading comment is the description of what it compiles to."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ScenarioError(path, "$", f"cannot read: {exc.strerror}") from None
    try:
        # plain data with alias expansion capped, as for cassettes: a scenario stands where one does
        doc = yaml.load(text, Loader=CassetteLoader)
    except yaml.YAMLError as exc:
        raise ScenarioError(path, "$", f"not valid YAML: {exc}") from None
    except RecursionError:
        raise ScenarioError(path, "$", "not valid YAML: nested too deeply") from None
    return m.from_document(doc, name=scenario_name(path), path=path, description=_leading_comment(text),
                           base_dir=os.path.dirname(os.path.abspath(path)))


def cassette_file_name(name: str, dialect: str) -> str:
    return f"{name}.yaml" if dialect == "ga" else f"{name}.{dialect}.yaml"


def write_cassettes(scenario: m.Scenario, directory: str, path: str = "<scenario>") -> list[str]:
    """Compile and save: ``NAME.yaml`` (GA) and ``NAME.beta.yaml`` with their WAV sidecars."""
    compiled = compile_scenario(scenario, path)
    targets = {d: os.path.join(directory, cassette_file_name(scenario.name, d)) for d in compiled}
    for target in targets.values():
        if is_scenario_file(target):
            raise ScenarioError(path, "$", f"compiling would overwrite the scenario {target}; write the cassettes elsewhere (-o DIR)")
    written = []
    for dialect, cassette in compiled.items():
        written += save(cassette, targets[dialect])
    return written


def compile_file(path: str, directory: str) -> list[str]:
    """``mockrealtime compile``: the files written for the scenario at ``path``."""
    return write_cassettes(load_scenario(path), directory, path)


#: Compiled scenarios kept in the cache: any used in the last ``CACHE_MAX_AGE_S``, and beyond that
#: the ``CACHE_KEEP`` most recently used; older ones are removed when a scenario is compiled.
CACHE_MAX_AGE_S = 7 * 24 * 3600
CACHE_KEEP = 64
#: A staging folder older than this belongs to a compile that was killed.
_STAGING_MAX_AGE_S = 3600


def prune_cache(now: float | None = None) -> list[str]:
    """Remove compiled scenarios not used for ``CACHE_MAX_AGE_S`` beyond the ``CACHE_KEEP`` most
    recently used (never one this process compiled or read), and leftovers of killed compiles;
    returns what was removed."""
    root = cache_dir()
    try:
        names = os.listdir(root)
    except OSError:
        return []
    now = time.time() if now is None else now
    ours = {os.path.dirname(f) for _, files in _memo.values() for f in files}
    entries = []
    removed = []
    for name in names:
        full = os.path.join(root, name)
        try:
            age = now - os.stat(full).st_mtime
        except OSError:
            continue
        if name.startswith("."):
            if age > _STAGING_MAX_AGE_S:
                shutil.rmtree(full, ignore_errors=True)
                removed.append(full)
        elif full not in ours:
            entries.append((age, full))
    entries.sort()
    for age, full in entries[CACHE_KEEP:]:
        if age > CACHE_MAX_AGE_S:
            shutil.rmtree(full, ignore_errors=True)
            removed.append(full)
    return removed


def cache_dir() -> str:
    """Per user, in the temporary directory: entries are content-addressed, so sharing is safe."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"mockrealtime-{uid}-scenarios")


def _fingerprint(path: str, scenario: m.Scenario) -> str:
    h = hashlib.sha256(COMPILER_VERSION.encode())
    with open(path, "rb") as f:
        h.update(f.read())
    h.update(os.path.basename(path).encode())
    for steps in scenario.session_steps():
        for step in steps:
            if isinstance(step, m.Speak) and step.wav is not None:
                try:
                    with open(os.path.join(scenario.base_dir, step.wav), "rb") as f:
                        h.update(f.read())
                except OSError:
                    pass  # the compiler names the missing file
    return h.hexdigest()[:32]


def compiled_files(path: str) -> list[str]:
    """The cassette files ``path`` compiles to (one per dialect), compiled now unless cached."""
    path = os.path.abspath(path)
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _memo.get(path)
    if hit is not None and hit[0] == stamp and all(os.path.isfile(f) for f in hit[1]):
        return hit[1]
    scenario = load_scenario(path)
    target = os.path.join(cache_dir(), _fingerprint(path, scenario))
    names = [cassette_file_name(scenario.name, d) for d in scenario.dialects]
    files = [os.path.join(target, n) for n in names]
    if all(os.path.isfile(f) for f in files):
        try:
            os.utime(target)  # used now: pruning goes by last use
        except OSError:
            pass
    else:
        os.makedirs(cache_dir(), exist_ok=True)
        prune_cache()
        staging = tempfile.mkdtemp(dir=cache_dir(), prefix=".compiling-")
        try:
            write_cassettes(scenario, staging, path)
            try:
                os.rename(staging, target)  # atomic: another process sees all of it or nothing
            except OSError:
                if not all(os.path.isfile(f) for f in files):  # not a concurrent compile that won
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _memo[path] = (stamp, files)
    return files
