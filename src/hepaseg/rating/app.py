"""The rating web app (Starlette): sign-in, the viewer, and a small JSON API over ``store.Store``.

Routes (``index`` is the item's place in the signed-in rater's own sequence, protocol.py):

| route | needs | answers |
|---|---|---|
| ``GET /signin``, ``GET /static/<name>`` | nothing | the sign-in page; the packaged assets (a fixed list) |
| ``POST /api/signin`` ``{"token": ...}`` | same-origin request | 200 + session cookie; 401 bad token |
| ``GET /`` | session | the viewer (303 to ``/signin`` without one) |
| ``GET /api/state`` | session | rater, CSRF token, rounds, the current round, every item's case and ratings |
| ``GET /api/r/<rater>/items/<index>`` (``/image``, ``/contour``) | session of that rater, item in an open round | the item; its image stack; its mask |
| ``PUT /api/r/<rater>/items/<index>`` ``{"rating": 1-5, "quality": 1-3}`` (either) | the same + CSRF | the item, stored |
| ``POST /api/signout`` | session + CSRF | 200, session deleted |

Status codes: 401 no or unknown session / token; 403 another rater's items, a failed CSRF or origin
check; 404 unknown route or item; 409 an item of a round that is not open; 415 not JSON; 422 a bad
body (unknown field, value out of range); 400 an unknown Host (DNS rebinding) or unreadable JSON.

Security model (docs/rating.md): the session cookie is random, HttpOnly, SameSite=Strict; the database
keeps only its hash. State-changing requests must carry the session's CSRF token in ``X-CSRF-Token``
(synchronizer token, handed out by ``/api/state``, which only same-origin scripts can read) and, where
the browser sends them, an ``Origin`` equal to the server's and ``Sec-Fetch-Site: same-origin``. Files
are read only from paths stored in the database; no part of a URL becomes a path. Every answer
carries a strict Content-Security-Policy (no external resource), ``no-store`` caching and no
``Server``, ``Last-Modified`` or ``ETag`` header, so nothing tells contours apart but their pixels.

Rounds: a rater moves freely within the round in progress (the last one in which they gave a rating
or quality; round 1 at first) and may change its ratings. Once every item of it has a rating and a
quality, the next round opens too; the first rating given there closes the earlier round for good,
so that no rating of a round is changed after the rater has seen the other algorithm's contours.
``current_round`` in the answers is the round to show: the newest open one.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .protocol import QUALITY_SCALE, RATING_SCALE, in_scale
from .store import RatedItem, Store

COOKIE = "hepaseg_session"
CSRF_HEADER = "x-csrf-token"
ASSETS = {"viewer.js": "text/javascript", "signin.js": "text/javascript", "style.css": "text/css"}
PAGES = ("index.html", "signin.html")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"), (b"cross-origin-resource-policy", b"same-origin")]
MAX_BODY = 4096


class _SecurityHeaders:
    """ASGI middleware: the security headers on every answer, and no validator headers."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in
                        (b"last-modified", b"etag", b"server", b"cache-control")]
                message = {**message, "headers": kept + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _packaged(name: str) -> bytes:
    return resources.files("hepaseg.rating").joinpath("static", name).read_bytes()


def create_app(folder: str | Path, allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> Starlette:
    """The app for one rating folder; ``allowed_hosts`` are the Host names it answers to."""
    root = Path(folder).resolve()
    store = Store(root / "rating.db")
    meta = store.meta()
    n_cases, rounds = len(meta["cases"]), len(meta["algorithms"])
    assets = {name: (_packaged(name), kind) for name, kind in ASSETS.items()}
    pages = {name: _packaged(name) for name in PAGES}

    def session(request: Request) -> tuple[str, str, str]:
        sid = request.cookies.get(COOKIE, "")
        found = store.session(sid) if sid else None
        if found is None:
            raise HTTPException(401, "not signed in")
        return found[0], found[1], sid

    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
            raise HTTPException(403, "cross-origin request")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise HTTPException(403, "cross-site request")

    def checked(request: Request) -> tuple[str, str]:
        """The session of a state-changing request that passed the CSRF and origin checks."""
        rater, csrf, sid = session(request)
        same_origin(request)
        if not secrets.compare_digest(request.headers.get(CSRF_HEADER, ""), csrf):
            raise HTTPException(403, "missing or wrong CSRF token")
        return rater, sid

    async def body(request: Request) -> dict:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise HTTPException(415, "expected application/json")
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, "unreadable JSON") from exc
        if not isinstance(data, dict):
            raise HTTPException(422, "expected a JSON object")
        return data

    def open_rounds(items: list[RatedItem]) -> tuple[int, ...]:
        """The rounds a rater may see and rate now (0-based; see the module docstring)."""
        last = max((i.round for i in items if i.rating is not None or i.quality is not None), default=0)
        done = all(i.complete for i in items if i.round == last)
        return (last, last + 1) if done and last + 1 < rounds else (last,)

    def current_round(items: list[RatedItem]) -> int:
        """The round to show: the next one once the round in progress is complete."""
        return open_rounds(items)[-1]

    def item_of(request: Request) -> tuple[str, RatedItem, list[RatedItem]]:
        rater = session(request)[0]
        if request.path_params["rater"] != rater:
            raise HTTPException(403, "these are another rater's items")
        items = store.items(rater)
        index = request.path_params["index"]
        if not 0 <= index < len(items):
            raise HTTPException(404, "no such item")
        item = items[index]
        if item.round not in open_rounds(items):
            raise HTTPException(409, "this item is not in a round open to you")
        return rater, item, items

    def item_json(item: RatedItem, items: list[RatedItem]) -> dict:
        _, info = store.case_info(item.case)
        index = item.round * n_cases + item.position
        return {"index": index, "round": item.round + 1, "rounds": rounds, "position": item.position + 1,
                "cases": n_cases, "case": item.case, "shape": info["shape"], "pixel_mm": info["pixel_mm"],
                "lesion_slices": list(store.contour(item.contour_id).lesion_slices),
                "rating": item.rating, "quality": item.quality, "current_round": current_round(items) + 1}

    async def signin_page(request: Request) -> Response:
        return Response(pages["signin.html"], media_type="text/html")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            raise HTTPException(404, "not found")
        data, kind = assets[name]
        return Response(data, media_type=kind)

    async def signin(request: Request) -> Response:
        same_origin(request)
        data = await body(request)
        token = data.get("token")
        # the database calls run in the thread pool, so a wait for SQLite's lock never stalls the event loop
        rater = await run_in_threadpool(store.rater_for_token, token) if isinstance(token, str) and token else None
        if rater is None:
            raise HTTPException(401, "unknown token")
        sid, _ = await run_in_threadpool(store.open_session, rater)
        response = JSONResponse({"rater": rater})
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    def viewer(request: Request) -> Response:
        try:
            session(request)
        except HTTPException:
            return RedirectResponse("/signin", status_code=303)
        return Response(pages["index.html"], media_type="text/html")

    def state(request: Request) -> Response:
        rater, csrf, _ = session(request)
        items = store.items(rater)
        return JSONResponse({
            "rater": rater, "csrf": csrf, "cases": n_cases, "rounds": rounds,
            "simulated": store.raters().get(rater, False), "current_round": current_round(items) + 1,
            "items": [{"index": i.round * n_cases + i.position, "round": i.round + 1, "position": i.position + 1,
                       "case": i.case, "rating": i.rating, "quality": i.quality} for i in items]})

    def item(request: Request) -> Response:
        _, found, items = item_of(request)
        return JSONResponse(item_json(found, items))

    def image(request: Request) -> Response:
        _, found, _ = item_of(request)
        file, _ = store.case_info(found.case)
        return Response((root / file).read_bytes(), media_type="application/octet-stream")

    def contour(request: Request) -> Response:
        _, found, _ = item_of(request)
        return Response((root / store.contour(found.contour_id).mask_file).read_bytes(),
                        media_type="application/octet-stream")

    def rated_item(request: Request) -> tuple[str, RatedItem]:
        checked(request)
        rater, found, _ = item_of(request)
        return rater, found

    def store_rating(rater: str, found: RatedItem, data: dict) -> Response:
        store.rate(rater, found.round, found.position, data.get("rating"), data.get("quality"))
        items = store.items(rater)
        return JSONResponse(item_json(items[found.round * n_cases + found.position], items))

    async def rate(request: Request) -> Response:
        rater, found = await run_in_threadpool(rated_item, request)  # database calls off the event loop
        data = await body(request)
        unknown = set(data) - {"rating", "quality"}
        if unknown or not data:
            raise HTTPException(422, f"expected 'rating' and/or 'quality', got {sorted(data)}")
        if "rating" in data and not in_scale(data["rating"], RATING_SCALE):
            raise HTTPException(422, "rating must be an integer from 1 to 5")
        if "quality" in data and not in_scale(data["quality"], QUALITY_SCALE):
            raise HTTPException(422, "quality must be an integer from 1 to 3")
        return await run_in_threadpool(store_rating, rater, found, data)

    def signout(request: Request) -> Response:
        _, sid = checked(request)
        store.close_session(sid)
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    items_route = "/api/r/{rater}/items/{index:int}"
    routes = [Route("/", viewer), Route("/signin", signin_page), Route("/static/{name}", asset),
              Route("/api/signin", signin, methods=["POST"]), Route("/api/signout", signout, methods=["POST"]),
              Route("/api/state", state), Route(items_route, item), Route(items_route, rate, methods=["PUT"]),
              Route(items_route + "/image", image), Route(items_route + "/contour", contour)]
    return Starlette(routes=routes, exception_handlers={HTTPException: error}, max_body_size=MAX_BODY,
                     middleware=[Middleware(_SecurityHeaders),
                                 Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))])
