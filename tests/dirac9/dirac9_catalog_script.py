"""Run by DIRAC 9's Python: a DIRAC user's calls to a file catalog at ``URL``; prints the answers as JSON.

Usage: dirac9_catalog_script.py URL DIRECTORY
"""

import datetime
import json

from DIRAC.Core.Base.Script import Script

Script.registerArgument("URL: the catalog service")
Script.registerArgument("Directory: a directory the user may write")
Script.parseCommandLine(ignoreErrors=True)

from DIRAC.Core.Tornado.Client.TornadoClient import TornadoClient  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient  # noqa: E402

url, directory = Script.getPositionalArgs()
lfn = f"{directory}/from-dirac9.txt"
catalog = FileCatalogClient(url=url)
raw = TornadoClient(url)
answers = {
    "whoami": raw.whoami(),
    "addFile": catalog.addFile({lfn: {"PFN": "", "SE": "S3-SE", "Size": 42, "Checksum": "0a0b0c0d", "GUID": ""}}),
    "listDirectory": catalog.listDirectory(directory),
    "getFileMetadata": catalog.getFileMetadata(lfn),
    "unknownMethod": raw.noSuchMethod(),
    "wrongArgument": raw.getFileMetadata(2**64),
    "removeFile": catalog.removeFile(lfn),
    "exists": catalog.exists(lfn),
}
metadata = answers["getFileMetadata"].get("Value", {}).get("Successful", {}).get(lfn, {})
answers["creationDateType"] = type(metadata.get("CreationDate")).__name__
for answer in answers.values():
    if isinstance(answer, dict):
        answer.pop("CallStack", None)
        answer.pop("rpcStub", None)
print(json.dumps(answers, default=lambda value: value.isoformat() if isinstance(value, datetime.date) else str(value)))
