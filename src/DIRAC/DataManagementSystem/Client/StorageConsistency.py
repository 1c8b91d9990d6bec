"""Compare a storage element with the file catalog under a directory, and repair what is safe to repair.

What a crash outside our control (power loss, a killed host) can leave, and how
it is found:

* dark objects: stored at the SE, unknown to the catalog (or not registered at
  that SE). Only objects older than ``minAge`` count: a younger one may belong to
  an upload that is about to register it.
* lost replicas: the catalog lists a replica at the SE, the SE has no object.
* mismatches: both exist but the sizes differ (from the listings), or, with
  ``checksums``, the SE's adler32 differs from the catalog's (one HEAD per file).
* stale uploads: S3 multipart uploads under the directory started more than
  ``minAge`` seconds ago and never completed (their parts use space).

Cost: one SE listing (paged) and one catalog query per directory, directories
of a level asked together; the multipart uploads in one listing for the whole
tree. So it scales with the number of directories, not with per-file requests.

``fix`` removes dark objects and aborts stale uploads. Before it removes an object
it asks the catalog again, and leaves any LFN that got a replica at the SE since.
Lost replicas and mismatches are only reported: which copy is right is the
operator's decision (``dirac-dms-remove-replicas``, ``dirac-dms-replicate-lfn``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import compareAdler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.DataManagementSystem.Client.DataManagerUtilities import splitBulk
from DIRAC.Resources.Storage.StorageElement import StorageElement
from DIRAC.Resources.Storage.StorageFactory import StorageFactory

#: Directories asked together in one catalog query and one bulk SE listing.
LEVEL_BATCH = 200
#: Directories walked at most (a bound on the loop, far above any real tree).
MAX_DIRECTORIES = 10_000_000


@dataclass
class Report:
    """What ``check`` found; every list is sorted."""

    directories: int = 0
    files: int = 0
    dark: list[str] = field(default_factory=list)
    recentDark: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    mismatches: dict[str, str] = field(default_factory=dict)
    staleUploads: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing needs attention."""
        return not (self.dark or self.lost or self.mismatches or self.staleUploads or self.problems)


def _age(modTime: Any, now: float) -> float:
    """Seconds since ``modTime`` (a datetime or epoch number); infinite when unknown."""
    if isinstance(modTime, datetime):
        return now - modTime.timestamp()
    if isinstance(modTime, (int, float)):
        return now - float(modTime)
    return float("inf")


class StorageConsistency:
    """Compares one SE with the catalog; see the module documentation."""

    def __init__(self, seName: str, fileCatalog: Any = None, vo: str | None = None):
        self.seName = seName
        self.vo = vo
        self._fileCatalog = fileCatalog
        self.se = StorageElement(seName, vo=vo)

    @property
    def fileCatalog(self) -> Any:
        if self._fileCatalog is None:
            from DIRAC.Resources.Catalog.FileCatalog import FileCatalog

            self._fileCatalog = FileCatalog(vo=self.vo)
        return self._fileCatalog

    def _s3Plugin(self) -> Any:
        """The SE's S3 plugin (for multipart uploads), None for other storages."""
        result = StorageFactory(vo=self.vo).getStorages(self.seName, ["S3"])
        if not result["OK"]:
            return None
        return next((s for s in result["Value"]["StorageObjects"] if hasattr(s, "listMultipartUploads")), None)

    # ------------------------------------------------------------------ check

    def check(self, directory: str, minAge: float = 86400, checksums: bool = False) -> dict:
        """S_OK(Report) comparing the SE with the catalog under ``directory`` (recursively)."""
        if not self.se.valid:
            return S_ERROR(DErrno.ECONF, f"storage element {self.seName} is not usable: {self.se.errorReason}")
        if not isinstance(directory, str) or not directory.startswith("/"):
            return S_ERROR(DErrno.EINVAL, f"the directory must be an absolute LFN path, not {directory!r}")
        report, now = Report(), time.time()
        level = [directory.rstrip("/") or "/"]
        while level and report.directories < MAX_DIRECTORIES:
            nextLevel: list[str] = []
            for start in range(0, len(level), LEVEL_BATCH):
                batch = level[start : start + LEVEL_BATCH]
                nextLevel += self._compareDirectories(batch, report, now, minAge, checksums)
            report.directories += len(level)
            level = sorted(set(nextLevel))
        self._findStaleUploads(directory, report, now, minAge)
        report.dark.sort()
        report.recentDark.sort()
        report.lost.sort()
        return S_OK(report)

    def _compareDirectories(
        self, directories: list[str], report: Report, now: float, minAge: float, checksums: bool
    ) -> list[str]:
        """Compare a batch of directories (one catalog query, one bulk SE listing); their sub-directories."""
        catalogListing, catalogErrors = splitBulk(
            self._call("listDirectory", directories, True), directories, "catalog listDirectory"
        )
        seListing, seErrors = splitBulk(self.se.listDirectory(directories), directories, f"listing {self.seName}")
        subDirectories: list[str] = []
        both: dict[str, int] = {}
        for directory in directories:
            if directory in catalogErrors and "No such file" not in catalogErrors[directory]:
                report.problems.append(catalogErrors[directory])
                continue
            if directory in seErrors and "does not exist" not in seErrors[directory]:
                report.problems.append(seErrors[directory])
                continue
            cataloged = catalogListing.get(directory, {})
            stored = seListing.get(directory, {})
            subDirectories += list(cataloged.get("SubDirs", {})) + list(stored.get("SubDirs", {}))
            registered = {
                lfn: entry["MetaData"]
                for lfn, entry in cataloged.get("Files", {}).items()
                if self.seName in entry.get("Replicas", {})
            }
            objects = stored.get("Files", {})
            report.files += len(objects)
            for lfn, meta in objects.items():
                if lfn not in registered:
                    (report.dark if _age(meta.get("ModTime"), now) >= minAge else report.recentDark).append(lfn)
                elif meta.get("Size") != registered[lfn].get("Size"):
                    report.mismatches[lfn] = (
                        f"size {meta.get('Size')} at {self.seName}, {registered[lfn].get('Size')} in the catalog"
                    )
                else:
                    both[lfn] = registered[lfn]
            report.lost += [lfn for lfn in registered if lfn not in objects]
        if checksums and both:
            self._compareChecksums(both, report)
        return subDirectories

    def _compareChecksums(self, registered: dict[str, dict], report: Report) -> None:
        """One HEAD per file: the SE's adler32 against the catalog's."""
        lfns = list(registered)
        stored, errors = splitBulk(self.se.getFileMetadata(lfns), lfns, f"checksum at {self.seName}")
        report.problems += list(errors.values())
        for lfn, meta in stored.items():
            expected = registered[lfn].get("Checksum")
            actual = meta.get("Checksum")
            if expected and not (actual and compareAdler(str(actual), str(expected))):
                report.mismatches[lfn] = f"adler32 {actual or 'unknown'} at {self.seName}, {expected} in the catalog"

    def _findStaleUploads(self, directory: str, report: Report, now: float, minAge: float) -> None:
        plugin = self._s3Plugin()
        if plugin is None:
            return
        listed = plugin.listMultipartUploads(directory)
        if not listed["OK"]:
            report.problems.append(f"unfinished uploads: {listed['Message']}")
            return
        report.staleUploads = sorted(
            (upload for upload in listed["Value"] if _age(upload["Initiated"], now) >= minAge),
            key=lambda upload: upload["LFN"],
        )

    def _call(self, method: str, *args: Any) -> dict:
        try:
            return getattr(self.fileCatalog, method)(*args)
        except Exception as exc:  # noqa: BLE001 - an injected catalog's bug becomes an error, not a traceback
            return S_ERROR(DErrno.EEEXCEPTION, f"catalog {method}: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ repair

    def fix(self, report: Report) -> dict:
        """Remove the dark objects and abort the stale uploads of ``report``.

        S_OK({'Removed': [...], 'Aborted': [...], 'Kept': {lfn: why}, 'Failed': {item: reason}}).
        """
        kept: dict[str, str] = {}
        failed: dict[str, str] = {}
        dark = list(report.dark)
        if dark:
            replicas, errors = splitBulk(self._call("getReplicas", dark), dark, "catalog getReplicas")
            for lfn, reason in errors.items():
                if "No such file" not in reason:
                    kept[lfn] = f"the catalog cannot confirm it is dark: {reason}"
            for lfn, ses in replicas.items():
                if self.seName in ses:
                    kept[lfn] = f"registered at {self.seName} since the check"
        toRemove = [lfn for lfn in dark if lfn not in kept]
        removed, errors = splitBulk(self.se.removeFile(toRemove), toRemove, f"removal from {self.seName}")
        failed.update(errors)
        aborted = []
        plugin = self._s3Plugin() if report.staleUploads else None
        for upload in report.staleUploads:
            result = plugin.abortMultipartUpload(upload["LFN"], upload["UploadId"]) if plugin else S_ERROR("no S3")
            if result["OK"]:
                aborted.append(f"{upload['LFN']} {upload['UploadId']}")
            else:
                failed[f"{upload['LFN']} {upload['UploadId']}"] = result["Message"]
        return S_OK({"Removed": sorted(removed), "Aborted": aborted, "Kept": kept, "Failed": failed})
