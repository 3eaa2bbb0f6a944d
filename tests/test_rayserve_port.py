"""`RayServeProcess` when its HTTP port is taken before Serve's proxy binds it (Ray's own processes bind
ephemeral ports while it starts): a port it chose is chosen again, a port the user gave is not changed."""

import json
import socket
import urllib.request

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def taken():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def test_a_port_it_chose_is_chosen_again_when_taken_and_one_the_user_gave_is_not(monkeypatch, taken):
    from server.rayserve import process

    real = process.free_port
    offered = iter([taken])
    monkeypatch.setattr(process, "free_port", lambda: next(offered, None) or real())
    rs = process.RayServeProcess(min_replicas=0, max_replicas=1, ready_timeout_s=240)
    try:
        rs.start()
        assert rs.port != taken
        with urllib.request.urlopen(rs.url + "/readyz", timeout=30) as r:
            assert json.loads(r.read())["ray"]["gcs_address"]
        assert f"{process.BIND_FAILED} '127.0.0.1:{taken}'" in rs.log_path.read_text()   # the first try's
    finally:
        assert rs.stop() == []
    given = process.RayServeProcess(port=taken, min_replicas=0, max_replicas=1, ready_timeout_s=240)
    try:
        with pytest.raises(process.PortTaken):
            given.start()
        assert given.port == taken
    finally:
        given.stop()
