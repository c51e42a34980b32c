"""Serving the portal API: uvicorn on its own thread and event loop, on PORTAL_API_BIND:
PORTAL_API_PORT, over HTTPS with PORTAL_API_TLS_CERT/KEY. The composition root starts it beside
Bolt and the HL7 listener and stops it on SIGTERM; neither ever waits for it (routes run in
FastAPI's thread pool, so no database call holds the loop)."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time

import uvicorn
from fastapi import FastAPI

from bot.config import ConfigError, PortalApiSettings

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0


class PortalApiServer:
    def __init__(self, app: FastAPI, settings: PortalApiSettings) -> None:
        self.settings = settings
        config = uvicorn.Config(
            app,
            http="httptools",  # pyproject says why
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
            log_config=None,  # uvicorn's lines go through pinbot's own log format
            log_level="warning",
            access_log=False,  # our own line per call carries ids only
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        try:
            config.load()  # reads the certificate now: a bad one is one clear line at start
        except (ssl.SSLError, OSError) as error:
            raise ConfigError(
                [
                    "PORTAL_API_TLS_CERT / PORTAL_API_TLS_KEY could not be loaded "
                    f"({type(error).__name__}): give a PEM certificate and its private key."
                ]
            ) from error
        self.server = uvicorn.Server(config)
        self.socket = self._bind()
        self.thread = threading.Thread(target=self._serve, name="portal-api", daemon=True)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.settings.bind else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
        # without it each answer (headers, then body) waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.bind, self.settings.port or 0))
        except OSError as error:
            sock.close()
            raise ConfigError(
                [
                    f"PORTAL_API_PORT {self.settings.port} on {self.settings.bind} is not "
                    f"available ({error.strerror}): choose another port or stop what uses it."
                ]
            ) from error
        sock.listen(128)
        return sock

    @property
    def port(self) -> int:
        port: int = self.socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls else "http"
        host = f"[{self.settings.bind}]" if ":" in self.settings.bind else self.settings.bind
        return f"{scheme}://{host}:{self.port}"

    def _serve(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started and self.thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        log.info("portal API listening", extra={"port": self.port, "tls": self.settings.tls})

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.socket.close()
