"""What botocore's SigV4 signer costs in a bulk phase at a real distance.

The S3 plugin signs with botocore (``S3SigV4Auth``): about 40 us of CPU per request, most of
it in botocore's header handling (its ``HTTPHeaders`` is an ``email.message.Message``). The
project's rule: keep botocore unless its signing costs more than 5% of a bulk phase at 20 ms
round trip. This benchmark measures, in one run, against one ``rclone serve s3`` on 127.0.0.1
behind a delaying relay (``tests/fault_relay.py`` in its own process, 10 ms each way):

* the CPU time of one ``DirectSigner.sign`` (the signer our requests use), over many requests;
* the wall time and client CPU time of ``StorageElement`` bulk ``putFile``, ``getFileMetadata``
  and ``getFile`` of N small files, each phase run both ways, rounds alternating: signed as
  usual, and "signed ahead" (every request of the phase signed just before the timer starts,
  then looked up: the same requests, the same server checking the same signatures, without the
  signing cost in the phase). Medians of ``--repeat`` rounds.

It reports three shares of each phase: the measured one (wall time signed as usual minus signed
ahead, over signed as usual: the verdict), the share of the client's CPU (requests x CPU per
signature / client CPU of the phase) and the CPU bound (requests x CPU per signature / wall time;
signing overlaps the other requests' waits, so this overstates it). Run::

    .venv/bin/python benchmarks/bench_signing.py            # 1000 x 10 KiB, 5 rounds
    .venv/bin/python benchmarks/bench_signing.py --quick    # 100 files

Exit status: 0 when every phase ran and verified (the target may still be MISS), 1 on an error.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    BenchmarkError,
    argumentParser,
    cpuSeconds,
    expectAll,
    loadAverage,
    loadConfiguration,
    loadNote,
    parseOptions,
    printTable,
    runInTemporaryFolder,
    startRclone,
    stopRclone,
    timed,
)

SE_NAME = "S3-BENCH-SIGNING"
ROUND_TRIP_MS = 20
SIGNATURES = 5000
TARGET_SHARE = 0.05
DEFAULT_ROUNDS = 5
PHASES = ("putFile", "getFileMetadata", "getFile")


def _callKey(s3Method: str, lfn: str, key: str | None, params: dict | None) -> tuple:
    return (s3Method, lfn, key, tuple(sorted((params or {}).items())))


class SignedAhead:
    """The signer's ``authorise`` for one phase, every request of it signed before the phase starts.

    ``record`` (an untimed round) notes the requests the phase makes; ``signAll`` signs them all
    again (fresh dates) just before a timed round; ``authorise`` then looks them up (a request
    not seen before is signed as usual and counted in ``misses``).
    """

    def __init__(self, authorise: Callable[..., dict]):
        self._authorise = authorise
        self._calls: dict[tuple, tuple] = {}
        self._signed: dict[tuple, dict] = {}
        self.misses = 0

    def record(self, s3Method: str, lfn: str, key: str | None, params: dict | None = None) -> dict:
        self._calls[_callKey(s3Method, lfn, key, params)] = (s3Method, lfn, key, params)
        return self._authorise(s3Method, lfn, key, params)

    def signAll(self) -> None:
        self._signed = {callKey: self._authorise(*call) for callKey, call in self._calls.items()}

    def authorise(self, s3Method: str, lfn: str, key: str | None, params: dict | None = None) -> dict:
        signed = self._signed.get(_callKey(s3Method, lfn, key, params))
        if signed is None:
            self.misses += 1
            return self._authorise(s3Method, lfn, key, params)
        return signed


class SigningBenchmark:
    def __init__(self, work: Path, options) -> None:
        self.work, self.options = work, options
        self.server = self.relay = None

    def tearDown(self) -> None:
        if self.relay is not None:
            self.relay.stop()
            print(f"relay PID {self.relay.process.pid} stopped", flush=True)
        stopRclone(self.server)

    def signatureCPU(self, signer) -> float:
        """CPU seconds per ``sign`` of a PUT with pinned checksum and length (botocore's S3SigV4Auth)."""
        headers = {"x-amz-meta-checksum": "0badc0de", "Content-Length": "10240"}
        start = time.process_time()
        for index in range(SIGNATURES):
            signed = signer.sign("PUT", f"bench/f{index:05d}", None, headers)
            if not signed["OK"]:
                raise BenchmarkError(f"signing failed: {signed['Message']}")
        return (time.process_time() - start) / SIGNATURES

    def phaseCalls(self, se, sources: dict[str, str]) -> dict[str, Callable[[], None]]:
        """Each phase as a verified call: putFile, getFileMetadata, getFile (into a fresh folder)."""
        lfns = list(sources)
        out = self.work / "out"

        def put() -> None:
            expectAll(se.putFile(sources), lfns, "putFile")

        def head() -> None:
            expectAll(se.getFileMetadata(lfns), lfns, "getFileMetadata")

        def get() -> None:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            expectAll(se.getFile(lfns, localPath=str(out)), lfns, "getFile")

        return dict(zip(PHASES, (put, head, get), strict=True))

    def measure(self, se, sources: dict[str, str]) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """{phase: {'usual' | 'ahead': [(wall s, client CPU s)]}}, the two ways alternating."""
        storage = se.storages[0]
        original = storage.signer.authorise
        results: dict[str, dict[str, list[tuple[float, float]]]] = {}
        try:
            for phase, call in self.phaseCalls(se, sources).items():
                ahead = SignedAhead(original)
                storage.signer.authorise = ahead.record
                call()  # untimed: notes the requests of the phase (and warms the connections)
                results[phase] = {"usual": [], "ahead": []}
                for round_ in range(self.options.repeat):
                    for way in ("usual", "ahead") if round_ % 2 == 0 else ("ahead", "usual"):
                        if way == "ahead":
                            ahead.signAll()
                        storage.signer.authorise = ahead.authorise if way == "ahead" else original
                        cpuBefore = cpuSeconds()
                        seconds, _ = timed(call)
                        results[phase][way].append((seconds, cpuSeconds() - cpuBefore))
                        storage.signer.authorise = original
                if ahead.misses:
                    raise BenchmarkError(f"{phase}: {ahead.misses} requests were not signed ahead")
        finally:
            storage.signer.authorise = original
        return results

    def run(self) -> int:
        from bench_s3_distance import RelayProcess
        from DIRAC.Resources.Storage.StorageElement import StorageElement
        from s3_fixtures import s3_se_cfg

        loadBefore = loadAverage()
        self.server = startRclone(self.work)
        bucket = self.server.make_bucket("bench-signing")
        self.relay = RelayProcess(self.server.port)
        self.relay.setRoundTrip(ROUND_TRIP_MS)
        print(f"relay PID {self.relay.process.pid} on port {self.relay.port}, +{ROUND_TRIP_MS} ms", flush=True)
        loadConfiguration(self.work / "dirac.cfg", s3_se_cfg(SE_NAME, self.server, bucket, Port=self.relay.port))
        se = StorageElement(SE_NAME)
        if not se.valid:
            raise BenchmarkError(f"SE {SE_NAME}: {se.errorReason}")
        perSignature = self.signatureCPU(se.storages[0].signer)
        files = self.options.files
        payload = os.urandom(self.options.size_kib * 1024)
        sources = {}
        (self.work / "src").mkdir()
        for index in range(files):
            path = self.work / "src" / f"f{index:05d}"
            path.write_bytes(payload)
            sources[f"/bench/f{index:05d}"] = str(path)
        se.exists("/bench/warm-up")
        results = self.measure(se, sources)
        lines = []
        for phase, ways in results.items():
            usual = statistics.median(wall for wall, _cpu in ways["usual"])
            ahead = statistics.median(wall for wall, _cpu in ways["ahead"])
            cpu = statistics.median(cpu for _wall, cpu in ways["usual"])
            signing = files * perSignature
            measured = (usual - ahead) / usual
            verdict = "ok" if measured <= TARGET_SHARE else "MISS"
            lines.append(
                (
                    phase,
                    str(files),
                    f"{usual:.3f}",
                    f"{ahead:.3f}",
                    f"{measured:+.1%}",
                    f"{cpu:.2f}",
                    f"{signing / cpu:.1%}",
                    f"{signing / usual:.1%}",
                    verdict,
                )
            )
        header = (
            f"phase at {ROUND_TRIP_MS} ms",
            "requests",
            "wall s",
            "signed ahead s",
            "measured",
            "client CPU s",
            "of client CPU",
            "CPU bound",
            "<= 5%",
        )
        printTable(
            header,
            lines,
            f"botocore SigV4: {perSignature * 1e6:.0f} us CPU per signature ({SIGNATURES} signatures); "
            f"{files} x {self.options.size_kib} KiB through a {ROUND_TRIP_MS} ms relay to rclone, "
            f"medians of {self.options.repeat} rounds each way",
        )
        print(loadNote(loadBefore, loadAverage()))
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argumentParser(__doc__.splitlines()[0], files="small files per phase")
    parser.add_argument("--repeat", type=int, default=DEFAULT_ROUNDS, help="rounds each way per phase (default 5)")
    options = parseOptions(parser, argv, ["files", "size_kib", "repeat"], files=(100, 1000))
    return runInTemporaryFolder("bench-signing-", options, lambda work: SigningBenchmark(work, options))


if __name__ == "__main__":
    sys.exit(main())
