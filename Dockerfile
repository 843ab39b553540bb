# mockrealtime as a stand-in endpoint for the OpenAI Realtime API.
#
#   docker build -t mockrealtime .
#   docker run --rm -p 127.0.0.1:8080:8080 mockrealtime
#   # then: AsyncOpenAI(api_key="sk-test", websocket_base_url="ws://127.0.0.1:8080/v1")
#   # the admin API (/__admin) is served only with a token: -e MOCKREALTIME_ADMIN_TOKEN=<secret>
#
#   wss:// (the npm SDK, https pages): -e MOCKREALTIME_TLS=1 -v "$PWD/certs:/certs" writes a throwaway
#   CA for 127.0.0.1/localhost to ./certs/ca.pem; or mount your own and set MOCKREALTIME_CERTFILE/KEYFILE.
#
# Configuration is the MOCKREALTIME_* environment (the same ServerConfig the CLI builds);
# /cassettes holds what is served: the bundled cassettes, or your own mounted over them.
FROM python:3.12-slim

LABEL org.opencontainers.image.title="mockrealtime" \
      org.opencontainers.image.description="A stand-in for the OpenAI Realtime API that replays recorded sessions (cassettes)" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Installed from the build context with the tls extra (trustme, for MOCKREALTIME_TLS). The
# dependencies come as wheels, so no compiler is needed; hatchling lives only in pip's throwaway
# build environment.
COPY pyproject.toml README.md /src/
COPY mockrealtime /src/mockrealtime
COPY cassettes /src/cassettes
RUN pip install --no-cache-dir "/src[tls]" \
 && cp -r /src/cassettes /cassettes \
 && rm -rf /src \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mockrealtime \
 && mkdir /certs && chown 10001 /certs

# Inside the container only: listen on every interface so a published port reaches the server.
ENV MOCKREALTIME_HOST=0.0.0.0 \
    MOCKREALTIME_PORT=8080 \
    MOCKREALTIME_CASSETTES=/cassettes \
    MOCKREALTIME_TLS_DIR=/certs

# /certs: where MOCKREALTIME_TLS writes its CA (ca.pem), or where your own certificate is mounted.
VOLUME ["/cassettes", "/certs"]
EXPOSE 8080
USER 10001

# urllib with proxies off: an HTTP(S)_PROXY passed into the container must not catch loopback. Under
# TLS it asks over https without checking the certificate: it checks liveness, not identity.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, ssl, urllib.request as u; e = os.environ; tls = e.get('MOCKREALTIME_TLS', '').lower() in ('1', 'true', 'yes', 'on') or bool(e.get('MOCKREALTIME_CERTFILE')); u.build_opener(u.ProxyHandler({}), u.HTTPSHandler(context=ssl._create_unverified_context())).open('%s://127.0.0.1:%s/healthz' % ('https' if tls else 'http', e.get('MOCKREALTIME_PORT', '8080')), timeout=2)"]

ENTRYPOINT ["mockrealtime"]
CMD ["serve"]
