"""A retried request does not keep its body alive: a part buffer is freed when its part is done.

urllib3 keeps each failed attempt's exception in the retry history; its traceback holds the
frame that sent the body and that frame holds the exception: a reference cycle only the
garbage collector frees. With part workers moving parts of up to 5 GiB, a part retried
after a reset (as on any real network) would outlive its part and break the
"part size x part workers" memory bound. The collector is off during each send here, so
only a reference left behind can keep the body.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from DIRAC.Resources.Storage.S3.HttpClient import S3HttpClient
from fault_relay import Fault, FaultRelay

MiB = 1024 * 1024


class PartBuffer(bytearray):
    """A part's buffer that can be watched with a weak reference (a plain bytearray cannot)."""


@pytest.fixture
def relay(moto_server):
    with FaultRelay(moto_server.host, moto_server.port) as running:
        yield running


@pytest.mark.parametrize("retries, answered", [(2, True), (0, False)], ids=["retried", "given-up"])
def test_the_body_of_a_reset_request_is_freed_once_sent(relay, moto_server, retries, answered):
    bucket = moto_server.make_bucket()
    fault = relay.add(Fault("reset", method="PUT", direction="request", after=64 * 1024))
    client = S3HttpClient(connectTimeout=5, readTimeout=30, retries=retries, verify=False)
    body = PartBuffer(5 * MiB)
    watched = weakref.ref(body)
    gc.disable()
    try:
        sent = client.send("PUT", f"{relay.url}/{bucket}/part", {"Content-Length": str(len(body))}, body)
        del body
        alive = watched() is not None
    finally:
        gc.enable()
    assert fault.fired == 1
    assert sent["OK"] is answered, sent
    assert not alive, "the reset attempt's exception keeps the request body alive until the garbage collector runs"
