"""Network faults on the presigned path: an SE without keys, its URLs from an S3Gateway service.

A catalog and a gateway run as services with a test CA; the S3 traffic of both the gateway's
SEs and this client goes through one fault relay per store. The client (alice's proxy) moves
the bytes with the presigned URLs it got; a broken body must be resumed with that same URL, and
a put whose answer is lost must not turn into a failure because the gateway's ``If-None-Match: *``
refuses the resend of bytes that did land.
"""

from __future__ import annotations

import os

import pytest

from catalog_fixtures import client_environment, systems_cfg
from DIRAC.Resources.Storage.StorageElement import StorageElement
from fault_relay import Fault, FaultRelay
from rpc_fixtures import ServiceLauncher, free_port, service_cfg
from s3_fixtures import merge_cfg, s3_se_cfg

HOME = "/testvo/user/a/alice"
SIZE = 300 * 1024


@pytest.fixture(scope="module")
def site(test_ca, rclone_s3_server, moto_server, tmp_path_factory):
    """Catalog and gateway services for GW-RCLONE and GW-MOTO, each store behind its own relay."""
    folder = tmp_path_factory.mktemp("gateway-faults")
    relays = {"GW-RCLONE": FaultRelay(rclone_s3_server.host, rclone_s3_server.port).start()}
    relays["GW-MOTO"] = FaultRelay(moto_server.host, moto_server.port).start()
    stores = {"GW-RCLONE": rclone_s3_server, "GW-MOTO": moto_server}
    buckets = {name: server.make_bucket() for name, server in stores.items()}
    catalogPort, gatewayPort = free_port(), free_port()
    options = {"Services/S3Gateway/AuditFile": str(folder / "audit.jsonl")}
    systems = systems_cfg(folder, catalogPort, [gatewayPort], options, facade=True)
    serverSEs, clientSEs = [], []
    for name, server in stores.items():
        through = {"Port": relays[name].port, "ReadTimeout": 1}
        serverSEs.append(s3_se_cfg(name, server, buckets[name], **through))
        clientSEs.append(s3_se_cfg(name, server, buckets[name], with_keys=False, **through))
    serverCfg, clientCfg = folder / "server.cfg", folder / "client.cfg"
    serverCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *serverSEs)))
    clientCfg.write_text(service_cfg(test_ca, {}, extra=merge_cfg(systems, *clientSEs)))
    launcher = ServiceLauncher()
    try:
        launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
        launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
        proxy = test_ca.proxy("alice", "dirac_user", path=folder / "alice.pem")
        environment = client_environment(clientCfg, X509_CERT_DIR=str(test_ca.caDir), X509_USER_PROXY=str(proxy))
        with environment:
            yield {"relays": relays, "stores": stores, "buckets": buckets}
    finally:
        launcher.stopAll()
        for relay in relays.values():
            relay.stop()


def _stored(site, se: str, lfn: str) -> bytes | None:
    """The bytes the store holds for ``lfn`` (read with the keys, not through the relay)."""
    client = site["stores"][se].client()
    try:
        return client.get_object(Bucket=site["buckets"][se], Key=lfn.lstrip("/"))["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


@pytest.mark.parametrize("seName", ["GW-RCLONE", "GW-MOTO"])
@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_broken_body_is_resumed_with_the_presigned_url(site, relay_of, tmp_path, seName, kind):
    lfn = f"{HOME}/faults/{kind}-{seName}.dat"
    source = tmp_path / "source.dat"
    source.write_bytes(os.urandom(SIZE))
    se = StorageElement(seName)
    assert se.putFile({lfn: str(source)})["Value"]["Successful"] == {lfn: SIZE}
    relay = relay_of(seName)
    fault = relay.add(Fault(kind, method="GET", after=100 * 1024, seconds=3))
    out = tmp_path / "out"
    out.mkdir()
    result = se.getFile(lfn, localPath=str(out))["Value"]
    assert result["Successful"] == {lfn: SIZE}, result
    assert fault.fired == 1
    gets = [request for request in relay.requests if request.method == "GET"]
    assert len(gets) == 2 and gets[0].target == gets[1].target, "the same presigned URL, resumed"
    assert (out / source.name.replace("source", f"{kind}-{seName}")).read_bytes() == source.read_bytes()
    assert sorted(os.listdir(out)) == [f"{kind}-{seName}.dat"]
    assert se.removeFile(lfn)["Value"]["Successful"] == {lfn: True}


def test_put_whose_answer_is_lost_is_not_reported_as_a_refusal(site, relay_of, tmp_path):
    """moto enforces the gateway's ``If-None-Match: *``: the resend gets 412, yet the bytes are ours."""
    lfn = f"{HOME}/faults/lost-answer.dat"
    source = tmp_path / "lost-answer.dat"
    source.write_bytes(os.urandom(SIZE))
    se = StorageElement("GW-MOTO")
    relay = relay_of("GW-MOTO")
    lost = relay.add(Fault("lose", method="PUT"))
    result = se.putFile({lfn: str(source)})["Value"]
    assert result["Successful"] == {lfn: SIZE}, result
    assert lost.fired == 1 and len([r for r in relay.requests if r.method == "PUT"]) == 2
    assert _stored(site, "GW-MOTO", lfn) == source.read_bytes()
    other = tmp_path / "other.dat"
    other.write_bytes(os.urandom(SIZE))
    refused = se.putFile({lfn: str(other)})["Value"]
    assert "exists already; not overwritten" in refused["Failed"][lfn], refused
    assert _stored(site, "GW-MOTO", lfn) == source.read_bytes()
    assert se.removeFile(lfn)["Value"]["Successful"] == {lfn: True}
