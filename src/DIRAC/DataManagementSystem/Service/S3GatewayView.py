"""What the S3 gateway lets a caller learn of the store: no more than the file catalog shows them.

S3 answers a listing with the size, date and ETag (for a single-part upload, the MD5 of the
bytes) of every key under a prefix, and the names of objects the catalog does not know
("dark" objects: another user's interrupted upload, a foreign tool's object). So the gateway
never signs a listing; it performs it with its keys and answers an S3 listing document holding
only what this caller may see (``getListing``):

* a registered entry (file or directory) under a directory the caller may list: its name;
* the size and date of a file the caller may read (``r`` on it, reached with ``x``);
* an object or prefix the catalog does not know: only to who may create that LFN (``w`` and
  ``x`` on its directory), with its size and date: the writer checking or cleaning up an upload;
* no ETag, owner or storage class, ever; keys no LFN can stand for are left out.

Unfinished multipart uploads are answered the same way: an upload only to who may create its LFN.
The same rule holds for reading one object (``objectReads``): an LFN the catalog does not know is
read (GET/HEAD) only by who may create it, and the refusal is the same whether or not an object
is stored there, so a reader cannot probe the store for dark names.

The catalog is asked on the caller's behalf (the gateway's certificate delegating the caller's
DN and group), in at most three bulk calls per page of 1,000 keys.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog
from DIRAC.Resources.Storage.S3.Methods import MAX_KEYS, READ_FILE, WRITE_FILE, checkListPrefix, checkObjectKey
from DIRAC.Resources.Storage.S3Storage import S3Storage, _findText

#: why an LFN the catalog does not know is not read for this caller (the same whether or not it is stored)
NOT_REGISTERED = "permission denied: not registered in the file catalog; only who may create it may read it"
#: S3 pages of 1,000 keys read for one answer at most while none of their entries is visible to the caller
PAGES_PER_ANSWER = 10
log = gLogger.getSubLogger("S3Gateway")


class CallerCatalog:
    """The file catalog asked on behalf of the caller of the gateway; every answer fails closed."""

    def __init__(self, credentials: dict):
        self._catalog = None
        #: the message of the last call the catalog did not answer at all ('' when every call was answered)
        self.unanswered = ""
        if credentials.get("DN") and credentials.get("group"):
            self._catalog = FileCatalog(
                delegatedDN=credentials["DN"], delegatedGroup=credentials["group"], useCertificates=True
            )

    def _ask(self, method: str, lfns: list[str], *args: Any) -> dict:
        """S_OK({'Successful', 'Failed'}) of one bulk catalog call, or S_ERROR saying why there is no answer."""
        if self._catalog is None:
            return S_ERROR(DErrno.EACCES, "permission denied: the caller has no identity and group")
        result = getattr(self._catalog, method)(lfns, *args)
        if not result["OK"]:
            log.error(f"File catalog {method} failed:", result["Message"])
            self.unanswered = result["Message"]
        return result

    def allowed(self, lfns: list[str], opType: str) -> dict[str, Any]:
        """{lfn: True or the reason it is refused} for catalog operation ``opType`` (``hasAccess``)."""
        if not lfns:
            return {}
        result = self._ask("hasAccess", lfns, opType)
        if not result["OK"]:
            return dict.fromkeys(lfns, f"permission check failed, nothing signed: {result['Message']}")
        answers: dict[str, Any] = {}
        for lfn in lfns:
            if result["Value"]["Successful"].get(lfn) is True:
                answers[lfn] = True
            elif lfn in result["Value"]["Failed"]:
                answers[lfn] = f"permission check failed: {result['Value']['Failed'][lfn]}"
            else:
                answers[lfn] = "permission denied"
        return answers

    def registered(self, lfns: list[str], method: str = "exists") -> dict[str, Any]:
        """{lfn: True, False, or the reason the catalog did not say}: is an entry there (``exists``/``isFile``)?"""
        if not lfns:
            return {}
        result = self._ask(method, lfns)
        if not result["OK"]:
            return dict.fromkeys(lfns, f"permission check failed, nothing signed: {result['Message']}")
        answers: dict[str, Any] = {}
        for lfn in lfns:
            known = result["Value"]["Successful"].get(lfn)
            if isinstance(known, bool):
                answers[lfn] = known
            else:
                answers[lfn] = f"permission check failed: {result['Value']['Failed'].get(lfn, 'no answer')}"
        return answers


def objectReads(catalog: CallerCatalog, lfns: list[str]) -> dict[str, Any]:
    """{lfn: True or the reason} for reading one object each: ``r`` on a registered file; for an LFN
    the catalog does not know, the right to create it."""
    files = catalog.registered(lfns, "isFile")
    answers = {lfn: reason for lfn, reason in files.items() if not isinstance(reason, bool)}
    answers.update(catalog.allowed([lfn for lfn, known in files.items() if known is True], READ_FILE))
    mayCreate = catalog.allowed([lfn for lfn, known in files.items() if known is False], WRITE_FILE)
    answers.update({lfn: True if answer is True else NOT_REGISTERED for lfn, answer in mayCreate.items()})
    return answers


def _lfnOf(storage: S3Storage, key: str, isPrefix: bool) -> str | None:
    """The LFN a listed key or common prefix stands for; None when no LFN can (left out of the answer)."""
    name = key[len(storage.settings.keyPrefix) :] if key.startswith(storage.settings.keyPrefix) else ""
    checked = checkListPrefix(name) if isPrefix else checkObjectKey("list_objects", name)
    return "/" + name.rstrip("/") if name and checked["OK"] else None


def _s3Page(storage: S3Storage, lfn: str, token: str) -> dict:
    """S_OK((files {lfn: (size, date)}, prefixes [lfn], next token or '')) of one S3 page, read with the keys."""
    page = storage._listPage(lfn, token, MAX_KEYS)
    if not page["OK"]:
        return page
    contents, keyPrefixes, nextToken = page["Value"]
    files: dict[str, tuple[str, str]] = {}
    for key, item in contents:
        fileLFN = _lfnOf(storage, key, isPrefix=False)
        if fileLFN is not None:
            files[fileLFN] = (_findText(item, "Size"), _findText(item, "LastModified"))
    prefixes = [_lfnOf(storage, prefix, isPrefix=True) for prefix in keyPrefixes]
    return S_OK((files, [prefix for prefix in prefixes if prefix is not None], nextToken))


def _visible(catalog: CallerCatalog, files: list[str], dirs: list[str]) -> tuple[dict[str, bool], list[str]]:
    """({file: whether its size and date are shown}, [directory]) of the entries this caller may see."""
    registered = catalog.registered(files + dirs)
    known = [lfn for lfn in files if registered[lfn] is True]
    dark = [lfn for lfn in files + dirs if registered[lfn] is False]
    readable = catalog.allowed(known, READ_FILE)
    mayCreate = catalog.allowed(dark, WRITE_FILE)
    shownFiles = {lfn: readable[lfn] is True for lfn in known}
    shownFiles.update({lfn: True for lfn in files if mayCreate.get(lfn) is True})
    shownDirs = [lfn for lfn in dirs if registered[lfn] is True or mayCreate.get(lfn) is True]
    return shownFiles, shownDirs


def listObjects(storage: S3Storage, catalog: CallerCatalog, lfn: str, token: str) -> dict:
    """S_OK(ListObjectsV2 document) of directory ``lfn`` holding only what the caller may see.

    S3 pages of 1,000 keys are read until one shows the caller something or the listing ends
    (at most ``PAGES_PER_ANSWER``); the answer's continuation token is S3's after the last page read.
    """
    root = ElementTree.Element("ListBucketResult")
    ElementTree.SubElement(root, "Prefix").text = storage.settings.listPrefix(lfn)
    contents: list[ElementTree.Element] = []
    commonPrefixes: list[ElementTree.Element] = []
    for _page in range(PAGES_PER_ANSWER):
        page = _s3Page(storage, lfn, token)
        if not page["OK"]:
            return page
        files, prefixes, token = page["Value"]
        shownFiles, shownDirs = _visible(catalog, sorted(files), prefixes)
        if catalog.unanswered:
            return S_ERROR(DErrno.EIO, f"cannot list {lfn}: the file catalog did not answer: {catalog.unanswered}")
        for fileLFN, withStat in shownFiles.items():
            item = ElementTree.Element("Contents")
            ElementTree.SubElement(item, "Key").text = storage.settings.objectKey(fileLFN)
            if withStat:
                size, modified = files[fileLFN]
                ElementTree.SubElement(item, "LastModified").text = modified
                ElementTree.SubElement(item, "Size").text = size
            contents.append(item)
        for dirLFN in shownDirs:
            item = ElementTree.Element("CommonPrefixes")
            ElementTree.SubElement(item, "Prefix").text = storage.settings.listPrefix(dirLFN)
            commonPrefixes.append(item)
        if contents or commonPrefixes or not token:
            break
    ElementTree.SubElement(root, "KeyCount").text = str(len(contents) + len(commonPrefixes))
    ElementTree.SubElement(root, "IsTruncated").text = "true" if token else "false"
    if token:
        ElementTree.SubElement(root, "NextContinuationToken").text = token
    root.extend(sorted(contents, key=lambda item: item[0].text or ""))
    root.extend(commonPrefixes)
    return S_OK(ElementTree.tostring(root, encoding="unicode"))


def listMultipartUploads(storage: S3Storage, catalog: CallerCatalog, lfn: str) -> dict:
    """S_OK(ListMultipartUploads document): the unfinished uploads under ``lfn`` whose LFN the caller may create.

    One answer, not truncated: every page is read with the keys (unfinished uploads are few).
    """
    listed = storage.listMultipartUploads(lfn)
    if not listed["OK"]:
        return listed
    uploads = listed["Value"]
    mayCreate = catalog.allowed(sorted({upload["LFN"] for upload in uploads}), WRITE_FILE)
    if catalog.unanswered:
        return S_ERROR(
            DErrno.EIO, f"cannot list uploads under {lfn}: the file catalog did not answer: {catalog.unanswered}"
        )
    root = ElementTree.Element("ListMultipartUploadsResult")
    ElementTree.SubElement(root, "IsTruncated").text = "false"
    for upload in uploads:
        if mayCreate.get(upload["LFN"]) is not True:
            continue
        item = ElementTree.SubElement(root, "Upload")
        ElementTree.SubElement(item, "Key").text = storage.settings.objectKey(upload["LFN"])
        ElementTree.SubElement(item, "UploadId").text = upload["UploadId"]
        if upload["Initiated"] is not None:
            ElementTree.SubElement(item, "Initiated").text = upload["Initiated"].isoformat()
    return S_OK(ElementTree.tostring(root, encoding="unicode"))
