"""Every exception mockrealtime raises, under one base.

::

    MockRealtimeError
    ├── CassetteError
    │   ├── CassetteFormatError      a cassette file is broken (names the file and the JSON path)
    │   │   └── ScenarioError        a scenario file cannot be compiled (names the file and the step)
    │   ├── CassetteNotFoundError    no cassette by that name (lists what is available)
    │   └── SecretLeftError          a recording still holds something that looks like a key;
    │                                nothing was saved (names the JSON paths, never the values)
    ├── ConfigError                  a bad option, flag or environment variable
    └── DivergenceError (also an AssertionError)
                                     the live client departed from the recording; raised by the
                                     test-facing layers, carries the near-miss report

Core modules raise these and never touch a socket; the I/O layers turn them into HTTP answers,
``error`` events or test failures.
"""

from __future__ import annotations

import difflib


class MockRealtimeError(Exception):
    """Base of every mockrealtime error."""


class CassetteError(MockRealtimeError):
    """A cassette cannot be used."""


class CassetteFormatError(CassetteError):
    """A cassette file does not follow the format; says which file and where in it."""

    def __init__(self, file: str, json_path: str, message: str) -> None:
        self.file = file
        self.json_path = json_path
        self.message = message
        super().__init__(f"{file}: {json_path}: {message}")


class ScenarioError(CassetteFormatError):
    """A scenario cannot be compiled into a cassette; says which file and which step."""


class CassetteNotFoundError(CassetteError):
    """No cassette answers to a name."""

    def __init__(self, name: str, available: list[str], detail: str = "") -> None:
        self.name = name
        self.available = available
        #: The names closest to the one asked for (a typo's likely target), best first.
        self.closest = difflib.get_close_matches(name, available, n=3)
        listing = ", ".join(available) if available else "(none)"
        extra = f" ({detail})" if detail else ""
        hint = f" (did you mean {' or '.join(repr(c) for c in self.closest)}?)" if self.closest else ""
        super().__init__(f"no cassette named {name!r}{extra}{hint}; available: {listing}")


class SecretLeftError(CassetteError):
    """Redaction missed something that looks like a secret, so the cassette was not saved.

    ``findings`` holds ``(json_path, what)`` pairs; the secret values themselves never go into the
    message, a log or a traceback.
    """

    def __init__(self, file: str, findings: list[tuple[str, str]]) -> None:
        self.file = file
        self.findings = findings
        listing = "".join(f"\n  {path}: {what}" for path, what in findings)
        super().__init__(
            f"{file}: refusing to save, {len(findings)} value(s) still look like secrets:{listing}\n"
            "nothing was written; scrub them with a redaction rule (--redact-path JSONPATH or "
            "--redact-pattern REGEX) and record again"
        )


class ConfigError(MockRealtimeError):
    """An option, flag or environment variable has a value mockrealtime cannot use."""


class DivergenceError(MockRealtimeError, AssertionError):
    """The live client departed from the recording (raised where a test should fail)."""
