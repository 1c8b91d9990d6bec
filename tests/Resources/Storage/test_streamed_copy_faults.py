"""Network faults during a streamed copy, injected by ``tests/fault_relay.py`` between each
storage and its server: the source's GETs (rclone) and the destination's PUTs (moto).

Every test checks that its fault fired, and ends with either a byte-exact copy carrying its
checksum, or a failure that left nothing at the destination (no object, no unfinished
multipart upload).
"""

from __future__ import annotations

import os

import pytest
from test_streamed_copy import BIG, LFN, SMALL, SMALL_PARTS, Stores, assertNothingLeft, put, storedChecksum

from fault_relay import Fault, FaultRelay


@pytest.fixture
def relays(moto_server, rclone_s3_server):
    """(source relay in front of rclone, destination relay in front of moto)."""
    with FaultRelay(rclone_s3_server.host, rclone_s3_server.port) as source:
        with FaultRelay(moto_server.host, moto_server.port) as destination:
            yield source, destination


@pytest.fixture
def copy(moto_server, rclone_s3_server, relays, tmp_path):
    """``copy(size, arm, sourceOptions, destinationOptions, toFile) -> (result, data, items, stores, destination)``
    after ``arm(sourceRelay, destinationRelay)`` added the faults; ``toFile``: into a File storage."""
    stores = Stores({"moto": moto_server, "rclone": rclone_s3_server}, tmp_path)
    sourceRelay, destinationRelay = relays

    def run(size: int, arm, sourceOptions: dict | None = None, destinationOptions: dict | None = None, toFile=False):
        source = stores.s3("rclone", port=sourceRelay.port, **{"Retries": 3, **(sourceOptions or {})})
        if toFile:
            destination = stores.file()
        else:
            destination = stores.s3("moto", port=destinationRelay.port, **{**SMALL_PARTS, **(destinationOptions or {})})
        data = os.urandom(size)
        items = put(source, tmp_path, data)
        sourceRelay.forget()
        destinationRelay.forget()
        faults = arm(sourceRelay, destinationRelay)
        result = destination.copyStreamed(source, items)[LFN]
        for fault in faults:
            assert fault.fired >= 1, fault
        return result, data, items, stores, destination

    return run


def _gets(relay: FaultRelay) -> list:
    return [request for request in relay.requests if request.method == "GET"]


def assertCopied(result, data, items, stores, destination) -> None:
    assert result == {"OK": True, "Value": len(data)}, result
    assert stores.objects(destination) == {LFN: data}
    assert storedChecksum(destination) == items[LFN]["Checksum"]
    assert stores.unfinishedUploads(destination) == []


@pytest.mark.parametrize("kind", ["reset", "stall"])
@pytest.mark.parametrize("size", [SMALL, BIG], ids=["small", "multipart"])
def test_source_body_broken_mid_way_is_resumed(copy, kind, size):
    def arm(source, _destination):
        # the whole object's GET (small) or the second part's range (multipart) breaks after 100 KiB
        return [source.add(Fault(kind, method="GET", after=100 * 1024, seconds=3, skip=0 if size == SMALL else 2))]

    result, data, items, stores, destination = copy(size, arm, {"ReadTimeout": 1})
    assertCopied(result, data, items, stores, destination)


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_source_body_broken_mid_way_is_resumed_into_a_file(copy, kind):
    def arm(source, _destination):
        return [source.add(Fault(kind, method="GET", after=3 * 1024 * 1024, seconds=3))]

    result, data, items, stores, destination = copy(BIG, arm, {"ReadTimeout": 1}, toFile=True)
    assertCopied(result, data, items, stores, destination)


def test_source_that_keeps_breaking_leaves_no_file(copy):
    def arm(source, _destination):
        return [source.add(Fault("reset", method="GET", after=64 * 1024, times=50))]

    result, _data, _items, stores, destination = copy(SMALL, arm, {"Retries": 1}, toFile=True)
    assert not result["OK"] and "nothing was written" in result["Message"], result
    assertNothingLeft(stores, destination)


def test_source_answer_lost_is_asked_again(copy, relays):
    def arm(source, _destination):
        return [source.add(Fault("lose", method="GET"))]

    result, data, items, stores, destination = copy(SMALL, arm)
    assertCopied(result, data, items, stores, destination)
    assert len(_gets(relays[0])) == 2


def test_source_that_keeps_breaking_fails_and_leaves_nothing(copy):
    def arm(source, _destination):
        return [source.add(Fault("reset", method="GET", after=64 * 1024, skip=2, times=50))]

    result, _data, _items, stores, destination = copy(BIG, arm, {"Retries": 1})
    assert not result["OK"], result
    assert "broke after" in result["Message"] and "the multipart upload was aborted" in result["Message"], result
    assertNothingLeft(stores, destination)


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["small", "multipart"])
@pytest.mark.parametrize("fault", ["reset", "503"])
def test_destination_put_fault_once_is_retried(copy, size, fault):
    def arm(_source, destination):
        if fault == "reset":
            return [destination.add(Fault("reset", method="PUT", direction="request", after=64 * 1024))]
        return [destination.add(Fault.slowDown(method="PUT"))]

    result, data, items, stores, destination = copy(size, arm)
    assertCopied(result, data, items, stores, destination)


@pytest.mark.parametrize("size", [SMALL, BIG], ids=["small", "multipart"])
@pytest.mark.parametrize("fault", ["reset", "503"])
def test_destination_put_that_keeps_failing_leaves_nothing(copy, size, fault):
    def arm(_source, destination):
        if fault == "reset":
            return [destination.add(Fault("reset", method="PUT", direction="request", after=64 * 1024, times=50))]
        return [destination.add(Fault.slowDown(method="PUT", times=50))]

    result, _data, _items, stores, destination = copy(size, arm, destinationOptions={"Retries": 1})
    assert not result["OK"], result
    outcome = "nothing was written" if size == SMALL else "the multipart upload was aborted"
    assert outcome in result["Message"], result
    assertNothingLeft(stores, destination)


def test_completion_whose_answer_is_lost_counts_when_the_object_is_there(copy):
    """CompleteMultipartUpload (a POST, not resent) lands but its answer is lost: the object is ours."""

    def arm(_source, destination):
        return [destination.add(Fault("lose", method="POST", path=r"uploadId="))]

    result, data, items, stores, destination = copy(BIG, arm)
    assertCopied(result, data, items, stores, destination)


def test_completion_refused_aborts_the_upload(copy):
    """CompleteMultipartUpload answered with an error inside a 200 every time: aborted, nothing left."""

    def arm(_source, destination):
        return [destination.add(Fault.errorIn200(s3Code="InternalError", method="POST", path=r"uploadId=", times=50))]

    result, _data, _items, stores, destination = copy(BIG, arm, destinationOptions={"Retries": 1})
    assert not result["OK"] and "the multipart upload was aborted" in result["Message"], result
    assertNothingLeft(stores, destination)
