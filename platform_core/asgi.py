"""ASGI entry point (daphne): HTTP, and websockets (realtime/routing.py).

HTTP requests run through Django's WSGI handler on a thread pool, one thread hop per request.
Django's own ASGI handler hops between the event loop and a thread around every sync middleware
(MiddlewareMixin runs process_request/process_response through sync_to_async), which measured
~4-6 ms per API call here against ~0.5 ms for the single hop; every SDK call pays it.
"""

import asyncio
import gc
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

from channels.routing import ProtocolTypeRouter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

# Large request bodies (imports) spill to disk instead of memory past this size.
_BODY_SPOOL_BYTES = 10 * 1024 * 1024
# Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


class WsgiOverAsgi:
    """Serve a WSGI application to ASGI HTTP scopes on a bounded pool of threads.

    Response bodies are streamed: each chunk the WSGI iterator yields is sent before the next is
    produced, so streaming exports keep constant memory.
    """

    def __init__(self, wsgi_application, *, threads: int):
        self.wsgi_application = wsgi_application
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"WsgiOverAsgi serves http scopes, not {scope['type']!r}")
        body = await self._read_body(receive)
        loop = asyncio.get_running_loop()

        def send_from_thread(message: dict) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        await loop.run_in_executor(self.executor, self._run, scope, body, send_from_thread)

    async def _read_body(self, receive):
        body = SpooledTemporaryFile(max_size=_BODY_SPOOL_BYTES)  # noqa: SIM115 - closed after the request
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body.close()
                raise asyncio.CancelledError("client disconnected before sending its body")
            body.write(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body.seek(0)
        return body

    def _environ(self, scope, body) -> dict:
        # WSGI carries the UTF-8 path as latin-1 text (PEP 3333).
        path = scope["path"].encode("utf-8")
        root_path = scope.get("root_path", "").encode("utf-8")
        path_info = path[len(root_path):] if root_path and path.startswith(root_path) else path
        environ = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": root_path.decode("latin-1"),
            "PATH_INFO": path_info.decode("latin-1"),
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        server = scope.get("server") or ("localhost", 80)
        environ["SERVER_NAME"], environ["SERVER_PORT"] = server[0], str(server[1] or 80)
        if client := scope.get("client"):
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            value = raw_value.decode("latin-1")
            if name == "CONTENT_LENGTH":
                key = "CONTENT_LENGTH"
            elif name == "CONTENT_TYPE":
                key = "CONTENT_TYPE"
            else:
                key = f"HTTP_{name}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _run(self, scope, body, send) -> None:
        started: dict = {}

        def start_response(status, headers, exc_info=None):
            if exc_info and started.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
            return lambda data: None  # the legacy write() callable; Django never uses it

        try:
            result = self.wsgi_application(self._environ(scope, body), start_response)
            try:
                send({"type": "http.response.start", "status": started["status"], "headers": started["headers"]})
                started["sent"] = True
                for chunk in result:
                    if chunk:
                        send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
                send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            body.close()


wsgi_application = get_wsgi_application()
if settings.SERVE_STATIC_FILES:
    # /static/ (the editor bundle, page scripts) straight from the finders, before any middleware.
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    wsgi_application = StaticFilesHandler(wsgi_application)
http_application = WsgiOverAsgi(wsgi_application, threads=settings.HTTP_THREADS)

# Imported once Django is set up (get_wsgi_application did): the consumers import models.
from realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": http_application, "websocket": websocket_application})

# The objects of start-up (modules, settings, URLconfs) never become garbage: keep them out of the
# collector's sight, and collect the young generation less often. With a thousand sockets a full
# collection paused event fan-out for 100-200 ms (bench/realtime.py: p99 70 -> 55 ms, max 230 -> 70 ms).
gc.freeze()
gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
