"""The HTTP/JSON face of the local API (api.http_listen): the Mailbox and Stats calls over HTTP/1.1.

Why aiohttp: one maintained package gives the server, streamed responses for server-sent
events and a clean shutdown, on an asyncio loop in a thread of its own beside the threaded
gRPC server. It is imported only when `api.http_listen` is set (node/runtime.py), so a node
without the HTTP face never loads it.

It holds no business logic: each route (node/api/http_routes.py) calls the very servicer
object the gRPC server calls, in a worker thread, with a stand-in for the gRPC context.
The refusals are the servicers' `Rejected`, answered through node/api/http_json.py; anything
else is logged under a correlation id and answered 500 with only that id, like the gRPC
interceptor does. The order of checks is the token, then the body's declared size (before
a byte of it is read), then its JSON, then the servicer: a bad request never reaches one.

Connections are bounded: at most `max_connections` open at once (MAX_CONNECTIONS, fewer under a low
open-files limit: node/descriptors.py; one past it is answered 503
TOO_MANY_CONNECTIONS and closed at once, and counted: `refused_connections`, the metric
lienthong_http_connections_refused_total), and one that has not sent a whole request within IDLE_TIMEOUT_S
of opening, or of its last answer, is closed (aiohttp's keep-alive timer, which runs from the
connection's start since aiohttp 3.14.4, the floor in pyproject.toml, and which a trickle of header bytes
does not reset); 120 slow-header
connections once stayed open for an hour each.

Threads: `http-loop` runs the event loop; `http-*` workers (HTTP_WORKERS) run the servicer
calls. A Watch stream holds a worker while it is open, as on gRPC, and counts against the
same MAX_WATCHERS cap (the servicer's own), so half of the workers stay free for the rest.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent import futures
from functools import partial
from typing import Any, Callable

from aiohttp import web

from ..errors import Reason, Rejected
from ..grpc_errors import CORRELATION_KEY, internal
from ..incidents import log_incident
from ..logs import serving_as
from .clients import Client, Clients, acting, authorize
from .http_json import body_limit, dumps, error_body, http_status, parse_request, to_json
from .http_routes import HEALTH_PATH, OPENAPI_PATH, Route, routes

log = logging.getLogger(__name__)

HTTP_WORKERS = 16
AGENCY_HEADER = "Lienthong-Agency"  # on a host: the agency the host admin acts on (gRPC: lienthong-agency)
MAX_CONNECTIONS = 256   # at most; node/descriptors.py gives fewer under a low open-files limit
IDLE_TIMEOUT_S = 10.0   # to send a whole request line and headers, on a new or a kept-alive connection
TICK_S = 1.0            # how often an idle event stream looks whether its client is still there
KEEPALIVE_TICKS = 15    # an SSE comment every 15 s of silence: proxies and clients see the stream alive
READ_CHUNK = 64 * 1024
_END = object()


class CallContext:
    """What the servicers use of a grpc.ServicerContext: `is_active` and `add_callback` (Watch)."""

    def __init__(self) -> None:
        self._active, self._callbacks, self._lock = True, [], threading.Lock()

    def is_active(self) -> bool:
        return self._active

    def add_callback(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if self._active:
                self._callbacks.append(callback)
                return True
        return False  # already over, as gRPC says: not registered

    def cancel(self) -> None:
        """The call is over (client gone, stream ended, node stopping): run the callbacks once."""
        with self._lock:
            self._active, callbacks, self._callbacks = False, self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - one callback must not keep the others from running
                log.exception("callback of an HTTP call failed")


class HttpFace:
    """Serve `services` (proto full name -> servicer object) on `listen` until `stop`."""

    def __init__(self, listen: str, clients: Clients | str, services: dict[str, Any], *, max_message_bytes: int,
                 health_problem: Callable[[], str | None], openapi: Callable[[], dict],
                 max_connections: int = MAX_CONNECTIONS, caller: Callable | None = None, shares=None) -> None:
        self.max_connections = max_connections
        # a host's: (authorization header, the Lienthong-Agency header) -> (client, that agency's servicers, its
        # code), or Rejected (node/host/http.py); `shares`: its per-agency share of the workers (enter, leave)
        self.caller, self.shares = caller, shares
        self.listen = listen
        self.clients = Clients.single(clients) if isinstance(clients, str) else clients
        self.services = services
        self.limit = body_limit(max_message_bytes)
        self._health_problem = health_problem
        self._openapi = openapi
        self._openapi_body: bytes | None = None
        self._pool = futures.ThreadPoolExecutor(max_workers=HTTP_WORKERS, thread_name_prefix="http")
        self._streams: set[CallContext] = set()
        self._stopping = False
        self.refused_connections = 0  # answered TOO_MANY_CONNECTIONS since start (the metrics read it)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> int:
        """Bind and serve; returns the bound port. OSError if the address cannot be bound."""
        ready: futures.Future = futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="http-loop", daemon=True)
        self._thread.start()
        try:
            self.port = ready.result()
        except BaseException:
            self._thread.join()
            self._pool.shutdown(wait=False)
            raise
        return self.port

    def _run(self, ready: futures.Future) -> None:
        self._loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            ready.set_result(loop.run_until_complete(self._serve()))
        except BaseException as e:  # noqa: BLE001 - handed to start(), which raises it
            ready.set_exception(e)
            loop.close()
            return
        loop.run_forever()
        loop.close()

    async def _serve(self) -> int:
        host, port = self.listen.rsplit(":", 1)
        # handler_cancellation: a client that goes away cancels its handler at once, so a Watch frees its place
        self._runner = web.AppRunner(self._app(), handle_signals=False, access_log=None, handler_cancellation=True,
                                     keepalive_timeout=IDLE_TIMEOUT_S)
        await self._runner.setup()
        _cap_connections(self._runner.server, self.max_connections, self._refused_one)
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        return self._runner.addresses[0][1]  # port 0: the one the kernel gave

    def _refused_one(self) -> None:
        self.refused_connections += 1  # on the event loop's thread only

    def problem(self) -> str | None:
        """A health check (node/health.py): the face's event loop has not died under a running node."""
        if self._stopping or (self._thread is not None and self._thread.is_alive()):
            return None
        return f"the HTTP/JSON API on {self.listen} (api.http_listen) is not running: restart the node"

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, end the event streams, let calls in flight finish (up to `grace`)."""
        loop, self._stopping = self._loop, True
        if loop is None or self._thread is None:
            return
        if self._thread.is_alive():  # else its loop died (the health check said so): nothing left to stop there
            self._runner._shutdown_timeout = grace  # noqa: SLF001 - the runner takes it at creation only
            try:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(grace + 2)
                loop.call_soon_threadsafe(loop.stop)
            except Exception:  # noqa: BLE001 - stopping anyway
                log.exception("HTTP face did not stop cleanly")
            self._thread.join(grace + 2)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=self.limit + 1, middlewares=[self._no_route])
        for route in routes():
            if route.service.full_name in self.services:
                app.router.add_post(route.path, partial(self._handle, route))
        app.router.add_get(OPENAPI_PATH, self._openapi_doc)
        app.router.add_get(HEALTH_PATH, self._health)
        app.on_shutdown.append(self._end_streams)
        app.on_response_prepare.append(_plain_server_header)
        return app

    async def _end_streams(self, app: web.Application) -> None:
        for ctx in list(self._streams):
            ctx.cancel()  # each Watch loop sees it within half a second and its response ends

    # ---- open routes --------------------------------------------------------------------

    async def _openapi_doc(self, request: web.Request) -> web.Response:
        if self._openapi_body is None:
            self._openapi_body = dumps(self._openapi())
        return web.Response(body=self._openapi_body, content_type="application/json", charset="utf-8")

    async def _health(self, request: web.Request) -> web.Response:
        serving = not self._stopping and self._health_problem() is None
        return web.Response(body=dumps({"status": "SERVING" if serving else "NOT_SERVING"}), status=200 if serving else 503,
                            content_type="application/json", charset="utf-8")

    @web.middleware
    async def _no_route(self, request: web.Request, handler) -> web.StreamResponse:
        """aiohttp's own 404 and 405 as the same JSON error as every other refusal."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _error(Rejected(Reason.NOT_FOUND, f"no route {request.path}; the routes are in {OPENAPI_PATH}"))
        except web.HTTPMethodNotAllowed as e:
            allowed = sorted(e.allowed_methods)
            response = _error(Rejected(Reason.METHOD_NOT_ALLOWED, f"{request.method} {request.path}: use "
                                       f"{' or '.join(allowed)}", metadata={"allowed": ",".join(allowed)}))
            response.headers["Allow"] = ", ".join(allowed)  # RFC 9110: a 405 lists what the resource takes
            return response

    # ---- the API ------------------------------------------------------------------------

    async def _handle(self, route: Route, request: web.Request) -> web.StreamResponse:
        try:
            client, services, code = self._authorize(request, route)
            message = parse_request(await self._body(request), route.request_class)
            # on a host, the agency's share of the workers (a body still arriving holds none)
            if code is not None and self.shares is not None and (busy := self.shares.enter(code)) is not None:
                raise busy
            try:
                if route.streaming:
                    return await self._stream(route, message, request, client, services, code)
                loop = asyncio.get_running_loop()
                response = await loop.run_in_executor(self._pool, self._call, route, message, client, services, code)
            finally:
                if code is not None and self.shares is not None:
                    self.shares.leave(code)
            return web.Response(body=dumps(to_json(response)), content_type="application/json", charset="utf-8")
        except Rejected as err:
            return _error(err)
        except Exception as e:  # noqa: BLE001 - a bug: the caller gets an id, the log the traceback
            return _error(internal(log_incident(route.path, e)))

    def _authorize(self, request: web.Request, route: Route) -> tuple[Client, dict[str, Any], str | None]:
        """The client the token names, if its scopes cover the call (the same check as gRPC's); the servicers
        it calls, and on a host the agency they are."""
        try:
            header = request.headers.get("Authorization", "").encode("utf-8")
        except UnicodeEncodeError:
            header = None
        services, code = self.services, None
        if self.caller is not None:
            client, services, code = self.caller(header, request.headers.getall(AGENCY_HEADER, []))
        else:
            client = self.clients.identify(header) if header is not None else None
        if client is None:
            raise Rejected(Reason.UNAUTHENTICATED, "missing or wrong API token: send 'Authorization: Bearer <token>'")
        authorize(client, f"/{route.service.full_name}/{route.method.name}")
        return client, services, code

    async def _body(self, request: web.Request) -> bytes:
        """The body, refused as TOO_LARGE by its Content-Length before reading, or as soon as a chunked one
        goes past the limit."""
        declared = request.content_length
        if declared is not None and declared > self.limit:
            raise _too_large(f"the body is {declared} bytes", self.limit)
        chunks, total = [], 0
        while chunk := await request.content.read(READ_CHUNK):
            total += len(chunk)
            if total > self.limit:
                raise _too_large("the body is larger", self.limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def _behavior(self, route: Route, services: dict[str, Any]) -> Callable:
        return getattr(services[route.service.full_name], route.method.name)

    def _call(self, route: Route, message, client: Client, services: dict[str, Any], code: str | None) -> Any:
        """In a worker: the servicer's method, exactly as gRPC calls it, as `client` (on a host: as its agency)."""
        ctx = CallContext()
        with acting(client), serving_as(code):  # its incident's line too
            try:
                return self._behavior(route, services)(message, ctx)
            except Rejected:
                raise
            except Exception as e:  # noqa: BLE001
                raise internal(log_incident(route.path, e)) from None
            finally:
                ctx.cancel()

    def _next(self, route: Route, stream, client: Client, code: str | None) -> Any:
        """In a worker: the stream's next message, or _END, as `client` (on a host: as its agency, so the stream's
        log lines name it, as a unary call's do)."""
        with acting(client), serving_as(code):
            try:
                return next(stream, _END)
            except Rejected:
                raise
            except Exception as e:  # noqa: BLE001
                raise internal(log_incident(route.path, e)) from None

    async def _stream(self, route: Route, message, request: web.Request, client: Client, services: dict[str, Any],
                      code: str | None) -> web.StreamResponse:
        """Server-sent events: `data: <message as JSON>` per message. A refusal before the first message
        (a bad request, too many streams) is an ordinary error response; one after it is an `error` event."""
        loop = asyncio.get_running_loop()
        ctx = CallContext()
        self._streams.add(ctx)
        stream = self._behavior(route, services)(message, ctx)
        response = None
        try:
            item = await loop.run_in_executor(self._pool, self._next, route, stream, client, code)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                                   "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
            await response.prepare(request)
            while item is not _END:
                await response.write(b"data: " + dumps(to_json(item)) + b"\n\n")
                item = await self._next_or_keepalive(
                    loop.run_in_executor(self._pool, self._next, route, stream, client, code), response, request, ctx)
            return response
        except Rejected as err:
            if response is None:
                raise
            await _write_quietly(response, b"event: error\ndata: " + dumps(error_body(err)) + b"\n\n")
            return response
        except ConnectionError:  # the client left while we wrote: nobody to answer, nothing to log
            return response if response is not None else web.Response(status=499)
        finally:
            ctx.cancel()  # its callbacks free the stream's slot and subscription now; the generator ends within 0.5 s
            self._streams.discard(ctx)

    async def _next_or_keepalive(self, pending: asyncio.Future, response: web.StreamResponse,
                                 request: web.Request, ctx: CallContext) -> Any:
        ticks = 0
        while True:
            done, _ = await asyncio.wait({pending}, timeout=TICK_S)
            if done:
                return pending.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                ctx.cancel()  # the client left: the servicer's loop ends and frees its slot
                continue
            ticks += 1
            if ticks % KEEPALIVE_TICKS == 0:
                await response.write(b": keepalive\n\n")


def _cap_connections(server: web.Server, limit: int, refused: Callable[[], None]) -> None:
    """Past `limit` open connections, a new one is answered 503 TOO_MANY_CONNECTIONS and closed at once, its
    request never read, and `refused()` counts it (the web.Server counts its connections; it is told of each
    new one here). Closed at once: one lingering for its client to read the answer held a descriptor that no
    cap counted, so a flood past the cap still cost one descriptor per connection for as long as it lingered.
    The answer is written before the close, so a client that sent its request already still reads it (on
    Linux what arrived before a reset is read first)."""
    admit = server.connection_made
    refusal = Rejected(Reason.TOO_MANY_CONNECTIONS, f"{limit} connections are open to this node's HTTP API; "
                       "close idle ones or retry shortly")
    body = dumps(error_body(refusal, 503))
    answer = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body

    def connection_made(handler, transport) -> None:
        if len(server.connections) >= limit:
            refused()
            transport.set_protocol(_Refused())  # nothing it sends reaches a handler
            transport.write(answer)
            transport.write_eof()  # the answer and our end, then gone
            transport.close()
            return
        admit(handler, transport)

    server.connection_made = connection_made


class _Refused(asyncio.Protocol):
    """A connection past the cap, taken from its request handler while it is closed: what it sends is dropped."""

    def data_received(self, data: bytes) -> None:
        pass


async def _plain_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp would say `Server: Python/3.x aiohttp/3.y`: versions an attacker reads to pick an exploit."""
    response.headers["Server"] = "lienthong"


def _too_large(what: str, limit: int) -> Rejected:
    return Rejected(Reason.TOO_LARGE, f"{what}; at most {limit} bytes are accepted", metadata={"limit": str(limit)})


def _error(err: Rejected, status: int | None = None) -> web.Response:
    status = status or http_status(err.reason)
    response = web.Response(body=dumps(error_body(err, status)), status=status,  # `code` says the status sent
                            content_type="application/json", charset="utf-8")
    if err.reason is Reason.UNAUTHENTICATED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lienthong"'
    if err.reason is Reason.TOO_LARGE:
        response.force_close()  # the rest of the body is not read: the connection cannot be reused
    if CORRELATION_KEY in err.metadata:
        response.headers["X-Correlation-Id"] = err.metadata[CORRELATION_KEY]
    return response


async def _write_quietly(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
    except (ConnectionError, RuntimeError):
        pass
