"""One DataManager call in its own process, for the tests that kill a client or race two of them.

``python dm_worker.py DB_FILE put LFN LOCAL_FILE SE`` or
``python dm_worker.py DB_FILE replicate LFN DEST_SE LOCAL_CACHE``: the configuration
comes from ``DIRACSYSCONFIG``; the catalog is a real ``FileCatalogDB`` on ``DB_FILE``
used as alice. Prints the result as one JSON line; exit code 0 when the LFN succeeded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agreement_fixtures import ALICE  # noqa: E402
from catalog_fixtures import DBCatalog  # noqa: E402
from DIRAC.DataManagementSystem.Client.DataManager import DataManager  # noqa: E402
from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB  # noqa: E402


def main(dbFile: str, operation: str, lfn: str, first: str, second: str) -> int:
    db = FileCatalogDB(f"sqlite:///{dbFile}")
    try:
        manager = DataManager(fileCatalog=DBCatalog(db, ALICE))
        if operation == "put":
            result = manager.putAndRegister(lfn, first, second)
        else:
            result = manager.replicateAndRegister(lfn, first, localCache=second)
    finally:
        db.close()
    print(json.dumps(result, default=str), flush=True)
    return 0 if result["OK"] and lfn in result["Value"]["Successful"] else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
