"""Malformed RPC arguments reach the catalog and the gateway as a clear error, never HTTP 500, never a side effect.

Each call is posted raw (our JSON and DIRAC 9's form) with a real proxy to real services, so the
HTTP status is seen too. After each refusal the catalog holds no new entry, the gateway signed
nothing (its audit has no grant) and the bucket holds no new object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import test_s3_gateway  # noqa: E402
from test_s3_gateway import HOME  # noqa: E402

from DIRAC.Core.Tornado import Serialization  # noqa: E402
from DIRAC.Core.Tornado.Client.TornadoClient import clientSSLContext, sessionFor  # noqa: E402

gateway = test_s3_gateway.gateway
asAlice = test_s3_gateway.asAlice
CHECKSUM = "0a0b0c0d"


def post(url: str, proxy: str, method: str, args: list | str, dirac9: bool = False) -> tuple[int, dict]:
    """(HTTP status, S_OK/S_ERROR) of one raw call; ``args`` as text is sent as is."""
    key, context = clientSSLContext(proxy, proxy)["Value"]
    session = sessionFor(key, context)
    text = args if isinstance(args, str) else json.dumps(args)
    if dirac9:
        response = session.post(url, data={"method": method, "args": text}, timeout=60)
    else:
        body = f'{{"method": {json.dumps(method)}, "args": {text}}}'
        response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    dialect = Serialization.DIRAC9 if dirac9 else Serialization.JSON
    return response.status_code, Serialization.decode(response.content, dialect)


def refused(status: int, answer: dict, *fragments: str) -> None:
    assert status != 500 and status < 500, (status, answer)
    assert answer["OK"] is False or answer["Value"]["Failed"], answer
    text = answer.get("Message") or json.dumps(answer["Value"]["Failed"])
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in text


def bucketKeys(gateway) -> set[str]:
    listing = gateway["server"].client().list_objects_v2(Bucket=gateway["bucket"])
    return {item["Key"] for item in listing.get("Contents", [])}


@pytest.fixture
def world(gateway):
    """Service URLs, alice's proxy, and ``unchanged()``: nothing new in the catalog, the audit or the bucket."""
    from DIRAC.ConfigurationSystem.Client.Config import gConfig

    audit = gateway["folder"] / "audit.jsonl"
    before = audit.read_text() if audit.exists() else ""
    keysBefore = bucketKeys(gateway)
    catalogURL = gConfig.getValue("/Systems/DataManagement/URLs/FileCatalog", [])[0]
    proxy = str(gateway["proxies"]["alice"])

    def unchanged(*lfns: str) -> None:
        after = audit.read_text() if audit.exists() else ""
        records = [json.loads(line) for line in after[len(before) :].splitlines()]
        assert not [record for record in records if record["granted"]], records
        assert bucketKeys(gateway) == keysBefore
        status, answer = post(catalogURL, proxy, "exists", [list(lfns)])
        assert status == 200 and answer["OK"], answer
        assert not any(answer["Value"]["Successful"].values()), answer

    return {"gateway": gateway["gateways"][0].url(), "catalog": catalogURL, "proxy": proxy, "unchanged": unchanged}


def entry(size, checksum=CHECKSUM, se="S3-INDIRECT") -> dict:
    return {"SE": se, "Size": size, "Checksum": checksum, "GUID": "", "PFN": ""}


@pytest.mark.parametrize("dirac9", [False, True], ids=["json", "dirac9"])
def test_catalog_refuses_malformed_arguments_without_writing(world, dirac9):
    lfn = f"{HOME}/malformed/f"
    cases = [
        ([{lfn: entry(2**64)}], "outside the 64-bit range"),
        ([{lfn: entry(-(2**64))}], "outside the 64-bit range"),
        ([{lfn: entry(5, checksum=["a", ["b"]])}], "Checksum must be a string"),
        ([{lfn: entry(5, se=[["S3-INDIRECT"]])}], "SE must be a string"),
        ([[[lfn]]], "LFN lists must hold strings"),
        ('[{"' + lfn + '": ' + "[" * 200 + "]" * 200 + "}]", "nested more than 64 levels"),
        ([{lfn + "x" * 300: entry(5)}], "longer than 255 characters"),
        ([{lfn: entry(True)}], "Size"),
    ]
    for args, reason in cases:
        status, answer = post(world["catalog"], world["proxy"], "addFile", args, dirac9)
        refused(status, answer, reason)
        if dirac9:
            assert status == 200
    world["unchanged"](lfn)


@pytest.mark.parametrize("dirac9", [False, True], ids=["json", "dirac9"])
def test_gateway_refuses_malformed_arguments_without_signing(world, asAlice, dirac9):
    url = asAlice.storages[0]._lfnToURL(f"{HOME}/malformed/g")
    put = {"Checksum": CHECKSUM, "Size": 5, "ContentMD5": "XUFAKrxLKna5cZ2REBfFkg=="}
    cases = [
        (["S3-INDIRECT", "get_object", [[url]], 60], "urls must be a list of URL strings"),
        (["S3-INDIRECT", "get_object", [url], True], "argument 4 should be int, got bool"),
        (["S3-INDIRECT", "get_object", [url], 2**64], "outside the 64-bit range"),
        (["S3-INDIRECT", "put_object", {url: {**put, "Size": 2**64}}, 60], "outside the 64-bit range"),
        (["S3-INDIRECT", "put_object", {url: {**put, "Size": [5]}}, 60], "Size must be a number of bytes"),
        (["S3-INDIRECT", "put_object", {url: {**put, "Checksum": [[CHECKSUM]]}}, 60], "Checksum"),
        ([["S3-INDIRECT"], "get_object", [url], 60], "argument 1 should be str, got list"),
        ('["S3-INDIRECT", "get_object", ' + "[" * 100 + "]" * 100 + ", 60]", "nested more than 64 levels"),
    ]
    for args, reason in cases:
        status, answer = post(world["gateway"], world["proxy"], "createPresignedUrl", args, dirac9)
        refused(status, answer, reason)
    world["unchanged"](f"{HOME}/malformed/g")
    # The service is still up and answers a good call.
    status, answer = post(
        world["gateway"], world["proxy"], "createPresignedUrl", ["S3-INDIRECT", "head_object", [url], 60]
    )
    assert status == 200 and answer["OK"] and url in answer["Value"]["Successful"]


def test_oversized_string_is_refused_before_reading_it_all(world):
    huge = "x" * (64 * 1024 * 1024)
    key, context = clientSSLContext(world["proxy"], world["proxy"])["Value"]
    response = sessionFor(key, context).post(
        world["catalog"], data={"method": "exists", "args": json.dumps([[huge]])}, timeout=120
    )
    assert response.status_code == 200
    answer = Serialization.decode(response.content, Serialization.DIRAC9)
    assert not answer["OK"] and "exceeds the limit" in answer["Message"]
