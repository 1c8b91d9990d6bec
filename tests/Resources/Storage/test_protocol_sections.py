"""DIRAC's ``StorageElement(name, protocolSections=[...])`` and ``getProtocolSections`` on an SE with two sections."""

from __future__ import annotations

from DIRAC.Resources.Storage.StorageElement import StorageElement
from s3_fixtures import se_cfg

LFN = "/vo/user/a/alice/f.txt"


def twoSectionSE(dirac_cfg, tmp_path) -> None:
    """SE ``TWO`` with a remote ``File`` section and a local ``Posix`` one (same folder, plugin File)."""
    common = {"Protocol": "file", "Path": str(tmp_path / "store"), "Host": "localhost"}
    dirac_cfg(
        se_cfg(
            "TWO",
            {},
            {"File": {**common, "Access": "remote"}, "Posix": {**common, "PluginName": "File", "Access": "local"}},
        )
    )


def test_protocol_sections_select_and_list_sections(dirac_cfg, tmp_path):
    twoSectionSE(dirac_cfg, tmp_path)
    both = StorageElement("TWO")
    assert both.valid, both.errorReason
    assert both.getProtocolSections()["Value"] == ["Posix", "File"]  # local first, as DIRAC
    only = StorageElement("TWO", protocolSections=["File"])
    assert only.getProtocolSections()["Value"] == ["File"]
    assert StorageElement("TWO", protocolSections="Posix").getProtocolSections()["Value"] == ["Posix"]
    assert StorageElement("TWO", plugins=["File"]).getProtocolSections()["Value"] == ["Posix", "File"]
    source = tmp_path / "f.txt"
    source.write_text("hello")
    put = only.putFile({LFN: str(source)})
    assert put["OK"] and put["Value"]["Successful"] == {LFN: 5}, put
    assert only.isFile(LFN)["Value"]["Successful"] == {LFN: True}


def test_unknown_protocol_section_makes_an_invalid_se_with_the_reason(dirac_cfg, tmp_path):
    twoSectionSE(dirac_cfg, tmp_path)
    none = StorageElement("TWO", protocolSections=["GFAL2_SRM2"])
    assert not none.valid and "has no plugin among ['GFAL2_SRM2']" in none.errorReason
    result = none.getProtocolSections()
    assert not result["OK"] and "GFAL2_SRM2" in result["Message"]
    assert not none.exists(LFN)["OK"]
