"""A test site for the failure tests: two S3 SEs, a real catalog DB, and a check that they agree.

``Site(server, dirac_cfg, tmp_path, through=relay, **seOptions)``; ``site.dm(catalog, S3_A=se)``
makes a DataManager (optionally with an injected catalog or StorageElement);
``site.assertAgreement()`` lists both buckets and the whole catalog and compares them, and
checks that no multipart upload is open and no replication folder is left under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import botocore.exceptions

from catalog_fixtures import DBCatalog
from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from s3_fixtures import s3_se_cfg

ALICE = {"DN": "/CN=alice", "username": "alice", "group": "vo_user", "properties": ["NormalUser"], "VO": "vo"}
MIB5 = 5 * 1024 * 1024


class Site:
    """Two S3 SEs on one server, a catalog DB, and a DataManager for alice."""

    def __init__(self, server, dirac_cfg, tmp_path: Path, through=None, **seOptions):
        """``through``: where the SEs point (a ``FaultRelay``) instead of ``server``; ``seOptions`` for both SEs."""
        self.server, self.tmp = server, tmp_path
        self.buckets = {"S3-A": server.make_bucket(), "S3-B": server.make_bucket()}
        endpoint = server
        if through is not None:
            endpoint = SimpleNamespace(
                host=through.host, port=through.port, access_key=server.access_key, secret_key=server.secret_key
            )
        options = {"MultipartThreshold": MIB5, "MultipartChunkSize": MIB5, **seOptions}
        dirac_cfg([s3_se_cfg(name, endpoint, bucket, **options) for name, bucket in self.buckets.items()])
        self.db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
        assert self.db.isConnected()["OK"]

    def dm(self, catalog=None, **ses) -> DataManager:
        manager = DataManager(fileCatalog=catalog or DBCatalog(self.db, ALICE))
        for name, se in ses.items():
            manager.storage._cache[name.replace("_", "-")] = se
        return manager

    def file(self, name: str, size: int = 3000, seed: int = 1) -> str:
        path = self.tmp / name
        path.write_bytes((bytes(range(seed, seed + 200)) * (size // 200 + 1))[:size])
        return str(path)

    def objects(self, seName: str) -> dict[str, int]:
        """{LFN: size} of every object in the SE's bucket (the bucket listed)."""
        client = self.server.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.buckets[seName])
        return {"/" + item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}

    def catalog(self, seName: str) -> dict[str, int]:
        """{LFN: size} of every file with a replica at ``seName`` (the whole catalog listed)."""
        return catalogFiles(self.db, seName)

    def openUploads(self, seName: str) -> list[dict]:
        """The bucket's unfinished multipart uploads."""
        return openUploads(self.server, self.buckets[seName])

    def assertAgreement(self) -> None:
        """Catalog and buckets list the same files, no multipart upload is open, no temp folder is left."""
        for seName in self.buckets:
            assert self.objects(seName) == self.catalog(seName), seName
            assert self.openUploads(seName) == [], f"open multipart uploads in {seName}"
        assert not list(self.tmp.rglob("dirac-replicate-*")), "a temporary replication folder was left"


def catalogFiles(db: FileCatalogDB, seName: str) -> dict[str, int]:
    """{LFN: size} of every file with a replica at ``seName`` (alice's whole catalog listed)."""
    found, pending = {}, ["/"]
    while pending:
        listing = db.listDirectory(pending.pop(), ALICE, True)["Value"]["Successful"]
        for entry in listing.values():
            pending.extend(entry["SubDirs"])
            for lfn, item in entry["Files"].items():
                if seName in item["Replicas"]:
                    found[lfn] = item["MetaData"]["Size"]
    return found


def openUploads(server, bucket: str) -> list[dict]:
    """The bucket's unfinished multipart uploads (rclone answers NoSuchUpload when it keeps none)."""
    try:
        return server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchUpload":
            return []
        raise
