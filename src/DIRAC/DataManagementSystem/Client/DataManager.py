"""DataManager: files as the user sees them, kept consistent between storage and the catalog.

DIRAC's ``DataManager`` API: ``putAndRegister``, ``getFile``,
``replicateAndRegister``, ``removeFile``, ``removeReplica``, ``getReplicas``,
``getReplicaAccessUrl``. Every method takes one LFN or a list (``putAndRegister``
also a dict ``{lfn: localFile}``) and returns
``S_OK({'Successful': {lfn: ...}, 'Failed': {lfn: reason}})``; a problem with the
whole call (unknown storage element, bad argument type) is an S_ERROR. Nothing
raises.

Consistency rules (the README's table of failures lists every outcome):

* Upload then register. After an unclear failure nothing is assumed: a failed
  upload is followed by a HEAD (the object there with our size and adler32 means
  the answer was lost: it is registered); a failed ``addFile`` by a catalog
  look-up (registered with our size, checksum and replica means the answer was
  lost: success). Only an upload provably ours (same size and adler32) that is
  provably not registered is removed; an object another writer registered is
  never deleted, and when the catalog cannot tell, the object is kept and the
  reason says to run again. A re-run of a finished upload succeeds.
* Replication reads the source, never changes it; the catalog only gains the new
  replica once the destination copy was checked against the catalog's size and
  adler32 (also after a lost answer of the copy). A copy that does not match is
  removed. S3 is not third-party-copy capable, so ``s3`` is never a third-party
  protocol. The copy takes one of three ways per file: a server-side copy when
  both SEs are on one S3 service (no byte through this client); else a streamed
  copy (the source's reads feed the destination's write: no local file, bounded
  memory); a local copy when ``localCache`` is given or neither direct way can
  copy the file: a local file in a fresh temporary folder (under ``localCache``
  when given) whose adler32 is checked against the catalog before the upload; the
  folder is always removed, and names its owner process so that a later run
  removes it if that process was killed.
* Removal: storage first, then the catalog, so a catalog entry never points at
  nothing while a replica it lists could not be removed. A failed removal is
  checked: an object that is gone was removed.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from DIRAC.ConfigurationSystem.Client.Helpers.Operations import Operations
from DIRAC.Core.Utilities import DErrno
from DIRAC.Core.Utilities.Adler import compareAdler, fileAdler
from DIRAC.Core.Utilities.ReturnValues import S_ERROR, S_OK
from DIRAC.DataManagementSystem.Client.DataManagerStorage import ABSENT, PRESENT, StorageOperations, matches
from DIRAC.DataManagementSystem.Client.DataManagerUtilities import (
    checkLocalCopy,
    perItem,
    splitBulk,
    splitLFNs,
)
from DIRAC.FrameworkSystem.Client.Logger import gLogger
from DIRAC.Resources.Storage.StorageElement import StorageElement
from DIRAC.Resources.Storage.Utilities import checkLocalSource

#: Protocols that can never be used for third-party copy (S3 cannot pull from another storage).
NEVER_THIRD_PARTY = ("s3",)
RERUN_TO_UNREGISTER = "the replica is gone from storage but still registered: run the same command again"


def _bulk(successful: dict, failed: dict) -> dict:
    return S_OK({"Successful": successful, "Failed": failed})


class DataManager:
    """DIRAC's DataManager over our StorageElement and FileCatalog.

    ``fileCatalog`` may be any object with the FileCatalog facade's methods
    (``addFile``, ``addReplica``, ``removeFile``, ``removeReplica``,
    ``getReplicas``, ``getFileMetadata``, ``exists``, ``hasAccess``); by default
    the facade over ``catalogs`` (all configured catalogs when None).
    """

    def __init__(self, catalogs: str | list[str] | None = None, vo: str | None = None, fileCatalog: Any = None):
        self.catalogs = catalogs
        self.vo = vo
        self._fileCatalog = fileCatalog
        self.log = gLogger.getSubLogger("DataManager")
        self.storage = StorageOperations(vo, self.log)

    # ------------------------------------------------------------------ plumbing

    @property
    def fileCatalog(self) -> Any:
        """The catalog object (the FileCatalog facade unless one was given)."""
        if self._fileCatalog is None:
            from DIRAC.Resources.Catalog.FileCatalog import FileCatalog

            self._fileCatalog = FileCatalog(catalogs=self.catalogs, vo=self.vo)
        return self._fileCatalog

    def _catalogCall(self, method: str, argument: Any, *args: Any) -> dict:
        """The catalog's S_OK / S_ERROR for a bulk method; an exception becomes an S_ERROR."""
        try:
            return getattr(self.fileCatalog, method)(argument, *args)
        except Exception as exc:  # noqa: BLE001 - an injected catalog's bug must become a per-LFN failure
            self.log.exception(f"catalog {method} raised")
            return S_ERROR(DErrno.EEEXCEPTION, f"{type(exc).__name__}: {exc}")

    def _catalog(self, method: str, argument: Any, lfns: list[str], *args: Any) -> tuple[dict, dict]:
        """Call a catalog bulk method; ``(successful, failed-with-text-reasons)``, never raising."""
        if not lfns:
            return {}, {}
        return splitBulk(self._catalogCall(method, argument, *args), lfns, f"catalog {method}")

    def _lfnsAndSE(self, lfn: Any, seName: str, operation: str) -> dict:
        """S_OK((lfns, failed, StorageElement)): the LFN argument split, and ``seName`` usable for ``operation``."""
        parsed = splitLFNs(lfn)
        if not parsed["OK"]:
            return parsed
        lfns, failed = parsed["Value"]
        result = self.storage.storageElement(seName, operation)
        if not result["OK"]:
            return result
        return S_OK((lfns, failed, result["Value"]))

    def _metadataAndReplicas(self, lfns: list[str], failed: dict) -> tuple[dict, dict]:
        """(metadata, replicas) from the catalog of the registered ``lfns``; the others go to ``failed``."""
        metadata, errors = self._catalog("getFileMetadata", lfns, lfns)
        failed.update(errors)
        replicas, errors = self._catalog("getReplicas", list(metadata), list(metadata))
        failed.update(errors)
        return metadata, replicas

    def _allowed(self, lfns: list[str], operation: str, failed: dict) -> list[str]:
        """The LFNs the catalog lets the caller do ``operation`` on; the others go to ``failed``."""
        answers, errors = self._catalog("hasAccess", lfns, lfns, operation)
        failed.update(errors)
        allowed = []
        for lfn, allowedHere in answers.items():
            if allowedHere:
                allowed.append(lfn)
            else:
                failed[lfn] = f"Permission denied: the catalog does not allow {operation} on {lfn}"
        return allowed

    # ------------------------------------------------------------------ upload

    def putAndRegister(
        self,
        lfn: Any,
        fileName: Any = None,
        diracSE: str = "",
        guid: Any = None,
        path: Any = None,
        checksum: Any = None,
        overwrite: bool = False,
    ) -> dict:
        """Upload local file(s) to ``diracSE`` and register them with size, adler32 and GUID.

        ``lfn`` and ``fileName`` are one LFN and one file, two lists of the same
        length, or ``lfn`` is a dict ``{lfn: localFile}``. ``guid`` / ``checksum``
        are values (one file) or dicts by LFN; a given checksum must match the
        file's adler32. ``path`` is accepted for DIRAC compatibility and unused.
        An LFN already registered fails, unless ``overwrite``: then, as in DIRAC,
        the existing file (all replicas and its entry) is removed first.
        Successful: ``{lfn: {'put': seconds, 'register': seconds}}``.
        """
        pairs = self._uploadPairs(lfn, fileName)
        if not pairs["OK"]:
            return pairs
        sources, failed = pairs["Value"]
        result = self.storage.storageElement(diracSE, "putFile")
        if not result["OK"]:
            return result
        se = result["Value"]
        single = isinstance(lfn, str)

        infos: dict[str, dict] = {}
        for name, localFile in sources.items():
            info = self._describeLocal(localFile, perItem(checksum, name, single))
            if not info["OK"]:
                failed[name] = info["Message"]
                continue
            infos[name] = {**info["Value"], "GUID": perItem(guid, name, single) or str(uuid.uuid4()).upper()}

        candidates, taken = self._notRegistered(list(infos), failed, overwrite)
        successful = self._alreadyDone(taken, infos, diracSE, failed)
        candidates = self._allowed(candidates, "addFile", failed)
        if not candidates:
            return _bulk(successful, failed)

        start = time.monotonic()
        uploaded, uploadFailed = splitBulk(
            se.putFile({name: sources[name] for name in candidates}), candidates, f"upload to {diracSE}"
        )
        putTime = time.monotonic() - start
        expected = {name: (infos[name]["Size"], infos[name]["Checksum"]) for name in candidates}
        uploaded = list(uploaded) + self._lostUploads(se, uploadFailed, expected)
        failed.update(uploadFailed)

        urls = self.storage.urls(se, uploaded)
        entries = {
            name: {
                "PFN": urls[name],
                "Size": infos[name]["Size"],
                "SE": diracSE,
                "GUID": infos[name]["GUID"],
                "Checksum": infos[name]["Checksum"],
                "ChecksumType": "Adler32",
            }
            for name in uploaded
        }
        start = time.monotonic()
        registered, notRegistered, undecided = self._register("addFile", entries, diracSE, expected)
        registerTime = time.monotonic() - start
        self.storage.cleanUp(se, notRegistered, "uploaded copy", expected)
        failed.update(notRegistered)
        failed.update(undecided)
        successful.update({name: {"put": putTime, "register": registerTime} for name in registered})
        return _bulk(successful, failed)

    def _lostUploads(self, se: StorageElement, uploadFailed: dict, expected: dict) -> list[str]:
        """LFNs whose upload failed but whose object is there, ours (a lost answer); reasons for the others.

        ``uploadFailed`` is updated in place: the recovered LFNs leave it; the
        others say whether anything is stored, never deleting what is not ours.
        """
        recovered = []
        for name, (kind, detail) in self.storage.inspect(se, list(uploadFailed)).items():
            if kind == PRESENT and matches(detail, *expected[name]):
                self.log.warn("The upload's answer was lost but the object is there and ours", f"{name} at {se.name}")
                recovered.append(name)
                del uploadFailed[name]
            elif kind == PRESENT:
                uploadFailed[name] += (
                    f"; {se.name} holds another object under this LFN (another writer's?), left untouched; "
                    "nothing registered"
                )
            elif kind == ABSENT:
                uploadFailed[name] += "; nothing stored, nothing registered"
            else:
                uploadFailed[name] += (
                    f"; cannot tell whether the object reached {se.name} ({detail}); nothing registered: "
                    "run the same command again"
                )
        return recovered

    def _register(self, method: str, entries: dict, seName: str, expected: dict) -> tuple[dict, dict, dict]:
        """Register ``entries`` (``addFile`` / ``addReplica``): ``(registered, notRegistered, undecided)``.

        After a failure the catalog is asked rather than trusted: an LFN found
        registered with the expected size and checksum and a replica at ``seName``
        succeeded (its answer was lost). ``notRegistered`` are provably not ours in
        the catalog, so their object may be cleaned up; ``undecided`` must keep their
        object (another writer registered the LFN, or the catalog cannot tell).
        """
        names = list(entries)
        if not names:
            return {}, {}, {}
        result = self._catalogCall(method, entries)
        registered, failed = splitBulk(result, names, f"catalog {method}")
        if not failed:
            return registered, {}, {}
        if not result["OK"] and DErrno.cmpError(result, DErrno.ECONNREFUSED):
            return registered, failed, {}  # the catalog never received the call
        present, errors = self._catalog("exists", list(failed), list(failed))
        registeredNames = [name for name, there in present.items() if there]
        metadata, replicas = self._metadataAndReplicas(registeredNames, errors)
        notRegistered: dict[str, str] = {}
        undecided: dict[str, str] = {}
        for name, reason in failed.items():
            meta = metadata.get(name)
            if name in errors:
                undecided[name] = (
                    f"{reason}; the catalog cannot tell whether it was registered ({errors[name]}): "
                    f"the object at {seName} is kept; run the same command again"
                )
            elif present.get(name) is False:
                notRegistered[name] = f"{reason}; not registered"
            elif meta is not None and seName in replicas.get(name, {}) and matches(meta, *expected[name]):
                self.log.warn("The catalog's answer was lost but the registration is there", name)
                registered[name] = True
            elif meta is not None and seName in replicas.get(name, {}):
                undecided[name] = (
                    f"{reason}; another writer registered {name} at {seName} first: its object is left; "
                    "run dirac-dms-check-se if both wrote the same place"
                )
            else:
                notRegistered[name] = f"{reason}; registered without our replica at {seName}"
        return registered, notRegistered, undecided

    @staticmethod
    def _uploadPairs(lfn: Any, fileName: Any) -> dict:
        """S_OK(({lfn: localFile}, failed)) from the accepted argument shapes."""
        if isinstance(lfn, dict):
            pairs = dict(lfn)
        elif isinstance(lfn, str):
            pairs = {lfn: fileName}
        elif isinstance(lfn, (list, tuple)) and isinstance(fileName, (list, tuple)) and len(lfn) == len(fileName):
            pairs = dict(zip(lfn, fileName, strict=True))
        else:
            return S_ERROR(
                DErrno.EINVAL,
                "putAndRegister needs one LFN and one file, two lists of the same length, or {lfn: file}",
            )
        result = splitLFNs(list(pairs))
        if not result["OK"]:
            return result
        lfns, failed = result["Value"]
        return S_OK(({name: pairs[name] for name in lfns}, failed))

    @staticmethod
    def _describeLocal(localFile: Any, checksum: Any) -> dict:
        """S_OK({'Size', 'Checksum'}) of a readable regular local file; a given checksum must match."""
        source = checkLocalSource(localFile)
        if not source["OK"]:
            return source
        adler = fileAdler(localFile)
        if adler is False:
            return S_ERROR(DErrno.EIO, f"local file {localFile} cannot be read")
        if checksum and not compareAdler(adler, str(checksum)):
            return S_ERROR(DErrno.EBADCKS, f"local file {localFile} has adler32 {adler}, not the given {checksum}")
        return S_OK({"Size": source["Value"], "Checksum": adler})

    def _notRegistered(self, lfns: list[str], failed: dict, overwrite: bool) -> tuple[list[str], list[str]]:
        """(LFNs free in the catalog, LFNs failed as already registered); with ``overwrite`` those are removed first."""
        answers, errors = self._catalog("exists", lfns, lfns)
        failed.update(errors)
        free = [name for name, exists in answers.items() if not exists]
        taken = [name for name, exists in answers.items() if exists]
        if taken and overwrite:
            result = self.removeFile(taken)
            removed, notRemoved = splitBulk(result, taken, "removing the existing file")
            failed.update({name: f"{reason}; nothing uploaded" for name, reason in notRemoved.items()})
            return free + list(removed), []
        for name in taken:
            failed[name] = f"{name} is already registered in the catalog; nothing uploaded"
        return free, taken

    def _alreadyDone(self, taken: list[str], infos: dict, seName: str, failed: dict) -> dict:
        """{lfn: timings} of the ``taken`` LFNs a previous run finished: this size and checksum at ``seName``.

        They leave ``failed``, so running the same upload again succeeds.
        """
        metadata, replicas = self._metadataAndReplicas(taken, {})
        done = {}
        for name, meta in metadata.items():
            if seName in replicas.get(name, {}) and matches(meta, infos[name]["Size"], infos[name]["Checksum"]):
                done[name] = {"put": 0.0, "register": 0.0}
                del failed[name]
        return done

    # ------------------------------------------------------------------ download

    def getFile(self, lfn: Any, destinationDir: str = "", sourceSE: str | None = None, diskOnly: bool = False) -> dict:
        """Download file(s) into ``destinationDir`` (default: the current folder) from the first replica that works.

        Each copy is checked against the catalog's size and adler32; a bad copy
        is deleted and the next replica tried. A local file already there with
        the right checksum is kept. ``diskOnly`` is accepted for DIRAC
        compatibility (every SE here is a disk SE). Successful: ``{lfn: localPath}``.
        """
        parsed = splitLFNs(lfn)
        if not parsed["OK"]:
            return parsed
        lfns, failed = parsed["Value"]
        destination = os.path.abspath(destinationDir or os.getcwd())
        try:
            os.makedirs(destination, exist_ok=True)
        except OSError as exc:
            return S_ERROR(DErrno.EACCES, f"cannot create the destination folder {destination}: {exc.strerror}")

        metadata, replicas = self._metadataAndReplicas(lfns, failed)

        successful: dict[str, str] = {}
        candidates: dict[str, list[str]] = {}
        owners: dict[str, str] = {}
        for name, ses in replicas.items():
            target = os.path.join(destination, os.path.basename(name))
            if target in owners:
                failed[name] = f"{owners[target]} has the same file name in this call; nothing overwritten"
                continue
            owners[target] = name
            meta = metadata[name]
            if os.path.isfile(target) and checkLocalCopy(target, meta.get("Size"), meta.get("Checksum"))["OK"]:
                successful[name] = target
                continue
            order = [se for se in ses if not sourceSE or se == sourceSE]
            if not order:
                failed[name] = f"no replica of {name}" + (f" at {sourceSE}" if sourceSE else "")
                continue
            candidates[name] = order

        reasons: dict[str, list[str]] = {name: [] for name in candidates}
        for attempt in range(max((len(order) for order in candidates.values()), default=0)):
            bySE: dict[str, list[str]] = {}
            for name, order in candidates.items():
                if name not in successful and attempt < len(order):
                    bySE.setdefault(order[attempt], []).append(name)
            for seName, names in bySE.items():
                for name, outcome in self.storage.download(seName, names, destination, metadata).items():
                    if outcome["OK"]:
                        successful[name] = outcome["Value"]
                    else:
                        reasons[name].append(f"{seName}: {outcome['Message']}")
        for name in candidates:
            if name not in successful:
                failed[name] = "no replica could be downloaded: " + " | ".join(reasons[name])
        return _bulk(successful, failed)

    # ------------------------------------------------------------------ replication

    def replicateAndRegister(
        self, lfn: Any, destSE: str, sourceSE: str = "", destPath: str = "", localCache: str = ""
    ) -> dict:
        """Copy file(s) to ``destSE`` from an existing replica and register the new replica.

        ``sourceSE`` restricts the source; ``destPath`` may only be the LFN's own
        directory (a replica's path is its LFN). The way, per file (see the module
        documentation): a server-side copy when source and destination are on one S3
        service, else a streamed copy; a local copy (through a file under
        ``localCache``) when ``localCache`` is given or when neither direct way can
        copy the file. Successful: ``{lfn: {'transfer': way, 'bytes': size,
        'replicate': seconds of this file's copy, 'register': seconds}}`` with way
        one of 'server-side copy', 'streamed copy', 'local copy'; an LFN already at
        ``destSE`` succeeds with nothing done (way 'none: already there').
        """
        parsed = self._lfnsAndSE(lfn, destSE, "putFile")
        if not parsed["OK"]:
            return parsed
        lfns, failed, destination = parsed["Value"]
        for name in list(lfns):
            if destPath and destPath.rstrip("/") != os.path.dirname(name):
                failed[name] = f"destPath {destPath} differs from the directory of {name}: replicas keep their LFN"
                lfns.remove(name)

        metadata, replicas = self._metadataAndReplicas(lfns, failed)
        successful: dict[str, dict] = {}
        sources: dict[str, list[str]] = {}
        for name, ses in replicas.items():
            if destSE in ses:
                successful[name] = {"transfer": "none: already there", "bytes": 0, "replicate": 0.0, "register": 0.0}
            elif sourceSE and sourceSE not in ses:
                failed[name] = f"{name} has no replica at {sourceSE} (replicas: {', '.join(ses) or 'none'})"
            elif not ses:
                failed[name] = f"{name} has no replica to copy from"
            else:
                sources[name] = [sourceSE] if sourceSE else list(ses)
        pending = self._allowed(list(sources), "addReplica", failed)
        if not pending:
            return _bulk(successful, failed)

        self._logTransferMethod(destination, {se for name in pending for se in sources[name]}, localCache)
        copied, copyFailed, local = {}, {}, {name: sources[name] for name in pending}
        if not localCache:
            copied, copyFailed, local = self.storage.copyDirect(local, destination, metadata)
        if local:
            copiedLocally, localFailed = self.storage.copyThroughLocalFiles(local, destination, metadata, localCache)
            copied.update(copiedLocally)
            copyFailed.update(localFailed)
        failed.update(copyFailed)

        names = list(copied)
        urls = self.storage.urls(destination, names)
        start = time.monotonic()
        expected = {name: (metadata[name].get("Size"), metadata[name].get("Checksum")) for name in names}
        registered, notRegistered, undecided = self._register(
            "addReplica", {name: {"SE": destSE, "PFN": urls[name]} for name in names}, destSE, expected
        )
        registerTime = time.monotonic() - start
        self.storage.cleanUp(destination, notRegistered, "new replica", expected)
        failed.update(notRegistered)
        failed.update(undecided)
        for name in registered:
            successful[name] = {**copied[name], "register": registerTime}
            self.log.info(f"Replicated by {copied[name]['transfer']}", f"{name} to {destSE}")
        return _bulk(successful, failed)

    def thirdPartyProtocols(self) -> list[str]:
        """Operations ``DataManagement/ThirdPartyProtocols`` without ``s3`` (warned about when configured)."""
        configured = Operations(vo=self.vo).getValue("DataManagement/ThirdPartyProtocols", [])
        if isinstance(configured, str):
            configured = [item.strip() for item in configured.split(",") if item.strip()]
        dropped = [p for p in configured if p.lower() in NEVER_THIRD_PARTY]
        if dropped:
            self.log.warn(
                "S3 cannot do third-party copy: ignoring it in Operations DataManagement/ThirdPartyProtocols",
                ", ".join(dropped),
            )
        return [p for p in configured if p.lower() not in NEVER_THIRD_PARTY]

    def _logTransferMethod(self, destination: StorageElement, sourceNames: set[str], localCache: str) -> None:
        """Say which way the copies from each source take (third-party protocols are negotiated, never used)."""
        protocols = self.thirdPartyProtocols()
        if localCache:
            way = f"local copy through {localCache} (asked for with localCache)"
        else:
            way = (
                "server-side copy where both are on one S3 service, else streamed copy; local copy only if neither can"
            )
        for name in sorted(sourceNames):
            result = self.storage.storageElement(name)
            if not result["OK"]:
                continue
            common = destination.negociateProtocolWithOtherSE(result["Value"], protocols=protocols)
            shared = common["Value"] if common["OK"] else []
            thirdParty = f"third-party protocols {shared} unused" if shared else "no third-party protocol"
            self.log.info(f"{name} -> {destination.name}: {way} ({thirdParty}: no third-party copy here)")

    # ------------------------------------------------------------------ removal

    def removeFile(self, lfn: Any, force: Any = None) -> dict:
        """Remove every replica of file(s) from storage, then the catalog entry.

        An LFN not in the catalog counts as removed. When a replica cannot be
        removed, the file stays registered with the replicas that remain.
        ``force`` is accepted for DIRAC compatibility.
        """
        parsed = splitLFNs(lfn)
        if not parsed["OK"]:
            return parsed
        lfns, failed = parsed["Value"]
        answers, errors = self._catalog("exists", lfns, lfns)
        failed.update(errors)
        successful = {name: True for name, exists in answers.items() if not exists}
        present = self._allowed([name for name, exists in answers.items() if exists], "removeFile", failed)
        replicas, errors = self._catalog("getReplicas", present, present)
        failed.update(errors)

        gone, stuck = self._removeReplicasFromStorage(replicas)
        complete = [name for name in replicas if not stuck.get(name)]
        removed, errors = self._catalog("removeFile", complete, complete)
        failed.update({name: f"{reason}; {RERUN_TO_UNREGISTER}" for name, reason in errors.items()})
        successful.update(dict.fromkeys(removed, True))
        partial = {name: [{"SE": se} for se in gone[name]] for name in replicas if stuck.get(name) and gone[name]}
        self._unregisterReplicas(partial)
        for name, reasons in stuck.items():
            if reasons:
                failed[name] = "; ".join(reasons) + "; the file stays registered with its remaining replicas"
        return _bulk(successful, failed)

    def _removeReplicasFromStorage(self, replicas: dict[str, dict]) -> tuple[dict, dict]:
        """Remove the listed replicas from storage: ({lfn: [SEs done]}, {lfn: [reasons]})."""
        bySE: dict[str, list[str]] = {}
        for name, ses in replicas.items():
            for seName in ses:
                bySE.setdefault(seName, []).append(name)
        gone: dict[str, list[str]] = {name: [] for name in replicas}
        stuck: dict[str, list[str]] = {name: [] for name in replicas}
        for seName, names in bySE.items():
            result = self.storage.storageElement(seName, "removeFile")
            problems = dict.fromkeys(names, result.get("Message")) if not result["OK"] else {}
            if result["OK"]:
                problems = self.storage.removeObjects(result["Value"], names)
            for name in names:
                if name in problems:
                    stuck[name].append(f"replica at {seName} not removed: {problems[name]}")
                else:
                    gone[name].append(seName)
        return gone, stuck

    def _unregisterReplicas(self, replicas: dict[str, list[dict]]) -> dict:
        """Remove catalog replicas ``{lfn: [{'SE': name}]}`` one SE at a time; {lfn: reason} of failures."""
        failed: dict[str, str] = {}
        for round_ in range(max((len(items) for items in replicas.values()), default=0)):
            batch = {name: items[round_] for name, items in replicas.items() if round_ < len(items)}
            failed.update(self._catalog("removeReplica", batch, list(batch))[1])
        return failed

    def removeReplica(self, storageElementName: str, lfn: Any) -> dict:
        """Remove the replica(s) of file(s) at ``storageElementName``: storage, then catalog.

        An LFN without a replica there succeeds with nothing done; the last
        replica of a file is never removed (use ``removeFile``).
        """
        parsed = self._lfnsAndSE(lfn, storageElementName, "removeFile")
        if not parsed["OK"]:
            return parsed
        lfns, failed, se = parsed["Value"]
        replicas, errors = self._catalog("getReplicas", lfns, lfns)
        failed.update(errors)
        successful: dict[str, bool] = {}
        candidates = []
        for name, ses in replicas.items():
            if storageElementName not in ses:
                successful[name] = True
            elif len(ses) == 1:
                failed[name] = f"{storageElementName} holds the only replica of {name}; use removeFile to delete it"
            else:
                candidates.append(name)
        candidates = self._allowed(candidates, "removeReplica", failed)
        problems = self.storage.removeObjects(se, candidates)
        failed.update({name: f"{reason}; the catalog is unchanged" for name, reason in problems.items()})
        removed = [name for name in candidates if name not in problems]
        errors = self._unregisterReplicas({name: [{"SE": storageElementName}] for name in removed})
        failed.update({name: f"{reason}; {RERUN_TO_UNREGISTER}" for name, reason in errors.items()})
        successful.update({name: True for name in removed if name not in errors})
        return _bulk(successful, failed)

    # ------------------------------------------------------------------ queries

    def getReplicas(self, lfn: Any, allStatus: bool = True, getUrl: bool = True, **_kwargs: Any) -> dict:
        """``{lfn: {SE: URL}}`` from the catalog; with ``getUrl`` the URLs are the SEs' current native ones."""
        parsed = splitLFNs(lfn)
        if not parsed["OK"]:
            return parsed
        lfns, failed = parsed["Value"]
        replicas, errors = self._catalog("getReplicas", lfns, lfns, allStatus)
        failed.update(errors)
        if getUrl:
            bySE: dict[str, list[str]] = {}
            for name, ses in replicas.items():
                for seName in ses:
                    bySE.setdefault(seName, []).append(name)
            for seName, names in bySE.items():
                result = self.storage.storageElement(seName)
                if not result["OK"]:
                    continue
                for name, url in self.storage.urls(result["Value"], names).items():
                    if url:
                        replicas[name] = {**replicas[name], seName: url}
        return _bulk(replicas, failed)

    def getReplicaAccessUrl(self, lfn: Any, storageElementName: str, protocol: Any = False) -> dict:
        """``{lfn: URL}`` to read the replica(s) at ``storageElementName`` in ``protocol`` (a name or list).

        For S3 with ``http(s)`` this is a presigned URL for external applications.
        LFNs without a replica at that SE fail.
        """
        parsed = self._lfnsAndSE(lfn, storageElementName, "getFile")
        if not parsed["OK"]:
            return parsed
        lfns, failed, se = parsed["Value"]
        replicas, errors = self._catalog("getReplicas", lfns, lfns)
        failed.update(errors)
        present = []
        for name, ses in replicas.items():
            if storageElementName in ses:
                present.append(name)
            else:
                failed[name] = f"{name} has no replica at {storageElementName}"
        if not present:
            return _bulk({}, failed)
        urls = se.getURL(present, protocol=protocol)
        successful, errors = splitBulk(urls, present, f"access URL at {storageElementName}")
        failed.update(errors)
        return _bulk(successful, failed)
