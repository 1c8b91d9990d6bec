"""Run by DIRAC 9's Python: load the configuration (from the servers in the local cfg) and print options as JSON.

Usage: dirac9_config_script.py OPTION...
"""

import json

from DIRAC.Core.Base.Script import Script

Script.registerArgument(["Option: a configuration option path"])
Script.parseCommandLine()

from DIRAC import gConfig  # noqa: E402

print(json.dumps({option: gConfig.getValue(option, None) for option in Script.getPositionalArgs()}))
