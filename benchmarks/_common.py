"""What the ``bench_*.py`` scripts share: checks, timing, rclone, big transfers in child processes,
DIRAC set-up, disk space, tables, the driver.

Nothing heavy is imported at module level: the big transfers run in spawned children that
re-import this module (and the benchmark's own), and their peak RSS must hold only what the
transfer needs. The set-up helpers of ``tests/`` (``s3_fixtures``, ``rpc_fixtures``,
``security_fixtures``, ``catalog_fixtures``) are imported inside the functions, once ``main``
put ``tests/`` on ``sys.path`` (``useTestHelpers``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
REGION = "us-east-1"
KiB, MiB, MB = 1024, 1024 * 1024, 1000 * 1000
DISK_MARGIN = 512 * MiB
CHILD_TIMEOUT = 1800.0  # seconds allowed to one big transfer child
WRITE_CHUNK = 16 * MiB


class BenchmarkError(RuntimeError):
    """A phase failed or its result did not verify."""


# ---------------------------------------------------------------- checks and timing


def expectAll(result: dict, names: list[str], what: str) -> dict:
    """The Successful dict of a bulk result holding every name; BenchmarkError otherwise."""
    if not result["OK"]:
        raise BenchmarkError(f"{what}: {result['Message']}")
    failed = result["Value"]["Failed"]
    if failed:
        first = next(iter(failed.items()))
        raise BenchmarkError(f"{what}: {len(failed)} failed, e.g. {first[0]}: {first[1]}")
    successful = result["Value"]["Successful"]
    missing = [name for name in names if name not in successful]
    if missing:
        raise BenchmarkError(f"{what}: no answer for {len(missing)} of {len(names)}, e.g. {missing[0]}")
    if len(successful) != len(names):
        raise BenchmarkError(f"{what}: {len(successful)} successful of {len(names)}")
    return successful


def timed(function: Callable, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(seconds, value) of ``function(*args, **kwargs)``."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def fileAdler32(path: Path | str) -> int:
    """The adler32 of a file, read in big chunks."""
    value = 1
    with open(path, "rb") as handle:
        while chunk := handle.read(WRITE_CHUNK):
            value = zlib.adler32(chunk, value)
    return value


def writeBigFile(path: Path, size: int) -> int:
    """Write ``size`` random-ish bytes (no two chunks alike) to ``path``; return their adler32."""
    adler, written, block = 1, 0, os.urandom(WRITE_CHUNK)
    with open(path, "wb") as handle:
        while written < size:
            chunk = (written.to_bytes(8, "little") + block[8:])[: size - written]  # no two parts alike
            adler = zlib.adler32(chunk, adler)
            handle.write(chunk)
            written += len(chunk)
    return adler


def writeSmallFiles(folder: Path, count: int, size: int) -> list[Path]:
    """Make ``folder`` holding ``count`` files ``f00000.dat``... of ``size`` random bytes each; their paths."""
    folder.mkdir()
    paths = [folder / f"f{index:05d}.dat" for index in range(count)]
    for path in paths:
        path.write_bytes(os.urandom(size))
    return paths


def bigFileSpaceOK(work: Path, bigMib: int, notes: list[str]) -> bool:
    """Is there room under ``work`` for a big-file phase (source, server copy, one download + margin)?

    When not, the reason is printed and added to ``notes``.
    """
    needed = 3 * bigMib * MiB + DISK_MARGIN
    free = shutil.disk_usage(work).free
    print(f"free space under {work}: {free / 2**30:.1f} GiB, needed {needed / 2**30:.1f} GiB", flush=True)
    if free >= needed:
        return True
    message = (
        f"NOT ENOUGH DISK SPACE for the {bigMib} MiB phases: {free / 2**30:.1f} GiB free "
        f"under {work}, {needed / 2**30:.1f} GiB needed; big-file phases SKIPPED "
        "(use --tmpdir on a bigger disk or a smaller --big-mib)"
    )
    print(message, flush=True)
    notes.append(message)
    return False


# ---------------------------------------------------------------- S3


def botoClient(endpoint: str, accessKey: str, secretKey: str):
    """A plain boto3 S3 client for the server (path style, SigV4), as a user would make one."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=accessKey,
        aws_secret_access_key=secretKey,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def startRclone(work: Path):
    """``rclone serve s3`` over ``work/rclone-root`` on a free 127.0.0.1 port: an ``s3_fixtures.S3Server``."""
    from s3_fixtures import S3Server, _rclone_command, start_server

    root = work / "rclone-root"
    root.mkdir()
    accessKey, secretKey = "bench-access", f"bench-secret-{uuid.uuid4().hex}"
    log = work / "rclone.log"
    process, port = start_server(lambda p: _rclone_command(p, root, accessKey, secretKey), log)
    server = S3Server("rclone", port, accessKey, secretKey, process, root=root, log=log)
    print(f"rclone serve s3 PID {process.pid} on {server.endpoint_url}, root {root}", flush=True)
    return server


def stopRclone(server) -> None:
    """Stop the server of ``startRclone`` by its PID (nothing when None)."""
    if server is not None:
        from DIRAC.Core.Utilities.Subprocesses import stopProcess

        stopProcess(server.process)
        print(f"rclone PID {server.process.pid} stopped", flush=True)


# ---------------------------------------------------------------- big transfers in child processes


def maxRssMB() -> float:
    """Peak resident set size of this process so far, in MB: ``VmHWM`` of ``/proc/self/status``.

    Why not ``ru_maxrss``: Linux carries the high-water mark of the memory a process had before
    ``execve`` into its ``ru_maxrss`` (the forked copy of the parent counts), so a spawned child
    reports at least its parent's RSS. ``VmHWM`` belongs to the child's own address space.
    ``ru_maxrss`` is the fall-back where ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * KiB / MB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB / MB


def cpuSeconds() -> float:
    """CPU seconds (user + system, all threads) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _bigChild(connection, job: dict) -> None:
    """Run one big transfer in this fresh process; send back seconds, CPU seconds, peak RSS before and after."""
    try:
        if job["tool"] == "ours":
            loadConfiguration(job["cfg"])
            from DIRAC.Resources.Storage.StorageElement import StorageElement

            se = StorageElement(job["se"])
            if not se.valid:
                raise BenchmarkError(f"SE {job['se']}: {se.errorReason}")
            if job["op"] == "put":
                call = lambda: se.putFile({job["lfn"]: job["path"]})  # noqa: E731
            else:
                call = lambda: se.getFile(job["lfn"], localPath=job["dir"])  # noqa: E731
        else:
            client = botoClient(job["endpoint"], job["accessKey"], job["secretKey"])
            client.head_bucket(Bucket=job["bucket"])  # client set up and connected, like ours
            key = job["lfn"].lstrip("/")
            if job["op"] == "put":
                call = lambda: client.upload_file(job["path"], job["bucket"], key)  # noqa: E731
            else:
                target = os.path.join(job["dir"], os.path.basename(key))
                call = lambda: client.download_file(job["bucket"], key, target)  # noqa: E731
        rssBefore, cpuBefore = maxRssMB(), cpuSeconds()
        seconds, value = timed(call)
        rssPeak, cpu = maxRssMB(), cpuSeconds() - cpuBefore
        if job["tool"] == "ours":
            expectAll(value, [job["lfn"]], f"{job['op']}File of the big file")
        connection.send({"ok": True, "seconds": seconds, "cpu": cpu, "rssBefore": rssBefore, "rssPeak": rssPeak})
    except BaseException as exc:  # report anything, the parent decides
        connection.send({"ok": False, "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"})
    finally:
        connection.close()


def runChild(job: dict, target: Callable[[Any, dict], None] = _bigChild) -> dict:
    """Run ``target(connection, job)`` (default ``_bigChild``: it sends one answer dict, ``ok`` and the rest or
    ``error``) in a fresh spawned process, bounded in time, stopped by its PID; the answer."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(sender, job), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(CHILD_TIMEOUT):
            raise BenchmarkError(f"{job['tool']} {job['op']} did not finish within {CHILD_TIMEOUT:.0f} s")
        answer = receiver.recv()
    except EOFError as exc:
        raise BenchmarkError(f"{job['tool']} {job['op']} child died (exit code {process.exitcode})") from exc
    finally:
        receiver.close()
        process.join(timeout=30)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=10)
    if not answer["ok"]:
        raise BenchmarkError(f"{job['tool']} {job['op']}: {answer['error']}")
    return answer


def bigTransfer(work: Path, job: dict, size: int, adler: int) -> dict:
    """One big transfer ``job`` (``runChild``) into a fresh ``work/big-<tool>-<op>``; a download is then
    checked (size, adler32); the folder is removed. The answer of the child."""
    folder = work / f"big-{job['tool']}-{job['op']}"
    folder.mkdir()
    os.sync()  # flush the previous transfer's dirty pages first: no writeback competes with this one
    try:
        answer = runChild({**job, "dir": str(folder)})
        if job["op"] == "get":
            downloaded = folder / os.path.basename(job["lfn"])
            if downloaded.stat().st_size != size or fileAdler32(downloaded) != adler:
                raise BenchmarkError(f"{job['tool']} get {size // MiB} MiB: downloaded bytes differ (size or adler32)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return answer


# ---------------------------------------------------------------- DIRAC configuration and catalog

# The caller of the benchmarks that call a FileCatalogDB directly (through ``catalog_fixtures.DBCatalog``).
CATALOG_USER = {"DN": "/CN=bench", "username": "alice", "group": "vo_user", "properties": ["NormalUser"], "VO": "vo"}


def loadConfiguration(cfgPath: Path | str, text: str | None = None) -> None:
    """Make ``cfgPath`` (first written with ``text`` when given) this process's DIRAC configuration
    (``DIRACSYSCONFIG``) and load it; BenchmarkError if not."""
    if text is not None:
        Path(cfgPath).write_text(text)
    os.environ["DIRACSYSCONFIG"] = str(cfgPath)
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    loaded = gConfigurationData.loadAll()
    if not loaded["OK"]:
        raise BenchmarkError(f"configuration {cfgPath}: {loaded['Message']}")


def sqliteCatalogDB(path: Path):
    """A ``FileCatalogDB`` on the SQLite file ``path``; BenchmarkError when it cannot be opened."""
    from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

    db = FileCatalogDB(f"sqlite:///{path}")
    if not db.isConnected()["OK"]:
        raise BenchmarkError(f"cannot open the catalog DB: {db.connectionError}")
    return db


# ---------------------------------------------------------------- report


def printTable(header: Sequence[str], lines: list[Sequence[str]], title: str) -> None:
    """``title``, then the rows as left-aligned text columns separated by `` | ``."""
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    print(f"\n{title}")
    print(" | ".join(text.ljust(width) for text, width in zip(header, widths, strict=True)))
    print("-+-".join("-" * width for width in widths))
    for line in lines:
        print(" | ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)))


def loadAverage() -> float | None:
    """The 1-minute load average (None where the system does not tell)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def loadNote(before: float | None, after: float | None) -> str:
    """A note on the machine's load during the run, with a warning when it was busy."""
    cores = os.cpu_count() or 1
    shown = ["?" if load is None else f"{load:.1f}" for load in (before, after)]
    note = f"1-minute load average {shown[0]} at the start, {shown[1]} at the end ({cores} cores)"
    if max(load or 0.0 for load in (before, after)) > cores:
        note += ": the machine was busy with other work, the timings are noisy"
    return note


# ---------------------------------------------------------------- driver


def argumentParser(
    description: str,
    files: str = "",
    bigFile: bool = False,
    quick: str = "smoke run: 100 files and 64 MiB unless given",
) -> argparse.ArgumentParser:
    """A parser with ``--quick`` (``quick``: its help) and ``--tmpdir``; ``files`` (its help) adds ``--files`` and
    ``--size-kib``, ``bigFile`` adds ``--big-mib`` (both defaulting like ``--quick``: 100 files and 64 MiB, else
    1000 and 1 GiB)."""
    parser = argparse.ArgumentParser(description=description)
    if files:
        parser.add_argument("--files", type=int, default=None, help=f"{files} (default 1000)")
        parser.add_argument("--size-kib", type=int, default=10, help="size of each small file in KiB (default 10)")
    if bigFile:
        parser.add_argument("--big-mib", type=int, default=None, help="size of the big file in MiB (default 1024)")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--tmpdir", default=None, help="where the temporary folder goes (default: system temp)")
    return parser


def parseOptions(
    parser: argparse.ArgumentParser, argv: list[str] | None, positive: Sequence[str], **defaults: tuple[Any, Any]
) -> argparse.Namespace:
    """Parse ``argv``; ``name=(quick, full)``: an option left at None takes the ``--quick`` or the full-size
    value; every option named in ``positive`` must then be at least 1 (a usage error otherwise)."""
    options = parser.parse_args(argv)
    for name, (quick, full) in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, quick if options.quick else full)
    if min(getattr(options, name) for name in positive) < 1:
        flags = [f"--{name.replace('_', '-')}" for name in positive]
        parser.error(f"{', '.join(flags[:-1])} and {flags[-1]} must be positive")
    return options


def _terminate(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: stop the processes, remove the folder


def useTestHelpers() -> None:
    """``tests/`` on ``sys.path`` (its set-up helpers) and SIGTERM ending the run through its clean-up."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    signal.signal(signal.SIGTERM, _terminate)


def runInTemporaryFolder(prefix: str, options: argparse.Namespace, make: Callable[[Path], Any]) -> int:
    """Run ``make(folder).run()`` in a fresh temporary folder; its exit status.

    The benchmark's ``tearDown()`` stops what it started (also on an error, Ctrl-C or SIGTERM),
    then the folder is removed (kept with ``options.keep``). A ``BenchmarkError`` or a crash ends
    with status 1 and the reason (plus the benchmark's ``failureDetail()`` if it has one).
    """
    useTestHelpers()
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=options.tmpdir))
    benchmark = make(work)
    try:
        return benchmark.run()
    except BenchmarkError as exc:
        detail = getattr(benchmark, "failureDetail", lambda: "")()
        print(f"\nBENCHMARK FAILED: {exc}" + (f"\n{detail}" if detail else ""), file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - report any crash with its traceback, then clean up
        traceback.print_exc()
        return 1
    finally:
        benchmark.tearDown()
        if getattr(options, "keep", False):
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
