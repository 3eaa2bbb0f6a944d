"""The bad predict requests both servers must answer alike (the job server's Vertex routes and the Ray
Serve ingress share `server.vertex_contract`): each case is sent as raw bytes, and the answer must be the
expected status in Google's error shape with no traceback or file path in it. Used by
tests/test_server_api.py (in-process) and tests/test_rayserve.py (the real Ray Serve app)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from server.errors import GOOGLE_STATUS
from tests.server_helpers import png, png_header_only

PREDICT = "/vertex/predict"
SDK_PREDICT = "/v1/projects/p/locations/l/endpoints/e:predict"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


GOOD_IMAGE = _b64(png("red", (16, 12)))


def _instances(*instances: dict, **top) -> bytes:
    return json.dumps({"instances": list(instances), **top}).encode()


def _one(**overrides) -> bytes:
    return _instances({"image": GOOD_IMAGE, "layers": 2, "resolution": 640, **overrides})


@dataclass(frozen=True)
class BadRequest:
    name: str
    status: int
    body: bytes = b""
    method: str = "POST"
    path: str = PREDICT
    headers: dict = field(default_factory=lambda: {"Content-Type": "application/json"})


CASES = [
    BadRequest("not_json", 400, b"{not json"),
    BadRequest("nested_10000_deep", 400, b"[" * 10_000 + b"]" * 10_000),
    BadRequest("body_not_an_object", 422, b"[]"),
    BadRequest("no_instances", 422, b"{}"),
    BadRequest("empty_instances", 422, _instances()),
    BadRequest("instances_not_a_list", 422, json.dumps({"instances": {"image": GOOD_IMAGE}}).encode()),
    BadRequest("instance_not_an_object", 422, _instances(5)),
    BadRequest("missing_image", 422, _instances({"layers": 2, "resolution": 640})),
    BadRequest("bad_base64", 422, _one(image="not base64!")),
    BadRequest("empty_image", 422, _one(image="")),
    BadRequest("not_an_image", 415, _one(image=_b64(b"hello, not an image at all"))),
    BadRequest("corrupt_image", 422, _one(image=_b64(png("blue", (64, 64), "JPEG")[:300]))),
    BadRequest("100_megapixels", 413, _one(image=_b64(png_header_only(10_000, 10_000)))),
    BadRequest("layers_string", 422, _one(layers="3")),
    BadRequest("layers_fraction", 422, _one(layers=1.9)),
    BadRequest("layers_boolean", 422, _one(layers=True)),
    BadRequest("layers_infinity", 422, _one(layers=2).replace(b'"layers": 2', b'"layers": Infinity')),
    BadRequest("layers_out_of_range", 422, _one(layers=11)),
    BadRequest("resolution_not_a_bucket", 422, _one(resolution=512)),
    BadRequest("50_instances", 422, _instances(*[{"image": GOOD_IMAGE, "layers": 1, "resolution": 640}] * 50)),
    BadRequest("unknown_top_level_field", 422, _instances({"image": GOOD_IMAGE}, unknown=1)),
    BadRequest("body_over_the_limit", 413, b'{"instances": ["' + b"A" * 2_000_000 + b'"]}'),
    BadRequest("sdk_path_bad_base64", 422, _one(image="%%%"), path=SDK_PREDICT),
    BadRequest("unknown_route", 404, b"{}", path="/v1/nothing/here"),
    BadRequest("wrong_method", 405, method="GET"),
]


def check_answer(case: BadRequest, status: int, text: str) -> None:
    """The expected status, Google's error shape with the same code, and nothing of the server's inside."""
    assert status == case.status, f"{case.name}: {status} {text[:300]}"
    body = json.loads(text)
    assert set(body) == {"error"}, f"{case.name}: {text[:300]}"
    error = body["error"]
    assert error["code"] == status and error["status"] == GOOGLE_STATUS[status], f"{case.name}: {error}"
    assert error["message"] and len(error["message"]) < 2000, f"{case.name}: {error}"
    for leak in ("Traceback", "File \"", ".py", "pid=", "actor"):
        assert leak not in text, f"{case.name} leaks {leak!r}: {text[:500]}"
