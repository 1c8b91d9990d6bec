"""Run by DIRAC 9's Python: DIRAC's own S3 plugin without keys, through the S3 gateway; prints answers as JSON.

Usage: dirac9_s3_script.py SE LFN DOWNLOAD_FOLDER
"""

import json

from DIRAC.Core.Base.Script import Script

Script.registerArgument("SE: the S3 storage element (defined without keys)")
Script.registerArgument("LFN: a file the user may read and remove")
Script.registerArgument("Folder: where to download")
Script.parseCommandLine(ignoreErrors=True)

from DIRAC import gConfig  # noqa: E402
from DIRAC.Resources.Storage.S3Storage import S3Storage  # noqa: E402

seName, lfn, folder = Script.getPositionalArgs()
parameters = gConfig.getOptionsDict(f"/Resources/StorageElements/{seName}/S3")["Value"]
storage = S3Storage(seName, parameters)
# DIRAC's S3 URL (constructURLFromLFN needs a whole StorageElement, hence a ResourceStatus service).
url = f"s3://{parameters['Host']}:{parameters['Port']}/{parameters['Path']}{lfn}"
urls = [url]  # what DIRAC's StorageElement hands its plugins: a list or dict of URLs
answers = {
    "url": url,
    "exists": storage.exists(urls),
    "getFileMetadata": storage.getFileMetadata(urls),
    "getFile": storage.getFile(urls, localPath=folder),
    "removeFile": storage.removeFile(urls),
    "existsAfter": storage.exists(urls),
}
for answer in answers.values():
    if isinstance(answer, dict):
        answer.pop("CallStack", None)
print(json.dumps(answers, default=str))
