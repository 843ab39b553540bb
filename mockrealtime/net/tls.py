"""TLS for clients that only speak ``wss://`` (the openai npm package, browsers on https pages).

Two ways to get a server certificate:

* your own: ``--certfile`` / ``--keyfile`` (``MOCKREALTIME_CERTFILE`` / ``_KEYFILE``), loaded as is;
* a throwaway one: ``--tls`` alone makes a private CA and a certificate for ``127.0.0.1``,
  ``localhost`` and ``::1`` with `trustme <https://trustme.readthedocs.io>`_ (the ``tls`` extra),
  and writes the CA to ``ca.pem`` (in ``MOCKREALTIME_TLS_DIR``, else a fresh temporary directory)
  for clients to trust. The private keys are never written unless a directory is given (the
  container's ``/certs`` volume); the CA only signs for loopback and lives as long as the process.

Nothing here runs a server: :func:`server_tls` returns the ``ssl.SSLContext`` to serve with and
the CA file to announce; :func:`client_recipes` says how each ecosystem trusts that CA.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import ssl
import tempfile

from mockrealtime.config import ServerConfig
from mockrealtime.errors import ConfigError

#: What the throwaway certificate is valid for: loopback by every name a client may use.
IDENTITIES = ("127.0.0.1", "localhost", "::1")
CA_FILE = "ca.pem"


@dataclasses.dataclass(frozen=True)
class ServerTLS:
    context: ssl.SSLContext
    #: The CA clients must trust (None for your own certificate: you know its CA).
    ca_file: str | None
    #: Where the certificate came from, for the start-up banner.
    source: str


def wants_tls(config: ServerConfig) -> bool:
    return bool(config.tls or config.certfile)


def server_tls(config: ServerConfig) -> ServerTLS:
    """The TLS context ``config`` asks for (own certificate, else a throwaway CA); ConfigError if unusable."""
    if config.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(config.certfile, config.keyfile or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the TLS certificate {config.certfile}: {exc}") from None
        return ServerTLS(context, None, config.certfile)
    return throwaway_tls(config.tls_dir)


def throwaway_tls(directory: str | None = None) -> ServerTLS:
    """A fresh CA and a loopback certificate; the CA goes to ``<directory>/ca.pem``."""
    try:
        import trustme
    except ImportError:
        raise ConfigError(
            "--tls makes a throwaway certificate with trustme, which is not installed: "
            "pip install 'mockrealtime[tls]' (or give --certfile/--keyfile)"
        ) from None
    ca = trustme.CA()
    cert = ca.issue_cert(*IDENTITIES)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    if directory is None:
        directory = tempfile.mkdtemp(prefix="mockrealtime-tls-")
        atexit.register(shutil.rmtree, directory, True)  # the CA dies with the process: so does its file
    else:
        os.makedirs(directory, exist_ok=True)
        # a mounted volume (the container's /certs) also gets the server's pair, for other tools
        cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(directory, "server.pem"))
    ca_file = os.path.join(directory, CA_FILE)
    ca.cert_pem.write_to_path(ca_file)
    return ServerTLS(context, ca_file, "a throwaway CA (trustme)")


def client_context(ca_file: str) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` that trusts ``ca_file``, for Python clients."""
    return ssl.create_default_context(cafile=ca_file)


def client_recipes(ca_file: str, wss_base: str) -> list[str]:
    """How each ecosystem trusts the CA and reaches ``wss_base`` (``wss://host:port``), as banner lines."""
    https = "https" + wss_base[3:]
    return [
        f"Node (openai npm package): NODE_EXTRA_CA_CERTS={ca_file} with new OpenAI({{baseURL: \"{https}/v1\"}})",
        f"Python, any client using the system trust store: SSL_CERT_FILE={ca_file}",
        ("openai Python SDK: ctx = ssl.create_default_context(cafile=CA); "
         f"AsyncOpenAI(websocket_base_url=\"{wss_base}/v1\", http_client=DefaultAsyncHttpxClient(verify=ctx)); "
         "client.realtime.connect(model=..., websocket_connection_options={\"ssl\": ctx})"),
        f"curl: curl --cacert {ca_file} {https}/healthz",
    ]
