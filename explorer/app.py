"""The explorer's web app (Starlette): the page (`static/`), the JSON API (`artlens.explorer.api`) and the
images. One store is opened per app and used by one request at a time (a lock: a DuckDB connection is not
shared across threads), in a worker thread so a slow search does not stop the server.

Errors are JSON `{"error": "..."}`: 404 for an unknown table, key, result or image, 400 for a bad request
(a `where` that is not one expression, a bad number, missing model weights for a text search, a missing `key`)."""
from __future__ import annotations

import contextlib
import json
import threading
from collections import OrderedDict
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from artlens.errors import UserError
from artlens.explorer import api, extras
from artlens.explorer.images import image_bytes, image_url
from artlens.explorer.safety import MAX_K, MAX_SIZE, MAX_UPLOAD, BadRequest, NotFound, integer, known_table

STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "vendor" / "deck.min.js"
#: The page loads only its own files; images may also come from the URLs a table without images names.
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob: http: https:; "
                                      "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
                                      "frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
MAP_CACHE = 8
#: Contact sheets drawn (a PNG of some 100 KB each, a second or so to draw): the last few are kept.
SHEET_CACHE = 16


class MissingBundle(UserError):
    """The page's scatter renderer (deck.gl) is not installed: `make install` copies it."""


def check_bundle() -> None:
    if not VENDOR.is_file():
        raise MissingBundle(f"the explorer's deck.gl bundle is missing ({VENDOR}): run `make install`")


class _Json(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _error(status: int, message: str) -> Response:
    return _Json({"error": message}, status_code=status, headers=HEADERS)


class Explorer:
    """The open store, its lock, the map payloads already made (by table, parts, method, colour, filter) and
    the contact sheets drawn last."""

    def __init__(self, store_root: str | Path):
        from artlens import store

        self.store = store.open(store_root)
        self.lock = threading.Lock()
        self.maps: OrderedDict[tuple, bytes] = OrderedDict()
        self.sheets: OrderedDict[tuple, bytes] = OrderedDict()

    def call(self, fn, *args, **kwargs):
        with self.lock:
            return fn(self.store, *args, **kwargs)

    def sheet_bytes(self, table: str, key: str) -> bytes:
        """The contact sheet of `key` in deformation table `table` (PNG), drawn once per (table, suite, key)."""
        with self.lock:
            known_table(self.store, table)
            ident = (table, self.store.entry(table).preprocess, key)
            if ident not in self.sheets:
                self.sheets[ident] = extras.sheet_png(self.store, table, key)
                while len(self.sheets) > SHEET_CACHE:
                    self.sheets.popitem(last=False)
            self.sheets.move_to_end(ident)
            return self.sheets[ident]

    def map_bytes(self, table: str, method: str, color: str | None, where: str | None) -> bytes:
        with self.lock:
            known_table(self.store, table)
            key = (table, self.store.map_fingerprint(table), method, color, where)
            if key not in self.maps:
                data = api.map_data(self.store, table, method, color, where)
                self.maps[key] = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
                while len(self.maps) > MAP_CACHE:
                    self.maps.popitem(last=False)
            self.maps.move_to_end(key)
            return self.maps[key]


def _handle(fn):
    """An endpoint running `fn(request)` in a worker thread, its errors as JSON."""
    async def endpoint(request: Request) -> Response:
        try:
            result = await fn(request)
        except NotFound as exc:
            return _error(404, str(exc))
        except UserError as exc:
            return _error(400, str(exc))
        except Exception as exc:  # noqa: BLE001 - the page shows the message; the server keeps running
            return _error(500, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        return result if isinstance(result, Response) else _Json(result, headers=HEADERS)

    endpoint.__name__ = fn.__name__
    return endpoint


def create_app(store_root: str | Path, *, check: bool = True) -> Starlette:
    """The explorer over the store at `store_root` (a folder or URL). `check`: refuse to start without the
    deck.gl bundle (`make install`); the JSON API works without it."""
    if check:
        check_bundle()
    ex = Explorer(store_root)

    def q(request: Request, name: str) -> str | None:
        value = request.query_params.get(name)
        return value if value not in (None, "") else None

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={**HEADERS, "Cache-Control": "no-cache"})

    async def tables(request: Request):
        return await run_in_threadpool(ex.call, api.tables)

    async def row(request: Request):
        p = request.path_params
        return await run_in_threadpool(ex.call, api.row, p["table"], p["key"])

    async def neighbors(request: Request):
        table = request.path_params["table"]
        k = integer(q(request, "k"), "k", 12, 1, MAX_K)
        where = q(request, "where")
        if request.method == "POST":
            form = await request.form(max_files=1, max_fields=8)
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise BadRequest("POST an image as the multipart field `image`")
            data = await upload.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                raise BadRequest(f"the image is larger than {MAX_UPLOAD // (1024 * 1024)} MiB")
            where = where or (form.get("where") if isinstance(form.get("where"), str) else None) or None
            return await run_in_threadpool(ex.call, api.neighbors, table, image=data, k=k, where=where)
        return await run_in_threadpool(ex.call, api.neighbors, table, key=q(request, "key"),
                                       text=q(request, "text"), k=k, where=where)

    async def image(request: Request):
        table, key = request.path_params["table"], request.path_params["key"]
        size = integer(q(request, "size"), "size", 0, 16, MAX_SIZE) if q(request, "size") else None

        def find():
            with ex.lock:
                known_table(ex.store, table)
                url = image_url(ex.store, table, key)
                if url is not None:
                    return url
                api.require_key(ex.store, table, key)
                return image_bytes(ex.store, table, key, size)

        found = await run_in_threadpool(find)
        if isinstance(found, str):
            if request.query_params.get("format") == "json":
                return {"url": found}
            return RedirectResponse(found, status_code=307, headers=HEADERS)
        data, media = found
        return Response(data, media_type=media, headers={**HEADERS, "Cache-Control": "public, max-age=3600"})

    async def map_(request: Request):
        p = request.path_params
        method = q(request, "method") or "pca"
        data = await run_in_threadpool(ex.map_bytes, p["table"], method, q(request, "color"), q(request, "where"))
        return Response(data, media_type="application/json", headers=HEADERS)

    def required_key(request: Request) -> str:
        key = request.query_params.get("key")
        if not key:
            raise BadRequest("give the row's `key`")
        return key

    async def extras_(request: Request):
        return await run_in_threadpool(ex.call, extras.extras, request.path_params["table"], required_key(request))

    async def sheet(request: Request):
        data = await run_in_threadpool(ex.sheet_bytes, request.path_params["table"], required_key(request))
        return Response(data, media_type="image/png", headers={**HEADERS, "Cache-Control": "no-cache"})

    async def saliency(request: Request):
        n = integer(q(request, "n"), "n", 0, 0, 10_000)
        data = await run_in_threadpool(ex.call, extras.saliency_png, request.path_params["table"],
                                       required_key(request), n)
        return Response(data, media_type="image/png", headers={**HEADERS, "Cache-Control": "no-cache"})

    async def results(request: Request):
        return await run_in_threadpool(ex.call, api.results)

    async def result(request: Request):
        return await run_in_threadpool(ex.call, api.result, request.path_params["name"])

    async def result_rows(request: Request):
        return await run_in_threadpool(ex.call, api.result_rows, request.path_params["name"],
                                       label=request.query_params.get("label"),
                                       predicted=request.query_params.get("predicted"),
                                       limit=integer(q(request, "limit"), "limit", 200, 1, 5000))

    async def not_found(request: Request):
        raise NotFound(f"no API route {request.url.path}")

    routes = [
        Route("/", index),
        Route("/api/tables", _handle(tables)),
        Route("/api/tables/{table}/rows/{key:path}", _handle(row)),
        Route("/api/tables/{table}/neighbors", _handle(neighbors), methods=["GET", "POST"]),
        Route("/api/tables/{table}/image/{key:path}", _handle(image)),
        Route("/api/tables/{table}/map", _handle(map_)),
        Route("/api/tables/{table}/extras", _handle(extras_)),
        Route("/api/tables/{table}/sheet", _handle(sheet)),
        Route("/api/tables/{table}/saliency", _handle(saliency)),
        Route("/api/results", _handle(results)),
        Route("/api/results/{name}/rows", _handle(result_rows)),
        Route("/api/results/{name}", _handle(result)),
        Route("/api/{rest:path}", _handle(not_found)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        ex.store.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.explorer = ex
    return app
