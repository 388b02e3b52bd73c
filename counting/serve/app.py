"""The debugger's web app: one static page (static/index.html: its JavaScript, CSS and SVG
plots inline, nothing from a network) and a JSON API over `Debugger`, served by uvicorn.

    GET  /                    the page
    GET  /api/experiments     the experiments of the results folder, and the one started on
    GET  /api/models?experiment=NAME
    GET  /api/model?experiment=NAME&model=HASH      loads it: task, n, m, families, most aligned pair
    POST /api/draw            {experiment, model, family, seed, most_aligned}
    POST /api/views           {experiment, model, sequence, query, position}
    POST /api/intervene       the same, with kind (replace, embedding, bos, logits) and its values

Every error is {"error": one line} with status 400 (bad input), 404 (no such experiment or
model, or no saved parameters: the line says how to retrain it) or 500 (anything else: its
type and message, never a traceback).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from counting.serve.debugger import Debugger, ServeError, clean, one_line

HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                      "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'"}


def page() -> str:
    """The debugger's one page: static/index.html of counting.serve."""
    return resources.files("counting.serve").joinpath("static", "index.html").read_text()


def error(message: str, status: int) -> JSONResponse:
    """A JSON error response {error: the message on one line} with the given status and the security headers."""
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=HEADERS)


def create_app(debugger: Debugger, hosts: list[str] | None = None, log=None) -> Starlette:
    """The app over `debugger`; `hosts`: the Host headers accepted (None: any; `serve` passes
    the loopback names when it binds to loopback, against DNS rebinding)."""
    html = page()
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    async def call(fn, *args, **kwargs) -> JSONResponse:
        try:
            out = await run_in_threadpool(fn, *args, **kwargs)
        except ServeError as err:
            return error(str(err), err.status)
        except Exception as err:  # never a traceback to the page: its type and first line
            line = one_line(f"internal error: {type(err).__name__}: {err}")
            log(f"counting-inspect --serve: {line}")
            return error(line, 500)
        return JSONResponse(clean(out), headers=HEADERS)

    async def body(request: Request) -> dict:
        try:
            data = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ServeError(f"request: not JSON ({err})") from None
        if not isinstance(data, dict):
            raise ServeError("request: expected a JSON object")
        return data

    def experiment_of(data) -> str:
        return data.get("experiment") or debugger.experiment

    async def index(request: Request):
        return HTMLResponse(html, headers=HEADERS)

    async def experiments(request: Request):
        return await call(debugger.experiments)

    async def models(request: Request):
        return await call(debugger.models, experiment_of(request.query_params))

    async def model(request: Request):
        q = request.query_params
        return await call(debugger.info, experiment_of(q), q.get("model"))

    async def post(request: Request, fn, keys: tuple[str, ...]):
        try:
            data = await body(request)
        except ServeError as err:
            return error(str(err), err.status)
        unknown = sorted(set(data) - set(keys) - {"experiment", "model"})
        if unknown:
            return error(f"request: unknown field {unknown[0]!r}", 400)
        if not isinstance(data.get("model"), str):
            return error("model: expected a model's hash", 400)
        kwargs = {k: data[k] for k in keys if k in data}
        return await call(fn, experiment_of(data), data["model"], **kwargs)

    async def draw(request: Request):
        return await post(request, debugger.draw, ("family", "seed", "most_aligned"))

    async def views(request: Request):
        return await post(request, debugger.views, ("sequence", "query", "position"))

    async def intervene(request: Request):
        return await post(request, debugger.intervene, ("sequence", "query", "position", "kind", "at", "token",
                                                        "toward", "alpha", "scale", "renormalize", "every_position"))

    async def not_found(request: Request, exc):
        return error(f"{request.url.path}: no such page", 404)

    async def not_allowed(request: Request, exc):
        return error(f"{request.method} {request.url.path}: not allowed", 405)

    routes = [Route("/", index), Route("/api/experiments", experiments), Route("/api/models", models),
              Route("/api/model", model), Route("/api/draw", draw, methods=["POST"]),
              Route("/api/views", views, methods=["POST"]), Route("/api/intervene", intervene, methods=["POST"])]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)] if hosts else []
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_allowed})


def is_loopback(host: str) -> bool:
    """Whether `host` is localhost or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or ServeError in one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        raise ServeError(f"--host/--port: cannot listen on {host}:{port} ({err.strerror or err})") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(results_dir: str | Path, experiment: str, host: str = "127.0.0.1", port: int = 0,
          say=None, ready=None) -> None:
    """Serves the debugger of `experiment` until interrupted; `ready(url, server)`, when
    given, is called once the socket listens (tests stop it with server.should_exit = True)."""
    import uvicorn

    say = say or (lambda line: print(line, flush=True))
    debugger = Debugger(results_dir, experiment)
    debugger.check()
    sock = bind(host, port)
    bound = sock.getsockname()
    url_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    url = f"http://{url_host}:{bound[1]}/"
    hosts = None
    if is_loopback(host):
        hosts = ["127.0.0.1", "localhost", "[::1]", "::1"]
    else:
        say(f"warning: listening on {host}, beyond this machine: anyone who reaches port {bound[1]} can read the "
            f"models of {results_dir} (the default --host 127.0.0.1 keeps it local)")
    app = create_app(debugger, hosts)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    say(f"counting-inspect: the debugger of {experiment} at {url} (Ctrl-C stops it)")
    if ready is not None:
        ready(url, server)
    server.run(sockets=[sock])
