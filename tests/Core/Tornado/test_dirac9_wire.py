"""DIRAC 9's HTTPS RPC protocol, both ways, against a real ``dirac-service`` on 127.0.0.1.

The golden bodies below are written from DIRAC 9's documented protocol (a form-encoded
POST with ``method``, ``args`` in JEncode's JSON, ``extraCredentials``, ``clientVO``,
``clientSetup``; every answer with HTTP 200 in the same encoding). A DIRAC 9 client is
played by plain ``requests`` posting such a form with the proxy as client certificate,
exactly what DIRAC's ``TornadoBaseClient`` does.
"""

from __future__ import annotations

import datetime
import json
import urllib.parse

import pytest
import requests
import test_rpc_auth
from test_rpc_auth import MAX_REQUEST, _ok, _refused, rpc

from DIRAC.Core.Tornado import DIRAC9Protocol, Serialization
from DIRAC.Core.Tornado.Client.TornadoClient import TornadoClient
from DIRAC.Core.Utilities import DErrno

WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9)
GOLDEN_ARGS = (
    '[{"__dCls":"dt","obj":"2024-05-06 07:08:09"},{"__dCls":"date","obj":"2024-05-06"},'
    '{"__dCls":"b64","obj":"AAFi"},["t",1],{"k":[1.5,null,true]}]'
)
# The callers, their service and the client environment of the authorization tests.
creds = test_rpc_auth.creds
service = test_rpc_auth.service
client_env = test_rpc_auth.client_env
GOLDEN_VALUES = [WHEN, WHEN.date(), b"\x00\x01b", ["t", 1], {"k": [1.5, None, True]}]


# Pure encoding (no server)


def test_dirac9_encoding_of_the_tagged_types_matches_the_golden_text():
    values = [WHEN, WHEN.date(), b"\x00\x01b", ("t", 1), {"k": [1.5, None, True]}]
    assert Serialization.encode(values, Serialization.DIRAC9).decode() == GOLDEN_ARGS
    assert Serialization.decode(GOLDEN_ARGS, Serialization.DIRAC9) == GOLDEN_VALUES
    # DIRAC writes datetimes without microseconds or zone, in UTC.
    aware = datetime.datetime(2024, 5, 6, 9, 8, 9, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert Serialization.encode(aware, Serialization.DIRAC9) == b'{"__dCls":"dt","obj":"2024-05-06 07:08:09"}'
    # Our own dialect keeps its tags.
    assert Serialization.decode(Serialization.encode(values)) == GOLDEN_VALUES


def test_dirac9_objects_of_other_classes_are_refused_without_importing_anything():
    hostile = '{"__dCls":"Popen","__dMod":"subprocess","args":"touch /tmp/x"}'
    with pytest.raises(ValueError, match="cannot receive a value tagged __dCls='Popen'"):
        Serialization.decode(hostile, Serialization.DIRAC9)
    with pytest.raises(ValueError, match="must be a string"):
        Serialization.decode('{"__dCls":"dt","obj":5}', Serialization.DIRAC9)


@pytest.mark.parametrize("dialect", Serialization.DIALECTS)
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 100 + "]" * 100, "nested more than 64 levels"),
        ("[" * 5000 + "]" * 5000, "nested more than 64 levels"),
        (str(2**64), "outside the 64-bit range"),
        (str(-(2**63) - 1), "outside the 64-bit range"),
        ("[NaN]", "NaN is not a number JSON allows"),
        ("1" * 5000, "Exceeds the limit"),
    ],
)
def test_decoding_refuses_what_breaks_the_limits(dialect, text, reason):
    with pytest.raises(ValueError, match=reason):
        Serialization.decode(text, dialect)


def test_decoding_accepts_what_is_within_the_limits():
    assert Serialization.decode(str(2**63 - 1)) == 2**63 - 1
    assert Serialization.decode("[" * 63 + "]" * 63, Serialization.DIRAC9) is not None
    with pytest.raises(ValueError, match="base64"):
        Serialization.decode('{"__dCls":"b64","obj":"!!"}', Serialization.DIRAC9)


def test_golden_request_form_of_our_client_in_dirac9_mode():
    client = TornadoClient("https://localhost:1/Framework/X", rpcProtocol="dirac9", VO="vo1", setup="S1")
    body = _ok(client._body("echo", tuple(GOLDEN_VALUES)))
    assert dict(urllib.parse.parse_qsl(body.decode())) == {
        "method": "echo",
        "args": GOLDEN_ARGS,
        "clientVO": "vo1",
        "clientSetup": "S1",
    }
    delegating = TornadoClient("https://localhost:1/X/Y", rpcProtocol="dirac9", delegatedDN="/CN=a", delegatedGroup="g")
    fields = dict(urllib.parse.parse_qsl(_ok(delegating._body("whoami", ())).decode()))
    assert (fields["args"], fields["extraCredentials"]) == ("[]", '["/CN=a","g"]')
    host = TornadoClient("https://localhost:1/X/Y", rpcProtocol="dirac9", useCertificates=True)
    assert dict(urllib.parse.parse_qsl(_ok(host._body("ping", ())).decode()))["extraCredentials"] == '"hosts"'
    _refused(TornadoClient("https://localhost:1/X/Y", rpcProtocol="dirac8")._body("ping", ()), "unknown RPC protocol")


def test_form_parsing_refuses_malformed_forms_with_a_reason():
    assert _ok(DIRAC9Protocol.parseForm(b"method=ping"))["args"] == []
    hosts = _ok(DIRAC9Protocol.parseForm(b"method=ping&extraCredentials=%22hosts%22&clientVO=&rawContent=True"))
    assert (hosts["delegatedDN"], hosts["delegatedGroup"], hosts["rawContent"]) == (None, None, True)
    delegated = _ok(DIRAC9Protocol.parseForm(b"method=ping&extraCredentials=%5B%22%2FCN%3Da%22%2C+null%5D"))
    assert (delegated["delegatedDN"], delegated["delegatedGroup"], delegated["rawContent"]) == ("/CN=a", None, False)
    _refused(
        DIRAC9Protocol.parseForm(b"method=a&extraCredentials=%5B%22%2FCN%3Da%22%2C+5%5D"), "group must be a string"
    )
    _refused(DIRAC9Protocol.parseForm(b"args=%5B%5D"), 'no "method" field')
    _refused(DIRAC9Protocol.parseForm(b"method=a&method=b"), "given more than once")
    _refused(DIRAC9Protocol.parseForm(b"method=a&args=%7B%7D"), '"args" must be a JSON list')
    _refused(DIRAC9Protocol.parseForm(b"method=a&extraCredentials=%5B1%2C2%2C3%5D"), "must be")
    _refused(DIRAC9Protocol.parseForm("method=\u00e9".encode()), "not a valid form")
    _refused(DIRAC9Protocol.parseForm(b"&".join(b"f%d=1" % i for i in range(40))), "not a valid form")
    assert DIRAC9Protocol.isForm("application/x-www-form-urlencoded; charset=utf-8", b"")
    assert DIRAC9Protocol.isForm("", b"method=ping&args=%5B%5D")
    assert not DIRAC9Protocol.isForm("", b'{"method": "ping"}')
    assert not DIRAC9Protocol.isForm("application/json", b"method=ping")


# A DIRAC 9 client (plain requests posting the form) against our service


def diracPost(service, credentials: str, caDir: str, fields: dict, path: str | None = None) -> requests.Response:
    """One call the way DIRAC 9's TornadoBaseClient makes it."""
    url = service.url(path)
    return requests.post(url, data=fields, cert=credentials, verify=caDir, timeout=20)


def diracAnswer(response: requests.Response) -> dict:
    """The S_OK/S_ERROR of an answer, checked to be HTTP 200 in DIRAC's encoding."""
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/json"
    assert "__rpcType" not in response.text
    return Serialization.decode(response.content, Serialization.DIRAC9)


def test_dirac9_client_calls_our_service_and_gets_its_encoding(service, creds, test_ca):
    fields = {"method": "echo", "args": json.dumps([json.loads(GOLDEN_ARGS)]), "clientVO": "vo", "clientSetup": "s"}
    response = diracPost(service, creds["userProxy"], test_ca.caDir, fields)
    assert response.status_code == 200
    assert json.loads(response.text) == {"OK": True, "Value": json.loads(GOLDEN_ARGS)}
    assert diracAnswer(response) == {"OK": True, "Value": GOLDEN_VALUES}
    who = diracAnswer(diracPost(service, creds["userProxy"], test_ca.caDir, {"method": "whoami"}))
    assert (who["Value"]["username"], who["Value"]["group"]) == ("alice", "dirac_user")
    # DIRAC sends tuples as lists; types_ are checked as for our own callers.
    args = Serialization.encode(["n", ("a", "b"), {}], Serialization.DIRAC9).decode()
    fields = {"method": "describe", "args": args}
    assert diracAnswer(diracPost(service, creds["userProxy"], test_ca.caDir, fields))["Value"]["items"] == ["a", "b"]


def test_every_refusal_reaches_a_dirac9_client_as_http_200_with_the_reason(service, creds, test_ca):
    ca = test_ca.caDir

    def refused(fields: dict, *fragments: str, credentials: str | None = None, path: str | None = None) -> dict:
        return _refused(
            diracAnswer(diracPost(service, credentials or creds["userProxy"], ca, fields, path)), *fragments
        )

    golden = (
        '{"OK":false,"Message":"No such method or function ( 1002 : unknown method \'nope\' of service '
        'Framework/RPCTest)","Errno":1002}'
    )
    assert diracPost(service, creds["userProxy"], ca, {"method": "nope", "args": "[]"}).text == golden
    refused({"method": "nope"}, "unknown method 'nope'")
    refused({"method": "add", "args": '["1", 2]'}, "argument 1 should be int, got str")
    refused({"method": "adminOnly"}, "CSAdministrator")
    refused({"method": "echo", "args": "[{"}, '"args" is not valid JSON')
    refused({"method": "echo", "args": json.dumps([2**64])}, "outside the 64-bit range")
    refused({"method": "echo", "args": "[" * 3000 + "]" * 3000}, "nested more than 64 levels")
    refused({"method": "echo", "args": json.dumps(["x" * MAX_REQUEST])}, "exceeds the limit")
    refused({"method": "boom"}, "RPCTest.boom failed on the server, see server log")
    refused({"method": "ping"}, "no service at /Framework/Nope", path="Framework/Nope")
    # Delegation through extraCredentials: refused to a user.
    extra = json.dumps([creds["bobDN"], "dirac_admin"])
    refused({"method": "whoami", "extraCredentials": extra}, "alice is not a host")
    refused(
        {"method": "whoami", "extraCredentials": extra},
        "lacks the TrustedHost property",
        credentials=creds["otherHost"],
    )


def test_trusted_host_delegates_through_extra_credentials(service, creds, test_ca, client_env):
    from DIRAC.Core.Security import Locations

    hostCert, hostKey = Locations.getHostCertificateAndKeyLocation()
    extra = json.dumps([creds["aliceDN"], "dirac_admin"])
    url = service.url()
    fields = {"method": "whoami", "extraCredentials": extra}
    response = requests.post(url, data=fields, cert=(hostCert, hostKey), verify=test_ca.caDir, timeout=20)
    who = _ok(diracAnswer(response))
    assert (who["username"], who["group"], who["delegatedBy"]) == (
        "alice",
        "dirac_admin",
        test_ca.ca.hostDN("localhost"),
    )
    hosts = {"method": "whoami", "extraCredentials": '"hosts"'}
    response = requests.post(url, data=hosts, cert=(hostCert, hostKey), verify=test_ca.caDir, timeout=20)
    assert _ok(diracAnswer(response))["group"] == "hosts"


def test_raw_content_answers_the_bytes_or_an_http_error(service, creds, test_ca):
    fields = {"method": "echo", "args": json.dumps([{"__dCls": "b64", "obj": "AAEC"}]), "rawContent": True}
    response = diracPost(service, creds["userProxy"], test_ca.caDir, fields)
    assert (response.status_code, response.content) == (200, b"\x00\x01\x02")
    assert response.headers["Content-Type"] == "application/octet-stream"
    response = diracPost(service, creds["userProxy"], test_ca.caDir, {"method": "failing", "rawContent": "True"})
    assert response.status_code == 400 and "a plain failure" in response.text


def test_our_json_callers_keep_their_protocol_next_to_dirac9(service, creds, client_env):
    assert _ok(rpc(service, creds["userProxy"]).echo(WHEN)) == WHEN
    assert DErrno.cmpError(rpc(service, creds["userProxy"]).nope(), DErrno.ENOMETH)


# Our client in DIRAC 9 mode against our service (which answers in DIRAC 9's encoding)


def test_our_client_in_dirac9_mode_against_our_service(service, creds, client_env):
    client = rpc(service, creds["userProxy"], rpcProtocol="dirac9")
    assert _ok(client.echo(GOLDEN_VALUES)) == GOLDEN_VALUES
    assert _ok(client.add(2, 3)) == 5
    _refused(client.add("2", 3), "argument 1 should be int")
    _refused(client.adminOnly(), "CSAdministrator")
    _refused(client.echo(2**64), "outside the 64-bit range")
    host = rpc(service, useCertificates=True, delegatedDN=creds["aliceDN"], delegatedGroup="dirac_admin")
    host.__dict__["_transport"].rpcProtocol = "dirac9"
    assert _ok(host.adminOnly()) == "admin"


def test_dirac9_mode_from_the_configuration(service, creds, client_env):
    """``/DIRAC/RPCProtocol = dirac9`` in the local cfg file (``client_env`` is that file)."""
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData
    from s3_fixtures import merge_cfg

    client_env.write_text(merge_cfg(client_env.read_text(), "DIRAC\n{\n  RPCProtocol = dirac9\n}\n"))
    assert _ok(gConfigurationData.loadAll()) is None
    client = TornadoClient(service.url(), proxyLocation=creds["userProxy"])
    assert _ok(client.executeRPC("echo", WHEN)) == WHEN
    assert client.rpcProtocol == "dirac9"


def test_our_configuration_client_reads_a_server_in_dirac9_protocol(test_ca, tmp_path, rpc_launcher, monkeypatch):
    """``/DIRAC/RPCProtocol = dirac9`` in the local cfg: the central configuration is fetched in DIRAC 9's form."""
    from test_config_server import SE, _central

    from DIRAC.ConfigurationSystem.Client.Config import gConfig
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import centralFileLoader, gConfigurationData
    from DIRAC.ConfigurationSystem.Client.CSServerLoader import installCentralLoader
    from rpc_fixtures import service_cfg

    central = tmp_path / "central.cfg"
    central.write_text(_central(test_ca))
    serverCfg = tmp_path / "server.cfg"
    serverCfg.write_text(
        service_cfg(
            test_ca,
            {"Configuration/Server": {}},
            extra=f"DIRAC\n{{\n  Configuration\n  {{\n    CentralFile = {central}\n  }}\n}}\n",
        )
    )
    server = rpc_launcher.start("Configuration/Server", serverCfg, extraArgs=["--log-level", "VERBOSE"])
    local = tmp_path / "client.cfg"
    local.write_text(
        f"DIRAC\n{{\n  RPCProtocol = dirac9\n  Security\n  {{\n    CALocation = {test_ca.caDir}\n  }}\n"
        f"  Configuration\n  {{\n    Servers = {server.url()}\n  }}\n}}\n"
    )
    monkeypatch.setenv("DIRACSYSCONFIG", str(local))
    monkeypatch.setenv("X509_CERT_DIR", test_ca.caDir)
    monkeypatch.setenv("X509_USER_PROXY", test_ca.proxy("alice", "dirac_user", 3600, tmp_path / "proxy"))
    loader = installCentralLoader()
    try:
        assert _ok(gConfigurationData.loadAll()) is None
        assert gConfig.getValue(f"{SE}/S3/Path", "") == "central-bucket"
    finally:
        loader.stop()
        gConfigurationData.setCentralLoader(centralFileLoader)
        monkeypatch.undo()
        gConfigurationData.loadAll()
    assert "Configuration/Server.getCompressedDataIfNewer" in server.log()
    assert "(dirac9)" in server.log() and "(json)" not in server.log()
