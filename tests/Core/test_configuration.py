"""gConfig: typed values, local options winning over the central configuration, bad files."""

from __future__ import annotations

import DIRAC
from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.Helpers.Operations import Operations

CENTRAL = """
Resources
{
  StorageElements
  {
    S3-SE
    {
      S3
      {
        Host = s3.example.org
        Path = central-bucket
        Retries = 4
        SecureConnection = yes
      }
    }
  }
}
Operations
{
  Defaults
  {
    DataManagement
    {
      AccessProtocols = s3, file
    }
  }
  myvo
  {
    DataManagement
    {
      AccessProtocols = file
    }
  }
}
"""


def test_local_options_win_over_central(tmp_path, dirac_cfg):
    central = tmp_path / "central.cfg"
    central.write_text(CENTRAL)
    local = f"""
DIRAC
{{
  Configuration
  {{
    CentralFile = {central}
  }}
}}
Resources
{{
  StorageElements
  {{
    S3-SE
    {{
      S3
      {{
        Path = local-bucket
        Aws_access_key_id = AKIAEXAMPLE
      }}
    }}
  }}
}}
"""
    dirac_cfg(local)
    section = "/Resources/StorageElements/S3-SE/S3"
    assert gConfig.getValue(f"{section}/Path", "") == "local-bucket"
    assert gConfig.getValue(f"{section}/Host", "") == "s3.example.org"
    assert gConfig.getValue(f"{section}/Aws_access_key_id", "") == "AKIAEXAMPLE"
    assert gConfig.getValue(f"{section}/Retries", 0) == 4
    assert gConfig.getValue(f"{section}/SecureConnection", False) is True
    assert gConfig.getValue(f"{section}/Nothing", 2.5) == 2.5
    assert gConfig.getValue(f"{section}/Host", 7) == 7, "an unconvertible value gives the default"
    assert gConfig.getSections("/Resources/StorageElements")["Value"] == ["S3-SE"]
    assert set(gConfig.getOptionsDict(section)["Value"]) >= {"Host", "Path", "Aws_access_key_id"}
    assert not gConfig.getOption(f"{section}/Missing")["OK"]
    assert Operations(vo="myvo").getValue("DataManagement/AccessProtocols", []) == ["file"]
    assert Operations(vo="other").getValue("DataManagement/AccessProtocols", []) == ["s3", "file"]


def test_unreadable_configuration_is_reported(tmp_path, monkeypatch):
    broken = tmp_path / "broken.cfg"
    broken.write_text("Section\n{\n  unclosed = 1\n")
    monkeypatch.setenv("DIRACSYSCONFIG", f"{broken},{tmp_path / 'missing.cfg'}")
    try:
        result = DIRAC.initialize()
        assert not result["OK"]
        assert "missing.cfg" in result["Message"]
    finally:
        monkeypatch.undo()
        DIRAC.initialize()
