"""Downloads against a local HTTP server on 127.0.0.1: resume, checksums, interruptions, archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edenkit.data import download as dl

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, not all zeros so a wrong offset shows


class Behaviour:
    """What the test server does; tests change it between requests."""

    def __init__(self):
        self.cut_after: int | None = None  # close the connection after this many body bytes
        self.honour_range = True
        self.status = 200
        self.range_headers: list[str | None] = []
        self.bytes_sent = 0
        self.send_length = True  # False: no Content-Length, the body ends when the connection closes


@pytest.fixture
def server():
    behaviour = Behaviour()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            header = self.headers.get("Range")
            behaviour.range_headers.append(header)
            if behaviour.status != 200:
                self.send_response(behaviour.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            if header and behaviour.honour_range:
                start = int(header.removeprefix("bytes=").split("-")[0])
                if start >= len(PAYLOAD):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
            else:
                self.send_response(200)
            body = PAYLOAD[start:]
            if behaviour.send_length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.close_connection = True
            self.end_headers()
            if behaviour.cut_after is not None:
                body = body[:behaviour.cut_after]
            self.wfile.write(body)
            behaviour.bytes_sent += len(body)
            self.wfile.flush()
            if behaviour.cut_after is not None:
                self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    behaviour.url = f"http://127.0.0.1:{httpd.server_address[1]}/payload.bin"
    yield behaviour
    httpd.shutdown()
    httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote(server, **digests):
    return dl.RemoteFile(server.url, "payload.bin", **digests)


def test_download_verifies_a_published_checksum(server, tmp_path):
    path = dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and not (tmp_path / "payload.bin.part").exists()
    server.range_headers.clear()
    assert dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path, progress=False) == path
    assert server.range_headers == []  # a verified file is not fetched again


def test_a_partial_file_resumes_with_a_range_request(server, tmp_path):
    (tmp_path / "payload.bin.part").write_bytes(PAYLOAD[:300_000])
    path = dl.download(remote(server, md5=hashlib.md5(PAYLOAD).hexdigest()), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.range_headers == ["bytes=300000-"] and server.bytes_sent == len(PAYLOAD) - 300_000


def test_a_checksum_mismatch_is_refused_and_leaves_nothing(server, tmp_path):
    with pytest.raises(dl.ChecksumError, match="payload.bin"):
        dl.download(remote(server, sha256="0" * 64), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_download_never_looks_complete_and_resumes(server, tmp_path):
    server.cut_after = 400_000
    with pytest.raises(dl.DownloadError, match="resume"):
        dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path, retries=1, backoff=0.01, progress=False)
    assert not (tmp_path / "payload.bin").exists()
    part = tmp_path / "payload.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    server.cut_after = None
    kept = part.stat().st_size
    path = dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert server.range_headers[-1] == f"bytes={kept}-"  # the rerun asked only for the rest


def test_retries_recover_from_a_cut_connection(server, tmp_path):
    server.cut_after = 700_000
    calls = []
    real = dl._fetch_into

    def fetch_then_heal(*args, **kwargs):  # the connection is cut once, then behaves
        calls.append(1)
        try:
            return real(*args, **kwargs)
        finally:
            server.cut_after = None

    dl._fetch_into, saved = fetch_then_heal, dl._fetch_into
    try:
        path = dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path, retries=2, backoff=0.01, progress=False)
    finally:
        dl._fetch_into = saved
    assert path.read_bytes() == PAYLOAD and len(calls) == 2


def test_without_a_published_digest_the_first_download_is_recorded_and_checked_after(server, tmp_path):
    store = dl.ChecksumStore(tmp_path / "checksums.json")
    path = dl.download(remote(server), tmp_path / "files", checksums=store, progress=False)
    assert dl.ChecksumStore(tmp_path / "checksums.json").get("payload.bin") == sha256(PAYLOAD)
    path.write_bytes(PAYLOAD[:-1] + b"x")  # the file changes on disk later
    with pytest.raises(dl.ChecksumError, match="recorded"):
        dl.download(remote(server), tmp_path / "files", checksums=dl.ChecksumStore(tmp_path / "checksums.json"),
                    progress=False)


def test_a_server_that_ignores_range_restarts_cleanly(server, tmp_path):
    server.honour_range = False
    (tmp_path / "payload.bin.part").write_bytes(b"garbage" * 10)
    path = dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_access_refused_asks_for_the_manual_step(server, tmp_path):
    server.status = 403
    with pytest.raises(dl.ManualStepRequired, match="login"):
        dl.download(remote(server), tmp_path, progress=False)


def test_extract_merges_archives_once_and_refuses_escaping_members(tmp_path):
    for n in (1, 2):
        with tarfile.open(tmp_path / f"images_{n:03d}.tar.gz", "w:gz") as t:
            data = f"png {n}".encode()
            info = tarfile.TarInfo(f"images/{n:08d}_000.png")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    target = tmp_path / "chestxray14"
    for n in (1, 2):
        dl.extract(tmp_path / f"images_{n:03d}.tar.gz", target)
    assert sorted(p.name for p in (target / "images").iterdir()) == ["00000001_000.png", "00000002_000.png"]
    (target / "images" / "00000001_000.png").write_text("kept")
    dl.extract(tmp_path / "images_001.tar.gz", target)  # the marker makes a rerun a no-op
    assert (target / "images" / "00000001_000.png").read_text() == "kept"

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "no")
    with pytest.raises(dl.DownloadError, match="outside"):
        dl.extract(evil, tmp_path / "target")
    assert not (tmp_path / "outside.txt").exists()


def test_a_manual_script_arranges_an_archive_into_the_layout(tmp_path, monkeypatch, capsys):
    import importlib.util
    import sys
    from pathlib import Path

    import numpy as np

    raw = np.full((32, 32), 900, dtype=">u2").tobytes()
    with zipfile.ZipFile(tmp_path / "All247images.zip", "w") as z:
        for name in ("JPCLN001", "JPCNN002"):
            z.writestr(f"All247images/{name}.IMG", raw)
    scripts = Path(__file__).parents[2] / "data_download"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location("download_jsrt", scripts / "jsrt.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    data = tmp_path / "data"

    monkeypatch.setattr(sys, "argv", ["jsrt.py", "--data-root", str(data)])
    assert script.main(script.steps, script.__doc__) == 2
    assert "db.jsrt.or.jp" in capsys.readouterr().err  # the manual step, not a traceback
    monkeypatch.setattr(sys, "argv", ["jsrt.py", "--data-root", str(data), "--from", str(tmp_path / "All247images.zip")])
    assert script.main(script.steps, script.__doc__) == 0
    assert "jsrt all: 2 images" in capsys.readouterr().out
    assert (data / "jsrt" / "images" / "JPCLN001.IMG").is_file() and not (data / "jsrt" / ".unpacked").exists()


def _load_script(name, monkeypatch):
    import importlib.util
    from pathlib import Path

    scripts = Path(__file__).parents[2] / "data_download"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location(f"download_{name}", scripts / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


MANUAL_SCRIPTS = ("jsrt", "scr", "drive", "eyepacs", "siim_acr", "vindr_cxr", "vindr_ribcxr")


@pytest.mark.parametrize("name", MANUAL_SCRIPTS)
def test_every_manual_script_names_its_steps_and_target(name, tmp_path, monkeypatch):
    import argparse

    script = _load_script(name, monkeypatch)
    with pytest.raises(dl.ManualStepRequired) as raised:
        script.steps(argparse.Namespace(source=None, keep_archives=False), tmp_path)
    message = str(raised.value)
    assert str(tmp_path / name) in message and "--from" in message and "{" not in message
    assert not (tmp_path / name).exists()  # nothing is created before the person has the data


def test_manual_steps_links_a_folder_with_its_files_and_opens_the_dataset(tmp_path, monkeypatch, capsys):
    import argparse

    import numpy as np

    _load_script("jsrt", monkeypatch)  # puts data_download/ on the path
    from _common import manual_steps

    download = tmp_path / "by-hand" / "JSRT" / "nested"
    (download / "All247images").mkdir(parents=True)
    raw = np.full((16, 16), 900, dtype=">u2").tobytes()
    for name in ("JPCLN001", "JPCNN002", "JPCNN003"):
        (download / "All247images" / f"{name}.IMG").write_bytes(raw)
    (download / "notes.csv").write_text("x\n")
    steps = manual_steps("jsrt", "get it at {target} with {script}", {"images": "*.IMG"}, ("notes.csv",),
                         splits=["all"], script="jsrt.py")
    root = tmp_path / "data"
    steps(argparse.Namespace(source=str(tmp_path / "by-hand"), keep_archives=False), root)
    assert "jsrt all: 3 images" in capsys.readouterr().out
    images, notes = root / "jsrt" / "images", root / "jsrt" / "notes.csv"
    assert images.is_symlink() and images.resolve() == (download / "All247images").resolve()  # linked, not copied
    assert notes.is_symlink() and notes.read_text() == "x\n"
    steps(argparse.Namespace(source=None, keep_archives=False), root)  # complete now: no manual step
    (root / "jsrt" / "notes.csv").unlink()
    with pytest.raises(dl.ManualStepRequired, match=f"get it at {root / 'jsrt'} with jsrt.py"):
        steps(argparse.Namespace(source=None, keep_archives=False), root)


# -- issue 15: nothing half-done is trusted ------------------------------------------------------------

def test_a_stale_part_larger_than_the_file_starts_over(server, tmp_path):
    (tmp_path / "payload.bin.part").write_bytes(PAYLOAD + b"stale bytes of another version")
    store = dl.ChecksumStore(tmp_path / "checksums.json")
    path = dl.download(remote(server), tmp_path, checksums=store, progress=False)
    assert path.read_bytes() == PAYLOAD  # the 416 says "bytes */1048576": not the .part's size
    assert store.get("payload.bin") == sha256(PAYLOAD)  # so the stale bytes are never recorded as trusted
    assert server.range_headers == [f"bytes={len(PAYLOAD) + 30}-", None]


def test_a_whole_part_is_accepted_on_416_without_a_second_request(server, tmp_path):
    (tmp_path / "payload.bin.part").write_bytes(PAYLOAD)
    path = dl.download(remote(server), tmp_path, checksums=dl.ChecksumStore(tmp_path / "c.json"), progress=False)
    assert path.read_bytes() == PAYLOAD and server.range_headers == [f"bytes={len(PAYLOAD)}-"]


def test_a_response_without_length_cut_short_is_not_trusted(server, tmp_path):
    server.send_length, server.cut_after = False, 400_000
    store = dl.ChecksumStore(tmp_path / "checksums.json")
    with pytest.raises(dl.DownloadError, match="no length.*trust-unverified"):
        dl.download(remote(server), tmp_path / "files", checksums=store, progress=False)
    assert store.get("payload.bin") is None and not (tmp_path / "checksums.json").exists()
    assert not (tmp_path / "files" / "payload.bin").exists()
    with pytest.raises(dl.DownloadError, match="published size is 1048576"):  # a published size catches it
        dl.download(dl.RemoteFile(server.url, "sized.bin", size=len(PAYLOAD)), tmp_path / "files", progress=False)
    with pytest.raises(dl.ChecksumError):  # and so does a published checksum
        dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path / "other", progress=False)


def test_a_response_without_length_is_recorded_only_when_the_user_accepts_it(server, tmp_path):
    server.send_length = False
    store = dl.ChecksumStore(tmp_path / "checksums.json")
    path = dl.download(remote(server), tmp_path, checksums=store, progress=False, trust_unverified=True)
    assert path.read_bytes() == PAYLOAD and store.get("payload.bin") == sha256(PAYLOAD)
    whole = dl.download(remote(server, sha256=sha256(PAYLOAD)), tmp_path / "published", progress=False)
    assert whole.read_bytes() == PAYLOAD  # verified by the published digest, no length needed


def test_an_archive_member_that_is_a_link_is_a_download_error(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as t:
        link = tarfile.TarInfo("images/JPCLN001.IMG")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    with pytest.raises(dl.DownloadError, match="refusing the member 'images/JPCLN001.IMG'"):
        dl.extract(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as t:
        info = tarfile.TarInfo("a.png")
        info.size = 200_000
        t.addfile(info, io.BytesIO(bytes(range(256)) * 782))
    damaged.write_bytes(damaged.read_bytes()[:-300])
    with pytest.raises(dl.DownloadError, match="damaged.tar.gz: cannot be unpacked"):
        dl.extract(damaged, tmp_path / "target")
