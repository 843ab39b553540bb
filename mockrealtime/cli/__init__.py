"""``mockrealtime`` command line: ``serve``, ``record``, ``compile``, ``validate`` and ``show``.

Every setting is a field of :class:`~mockrealtime.config.ServerConfig`: a flag here, else its
``MOCKREALTIME_*`` variable, else the default (:meth:`ServerConfig.from_env`).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from collections.abc import Sequence

from mockrealtime import __version__
from mockrealtime.config import ServerConfig
from mockrealtime.errors import MockRealtimeError


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from mockrealtime.net.record import bind_socket
    from mockrealtime.net.server import STATE, make_app, settle_gc_for_serving
    from mockrealtime.net.tls import client_recipes, server_tls, wants_tls

    config = ServerConfig.from_env(
        host=args.host, port=args.port, cassettes=args.cassettes, default_cassette=args.default,
        pace=args.pace, match=args.match,
        validate=False if args.no_validate else None,
        strict=True if args.strict else None, api_key=args.api_key, max_session_s=args.max_session_s,
        beta_retired=True if args.beta_retired else None, max_frame_bytes=args.max_frame_bytes,
        admin=False if args.no_admin else None, admin_token=args.admin_token,
        allowed_origins=",".join(args.allowed_origin) or None,
        tls=True if args.tls else None, certfile=args.certfile, keyfile=args.keyfile,
        on_divergence=args.on_divergence, stall_timeout_s=args.stall_timeout, keep_finished=args.keep_finished,
        frame_cache_mb=args.frame_cache_mb,
    )
    tls = None
    if wants_tls(config):
        tls = server_tls(config)
    app = make_app(config)
    library = app[STATE].library
    library.check_default()  # a typo in --default fails now, not on every connection
    sock = bind_socket(config.host, config.port)  # bound first, so that port 0 can be announced
    port = sock.getsockname()[1]
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    scheme = "s" if tls is not None else ""
    base = f"http{scheme}://{host}:{port}"
    ws_base = f"ws{scheme}://{host}:{port}"
    print(f"mockrealtime {__version__} serving {library.source}", flush=True)
    print(f"  cassettes: {', '.join(library.names()) or '(none)'} (default: {library.default_name})")
    print(f"  endpoint:  {ws_base}/v1/realtime   health: {base}/healthz")
    if tls is not None:
        print(f"  TLS: {tls.source}" + (f"; trust the CA in {tls.ca_file}" if tls.ca_file else ""))
        for line in client_recipes(tls.ca_file or "<your CA file>", ws_base):
            print(f"    {line}")
    else:
        print("  point the openai SDK at it:")
        print(f'    AsyncOpenAI(api_key="sk-test", websocket_base_url="{ws_base}/v1")')
    print(f'    a named cassette: websocket_base_url="{ws_base}/c/<name>/v1"')
    if not config.admin_enabled and config.admin is None:
        print("  admin API: off, as the server listens beyond loopback without a token; to turn it on, set")
        print("    MOCKREALTIME_ADMIN_TOKEN=<a secret> (docker run -e ...) or --admin-token, and send it as 'Authorization: Bearer <secret>'")
    elif not config.admin_enabled:
        print("  admin API: off")
    elif config.admin_token:
        print(f"  admin API: {base}/__admin/ (send 'Authorization: Bearer <the admin token>')")
    else:
        print(f"  admin API: {base}/__admin/ (loopback only; set MOCKREALTIME_ADMIN_TOKEN to require a token)")
    print(f"  ephemeral keys: POST {base}/v1/realtime/client_secrets (GA), /v1/realtime/sessions (beta)")
    sys.stdout.flush()
    settle_gc_for_serving()
    web.run_app(app, sock=sock, print=None, access_log=None, ssl_context=tls.context if tls is not None else None)
    return 0


def _record(args: argparse.Namespace) -> int:
    from aiohttp import web

    from mockrealtime.net.record import RECORDER, bind_socket, make_record_app

    config = ServerConfig.from_env(
        upstream=args.upstream, output=args.output, host=args.host, port=args.port,
        redact_paths=tuple(args.redact_path) or None, redact_patterns=tuple(args.redact_pattern) or None,
        checkpoint_s=args.checkpoint_s,
    )
    app = make_record_app(config)
    state = app[RECORDER]
    sock = bind_socket(config.host, config.port)
    port = sock.getsockname()[1]
    ws_base = f"ws://{'127.0.0.1' if config.host in ('0.0.0.0', '::') else config.host}:{port}"
    print(f"mockrealtime {__version__} recording {state.upstream_label} -> {state.output}", flush=True)
    print(f"  listening: {ws_base}   health: {ws_base.replace('ws://', 'http://')}/healthz")
    print("  point the client at it, with its real key:")
    print(f'    AsyncOpenAI(websocket_base_url="{ws_base}/v1")')
    print(f'    a backend minting ephemeral keys: base_url="{ws_base.replace("ws://", "http://")}/v1"')
    print(f"  the cassette grows as sessions go: saved when each ends, every {config.checkpoint_s:g} s while open, and on Ctrl-C / SIGTERM", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=2 * config.close_timeout_s)
    if state.saved_paths:
        print(f"mockrealtime record: saved {', '.join(state.saved_paths)}", flush=True)
    else:
        print("mockrealtime record: no connection was recorded, nothing written", flush=True)
    if state.last_error is not None:
        print(f"mockrealtime record: a save failed, and what it held is not in the cassette: {state.last_error}", file=sys.stderr, flush=True)
        return 1
    return 0


def _named_paths(given: list[str]) -> list[str]:
    """Paths as given, a served cassette's name as its files (as ``show`` takes it), a scenario as the
    cassettes it compiles to."""
    import os

    from mockrealtime.core.library import CassetteLibrary, cassette_files

    out: list[str] = []
    library = None
    for item in given:
        if not os.path.exists(item) and os.sep not in item and not item.endswith((".yaml", ".yml")):
            library = library or CassetteLibrary(ServerConfig.from_env().cassettes)
            entry = next((e for e in library.available() if e["name"] == item), None)
            if entry is not None:
                out += [library.resolve(item, d).path or item for d in entry["dialects"]]
                continue
        out += cassette_files(item) if os.path.isfile(item) else [item]
    return out


def _validate(args: argparse.Namespace) -> int:
    import json

    from mockrealtime.core.checks import cassette_paths, validate_file

    paths = cassette_paths(_named_paths(args.paths))
    if not paths:
        print(f"mockrealtime validate: no cassettes in {' '.join(args.paths)}", file=sys.stderr)
        return 1
    reports = [validate_file(p) for p in paths]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False))
    else:
        for report in reports:
            print(report.summary())
            for finding in report.findings:
                print(f"  {finding}")
        if len(reports) > 1:
            failed = sum(not r.ok(args.strict) for r in reports)
            print(f"{len(reports)} cassettes, {failed} failed" if failed else f"{len(reports)} cassettes, all ok")
    return 0 if all(r.ok(args.strict) for r in reports) else 1


def _compile(args: argparse.Namespace) -> int:
    import filecmp
    import os
    import tempfile

    from mockrealtime.scenario import compile_file, is_scenario_file

    for path in args.scenarios:
        if not is_scenario_file(path):
            print(f"mockrealtime compile: {path} is not a scenario file (its first key must be 'scenario: 1')", file=sys.stderr)
            return 2
    out = args.output
    if not args.check:
        for path in args.scenarios:
            for written in compile_file(path, out):
                print(os.path.relpath(written))
        return 0
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.scenarios:
            for written in compile_file(path, tmp):
                name = os.path.basename(written)
                target = os.path.join(out, name)
                if not os.path.isfile(target) or not filecmp.cmp(written, target, shallow=False):
                    stale.append(target)
    for target in stale:
        print(f"stale: {os.path.relpath(target)} (run: mockrealtime compile {' '.join(args.scenarios)} -o {out})")
    if not stale:
        print(f"{len(args.scenarios)} scenario(s): the cassettes in {out} are what they compile to")
    return 1 if stale else 0


def _show(args: argparse.Namespace) -> int:
    import os

    from mockrealtime.core.cassette import load
    from mockrealtime.core.library import CassetteLibrary
    from mockrealtime.core.timeline import render

    if os.path.exists(args.path) or os.sep in args.path:
        from mockrealtime.core.library import cassette_files

        files = cassette_files(args.path) if os.path.isfile(args.path) else [args.path]
        variants = [load(f) for f in files]
        cassette = next((c for c in variants if c.dialect == args.dialect), variants[0])
    else:  # a name: the bundled cassette (or MOCKREALTIME_CASSETTES') in the dialect asked for
        cassette = CassetteLibrary(ServerConfig.from_env().cassettes).resolve(args.path, args.dialect)
    if args.session is not None and not 0 <= args.session < len(cassette.sessions):
        print(f"mockrealtime show: {cassette.label} has sessions 0 to {len(cassette.sessions) - 1}", file=sys.stderr)
        return 2
    sessions = None if args.session is None else [args.session]
    if not args.html:
        if args.output:
            print("mockrealtime show: -o/--output goes with --html", file=sys.stderr)
            return 2
        sys.stdout.write(render(cassette, sessions))
        return 0
    from mockrealtime.core.timeline_html import render_cassette

    page = render_cassette(cassette, sessions)
    if args.output == "-":
        sys.stdout.write(page)
        return 0
    output = args.output or os.path.basename(cassette.path or cassette.name).rsplit(".", 1)[0] + ".html"
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        print(f"mockrealtime show: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"mockrealtime show: wrote {output} ({len(page.encode()) // 1024} KiB); open it in a browser")
    return 0


def _is_cassette_path(word: str) -> bool:
    """``mockrealtime my.yaml`` serves a file; ``mockrealtime compil`` is a typo, not a path."""
    return word.startswith("-") or os.path.exists(word) or os.sep in word or word.endswith((".yaml", ".yml"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mockrealtime", description="A stand-in for the OpenAI Realtime API that replays recorded sessions.")
    parser.add_argument("--version", action="version", version=f"mockrealtime {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="log connections (-v) and every event (-vv)")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", parents=[common], help="serve cassettes over WebSocket (the default command)")
    serve.add_argument("cassettes", nargs="?", default=None, help="a cassette file or a directory of them (default: the bundled ones)")
    serve.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--default", default=None, metavar="NAME", help="cassette for connections that name none")
    serve.add_argument("--pace", type=float, default=None, help="0 = as fast as possible (default), 1 = recorded timing")
    serve.add_argument("--match", default=None, choices=("default", "type", "exact"), help="how client events are matched")
    serve.add_argument("--no-validate", action="store_true", help="do not check client events against the API's schemas")
    serve.add_argument("--strict", action="store_true", help="every client event must be in the recording (no housekeeping answers)")
    serve.add_argument("--api-key", default=None, help="require this key; a wrong one gets invalid_api_key and close 3000")
    serve.add_argument("--max-session-s", type=float, default=None, help="end sessions with session_expired after this long")
    serve.add_argument("--beta-retired", action="store_true", help="refuse beta connections with beta_api_shape_disabled")
    serve.add_argument("--max-frame-bytes", type=int, default=None, metavar="N", help="largest client frame; a larger one gets an error and close 1009 (default 16 MiB)")
    serve.add_argument("--admin-token", default=None, metavar="SECRET", help="require 'Authorization: Bearer SECRET' on /__admin (required beyond loopback; MOCKREALTIME_ADMIN_TOKEN)")
    serve.add_argument("--no-admin", action="store_true", help="do not serve the admin API")
    serve.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN", help="let pages from ORIGIN (e.g. https://app.example) open the WebSocket; loopback pages always may; * for any (repeatable)")
    serve.add_argument("--tls", action="store_true", help="serve wss:// with a throwaway CA for loopback (prints the CA file to trust)")
    serve.add_argument("--certfile", default=None, metavar="PEM", help="serve wss:// with this certificate (chain)")
    serve.add_argument("--keyfile", default=None, metavar="PEM", help="the private key of --certfile, if not in it")
    serve.add_argument("--on-divergence", default=None, choices=("error", "close"), help="after a divergence's error event: go on (error, default) or close 4000")
    serve.add_argument("--stall-timeout", type=float, default=None, metavar="SECONDS", help="report a stall after this long waiting on a client event the recording needs (default 10; 0 = off)")
    serve.add_argument("--keep-finished", type=int, default=None, metavar="N", help="finished connections the admin API keeps a summary of (default 1000; older ones are forgotten)")
    serve.add_argument("--frame-cache-mb", type=int, default=None, metavar="MIB", help="serialised frames kept for replays (default 256; beyond it frames are serialised when sent)")
    serve.set_defaults(func=_serve)
    record = sub.add_parser("record", parents=[common], help="relay clients to the real Realtime API and record a cassette")
    record.add_argument("--output", "-o", default=None, metavar="PATH", help="cassette to write (NAME.yaml); every connection becomes one of its sessions")
    record.add_argument("--upstream", default=None, metavar="URL", help="ws:// or wss:// URL of the API (default wss://api.openai.com/v1/realtime); without a path the client's path passes through (Azure)")
    record.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    record.add_argument("--port", type=int, default=None, help="port (default 8080; 0 picks a free one)")
    record.add_argument("--redact-path", action="append", default=[], metavar="[TYPE:]JSONPATH", help="blank a field in every event, or in events of TYPE (repeatable)")
    record.add_argument("--redact-pattern", action="append", default=[], metavar="REGEX", help="replace every match in any event string (repeatable)")
    record.add_argument("--checkpoint-s", type=float, default=None, metavar="SECONDS", help="save open sessions this often; a crash loses at most that much (default 2)")
    record.set_defaults(func=_record)
    validate = sub.add_parser("validate", parents=[common], help="check cassettes: format, event types per dialect, references, secrets")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="cassette or scenario files, directories of cassettes, or served cassette names")
    validate.add_argument("--strict", action="store_true", help="fail on warnings too")
    validate.add_argument("--json", action="store_true", help="print the findings as JSON")
    validate.set_defaults(func=_validate)
    compile_ = sub.add_parser("compile", parents=[common], help="compile scenario files into cassettes (and their WAV sidecars)",
                              description="Compile scenario files (YAML starting with 'scenario: 1') into cassettes: "
                                          "NAME.yaml (GA) and NAME.beta.yaml, with WAV sidecars.")
    compile_.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files")
    compile_.add_argument("--output", "-o", default=".", metavar="DIR", help="directory to write the cassettes to (default: the current one)")
    compile_.add_argument("--check", action="store_true", help="write nothing; exit 1 if the cassettes in DIR differ from what the scenarios compile to")
    compile_.set_defaults(func=_compile)
    show = sub.add_parser("show", parents=[common], help="print a cassette as a conversation timeline (--html: as a page to look at and listen to)")
    show.add_argument("path", metavar="PATH", help="a cassette file, or the name of a served cassette")
    show.add_argument("--session", type=int, default=None, help="only this session (default: all)")
    show.add_argument("--dialect", choices=("ga", "beta"), default="ga", help="for a name: which variant (default ga)")
    show.add_argument("--html", action="store_true", help="write one self-contained HTML page: a time axis, the lines, audio players")
    show.add_argument("--output", "-o", default=None, metavar="FILE", help="with --html: where to write it (default NAME.html here; - for stdout)")
    show.set_defaults(func=_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = set(parser._subparsers._group_actions[0].choices or ())  # type: ignore[union-attr]
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version")):
        if argv and not _is_cassette_path(argv[0]):
            close = difflib.get_close_matches(argv[0], sorted(commands), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            print(f"mockrealtime: unknown command {argv[0]!r}{hint}; commands: {', '.join(sorted(commands))}. "
                  "To serve a cassette file or folder, give its path (it must exist).", file=sys.stderr)
            return 2
        argv = ["serve", *argv]  # serving is what a bare `mockrealtime` does
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, 'verbose', 0) > 1 else logging.INFO if getattr(args, 'verbose', 0) else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    from mockrealtime.net.security import install_log_scrubbing

    install_log_scrubbing(handlers=True)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except MockRealtimeError as exc:
        print(f"mockrealtime: {exc}", file=sys.stderr)
        return 1
