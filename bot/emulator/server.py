"""The aiohttp application: Bot API and file routes, request decoding, Telegram-shaped answers."""

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.emulator.api import Params, Upload, decode_params
from bot.emulator.state import ApiError, JsonDict, StoredFile

Dispatch = Callable[[str, Params], Awaitable[tuple[int, JsonDict]]]
FileLookup = Callable[[str], StoredFile | None]

# Telegram accepts bot uploads up to 50 MB; aiohttp's default body limit is 1 MB.
MAX_BODY = 50 * 1024 * 1024
_UNAUTHORIZED = ApiError(401, "Unauthorized")
_NOT_FOUND = ApiError(404, "Not Found")


def build_app(token: str, dispatch: Dispatch, lookup_file: FileLookup) -> web.Application:
    """Routes ``/bot{token}/{method}`` to ``dispatch`` and ``/file/bot{token}/...`` to files."""

    async def api(request: web.Request) -> web.Response:
        if request.match_info["token"] != token:
            return _error(_UNAUTHORIZED)
        try:
            params = await _read_params(request)
        except ApiError as error:
            return _error(error)
        status, body = await dispatch(request.match_info["method"], params)
        return web.json_response(body, status=status)

    async def download(request: web.Request) -> web.Response:
        if request.match_info["token"] != token:
            return _error(_UNAUTHORIZED)
        stored = lookup_file(request.match_info["path"])
        if stored is None:
            return _error(_NOT_FOUND)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/bot{token}/{method}", api)
    app.router.add_get("/file/bot{token}/{path:.+}", download)
    return app


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.to_json(), status=error.code)


async def _read_params(request: web.Request) -> Params:
    """Merge query string and body, whichever of JSON, urlencoded or multipart it is."""
    raw: dict[str, object] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON body") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON body must be an object")
        raw.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                uploads[name] = Upload(value.filename, value.file.read(), value.content_type)
            else:
                raw[name] = value
    return decode_params(raw, uploads)
