"""`circuitlake serve`: the read-only atlas explorer (FastAPI, Jinja2 templates, uvicorn).

Pages: `/` (overview), `/search`, `/neuron/{key}`, `/circuit/{path}`, `/graph/{graph}`, `/diff` (with
`--compare`); each has its JSON twin under `/api/` (the same reads, app/explorer/reads.py). Every asset
is served from the package (static/: cytoscape.js from npm, the page script, the style sheet) and a
Content-Security-Policy lets a page load nothing from anywhere else. Pages name their atlas with
`?atlas=` (optional when the warehouse holds one). A request that meets a build answers 503 with a
page that reloads itself; one that names a missing neuron, module or graph answers 404.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from circuitlake import __version__
from circuitlake.app.explorer import reads
from circuitlake.app.explorer.session import Session
from circuitlake.errors import UserError, WarehouseBusy
from circuitlake.jobs import diff as atlas_diff
from circuitlake.settings import Warehouse

HERE = Path(__file__).resolve().parent
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"
RELOAD_SECONDS = 2


def create_app(wh: Warehouse, compare: Path | None = None, endpoint: dict[str, Any] | None = None) -> FastAPI:
    """The explorer over warehouse `wh`; `compare`: an older build (export or warehouse folder) that the
    diff page compares the warehouse with; `endpoint`: base_url and api_key_env for semantic search."""
    session = Session(wh)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        session.close()

    app = FastAPI(
        title="circuitlake explorer",
        version=__version__,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals |= {"version": __version__, "warehouse": str(wh.root), "compare": compare}
    embed = endpoint or {}

    @app.middleware("http")
    async def secure(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def answer(read: Callable[[], Any]) -> Any:
        """Run a read; a busy warehouse or a bad request becomes an HTTP error with one line of text."""
        try:
            return read()
        except WarehouseBusy as e:
            raise _Refused(503, str(e)) from None
        except UserError as e:
            raise _Refused(404, str(e)) from None

    def page(request: Request, template: str, read: Callable[[], Any], **context: Any) -> HTMLResponse:
        try:
            data = answer(read)
        except _Refused as e:
            return _error_page(templates, request, e)
        return templates.TemplateResponse(request, template, {"data": data, **context})

    def api(read: Callable[[], Any]) -> JSONResponse:
        try:
            return JSONResponse(answer(read))
        except _Refused as e:
            headers = {"Retry-After": str(RELOAD_SECONDS)} if e.status == 503 else {}
            return JSONResponse({"error": e.message}, status_code=e.status, headers=headers)

    # pages

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request):
        return page(request, "overview.html", lambda: reads.overview(session))

    @app.get("/search", response_class=HTMLResponse)
    def search_page(request: Request, q: str = "", atlas: str | None = None, semantic: bool = False, limit: int = Query(25, ge=1, le=500)):
        return page(
            request, "search.html", lambda: reads.search(session, atlas, q, limit, semantic, **embed), atlases=reads.atlases(session)
        )

    @app.get("/neuron/{key:path}", response_class=HTMLResponse)
    def neuron_page(request: Request, key: str, atlas: str | None = None, k: int = Query(10, ge=1, le=100)):
        return page(request, "neuron.html", lambda: reads.neuron(session, atlas, key, k))

    @app.get("/circuit/{path}", response_class=HTMLResponse)
    def circuit_page(request: Request, path: str, atlas: str | None = None, method: str | None = None):
        return page(request, "circuit.html", lambda: reads.circuit(session, atlas, path, method))

    @app.get("/graph/{graph}", response_class=HTMLResponse)
    def graph_page(request: Request, graph: int, atlas: str | None = None, min_weight: float = Query(0.0, ge=0)):
        return page(request, "graph.html", lambda: reads.graph(session, atlas, graph, min_weight))

    @app.get("/diff", response_class=HTMLResponse)
    def diff_page(request: Request, atlas: str | None = None, factor: float = Query(2.0, gt=1)):
        return page(request, "diff.html", lambda: compared(atlas, factor))

    @app.get("/plots/{atlas}", response_class=HTMLResponse)
    def plots(atlas: str):
        """The overview's distribution plots (matplotlib SVG, from the HTML report), once per build."""
        try:
            return HTMLResponse(answer(lambda: _plots(session, atlas, reads.build_stamp(session))))
        except _Refused as e:
            return HTMLResponse(f"<p class='error'>{html.escape(e.message)}</p>", status_code=e.status)

    # the JSON API: the same reads

    @app.get("/api/atlases")
    def api_atlases():
        return api(lambda: reads.atlases(session))

    @app.get("/api/overview")
    def api_overview():
        return api(lambda: reads.overview(session))

    @app.get("/api/search")
    def api_search(q: str, atlas: str | None = None, semantic: bool = False, limit: int = Query(20, ge=1, le=500)):
        return api(lambda: reads.search(session, atlas, q, limit, semantic, **embed))

    @app.get("/api/neuron/{key:path}")
    def api_neuron(key: str, atlas: str | None = None, k: int = Query(10, ge=1, le=100)):
        return api(lambda: reads.neuron(session, atlas, key, k))

    @app.get("/api/circuit/{path}")
    def api_circuit(
        path: str, atlas: str | None = None, method: str | None = None, max_edges: int = Query(reads.CIRCUIT_EDGES, ge=0, le=5000)
    ):
        return api(lambda: reads.circuit(session, atlas, path, method, max_edges))

    @app.get("/api/graph/{graph}")
    def api_graph(
        graph: int, atlas: str | None = None, min_weight: float = Query(0.0, ge=0), max_links: int = Query(reads.GRAPH_LINKS, ge=1, le=5000)
    ):
        return api(lambda: reads.graph(session, atlas, graph, min_weight, max_links))

    @app.get("/api/diff")
    def api_diff(atlas: str | None = None, factor: float = Query(2.0, gt=1), limit: int = Query(25, ge=1, le=1000)):
        return api(lambda: compared(atlas, factor, limit))

    def compared(atlas: str | None, factor: float, limit: int = 25) -> dict[str, Any]:
        if compare is None:
            raise UserError("no older build to compare with: start the explorer with `circuitlake serve --compare OLD`")
        with session.released():  # the diff attaches the warehouse file itself
            return reads.plain(atlas_diff.diff(compare, wh.root, atlas, factor, limit).as_dict())

    return app


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _error_page(templates: Jinja2Templates, request: Request, e: _Refused) -> HTMLResponse:
    context = {"message": e.message, "reload": RELOAD_SECONDS if e.status == 503 else None}
    return templates.TemplateResponse(request, "error.html", context, status_code=e.status)


@lru_cache(maxsize=8)
def _plots(session: Session, atlas: str, stamp: int) -> str:
    from circuitlake.app.html_report import distributions

    with session.atlas(atlas) as a:
        return "".join(distributions(a))


def serve(wh: Warehouse, host: str, port: int, compare: Path | None = None, endpoint: dict[str, Any] | None = None) -> None:
    """Run the explorer until Ctrl-C."""
    import uvicorn

    from circuitlake.progress import console

    app = create_app(wh, compare, endpoint)
    console.print(f"circuitlake explorer: http://{host}:{port}/ over {wh.root} (read-only; Ctrl-C stops it)", markup=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")
