"""Run by DIRAC 9's Python: a DIRAC user's round trip with DIRAC's own S3 plugin without keys (so through
the S3 gateway) and DIRAC's own FileCatalogClient; prints the answers as JSON.

Usage: dirac9_s3_script.py SE LFN LOCAL_FILE DOWNLOAD_FOLDER
"""

import json
import os

from DIRAC.Core.Base.Script import Script

Script.registerArgument("SE: the S3 storage element (defined without keys)")
Script.registerArgument("LFN: where to put the file")
Script.registerArgument("LocalFile: the file to upload")
Script.registerArgument("Folder: where to download")
Script.parseCommandLine(ignoreErrors=True)

from DIRAC import gConfig  # noqa: E402
from DIRAC.Core.Utilities.Adler import fileAdler  # noqa: E402
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient  # noqa: E402
from DIRAC.Resources.Storage.S3Storage import S3Storage  # noqa: E402

seName, lfn, localFile, folder = Script.getPositionalArgs()
parameters = gConfig.getOptionsDict(f"/Resources/StorageElements/{seName}/S3")["Value"]
storage = S3Storage(seName, parameters)
catalog = FileCatalogClient()
# DIRAC's S3 URL (constructURLFromLFN needs a whole StorageElement, hence a ResourceStatus service).
url = f"s3://{parameters['Host']}:{parameters['Port']}/{parameters['Path']}{lfn}"
size, checksum = os.path.getsize(localFile), fileAdler(localFile)
entry = {"PFN": url, "SE": seName, "Size": size, "Checksum": checksum, "GUID": ""}
answers = {"url": url}
answers["putFile"] = storage.putFile({url: localFile})  # a presigned POST from the gateway
answers["addFile"] = catalog.addFile({lfn: entry})
answers["listDirectory"] = catalog.listDirectory(os.path.dirname(lfn))
# What DIRAC's StorageElement hands its plugins: a list or dict of URLs.
answers["exists"] = storage.exists([url])
answers["getFileMetadata"] = storage.getFileMetadata([url])
answers["getFile"] = storage.getFile([url], localPath=folder)
answers["removeFile"] = storage.removeFile([url])
answers["removeFromCatalog"] = catalog.removeFile(lfn)
answers["existsAfter"] = storage.exists([url])
answers["inCatalogAfter"] = catalog.exists(lfn)
for answer in answers.values():
    if isinstance(answer, dict):
        answer.pop("CallStack", None)
        answer.pop("rpcStub", None)
print(json.dumps(answers, default=str))
