"""One HTTP server for every inbound webhook (Telegram, Zalo), /healthz and /metrics.

It listens in plain HTTP behind a reverse proxy that terminates TLS. Each platform's
frontend registers its path with ``route``; the server caps every request body before any
handler reads it, answers /healthz from the database alone (never a platform), and serves
/metrics in Prometheus' format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from bot import metrics
from handlers.settings import WebhookSection

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEALTH_TIMEOUT: Final = 3.0
# In-flight webhook requests get this long to finish once the server stops listening.
SHUTDOWN_SECONDS: Final = 5.0


class ListenError(Exception):
    """The server cannot listen where [webhook] says: the port is taken or not allowed."""


class WebhookServer:
    """An aiohttp server: the platforms' webhook paths, /healthz and /metrics.

    ``health`` raises (or times out) when the process cannot serve, typically when its
    database does not answer; ``before_metrics`` refreshes the gauges read from the database.
    """

    def __init__(
        self,
        settings: WebhookSection,
        *,
        health: Callable[[], Awaitable[object]] | None = None,
        before_metrics: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.settings = settings
        self._health = health
        self._before_metrics = before_metrics
        # client_max_size refuses a body sent without Content-Length (chunked) once it is read.
        self._app = web.Application(
            client_max_size=settings.max_body_bytes, middlewares=[self._cap_body]
        )
        self._app.router.add_get("/healthz", self._healthz)
        self._app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.stopping = False
        self.url = ""

    def route(self, path: str, handler: Handler) -> None:
        """Serve POST ``path`` with ``handler``; call before ``start``."""
        self._app.router.add_post(path, handler)

    async def start(self) -> None:
        """Listen on [webhook] host and port (port 0 picks a free one, in ``url``)."""
        # No access log: a webhook's caller is the platform, but the path and timing of
        # each request are nothing an operator needs to keep.
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            self._runner = None
            raise ListenError(
                f"webhook server: cannot listen on {self.settings.host}:{self.settings.port} "
                f"({error.strerror}); set [webhook] port in config.toml to a free port."
            ) from None
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        log.info("Webhook server listening on %s", self.url)

    def draining(self) -> None:
        """Say "stopping" on /healthz, so that the load balancer sends updates elsewhere."""
        self.stopping = True

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish, and close."""
        self.stopping = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _cap_body(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse a body over max_body_bytes before any handler reads a byte of it."""
        length = request.content_length
        if length is not None and length > self.settings.max_body_bytes:
            metrics.WEBHOOK_REQUESTS.labels(_source(request), "too_large").inc()
            return web.Response(status=413, text="Request body too large")
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            metrics.WEBHOOK_REQUESTS.labels(_source(request), "too_large").inc()
            return web.Response(status=413, text="Request body too large")

    async def _healthz(self, request: web.Request) -> web.Response:
        """Answer 200 while the process can serve: it is up and its database answers."""
        if self.stopping:
            return web.Response(status=503, text="stopping\n")
        if self._health is not None:
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT):
                    await self._health()
            except Exception as error:
                log.warning("Health check failed: %s", type(error).__name__)
                return web.Response(status=503, text="database unavailable\n")
        return web.Response(text="ok\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        """Every metric, the database's gauges read now."""
        if self._before_metrics is not None:
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT):
                    await self._before_metrics()
            except Exception as error:
                # The counters are still worth reading when the database is away.
                log.warning("Metrics from the database unavailable: %s", type(error).__name__)
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE}
        )


def _source(request: web.Request) -> str:
    """The label of a webhook path ("telegram", "zalo"): a fixed, known set, never input."""
    known = {"telegram", "zalo"}
    first = request.path.strip("/").split("/", 1)[0]
    return first if first in known else "other"
