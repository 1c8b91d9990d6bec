"""S3GatewayClient: ask the ``DataManagement/S3Gateway`` service for presigned URLs."""

from __future__ import annotations

from typing import Any

from DIRAC.Core.Base.Client import Client


class S3GatewayClient(Client):
    """Client of the S3 gateway; fails over across ``/Systems/DataManagement/URLs/S3Gateway``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setServer("DataManagement/S3Gateway")

    def createPresignedUrl(self, storageName: str, s3_method: str, urls: list | dict, expiration: int = 3600) -> dict:
        """Bulk S_OK({'Successful': {url: presigned URL}, 'Failed': {url: reason}})."""
        return self._getRPC().createPresignedUrl(storageName, s3_method, urls, expiration)

    def getListing(self, storageName: str, s3_method: str, url: str, params: dict | None = None) -> dict:
        """S_OK(S3 listing document) of directory ``url`` (``list_objects`` or ``list_multipart_uploads``)
        holding only what the file catalog shows the caller; listings are never signed."""
        return self._getRPC().getListing(storageName, s3_method, url, params or {})

    def presignCopy(
        self, storageName: str, sourceStorageName: str, s3_method: str, urls: dict, expiration: int = 600
    ) -> dict:
        """Bulk S_OK({'Successful': {url: presigned URL}, 'Failed': {url: reason}}): server-side copies
        (``copy_object`` / ``upload_part_copy``) into ``storageName`` of each destination URL's LFN on
        ``sourceStorageName``; ``urls`` is ``{url: {'SourceETag': ..., ...}}``. The gateway pins the
        source's bucket, key and ETag; see ``S3GatewayHandler.export_presignCopy``."""
        return self._getRPC().presignCopy(storageName, sourceStorageName, s3_method, urls, expiration)
