"""The ASGI application: Litestar, with the runtime started in its lifespan.

Litestar was chosen because it decodes and validates request bodies with
msgspec, the same structs the runtime takes, and builds the OpenAPI document
from those types (``docs/server.md``, ``docs/dependencies.md``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
from litestar import Litestar, Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import MediaType
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from omniroute import __version__
from omniroute.channels import ChannelConnector, ChannelHost
from omniroute.crm import CrmSync
from omniroute.errors import (
    OmnirouteError,
    kind_of,
)
from omniroute.model import EngineConfig
from omniroute.plugins import Plugins
from omniroute.runtime.api import RuntimeSettings
from omniroute.runtime.runtime import Runtime
from omniroute.server.access import Access, Principal
from omniroute.server.pages import PAGES, STATIC
from omniroute.server.routes import ROUTES, SESSION_COOKIE, Server, error_status, identify
from omniroute.store import open_store

__all__ = ["API_PREFIX", "MAX_BODY_BYTES", "create_app"]

API_PREFIX = "/api/v1"
# Bodies larger than this get 413 before they are read whole.
MAX_BODY_BYTES = 1024 * 1024


def _error(request: Request[Any, Any, Any], exc: OmnirouteError) -> Response[dict[str, Any]]:
    """The runtime's errors as HTTP: the message names the field and the problem."""
    status = error_status(exc)
    return Response(
        {"status_code": status, "detail": str(exc), "kind": kind_of(exc)},
        status_code=status,
        media_type=MediaType.JSON,
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own errors (validation, 401, 403, 404, 413) as JSON, whatever
    the route answers when it succeeds (a CSV download, say)."""
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=exc.status_code, media_type=MediaType.JSON, headers=exc.headers)


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Every request: who is calling (401 when nobody valid), and may it (403)."""
    opt = handler.opt
    if opt.get("public") or connection.url.path.startswith("/schema"):
        return
    scope = opt.get("scope")
    if scope is None and not opt.get("authenticated"):
        # A route that forgot to say who may call it is closed, not open.
        raise PermissionDeniedException(f"{connection.url.path}: this route declares no access rule")
    server: Server = connection.app.state.server
    principal = await identify(server, connection)
    if principal is None:
        raise NotAuthorizedException(
            "authorization: log in (POST /api/v1/session) or send a valid bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="omniroute"'},
        )
    if scope is not None and not principal.may(scope):
        raise PermissionDeniedException(f"scope: {principal.name!r} lacks {scope!r}")
    connection.state.principal = principal


def _principal(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _server(state: State) -> Server:
    server: Server = state.server
    return server


def create_app(
    store_url: str,
    *,
    config: EngineConfig | None = None,
    settings: RuntimeSettings | None = None,
    session_seconds: float = 8 * 3600.0,
    on_ready: Callable[[Runtime], None] | None = None,
    background: Callable[[Runtime], Coroutine[Any, Any, None]] | None = None,
    connectors: list[ChannelConnector] | None = None,
    plugins: Plugins | None = None,
) -> Litestar:
    """The server on the store at ``store_url``: the runtime starts with the
    application (recovering what the store holds) and stops with it;
    ``background`` runs beside it (the demo's customers and agents), and so
    do the channel ``connectors``, whose webhooks are mounted under
    ``/api/v1/channels/{channel}``. With CRM plugins among ``plugins``, CRM
    sync runs beside them too."""
    channels = list(connectors or [])

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = open_store(store_url)
        async with Runtime.open(store, config, settings=settings) as runtime, anyio.create_task_group() as tg:
            server = Server(runtime, Access(store, session_seconds=session_seconds), started=time.time())
            app.state.server = server
            tg.start_soon(server.dispatcher.run)
            if plugins is not None and plugins.has_crm():
                await tg.start(CrmSync(runtime, plugins).run)
            if channels:
                host = ChannelHost(runtime, channels, on_signal=server.dispatcher.signal)
                server.channels = host
                await tg.start(host.run)
            if on_ready is not None:
                on_ready(runtime)
            if background is not None:
                tg.start_soon(background, runtime)
            try:
                yield
            finally:
                # Stopped before the runtime stops, so nothing calls it after.
                tg.cancel_scope.cancel()

    api = Router(path=API_PREFIX, route_handlers=ROUTES)
    # A channel's webhooks are public: each checks its caller itself (a signature).
    webhooks = [
        Router(
            path=f"{API_PREFIX}/channels/{c.setup.channel}",
            route_handlers=handlers,
            opt={"public": True},
            tags=[f"channel {c.setup.channel}"],
        )
        for c in channels
        if (handlers := c.routes())
    ]
    static = create_static_files_router(path="/static", directories=[STATIC], opt={"public": True})
    return Litestar(
        route_handlers=[api, *webhooks, static, *PAGES],
        lifespan=[lifespan],
        guards=[authorize],
        dependencies={
            "principal": Provide(_principal, sync_to_thread=False),
            "server": Provide(_server, sync_to_thread=False),
        },
        exception_handlers={OmnirouteError: _error, HTTPException: _http_error},
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="omniroute",
            version=__version__,
            description="The open API of omniroute: interactions, customers, agents, offers, tasks, "
            "queues, reports and configuration.",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer"),
                    "session": SecurityScheme(
                        type="apiKey", name=SESSION_COOKIE, security_scheme_in="cookie"
                    ),
                }
            ),
            security=[{"bearer": []}, {"session": []}],
        ),
        debug=False,
    )
