"""What a caller without S3 keys learns from the gateway: no more than the catalog shows them.

A site like the README's: a catalog and a gateway as services with a test CA, users alice and
bob (group ``dirac_user``) and carol (group ``ext_user``). The gateway holds the keys of
``GW-RCLONE`` (rclone) and ``GW-MOTO`` (moto, which keeps unfinished multipart uploads); this
process is a client without keys. Alice's directory holds a public file, a 0600 file, and
"dark" objects: in the bucket but not in the catalog (an interrupted upload, a foreign tool).

* A listing through the gateway is answered by the gateway itself, never signed: names of
  registered entries, sizes only of files the caller may read, no ETag (the MD5 of the bytes);
  dark names only for who may create them.
* A dark object is read (GET/HEAD) only by who may create its LFN: the writer checking an upload.
* A refusal reads the same whether or not an object is there.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS, TESTS / "security"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from catalog_site import EXTRA_REGISTRY, ROLES  # noqa: E402

from catalog_fixtures import client_environment, systems_cfg  # noqa: E402
from DIRAC.Core.Utilities.Adler import stringAdler  # noqa: E402
from DIRAC.DataManagementSystem.Client.S3GatewayClient import S3GatewayClient  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient  # noqa: E402
from DIRAC.Resources.Storage.StorageElement import StorageElement  # noqa: E402
from rpc_fixtures import ServiceLauncher, free_port, service_cfg  # noqa: E402
from s3_fixtures import merge_cfg, s3_se_cfg  # noqa: E402
from security_fixtures import make_env  # noqa: E402

HOME = "/testvo/user/a/alice"
PUBLIC_DATA = b"anyone may read this"
SECRET_DATA = b"alice only, 0600: nobody else learns size or MD5"
DARK_DATA = b"an upload nobody registered"


@pytest.fixture(scope="module")
def site(rclone_s3_server, moto_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gateway-listing")
    env = make_env(folder / "ca", "DIRAC Gateway Listing CA", [user for user, _ in ROLES])
    stores = {"GW-RCLONE": rclone_s3_server, "GW-MOTO": moto_server}
    buckets = {name: server.make_bucket() for name, server in stores.items()}
    catalogPort, gatewayPort = free_port(), free_port()
    systems = systems_cfg(folder, catalogPort, [gatewayPort], {}, facade=True)
    registry = EXTRA_REGISTRY.format(carol=env.users["carol"].dn, adam=env.users["adam"].dn)
    serverSEs = [s3_se_cfg(name, stores[name], buckets[name]) for name in stores]
    clientSEs = [s3_se_cfg(name, stores[name], buckets[name], with_keys=False) for name in stores]
    serverCfg, clientCfg = folder / "server.cfg", folder / "client.cfg"
    serverCfg.write_text(service_cfg(env, {}, extra=merge_cfg(systems, registry, *serverSEs)))
    clientCfg.write_text(service_cfg(env, {}, extra=merge_cfg(systems, registry, *clientSEs)))
    launcher = ServiceLauncher()
    try:
        launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
        launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
        proxies = {user: env.proxy(user, group, path=folder / f"{user}.pem") for user, group in ROLES}
        environment = client_environment(clientCfg, restore=["X509_USER_PROXY"], X509_CERT_DIR=str(env.ca.caDir))
        with environment:
            yield {"folder": folder, "stores": stores, "buckets": buckets, "proxies": proxies}
    finally:
        launcher.stopAll()


@pytest.fixture
def act(site, monkeypatch):
    """``act(user)``: from now on this process presents ``user``'s proxy."""

    def become(user: str) -> None:
        monkeypatch.setenv("X509_USER_PROXY", str(site["proxies"][user]))

    return become


def _url(site, se: str, lfn: str) -> str:
    server = site["stores"][se]
    return f"s3://{server.host}:{server.port}/{site['buckets'][se]}{lfn}"


def _plant(site, se: str, lfn: str, data: bytes = DARK_DATA) -> None:
    """An object written with the keys and never registered (a foreign tool, a lost upload)."""
    site["stores"][se].client().put_object(Bucket=site["buckets"][se], Key=lfn[1:], Body=data)


def _ok(result: dict) -> dict:
    assert result["OK"], result
    assert not result["Value"]["Failed"], result["Value"]["Failed"]
    return result["Value"]["Successful"]


def _putAndRegister(site, se: str, lfn: str, data: bytes, mode: int | None = None) -> None:
    """As the current user: upload through the gateway, register, optionally chmod."""
    path = site["folder"] / uuid.uuid4().hex
    path.write_bytes(data)
    _ok(StorageElement(se).putFile({lfn: str(path)}))
    entry = {"PFN": _url(site, se, lfn), "Size": len(data), "SE": se, "GUID": str(uuid.uuid4())}
    _ok(FileCatalogClient().addFile({lfn: {**entry, "Checksum": stringAdler(data)}}))
    if mode is not None:
        assert FileCatalogClient().changePathMode({lfn: mode})["OK"]


@pytest.fixture(scope="module")
def alices_directory(site):
    """``HOME/listed`` (0755) on GW-RCLONE: public.dat (0644), secret.dat (0600), dark.dat and
    darkdir/inside.dat in the bucket only."""
    directory = f"{HOME}/listed"
    previous = os.environ.get("X509_USER_PROXY")
    os.environ["X509_USER_PROXY"] = str(site["proxies"]["alice"])
    try:
        _putAndRegister(site, "GW-RCLONE", f"{directory}/public.dat", PUBLIC_DATA)
        _putAndRegister(site, "GW-RCLONE", f"{directory}/secret.dat", SECRET_DATA, mode=0o600)
    finally:
        if previous is None:
            os.environ.pop("X509_USER_PROXY")
        else:
            os.environ["X509_USER_PROXY"] = previous
    _plant(site, "GW-RCLONE", f"{directory}/dark.dat")
    _plant(site, "GW-RCLONE", f"{directory}/darkdir/inside.dat")
    return directory


# ---------------------------------------------------------------- listings


def test_bob_lists_alices_directory_without_her_private_sizes_or_dark_names(site, act, alices_directory):
    act("bob")
    listing = _ok(StorageElement("GW-RCLONE").listDirectory(alices_directory))[alices_directory]
    public, secret = f"{alices_directory}/public.dat", f"{alices_directory}/secret.dat"
    assert sorted(listing["Files"]) == [public, secret], listing
    assert listing["SubDirs"] == {} or list(listing["SubDirs"]) == [], listing
    assert listing["Files"][public]["Size"] == len(PUBLIC_DATA)
    assert listing["Files"][secret].get("Size", 0) == 0 and listing["Files"][secret].get("ModTime") is None
    size = _ok(StorageElement("GW-RCLONE").getDirectorySize(alices_directory))[alices_directory]
    assert (size["Files"], size["Size"], size["SubDirs"]) == (2, len(PUBLIC_DATA), 0)


def test_the_gateways_listing_answer_carries_no_etag_and_no_hidden_size(site, act, alices_directory):
    """The raw answer the keyless client gets: an S3 listing document holding only what bob may see."""
    act("bob")
    url = _url(site, "GW-RCLONE", alices_directory)
    answer = S3GatewayClient().getListing("GW-RCLONE", "list_objects", url, {})
    assert answer["OK"], answer
    document = answer["Value"]
    assert "public.dat" in document and "secret.dat" in document
    assert "ETag" not in document and "dark" not in document
    assert f"<Size>{len(SECRET_DATA)}</Size>" not in document
    assert "Owner" not in document and "StorageClass" not in document


def test_a_raw_listing_url_is_never_signed(site, act, alices_directory):
    """A signed ListObjects URL shows S3's whole answer (sizes, ETags, dark names): refused."""
    act("alice")
    url = _url(site, "GW-RCLONE", alices_directory)
    for method in ("list_objects", "list_multipart_uploads"):
        result = S3GatewayClient().createPresignedUrl("GW-RCLONE", method, [url], 600)
        assert not result["OK"] and "answered by the gateway (getListing), not signed" in result["Message"], result


def test_the_writer_sees_the_dark_objects_she_may_replace(site, act, alices_directory):
    """Who may create an LFN sees its dark object, with its size: to check or clean up an upload."""
    act("alice")
    listing = _ok(StorageElement("GW-RCLONE").listDirectory(alices_directory))[alices_directory]
    dark = f"{alices_directory}/dark.dat"
    assert sorted(listing["Files"]) == sorted(
        [dark, f"{alices_directory}/public.dat", f"{alices_directory}/secret.dat"]
    )
    assert listing["Files"][dark]["Size"] == len(DARK_DATA)
    assert listing["Files"][f"{alices_directory}/secret.dat"]["Size"] == len(SECRET_DATA)
    assert list(listing["SubDirs"]) == [f"{alices_directory}/darkdir"]
    act("carol")
    listing = _ok(StorageElement("GW-RCLONE").listDirectory(alices_directory))[alices_directory]
    assert dark not in listing["Files"] and not listing["SubDirs"], listing


def test_a_directory_holding_only_dark_objects_is_not_a_directory_for_readers(site, act, alices_directory):
    act("carol")
    darkdir = f"{alices_directory}/darkdir"
    result = StorageElement("GW-RCLONE").isDirectory(darkdir)
    assert result["OK"] and darkdir not in result["Value"]["Successful"], result
    act("alice")
    assert _ok(StorageElement("GW-RCLONE").isDirectory(darkdir)) == {darkdir: True}


def test_unfinished_uploads_are_listed_only_for_who_may_create_them(site, act):
    """S3's multipart listing names every upload under a prefix, subdirectories included."""
    directory = f"{HOME}/uploads"
    server, bucket = site["stores"]["GW-MOTO"], site["buckets"]["GW-MOTO"]
    act("alice")
    assert FileCatalogClient().createDirectory(directory)["OK"]
    started = server.client().create_multipart_upload(Bucket=bucket, Key=f"{directory[1:]}/big.dat")
    storage = StorageElement("GW-MOTO").storages[0]
    assert [u["UploadId"] for u in _okValue(storage.listMultipartUploads(directory))] == [started["UploadId"]]
    act("bob")
    assert _okValue(storage.listMultipartUploads(directory)) == []
    server.client().abort_multipart_upload(Bucket=bucket, Key=f"{directory[1:]}/big.dat", UploadId=started["UploadId"])


def _okValue(result: dict):
    assert result["OK"], result
    return result["Value"]


# ---------------------------------------------------------------- reading dark objects


def test_a_dark_object_is_read_only_by_who_may_create_it(site, act, alices_directory):
    dark = f"{alices_directory}/dark.dat"
    url = _url(site, "GW-RCLONE", dark)
    for user in ("carol", "bob"):
        act(user)
        for method in ("get_object", "head_object"):
            result = S3GatewayClient().createPresignedUrl("GW-RCLONE", method, [url], 600)
            assert result["OK"] and result["Value"]["Successful"] == {}, (user, method, result)
            assert "not registered in the file catalog" in result["Value"]["Failed"][url], result
        out = site["folder"] / f"out-{user}"
        out.mkdir(exist_ok=True)
        got = StorageElement("GW-RCLONE").getFile(dark, localPath=str(out))
        assert got["OK"] and dark in got["Value"]["Failed"], got
        assert list(out.iterdir()) == []
        public = f"{alices_directory}/public.dat"
        assert _ok(StorageElement("GW-RCLONE").getFileSize(public)) == {public: len(PUBLIC_DATA)}
    act("alice")
    assert _ok(StorageElement("GW-RCLONE").getFileSize(dark)) == {dark: len(DARK_DATA)}


def test_the_writer_heads_her_own_unregistered_upload(site, act, tmp_path):
    """What the DataManager does after a lost answer: HEAD the upload before registering it."""
    act("alice")
    lfn = f"{HOME}/unregistered/upload.dat"
    source = tmp_path / "upload.dat"
    source.write_bytes(b"not registered yet")
    se = StorageElement("GW-RCLONE")
    _ok(se.putFile({lfn: str(source)}))
    assert _ok(se.exists(lfn)) == {lfn: True}
    meta = _ok(se.getFileMetadata(lfn))[lfn]
    assert (meta["Size"], meta["Checksum"]) == (len(b"not registered yet"), stringAdler(b"not registered yet"))
    act("carol")
    result = se.exists(lfn)
    assert result["OK"] and "not registered in the file catalog" in result["Value"]["Failed"][lfn], result


def test_a_refusal_reads_the_same_whether_or_not_an_object_is_there(site, act, alices_directory):
    """Carol may read the directory: a dark object and a free name get the same answer."""
    act("carol")
    urls = {lfn: _url(site, "GW-RCLONE", f"{alices_directory}/{lfn}") for lfn in ("dark.dat", "never-there.dat")}
    result = S3GatewayClient().createPresignedUrl("GW-RCLONE", "get_object", list(urls.values()), 600)
    failed = result["Value"]["Failed"]
    reasons = {name: failed[url].replace(name, "NAME") for name, url in urls.items()}
    assert reasons["dark.dat"] == reasons["never-there.dat"], reasons
    act("alice")
    private = f"{HOME}/closed"
    _putAndRegister(site, "GW-RCLONE", f"{private}/inside.dat", b"x")
    assert FileCatalogClient().changePathMode({private: 0o700})["OK"]
    act("carol")
    urls = {name: _url(site, "GW-RCLONE", f"{private}/{name}") for name in ("inside.dat", "absent.dat")}
    for method in ("get_object", "head_object"):
        failed = S3GatewayClient().createPresignedUrl("GW-RCLONE", method, list(urls.values()), 600)["Value"]
        reasons = {name: failed["Failed"][url].replace(name, "NAME") for name, url in urls.items()}
        assert reasons["inside.dat"] == reasons["absent.dat"], reasons
    gateway = S3GatewayClient()
    listed = {
        name: gateway.getListing("GW-RCLONE", "list_objects", _url(site, "GW-RCLONE", f"{private}{name}"), {})
        for name in ("", "/absent")
    }
    assert not any(answer["OK"] for answer in listed.values()), listed
    assert "permission denied" in listed[""]["Message"]
    assert listed[""]["Message"].replace(private, "P") == listed["/absent"]["Message"].replace(f"{private}/absent", "P")
