"""Scenarios: a conversation written in a few lines, compiled into a protocol-exact cassette.

The Python API and the YAML file say the same things (the step table is in
:mod:`mockrealtime.scenario.model`)::

    from mockrealtime.scenario import Assistant, Scenario, Setup, User, compile_scenario

    hello = Scenario("hello", setup=Setup(instructions="Keep answers short."),
                     steps=[User("Hello!"), Assistant("Hi there! How can I help?", audio_ms=1900)])
    cassettes = compile_scenario(hello)          # {"ga": Cassette, "beta": Cassette}

Sans-IO apart from reading and writing the files it is given: no aiohttp, no asyncio.
"""

from mockrealtime.scenario.compiler import compile_scenario, session_patch
from mockrealtime.scenario.errors import CATALOGUE
from mockrealtime.scenario.files import (
    compile_file,
    compiled_files,
    is_scenario_file,
    load_scenario,
    write_cassettes,
)
from mockrealtime.scenario.model import (
    Assistant,
    Scenario,
    ServerError,
    Setup,
    Speak,
    ToolOutput,
    Update,
    User,
    Wait,
    from_document,
)

__all__ = [
    "Assistant", "CATALOGUE", "Scenario", "ServerError", "Setup", "Speak", "ToolOutput", "Update", "User", "Wait",
    "compile_file", "compile_scenario", "compiled_files", "from_document", "is_scenario_file", "load_scenario",
    "session_patch", "write_cassettes",
]
