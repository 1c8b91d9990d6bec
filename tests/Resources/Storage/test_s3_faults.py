"""Network faults between ``S3Storage`` and real S3 servers (moto, rclone), injected by a relay.

Every test puts ``tests/fault_relay.py`` between the SE and the server, injects one fault,
checks that the fault fired (a test whose fault never fires cannot fail), what the caller
got, and that afterwards the storage holds exactly what it should and no partial local
file is left behind.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time

import pytest

from DIRAC.Core.Utilities.Subprocesses import freePort
from DIRAC.Resources.Storage.StorageElement import StorageElement
from fault_relay import Fault, FaultRelay
from s3_fixtures import s3_se_cfg

LFN = "/vo/faults/f.dat"
SMALL = 300 * 1024
MiB = 1024 * 1024


@pytest.fixture
def relay(s3_bucket):
    """A relay in front of each server in turn: ``(relay, server, bucket)``."""
    server, bucket = s3_bucket
    with FaultRelay(server.host, server.port) as running:
        yield running, server, bucket


def _se(dirac_cfg, relay: FaultRelay, server, bucket: str, **options) -> StorageElement:
    """SE 'S3-FAULTS' reaching ``server`` through ``relay``; ``options`` go into its S3 section."""
    options.setdefault("Retries", 3)
    dirac_cfg(s3_se_cfg("S3-FAULTS", server, bucket, Port=relay.port, **options))
    se = StorageElement("S3-FAULTS")
    assert se.valid, se.errorReason
    return se


def _source(tmp_path, size: int = SMALL) -> str:
    path = tmp_path / "source.dat"
    path.write_bytes(os.urandom(size))
    return str(path)


def _stored(server, bucket: str, lfn: str = LFN) -> bytes | None:
    """The object's bytes as the server holds them (read directly, not through the relay)."""
    client = server.client()
    try:
        return client.get_object(Bucket=bucket, Key=lfn.lstrip("/"))["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def _download(se: StorageElement, tmp_path, lfn: str = LFN) -> tuple[dict, object]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return se.getFile(lfn, localPath=str(out))["Value"], out


def _onlyFiles(folder) -> list[str]:
    """Every name in ``folder``, hidden partial downloads included."""
    return sorted(os.listdir(folder))


def _requests(relay: FaultRelay, method: str) -> list:
    return [request for request in relay.requests if request.method == method]


# ---------------------------------------------------------------- kept-alive connections


@pytest.mark.parametrize("retries", [0, 3])
def test_connection_closed_by_the_server_while_idle_is_replaced(relay, dirac_cfg, tmp_path, retries):
    """The server drops a kept-alive connection without telling; the next request goes out on it."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=retries)
    source = _source(tmp_path)
    closings = []
    for call in ("putFile", "exists", "getFileMetadata", "getFile", "removeFile"):
        # closes the connection of this call's answer, unseen, when the next call sends on it
        closings.append(relay.add(Fault("close")))
        if call == "putFile":
            result = se.putFile({LFN: source})["Value"]
        elif call == "getFile":
            result, out = _download(se, tmp_path)
        else:
            result = getattr(se, call)(LFN)["Value"]
        assert LFN in result["Successful"], (call, result)
    assert [closing.fired for closing in closings[:4]] == [1, 1, 1, 1]
    assert (out / "f.dat").read_bytes() == open(source, "rb").read()
    assert _stored(server, bucket) is None
    assert relay.connections >= 5  # each closed connection was replaced by a new one


def test_connection_closed_after_idling_is_not_reused(relay, dirac_cfg, tmp_path):
    """The server closes an idle kept-alive connection (FIN) before the next request: Retries = 0 is enough."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=0)
    assert se.putFile({LFN: _source(tmp_path)})["Value"]["Successful"]
    closing = relay.add(Fault("close", seconds=0.2))
    se.exists(LFN)
    time.sleep(0.6)
    assert closing.fired == 1
    assert se.exists(LFN)["Value"]["Successful"] == {LFN: True}
    assert se.removeFile(LFN)["Value"]["Successful"] == {LFN: True}


# ---------------------------------------------------------------- broken download bodies


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_broken_download_body_is_resumed_from_the_byte_reached(relay, dirac_cfg, tmp_path, kind):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, ReadTimeout=1)
    source = _source(tmp_path)
    assert se.putFile({LFN: source})["Value"]["Successful"]
    fault = relay.add(Fault(kind, method="GET", after=100 * 1024, seconds=3))
    result, out = _download(se, tmp_path)
    assert result["Successful"] == {LFN: SMALL}, result
    assert fault.fired == 1
    gets = _requests(relay, "GET")
    assert len(gets) == 2, gets  # the whole object, then the rest of it from where the body broke
    assert (out / "f.dat").read_bytes() == open(source, "rb").read()
    assert _onlyFiles(out) == ["f.dat"]


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_broken_download_body_without_retries_is_a_network_error(relay, dirac_cfg, tmp_path, kind):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=0, ReadTimeout=1)
    source = _source(tmp_path)
    assert se.putFile({LFN: source})["Value"]["Successful"]
    fault = relay.add(Fault(kind, method="GET", after=100 * 1024, seconds=3))
    result, out = _download(se, tmp_path)
    assert fault.fired == 1
    message = result["Failed"][LFN]
    assert "network error" in message and "cannot write" not in message, message
    assert ("stalled" if kind == "stall" else "broke") in message, message
    assert _onlyFiles(out) == [], "the partial download must be removed"
    assert _stored(server, bucket) == open(source, "rb").read()


def test_object_replaced_during_a_resumed_download_is_not_mixed(relay, dirac_cfg, tmp_path):
    """The resumed range is pinned to the first answer's ETag (If-Match): moto refuses the new
    version; rclone ignores If-Match, and the adler32 check refuses the mixed bytes."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, ReadTimeout=1)
    assert se.putFile({LFN: _source(tmp_path)})["Value"]["Successful"]
    stall = relay.add(Fault("stall", method="GET", after=100 * 1024, seconds=2))
    replacement = os.urandom(SMALL)

    def replace() -> None:
        time.sleep(0.3)
        server.client().put_object(Bucket=bucket, Key=LFN.lstrip("/"), Body=replacement)

    replacer = threading.Thread(target=replace)
    replacer.start()
    result, out = _download(se, tmp_path)
    replacer.join(10)
    assert stall.fired == 1
    assert LFN in result["Failed"], result
    reason = "changed while being downloaded" if server.name == "moto" else "is corrupt"
    assert reason in result["Failed"][LFN], result
    assert _onlyFiles(out) == []


def test_reset_range_of_a_multipart_download_is_retried_alone(relay, dirac_cfg, tmp_path):
    relay, server, bucket = relay
    options = {"MultipartThreshold": 5 * MiB, "MultipartChunkSize": 5 * MiB}
    se = _se(dirac_cfg, relay, server, bucket, **options)
    source = _source(tmp_path, 12 * MiB + 17)
    assert se.putFile({LFN: source})["Value"]["Successful"]
    fault = relay.add(Fault("reset", method="GET", path=r"f\.dat", after=2 * MiB, skip=2))
    result, out = _download(se, tmp_path)
    assert result["Successful"] == {LFN: 12 * MiB + 17}, result
    assert fault.fired == 1
    assert (out / "f.dat").read_bytes() == open(source, "rb").read()
    assert _onlyFiles(out) == ["f.dat"]


# ---------------------------------------------------------------- broken uploads


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_broken_put_is_sent_again(relay, dirac_cfg, tmp_path, kind):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, ReadTimeout=1)
    source = _source(tmp_path)
    fault = relay.add(Fault(kind, method="PUT", direction="request", after=64 * 1024, seconds=2))
    result = se.putFile({LFN: source})["Value"]
    assert result["Successful"] == {LFN: SMALL}, result
    assert fault.fired == 1
    assert len(_requests(relay, "PUT")) == 2
    time.sleep(2.5 if kind == "stall" else 0)  # the stalled first attempt is over before storage is checked
    assert _stored(server, bucket) == open(source, "rb").read()
    assert se.getFileMetadata(LFN)["Value"]["Successful"][LFN]["Size"] == SMALL


def test_broken_put_without_retries_fails_and_stores_nothing(relay, dirac_cfg, tmp_path):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=0)
    fault = relay.add(Fault("reset", method="PUT", direction="request", after=64 * 1024))
    result = se.putFile({LFN: _source(tmp_path)})["Value"]
    assert fault.fired == 1
    assert "network error" in result["Failed"][LFN], result
    assert _stored(server, bucket) is None


def test_streamed_bodies_a_file_is_rewound_for_a_resend_an_iterable_never_resent(relay, dirac_cfg, tmp_path):
    """The transport streams a file object or an iterable of bytes; only the file can be sent twice."""
    relay, server, bucket = relay
    storage = _se(dirac_cfg, relay, server, bucket).storages[0]
    data = os.urandom(SMALL)
    path = tmp_path / "body.dat"
    path.write_bytes(data)
    url, headers = storage.signer.authorise("put_object", LFN, LFN.lstrip("/"), {"Size": SMALL})["Value"]
    reset = relay.add(Fault("reset", method="PUT", direction="request", after=64 * 1024))
    with open(path, "rb") as body:
        body.read(10)  # the body starts where the file object stands
        body.seek(0)
        sent = storage.http.send("PUT", url, headers, body=body)
    assert sent["OK"] and sent["Value"].ok, sent
    assert reset.fired == 1 and len(_requests(relay, "PUT")) == 2
    assert _stored(server, bucket) == data
    relay.forget()
    reset = relay.add(Fault("reset", method="PUT", direction="request", after=64 * 1024))
    pieces = (data[start : start + 32 * 1024] for start in range(0, SMALL, 32 * 1024))
    sent = storage.http.send("PUT", url, headers, body=pieces)
    assert not sent["OK"] and "network error" in sent["Message"], sent
    assert reset.fired == 1 and len(_requests(relay, "PUT")) == 1
    assert _stored(server, bucket) == data


# ---------------------------------------------------------------- throttling and errors in disguise


@pytest.mark.parametrize("status", [503, 429])
def test_throttling_is_retried_after_the_time_asked(relay, dirac_cfg, tmp_path, status):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket)
    source = _source(tmp_path)
    throttle = relay.add(Fault.slowDown(status=status, retryAfter=1, method="PUT", times=2))
    start = time.monotonic()
    result = se.putFile({LFN: source})["Value"]
    elapsed = time.monotonic() - start
    assert result["Successful"] == {LFN: SMALL}, result
    assert throttle.fired == 2 and len(_requests(relay, "PUT")) == 3
    assert elapsed >= 2.0, "Retry-After: 1 asks for a second before each new attempt"
    assert _stored(server, bucket) == open(source, "rb").read()


def test_throttling_without_retries_says_slow_down(relay, dirac_cfg, tmp_path):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=0)
    throttle = relay.add(Fault.slowDown(method="PUT"))
    result = se.putFile({LFN: _source(tmp_path)})["Value"]
    assert throttle.fired == 1
    assert "slow down" in result["Failed"][LFN] and "SlowDown (HTTP 503)" in result["Failed"][LFN]
    assert _stored(server, bucket) is None


@pytest.mark.parametrize(
    "makeFault",
    [
        # 503 SlowDown means not applied: even a POST (CreateMultipartUpload) is sent again
        pytest.param(lambda: Fault.slowDown(method="POST", path=r"\?uploads"), id="throttled-start-not-idempotent"),
        pytest.param(
            lambda: Fault.errorIn200("InternalError", method="POST", path=r"uploadId="), id="error-in-200-to-complete"
        ),
    ],
)
def test_multipart_post_failure_is_retried(relay, dirac_cfg, tmp_path, makeFault):
    """A multipart POST answered with a retryable S3 error is sent again, once, and the upload completes."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, MultipartThreshold=5 * MiB, MultipartChunkSize=5 * MiB)
    source = _source(tmp_path, 6 * MiB)
    fault = relay.add(makeFault())
    assert se.putFile({LFN: source})["Value"]["Successful"] == {LFN: 6 * MiB}
    assert fault.fired == 1
    assert _stored(server, bucket) == open(source, "rb").read()


def test_error_in_a_200_answer_is_an_error(relay, dirac_cfg, tmp_path):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, MultipartThreshold=5 * MiB, MultipartChunkSize=5 * MiB)
    disguised = relay.add(Fault.errorIn200("AccessDenied", method="POST", path=r"uploadId=", times=10))
    result = se.putFile({LFN: _source(tmp_path, 6 * MiB)})["Value"]
    assert disguised.fired == 1, "a code that is not retryable is not retried"
    assert "AccessDenied (HTTP 200)" in result["Failed"][LFN], result
    assert _stored(server, bucket) is None
    assert not server.client().list_multipart_uploads(Bucket=bucket).get("Uploads"), "the upload must be aborted"


def test_server_error_is_retried_for_a_put_not_for_a_multipart_start(relay, dirac_cfg, tmp_path):
    """A 500 may come after the server applied the request: resent only when that is harmless."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, MultipartThreshold=5 * MiB, MultipartChunkSize=5 * MiB)
    small = _source(tmp_path)
    failing = relay.add(Fault("answer", status=500, s3Code="InternalError", method="PUT", times=1))
    assert se.putFile({LFN: small})["Value"]["Successful"] == {LFN: SMALL}
    assert failing.fired == 1 and len(_requests(relay, "PUT")) == 2
    relay.clear()
    relay.forget()
    big = str(tmp_path / "big.dat")
    with open(big, "wb") as handle:
        handle.write(os.urandom(6 * MiB))
    failing = relay.add(Fault("answer", status=500, s3Code="InternalError", method="POST", times=5))
    result = se.putFile({"/vo/faults/big.dat": big})["Value"]
    assert failing.fired == 1 and len(_requests(relay, "POST")) == 1
    assert "InternalError (HTTP 500)" in result["Failed"]["/vo/faults/big.dat"], result
    assert _stored(server, bucket, "/vo/faults/big.dat") is None
    assert _stored(server, bucket) == open(small, "rb").read()


def test_lost_answer_is_resent_only_when_harmless(relay, dirac_cfg, tmp_path):
    """The server applied the request, the answer never came: a PUT is sent again, a POST is not."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=1, MultipartThreshold=5 * MiB, MultipartChunkSize=5 * MiB)
    source = _source(tmp_path)
    lost = relay.add(Fault("lose", method="PUT"))
    assert se.putFile({LFN: source})["Value"]["Successful"] == {LFN: SMALL}
    assert lost.fired == 1 and len(_requests(relay, "PUT")) == 2
    assert _stored(server, bucket) == open(source, "rb").read()
    relay.clear()
    relay.forget()
    big = str(tmp_path / "big.dat")
    with open(big, "wb") as handle:
        handle.write(os.urandom(6 * MiB))
    lost = relay.add(Fault("lose", method="POST", path=r"\?uploads"))
    result = se.putFile({"/vo/faults/big.dat": big})["Value"]
    assert lost.fired == 1 and len(_requests(relay, "POST")) == 1
    assert "network error" in result["Failed"]["/vo/faults/big.dat"], result
    assert _stored(server, bucket, "/vo/faults/big.dat") is None


def test_lost_answer_to_a_put_that_must_not_replace(relay, dirac_cfg, tmp_path, monkeypatch):
    """A put pinned with ``If-None-Match: *`` (as the gateway's put URLs are) lands, its answer is lost,
    and the resend is refused with 412 by a store that enforces it (moto): the object there is
    ours, so the put succeeded."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=1)
    signer = se.storages[0].signer
    authorise = signer.authorise

    def authoriseLikeTheGateway(s3Method, lfn, key, params=None):
        result = authorise(s3Method, lfn, key, params)
        if result["OK"] and s3Method == "put_object":
            url, headers = result["Value"]
            return {**result, "Value": (url, {**headers, "If-None-Match": "*"})}
        return result

    monkeypatch.setattr(signer, "authorise", authoriseLikeTheGateway)
    source = _source(tmp_path)
    lost = relay.add(Fault("lose", method="PUT"))
    assert se.putFile({LFN: source})["Value"]["Successful"] == {LFN: SMALL}
    assert lost.fired == 1 and len(_requests(relay, "PUT")) == 2
    assert _stored(server, bucket) == open(source, "rb").read()
    other = tmp_path / "other.dat"
    other.write_bytes(os.urandom(SMALL))
    refused = se.putFile({LFN: str(other)})["Value"]
    if server.name == "moto":  # a different file is still refused
        assert "exists already; not overwritten" in refused["Failed"][LFN], refused


# ---------------------------------------------------------------- errors named for what they are


def test_bucket_check_after_a_network_error_does_not_blame_the_bucket(relay, dirac_cfg):
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, Retries=0)
    lost = relay.add(Fault("lose", method="GET", path=r"list-type", times=5))
    result = se.getFileMetadata(LFN)["Value"]
    assert lost.fired >= 1
    message = result["Failed"][LFN]
    assert "bucket check failed" in message and "does not exist" not in message, message


def test_tls_error_is_named_and_not_retried(relay, dirac_cfg):
    """An https SE in front of a plain-HTTP server: a TLS error, said so, tried once."""
    relay, server, bucket = relay
    se = _se(dirac_cfg, relay, server, bucket, SecureConnection="True")
    result = se.exists(LFN)["Value"]
    message = result["Failed"][LFN]
    assert "TLS error" in message and "refused" not in message, message
    assert relay.connections == 1


def test_unreachable_server_is_a_connection_error(s3_bucket, dirac_cfg):
    server, bucket = s3_bucket
    port = freePort()  # outside the ephemeral range: nothing listens there, not even a self-connect
    dirac_cfg(s3_se_cfg("S3-FAULTS", server, bucket, Port=port, Retries=1))
    result = StorageElement("S3-FAULTS").exists(LFN)["Value"]
    message = result["Failed"][LFN]
    assert "cannot connect" in message and "(2 attempts)" in message and "bucket" not in message, message


# ---------------------------------------------------------------- proxies


def test_proxy_from_the_environment_is_used(relay, dirac_cfg, tmp_path, monkeypatch):
    """HTTP_PROXY names the relay: requests reach the server through it, in absolute form."""
    relay, server, bucket = relay
    for name in ("no_proxy", "NO_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", relay.url)
    dirac_cfg(s3_se_cfg("S3-PROXIED", server, bucket, Retries=0))
    se = StorageElement("S3-PROXIED")
    assert se.putFile({LFN: _source(tmp_path)})["Value"]["Successful"] == {LFN: SMALL}
    assert [request.target.startswith(f"http://127.0.0.1:{server.port}/") for request in relay.requests] == [True]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert se.removeFile(LFN)["Value"]["Successful"] == {LFN: True}
    assert len(relay.requests) == 1, "NO_PROXY: the server is reached directly"
    assert _stored(server, bucket) is None


def test_unreachable_proxy_is_named(s3_bucket, dirac_cfg, monkeypatch):
    server, bucket = s3_bucket
    port = freePort()  # outside the ephemeral range: nothing listens there, not even a self-connect
    for name in ("no_proxy", "NO_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    dirac_cfg(s3_se_cfg("S3-PROXIED", server, bucket, Retries=0))
    result = StorageElement("S3-PROXIED").exists(LFN)["Value"]
    assert "proxy" in result["Failed"][LFN], result


# ---------------------------------------------------------------- TLS


class TlsFront:
    """A TLS terminator on 127.0.0.1 in front of a plain-HTTP server: real S3 over HTTPS for the tests.

    One thread accepts; each connection gets two copying threads; everything ends with ``stop()``.
    """

    def __init__(self, targetPort: int, certFile: str, keyFile: str):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certFile, keyFile)
        self.targetPort = targetPort
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.sockets: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.targetPort), timeout=10)
        self.sockets += [secure, upstream]
        threading.Thread(target=self._copy, args=(upstream, secure), daemon=True).start()
        self._copy(secure, upstream)

    @staticmethod
    def _copy(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def tls_moto(moto_server, test_ca):
    front = TlsFront(moto_server.port, test_ca.hostCert, test_ca.hostKey)
    try:
        yield front, moto_server, moto_server.make_bucket()
    finally:
        front.stop()


def _tlsSE(dirac_cfg, front: TlsFront, server, bucket: str, **options) -> StorageElement:
    dirac_cfg(
        s3_se_cfg("S3-TLS", server, bucket, Host="localhost", Port=front.port, SecureConnection="True", **options)
    )
    se = StorageElement("S3-TLS")
    assert se.valid, se.errorReason
    return se


def test_certificate_checked_against_the_configured_ca(tls_moto, dirac_cfg, tmp_path, test_ca):
    front, server, bucket = tls_moto
    se = _tlsSE(dirac_cfg, front, server, bucket, CABundle=test_ca.caCert)
    source = _source(tmp_path)
    assert se.putFile({LFN: source})["Value"]["Successful"] == {LFN: SMALL}
    result, out = _download(se, tmp_path)
    assert result["Successful"] == {LFN: SMALL}
    assert (out / "f.dat").read_bytes() == open(source, "rb").read()
    assert se.removeFile(LFN)["Value"]["Successful"] == {LFN: True}


@pytest.mark.parametrize("trusted", ["system CAs", "another CA"])
def test_untrusted_certificate_is_a_tls_error_tried_once(tls_moto, dirac_cfg, tmp_path, unknown_ca, trusted):
    front, server, bucket = tls_moto
    options = {"CABundle": unknown_ca.caCert} if trusted == "another CA" else {}
    se = _tlsSE(dirac_cfg, front, server, bucket, **options)
    result = se.putFile({LFN: _source(tmp_path)})["Value"]
    message = result["Failed"][LFN]
    assert "TLS error" in message and "certificate verify failed" in message, message
    assert front.accepted == 1, "a TLS error is not retried"
    assert _stored(server, bucket) is None
