"""dirac-s3-demo: a real S3 round trip through a StorageElement, on an embedded S3 server.

It starts ``rclone serve s3`` on 127.0.0.1 over a local folder, defines an S3
storage element for it in a fresh ``dirac.cfg``, then puts, inspects, lists,
hands out an access URL, downloads (both through the SE and through the URL
with plain HTTP), removes, and stops the server. Nothing outside ``--folder``
is touched.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

SE_NAME = "S3-DEMO"
BUCKET = "demo-bucket"
LFN_DIR = "/demo/user/d/demo"


def _configText(port: int, accessKey: str, secretKey: str) -> str:
    return f"""
Resources
{{
  StorageElements
  {{
    {SE_NAME}
    {{
      S3
      {{
        Host = 127.0.0.1
        Port = {port}
        Protocol = s3
        Path = {BUCKET}
        SecureConnection = False
        Aws_access_key_id = {accessKey}
        Aws_secret_access_key = {secretKey}
      }}
    }}
  }}
}}
"""


def _step(title: str, result: dict) -> dict:
    """Print one bulk step's outcome and return its ``Successful`` part; exit when anything failed."""
    failed = result["Value"]["Failed"] if result["OK"] else {}
    if not result["OK"] or failed:
        print(f"  FAILED  {title}: {result.get('Message') or failed}")
        raise SystemExit(1)
    print(f"  ok      {title}")
    return result["Value"]["Successful"]


def runDemo(folder: Path) -> int:
    """The round trip; returns the process exit code."""
    import requests

    import DIRAC
    from DIRAC.Core.Utilities.Adler import fileAdler
    from DIRAC.Core.Utilities.Subprocesses import rcloneS3Command, startOnFreePort, stopProcess

    if folder.exists():
        shutil.rmtree(folder)
    for sub in ("s3root/" + BUCKET, "etc", "upload", "download"):
        (folder / sub).mkdir(parents=True)
    accessKey, secretKey = "demo-" + secrets.token_hex(4), secrets.token_hex(16)
    print(f"Starting an embedded S3 server (rclone serve s3) over {folder / 's3root'} ...")
    server, port = startOnFreePort(
        lambda p: rcloneS3Command(p, folder / "s3root", accessKey, secretKey), folder / "s3server.log"
    )
    try:
        (folder / "etc" / "dirac.cfg").write_text(_configText(port, accessKey, secretKey))
        os.environ["DIRACSYSCONFIG"] = str(folder / "etc" / "dirac.cfg")
        DIRAC.initialize()
        from DIRAC.Resources.Storage.StorageElement import StorageElement

        print(f"S3 server pid {server.pid} on 127.0.0.1:{port}; storage element {SE_NAME}, bucket {BUCKET}\n")
        files = {f"{LFN_DIR}/small.dat": 3 * 1024 * 1024, f"{LFN_DIR}/big.dat": 40 * 1024 * 1024}
        local = {}
        for lfn, size in files.items():
            path = folder / "upload" / lfn.rsplit("/", 1)[-1]
            path.write_bytes(os.urandom(size))
            local[lfn] = str(path)
        se = StorageElement(SE_NAME)
        started = time.monotonic()
        total = sum(files.values()) // 2**20
        _step(f"putFile of {len(files)} files ({total} MiB, the big one in parts)", se.putFile(local))
        metadata = _step("getFileMetadata", se.getFileMetadata(list(files)))
        for lfn, meta in metadata.items():
            same = meta["Checksum"] == fileAdler(local[lfn])
            verdict = "matches" if same else "MISMATCH"
            print(f"          {lfn}: {meta['Size']} bytes, adler32 {meta['Checksum']} ({verdict})")
            if not same:
                return 1
        listing = _step(f"listDirectory {LFN_DIR}", se.listDirectory(LFN_DIR))[LFN_DIR]
        print(f"          {sorted(listing['Files'])}")
        urls = _step("getURL (http access URL valid 24 h)", se.getURL(f"{LFN_DIR}/small.dat", protocol="http"))
        url = urls[f"{LFN_DIR}/small.dat"]
        print(f"          {url[:100]}...")
        answer = requests.get(url, timeout=30)
        sameBytes = answer.status_code == 200 and answer.content == Path(local[f"{LFN_DIR}/small.dat"]).read_bytes()
        print(f"  {'ok     ' if sameBytes else 'FAILED '} plain HTTP GET of the access URL returns the same bytes")
        if not sameBytes:
            return 1
        downloaded = se.getFile(list(files), localPath=str(folder / "download"))
        _step("getFile (adler32 verified while downloading)", downloaded)
        for lfn in files:
            name = lfn.rsplit("/", 1)[-1]
            if (folder / "download" / name).read_bytes() != Path(local[lfn]).read_bytes():
                print(f"  FAILED  downloaded {name} differs from the upload")
                return 1
        _step("removeFile", se.removeFile(list(files)))
        gone = _step("exists after removal", se.exists(list(files)))
        if any(gone.values()):
            print("  FAILED  files still exist after removal")
            return 1
        print(f"\nRound trip done in {time.monotonic() - started:.1f} s. Everything matched.")
        return 0
    finally:
        stopProcess(server)
        print(f"S3 server (pid {server.pid}) stopped. Demo files are in {folder}.")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="dirac-s3-demo",
        description="Run a real S3 round trip (put, metadata, list, access URL, get, remove) through a "
        "DIRAC StorageElement against an embedded rclone S3 server on 127.0.0.1.",
    )
    parser.add_argument("--folder", default="demo", help="work folder, recreated on each run (default: ./demo)")
    args = parser.parse_args()
    try:
        sys.exit(runDemo(Path(args.folder).resolve()))
    except RuntimeError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
