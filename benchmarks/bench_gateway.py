"""Gateway benchmark: S3 access through the ``S3Gateway`` (presigned URLs) next to direct access.

Sets up, in a temporary folder and on 127.0.0.1 only: a test CA (host ``localhost``, users alice
and bob), ``rclone serve s3`` (SigV4 checked) with one bucket, a ``FileCatalog`` service and one
``S3Gateway`` service (``dirac-service`` subprocesses; the gateway's cfg holds the S3 keys), and a
client configuration where the one bucket is two SEs: ``S3-DIRECT`` (keys in the client's cfg)
and ``S3-INDIRECT`` (no keys: every operation asks the gateway for presigned URLs). This process
is the client, with alice's proxy (``X509_USER_PROXY``); LFNs are under her home
``/testvo/user/a/alice`` so the catalog's permission checks pass. Phases:

1. ``S3GatewayClient().createPresignedUrl("S3-INDIRECT", "get_object", urls, 3600)`` for N URLs in
   one call (the gateway checks read permission in one bulk catalog call, then signs): URLs/s,
   best of 3. Target: at least 3000 URLs/s.
2. N small files (default 1000 x 10 KiB): one bulk ``putFile`` and one bulk ``getFile`` through
   ``StorageElement("S3-INDIRECT")`` and ``StorageElement("S3-DIRECT")``, alternating, best of 2
   each. Target: gateway throughput at least 0.6x the direct one.
3. One big file (default 1 GiB): ``putFile`` / ``getFile`` through each SE, alternating, best of
   2 each (no target; the ratio is reported).

Verification (every bulk result all ``Successful``, downloaded bytes equal the sources, the
stored adler32 of the gateway's uploads, a presigned URL that really downloads, the big file's
size and adler32) happens outside the timed sections. Every process started here is stopped by
its PID at the end, also on an error, Ctrl-C or SIGTERM. Before each big transfer ``os.sync()``
flushes earlier writes (outside the timing) so disk write-back does not land in one side's time. Run::

    python benchmarks/bench_gateway.py            # full size (a few minutes)
    python benchmarks/bench_gateway.py --quick    # smoke run: 100 files, 64 MiB

Exit status: 0 when every phase ran and verified (targets may still be MISS), 1 on an error or a
verification failure, 2 when the big-file phase was skipped (not enough free disk space).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from _common import (
    MB,
    BenchmarkError,
    KiB,
    MiB,
    argumentParser,
    bigFileSpaceOK,
    expectAll,
    fileAdler32,
    loadConfiguration,
    parseOptions,
    printTable,
    runInTemporaryFolder,
    startRclone,
    stopRclone,
    timed,
    writeBigFile,
    writeSmallFiles,
)

HOME = "/testvo/user/a/alice"
DIRECT, INDIRECT = "S3-DIRECT", "S3-INDIRECT"
PRESIGN_TARGET = 3000.0  # URLs/s, at least
SMALL_TARGET = 0.6  # gateway throughput / direct throughput, at least
PRESIGN_ROUNDS = 3
SMALL_ROUNDS = 2
BIG_ROUNDS = 2


def storedChecksum(meta: dict) -> str:
    return str(meta.get("Checksum", "")).lower().zfill(8)


# ---------------------------------------------------------------- the table


@dataclass
class Row:
    """One line of the table. ``kind``: "presign" (rate target), "small" (ratio target), "big" (info)."""

    phase: str
    kind: str
    gatewaySeconds: float
    gatewayRate: float
    directSeconds: float | None = None
    directRate: float | None = None
    unit: str = "files/s"

    @property
    def ratio(self) -> float | None:
        if self.directRate is None or not self.directRate:
            return None
        return self.gatewayRate / self.directRate

    def target(self) -> str:
        return {
            "presign": f">= {PRESIGN_TARGET:.0f} URLs/s",
            "small": f"ratio >= {SMALL_TARGET}x",
            "big": "(none)",
        }[self.kind]

    def result(self) -> str:
        if self.kind == "presign":
            return "PASS" if self.gatewayRate >= PRESIGN_TARGET else "MISS"
        if self.kind == "small":
            return "PASS" if self.ratio is not None and self.ratio >= SMALL_TARGET else "MISS"
        return "-"


def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"


def printRows(rows: list[Row], title: str) -> None:
    header = ("phase", "direct s", "direct rate", "gateway s", "gateway rate", "gateway/direct", "target", "result")
    lines = [
        (
            row.phase,
            "-" if row.directSeconds is None else f"{row.directSeconds:.3f}",
            _rate(row.directRate, row.unit),
            f"{row.gatewaySeconds:.3f}",
            _rate(row.gatewayRate, row.unit),
            "-" if row.ratio is None else f"{row.ratio:.2f}x",
            row.target(),
            row.result(),
        )
        for row in rows
    ]
    printTable(header, lines, title)


# ---------------------------------------------------------------- set-up


def systemsCfg(folder: Path, catalogPort: int, gatewayPort: int) -> str:
    """/Systems/DataManagement from the template (catalog DB, gateway audit file, URLs) + /Resources/FileCatalogs."""
    from catalog_fixtures import systems_cfg

    options = {"Services/S3Gateway/AuditFile": str(folder / "audit.jsonl")}
    return systems_cfg(folder, catalogPort, [gatewayPort], options, facade=True)


class GatewayBenchmark:
    def __init__(self, options: argparse.Namespace, work: Path):
        self.options = options
        self.work = work
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.rclone = None  # the rclone s3_fixtures.S3Server
        self.launcher = None  # rpc_fixtures.ServiceLauncher

    def setUp(self) -> None:
        from rpc_fixtures import ServiceLauncher, free_port, service_cfg
        from s3_fixtures import merge_cfg, s3_se_cfg
        from security_fixtures import make_env

        work = self.work
        ca = make_env(work / "ca", "DIRAC Test CA", ["alice", "bob"])
        print(f"test CA in {work / 'ca'}", flush=True)

        self.rclone = server = startRclone(work)
        self.s3 = server.client()
        self.bucket = server.make_bucket("bench-gateway")
        print(f"bucket {self.bucket}", flush=True)

        catalogPort, gatewayPort = free_port(), free_port()
        systems = systemsCfg(work, catalogPort, gatewayPort)
        serverCfg = work / "server.cfg"
        serverCfg.write_text(service_cfg(ca, {}, extra=merge_cfg(systems, s3_se_cfg(INDIRECT, server, self.bucket))))
        clientCfg = work / "client.cfg"
        clientCfg.write_text(
            service_cfg(
                ca,
                {},
                extra=merge_cfg(
                    systems,
                    s3_se_cfg(INDIRECT, server, self.bucket, with_keys=False),
                    s3_se_cfg(DIRECT, server, self.bucket),
                ),
            )
        )
        (work / "logs").mkdir()
        self.launcher = ServiceLauncher(logDir=str(work / "logs"))
        catalog = self.launcher.start("DataManagement/FileCatalog", serverCfg, port=catalogPort)
        print(f"FileCatalog PID {catalog.pid} on port {catalogPort}", flush=True)
        gateway = self.launcher.start("DataManagement/S3Gateway", serverCfg, port=gatewayPort)
        print(f"S3Gateway PID {gateway.pid} on port {gatewayPort}", flush=True)

        os.environ["X509_CERT_DIR"] = str(ca.caDir)
        os.environ["X509_USER_PROXY"] = ca.proxy("alice", "dirac_user", 6 * 3600, path=work / "alice.pem")
        loadConfiguration(clientCfg)
        from DIRAC.Resources.Storage.StorageElement import StorageElement

        self.ses = {name: StorageElement(name) for name in (DIRECT, INDIRECT)}
        for name, se in self.ses.items():
            if not se.valid:
                raise BenchmarkError(f"SE {name}: {se.errorReason}")
            # warm up (connections, TLS session to the gateway, lazy imports) outside the timings
            expectAll(se.exists(f"{HOME}/bench/warm-up"), [f"{HOME}/bench/warm-up"], f"{name} exists (warm-up)")

    def tearDown(self) -> None:
        """Stop every process started here, by PID."""
        if self.launcher is not None:
            pids = [service.pid for service in self.launcher.processes]
            self.launcher.stopAll()
            if pids:
                print(f"dirac-service PIDs {', '.join(map(str, pids))} stopped", flush=True)
        stopRclone(self.rclone)

    def failureDetail(self, lines: int = 15) -> str:
        """The tail of each service's log, for a failure report."""
        if self.launcher is None:
            return ""
        tails = []
        for service in self.launcher.processes:
            tail = "\n".join(service.log().splitlines()[-lines:])
            tails.append(f"--- {service.services[0]} (PID {service.pid}) log tail:\n{tail}")
        return "\n".join(tails)

    # -- phase 1: presigned URLs

    def presign(self) -> None:
        import requests

        from DIRAC.DataManagementSystem.Client.S3GatewayClient import S3GatewayClient

        count = self.options.files
        storage = self.ses[INDIRECT].storages[0]
        lfns = [f"{HOME}/bench/presign/f{index:05d}.dat" for index in range(count)]
        urls = []
        for lfn in lfns:
            built = storage.constructURLFromLFN(lfn)
            if not built["OK"]:
                raise BenchmarkError(f"constructURLFromLFN {lfn}: {built['Message']}")
            urls.append(built["Value"])
        # one real object among them, to check a URL really downloads (outside the timing)
        sample = self.work / "presign-sample.dat"
        sample.write_bytes(os.urandom(10 * KiB))
        expectAll(self.ses[DIRECT].putFile({lfns[0]: str(sample)}), [lfns[0]], "putFile presign sample")
        client = S3GatewayClient()
        expectAll(client.createPresignedUrl(INDIRECT, "get_object", urls[:10], 3600), urls[:10], "presign warm-up")
        best, signed = float("inf"), {}
        for _ in range(PRESIGN_ROUNDS):
            seconds, result = timed(client.createPresignedUrl, INDIRECT, "get_object", urls, 3600)
            signed = expectAll(result, urls, "createPresignedUrl")
            best = min(best, seconds)
        fetched = requests.get(signed[urls[0]], timeout=30)
        if fetched.status_code != 200 or fetched.content != sample.read_bytes():
            raise BenchmarkError(f"a presigned GET URL answered {fetched.status_code} or other bytes")
        expectAll(self.ses[DIRECT].removeFile(lfns[0]), [lfns[0]], "removeFile presign sample")
        self.rows.append(Row(f"createPresignedUrl {count} get_object", "presign", best, count / best, unit="URLs/s"))
        print(f"  createPresignedUrl x {count}: best {best:.3f} s ({count / best:.0f} URLs/s)", flush=True)

    # -- phase 2: small files

    def smallFiles(self) -> None:
        count, size = self.options.files, self.options.size_kib * KiB
        source = self.work / "small-src"
        sources = writeSmallFiles(source, count, size)
        files = {
            name: {f"{HOME}/bench/small-{name.lower()}/{path.name}": str(path) for path in sources}
            for name in (DIRECT, INDIRECT)
        }
        label = f"{count} x {self.options.size_kib} KiB"
        best = {(name, op): float("inf") for name in (DIRECT, INDIRECT) for op in ("put", "get")}
        for round_ in range(SMALL_ROUNDS):
            for name in (DIRECT, INDIRECT):
                se, mapping = self.ses[name], files[name]
                lfns = list(mapping)
                seconds, result = timed(se.putFile, mapping)
                sizes = expectAll(result, lfns, f"{name} putFile")
                if set(sizes.values()) != {size}:
                    raise BenchmarkError(f"{name} putFile reported sizes {set(sizes.values())}, expected {size}")
                best[name, "put"] = min(best[name, "put"], seconds)
                print(f"  round {round_ + 1} {name} putFile {label}: {seconds:.3f} s", flush=True)
            for name in (DIRECT, INDIRECT):
                se, mapping = self.ses[name], files[name]
                lfns = list(mapping)
                out = self.work / f"small-out-{name}-{round_}"
                out.mkdir()
                seconds, result = timed(se.getFile, lfns, localPath=str(out))
                expectAll(result, lfns, f"{name} getFile")
                best[name, "get"] = min(best[name, "get"], seconds)
                print(f"  round {round_ + 1} {name} getFile {label}: {seconds:.3f} s", flush=True)
                for path in sources:
                    if (out / path.name).read_bytes() != path.read_bytes():
                        raise BenchmarkError(f"{name} getFile {path.name}: downloaded bytes differ from the source")
                shutil.rmtree(out)
        # the gateway's uploads carry the right adler32 (seen through the direct SE)
        probe = list(files[INDIRECT])[:: max(1, count // 20)]
        metadata = expectAll(self.ses[DIRECT].getFileMetadata(probe), probe, "getFileMetadata of gateway uploads")
        for lfn in probe:
            expected = f"{fileAdler32(files[INDIRECT][lfn]):08x}"
            if metadata[lfn]["Size"] != size or storedChecksum(metadata[lfn]) != expected:
                raise BenchmarkError(f"gateway upload {lfn}: {metadata[lfn]} (expected adler32 {expected})")
        for name in (DIRECT, INDIRECT):
            lfns = list(files[name])
            expectAll(self.ses[name].removeFile(lfns), lfns, f"{name} removeFile")
        shutil.rmtree(source)
        for op, call in (("put", "putFile"), ("get", "getFile")):
            direct, gateway = best[DIRECT, op], best[INDIRECT, op]
            self.rows.append(Row(f"{call} {label}", "small", gateway, count / gateway, direct, count / direct))

    # -- phase 3: one big file

    def bigFile(self) -> None:
        size = self.options.big_mib * MiB
        source = self.work / "big-src" / "big.dat"
        source.parent.mkdir()
        adler = writeBigFile(source, size)
        label = f"{self.options.big_mib} MiB"
        seconds = {(name, op): float("inf") for name in (DIRECT, INDIRECT) for op in ("put", "get")}
        for round_ in range(BIG_ROUNDS):
            # alternate who goes first: page cache and disk write-back favour neither side
            for name in (DIRECT, INDIRECT) if round_ % 2 == 0 else (INDIRECT, DIRECT):
                took = self.bigTransfers(name, source, size, adler)
                for op in ("put", "get"):
                    seconds[name, op] = min(seconds[name, op], took[op])
                    print(
                        f"  round {round_ + 1} {name} {op} {label}: {took[op]:.2f} s ({size / MB / took[op]:.0f} MB/s)",
                        flush=True,
                    )
        source.unlink()
        for op, call in (("put", "putFile"), ("get", "getFile")):
            direct, gateway = seconds[DIRECT, op], seconds[INDIRECT, op]
            self.rows.append(
                Row(f"{call} 1 x {label}", "big", gateway, size / MB / gateway, direct, size / MB / direct, "MB/s")
            )

    def bigTransfers(self, name: str, source: Path, size: int, adler: int) -> dict[str, float]:
        """Put then get the big file through SE ``name``, each timed, verified and removed after."""
        se, label = self.ses[name], f"{self.options.big_mib} MiB"
        lfn = f"{HOME}/bench/big-{name.lower()}/big.dat"
        took = {}
        os.sync()  # write-back of earlier phases must not land in this timing
        took["put"], result = timed(se.putFile, {lfn: str(source)})
        expectAll(result, [lfn], f"{name} putFile {label}")
        meta = expectAll(self.ses[DIRECT].getFileMetadata(lfn), [lfn], "getFileMetadata big")[lfn]
        if meta["Size"] != size or storedChecksum(meta) != f"{adler:08x}":
            raise BenchmarkError(f"{name} big upload: {meta} (expected size {size}, adler32 {adler:08x})")
        out = self.work / f"big-out-{name}"
        out.mkdir()
        os.sync()  # the server's copy is on disk before the download is timed
        took["get"], result = timed(se.getFile, lfn, localPath=str(out))
        expectAll(result, [lfn], f"{name} getFile {label}")
        downloaded = out / "big.dat"
        if downloaded.stat().st_size != size or fileAdler32(downloaded) != adler:
            raise BenchmarkError(f"{name} getFile {label}: downloaded bytes differ (size or adler32)")
        shutil.rmtree(out)
        expectAll(se.removeFile(lfn), [lfn], f"{name} removeFile big")
        return took

    # -- driver

    def run(self) -> int:
        status = 0
        self.setUp()
        print(f"presign: {self.options.files} URLs per call, best of {PRESIGN_ROUNDS}", flush=True)
        self.presign()
        print(f"small files: {self.options.files} x {self.options.size_kib} KiB, best of {SMALL_ROUNDS}", flush=True)
        self.smallFiles()
        if bigFileSpaceOK(self.work, self.options.big_mib, self.notes):
            print(f"big file: {self.options.big_mib} MiB, best of {BIG_ROUNDS}", flush=True)
            self.bigFile()
        else:
            status = 2
        printRows(
            self.rows,
            f"S3Gateway benchmark, rclone serve s3 + FileCatalog + S3Gateway on 127.0.0.1 ({os.cpu_count()} cores): "
            f"StorageElement({INDIRECT!r}) via presigned URLs vs StorageElement({DIRECT!r}) with keys",
        )
        for note in self.notes:
            print(f"note: {note}")
        judged = [row for row in self.rows if row.kind != "big"]
        missed = [row.phase for row in judged if row.result() == "MISS"]
        print(f"targets: {len(judged) - len(missed)} PASS, {len(missed)} MISS", flush=True)
        return status


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argumentParser(__doc__.split("\n\n")[0], files="URLs per presign call and small files", bigFile=True)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, cfgs) at the end")
    positive = ("files", "size_kib", "big_mib")
    return parseOptions(parser, argv, positive, files=(100, 1000), big_mib=(64, 1024))


def main(argv: list[str] | None = None) -> int:
    options = parseArguments(argv)
    return runInTemporaryFolder("bench-gateway-", options, lambda work: GatewayBenchmark(options, work))


if __name__ == "__main__":
    sys.exit(main())
