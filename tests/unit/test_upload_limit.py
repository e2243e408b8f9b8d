"""Uploads are capped before Reflex buffers them (app/api/upload_limit.py): a client cannot make the
server parse more than one image's worth of multipart body, whatever it declares."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.api.upload_limit import MAX_UPLOAD_BYTES, UPLOAD_PATH, UploadLimitMiddleware
from app.services.company import LOGO_MAX_BYTES


def _client():
    """An upload endpoint that parses the whole multipart body first, as Reflex's does."""
    seen: list[int] = []

    async def upload(request: Request) -> JSONResponse:
        form = await request.form()
        content = await form["files"].read()  # type: ignore[union-attr]
        seen.append(len(content))
        return JSONResponse({"size": len(content)})

    app = Starlette(routes=[Route(UPLOAD_PATH, upload, methods=["POST"])])
    return TestClient(UploadLimitMiddleware(app)), seen


def test_an_image_of_the_allowed_size_is_uploaded():
    client, seen = _client()
    response = client.post(UPLOAD_PATH, files={"files": ("logo.png", b"\x89PNG" + b"\x00" * (LOGO_MAX_BYTES - 4))})
    assert response.status_code == 200 and seen == [LOGO_MAX_BYTES]


def test_a_body_past_the_cap_is_refused_with_413_before_it_is_parsed():
    client, seen = _client()
    too_big = {"files": ("logo.png", b"\x00" * (MAX_UPLOAD_BYTES + 1))}
    declared = client.post(UPLOAD_PATH, files=too_big)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the cap holds for what arrives
        yield b"--x\r\nContent-Disposition: form-data; name=files; filename=a.png\r\n\r\n"
        for _ in range(40):
            yield b"\x00" * 65536
        yield b"\r\n--x--\r\n"

    streamed = client.post(UPLOAD_PATH, content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert streamed.status_code == 413
    assert seen == []
