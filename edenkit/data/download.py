"""Safe, resumable downloads for the real datasets (used by the scripts in ``data_download/``).

Three promises:

* **resume**: bytes arrive in ``<name>.part``; a later call asks the server for the rest with an HTTP
  ``Range`` request (and starts over when the server ignores it);
* **verify**: a finished file is checked against a published SHA-256/MD5 when one exists, otherwise
  against the digest recorded at the first download in a checksums file (``checksums.json``). A
  first download is recorded only when its length was checked (against the length the server
  stated, or a published size): a response without a length that was cut short would otherwise
  be trusted forever. ``trust_unverified=True`` (``--trust-unverified``) accepts such a file;
* **never look complete when it is not**: the final name appears only after verification, by an
  atomic rename. A checksum mismatch deletes the ``.part`` and raises :class:`ChecksumError`. A
  ``.part`` the server calls complete (HTTP 416) is kept only when its size is the total the server
  states; otherwise the download starts over.

Network errors are retried with exponential back-off; a tqdm bar shows progress. Steps that need a
person (registration, Kaggle or PhysioNet credentials) raise :class:`ManualStepRequired` with the
exact instructions, so a script never fails with a bare 403.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from edenkit.files import atomic_write_text

CHUNK = 1 << 20  # 1 MiB per read when hashing
STREAM_CHUNK = 1 << 16  # 64 KiB per network read: a cut connection loses at most this much
TAR_REFUSED = getattr(tarfile, "FilterError", ())  # the "data" filter's refusals (Python >= 3.11.4)


class DownloadError(RuntimeError):
    """A download that failed after all retries, or a response that cannot be used."""


class ChecksumError(DownloadError):
    """A downloaded file whose digest does not match the published or recorded one."""


class ManualStepRequired(RuntimeError):
    """A step a person must do (register, accept a licence, log in); the message says exactly what."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where it lives and, when published, its digest."""

    url: str
    name: str  # file name under the download folder
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None  # bytes, when published


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (works for files larger than memory)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class ChecksumStore:
    """Digests recorded at the first download, so later downloads and re-checks can be verified.

    A JSON file ``{name: {"sha256": ..., "size": ...}}``, rewritten atomically on every change.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._data: dict[str, dict] = {}
        if self.path.is_file():
            try:
                self._data = json.loads(self.path.read_text())
            except json.JSONDecodeError as e:
                raise DownloadError(f"{self.path}: not valid JSON ({e}); fix or delete it") from e

    def get(self, name: str) -> str | None:
        return self._data.get(name, {}).get("sha256")

    def record(self, name: str, sha256: str, size: int) -> None:
        self._data[name] = {"sha256": sha256, "size": size}
        atomic_write_text(self.path, json.dumps(self._data, indent=1, sort_keys=True) + "\n")


def verify(path: Path, name: str, sha256: str | None, md5: str | None, store: ChecksumStore | None,
           trusted: bool = True) -> str:
    """Check ``path`` against the published digest, else the recorded one; returns how it was checked.

    With neither, the SHA-256 is recorded in ``store`` (trust on first download) and later calls
    check against it, but only when ``trusted`` (the file's length was checked, or the user accepts
    it unchecked): otherwise :class:`DownloadError`. Raises :class:`ChecksumError` on a mismatch.
    """
    expected = {"sha256": sha256, "md5": md5}
    for algorithm, value in expected.items():
        if value:
            actual = file_digest(path, algorithm)
            if actual.lower() != value.lower():
                raise ChecksumError(f"{name}: {algorithm} {actual} does not match the published {value}")
            return f"published {algorithm}"
    recorded = store.get(name) if store is not None else None
    if recorded is None and not trusted:
        raise DownloadError(
            f"{path}: the server sent no length and no size or checksum is published, so a download cut "
            f"short cannot be told from a whole one ({path.stat().st_size} bytes); not accepted. Rerun "
            "with --trust-unverified (trust_unverified=True) to accept it as it is")
    if store is None:
        return "unchecked (no published digest, no checksums file)"
    actual = file_digest(path, "sha256")
    if recorded is None:
        store.record(name, actual, path.stat().st_size)
        return f"recorded sha256 in {store.path}"
    if actual != recorded:
        raise ChecksumError(f"{name}: sha256 {actual} does not match the one recorded in {store.path} ({recorded})")
    return "recorded sha256"


def download(
    remote: RemoteFile,
    folder: str | Path,
    *,
    checksums: ChecksumStore | None = None,
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    session: requests.Session | None = None,
    progress: bool = True,
    trust_unverified: bool = False,
) -> Path:
    """Download ``remote`` into ``folder`` (resuming a ``.part``), verify it, then rename it into place.

    An existing final file is re-verified and returned without a download. Returns the final path.
    ``trust_unverified`` accepts (and records) a file whose length nothing could check.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.name
    part = folder / (remote.name + ".part")
    if final.is_file():
        verify(final, remote.name, remote.sha256, remote.md5, checksums)
        return final

    http = session or requests.Session()
    stated = None
    for attempt in range(retries + 1):
        try:
            stated = _fetch_into(http, remote.url, part, timeout, progress, remote.name)
            break
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            if attempt == retries:
                raise DownloadError(f"{remote.name}: giving up after {retries + 1} attempts ({e}); "
                                    f"rerun to resume from {part.stat().st_size if part.exists() else 0} bytes") from e
            time.sleep(backoff * 2**attempt)

    got = part.stat().st_size
    if remote.size is not None and got != remote.size:
        if got > remote.size:
            part.unlink()  # more bytes than the file has: never resumable
        raise DownloadError(f"{remote.name}: {got} bytes, but the published size is {remote.size}"
                            + ("; rerun to resume" if got < remote.size else "; deleted, rerun to start over"))
    length_checked = stated is not None or remote.size is not None
    try:
        verify(part, remote.name, remote.sha256, remote.md5, checksums, trusted=length_checked or trust_unverified)
    except ChecksumError:
        part.unlink(missing_ok=True)  # a corrupt partial would be resumed forever
        raise
    os.replace(part, final)
    return final


def _fetch_into(http: requests.Session, url: str, part: Path, timeout: float, progress: bool,
                name: str) -> int | None:
    """Append the missing bytes of ``url`` to ``part`` (one HTTP request; two when the ``.part`` is stale).

    Returns the file's total size as the server stated it, or None when it stated none.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with http.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True) as response:
        if response.status_code == 416:  # "nothing left to send": true only if the .part has exactly the total
            stated = _unsatisfiable_total(response)
            if stated == have:
                return stated
        else:
            return _receive(response, part, have, progress, name, url)
    # larger than the file, or a size the server does not confirm: start over (no Range, so no second 416)
    part.unlink()
    return _fetch_into(http, url, part, timeout, progress, name)


def _receive(response: requests.Response, part: Path, have: int, progress: bool, name: str, url: str) -> int | None:
    """Write the body of ``response`` into ``part`` (appending after ``have`` bytes for a 206)."""
    if response.status_code in (401, 403):
        raise ManualStepRequired(f"{name}: the server refused access ({response.status_code}) at {url}; "
                                 "the link may need a login or may have moved (see data_download/README.md)")
    if response.status_code >= 500:  # a server hiccup: worth retrying
        raise requests.ConnectionError(f"{name}: HTTP {response.status_code} from {url}")
    if response.status_code >= 400:
        raise DownloadError(f"{name}: HTTP {response.status_code} from {url}")
    if have and response.status_code != 206:
        have = 0  # the server ignored Range and sends the whole file: start over
    total = _total_size(response, have)
    mode = "ab" if have else "wb"
    with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                     desc=name, disable=not progress, leave=False) as bar:
        for block in response.iter_content(STREAM_CHUNK):
            f.write(block)
            bar.update(len(block))
    if total is not None and part.stat().st_size < total:
        raise requests.exceptions.ChunkedEncodingError(f"{name}: connection closed early "
                                                       f"({part.stat().st_size} of {total} bytes)")
    return total


def _unsatisfiable_total(response: requests.Response) -> int | None:
    """N of a 416's ``Content-Range: bytes */N`` (the file's size), or None when the server gives none."""
    content_range = response.headers.get("Content-Range", "").strip()
    if content_range.startswith("bytes */") and content_range[len("bytes */"):].isdigit():
        return int(content_range[len("bytes */"):])
    return None


def _total_size(response: requests.Response, have: int) -> int | None:
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")  # "bytes 100-999/1000"
        if "/" in content_range and not content_range.endswith("/*"):
            return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return int(length) + (have if response.status_code == 206 else 0) if length else None


def extract(archive: str | Path, destination: str | Path) -> Path:
    """Unpack a .zip / .tar(.gz) into ``destination`` once; a marker file records completion.

    Members that would land outside ``destination`` (absolute paths, ``..``; links and device files
    in a tar) are refused with :class:`DownloadError`, as is an archive that does not unpack. Extraction
    goes to a temporary folder beside ``destination`` and is moved in only when complete.
    """
    archive, destination = Path(archive), Path(destination)
    marker = destination / f".extracted-{archive.name}"
    if marker.is_file():
        return destination
    staging = destination.with_name(f".{destination.name}.extracting-{archive.name}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    _check_member(member, archive)
                z.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    _check_member(member.name, archive)
                # the "data" filter (Python >= 3.10.12) also refuses links and device files
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                try:
                    t.extractall(staging, **kwargs)
                except TAR_REFUSED as e:
                    raise DownloadError(f"{archive}: refusing the member {e.tarinfo.name!r} ({e}); "
                                        "nothing was extracted") from e
        else:
            raise DownloadError(f"{archive}: not a zip or tar archive")
        destination.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():  # merge: several archives fill the same folder (NIH images_*)
            _merge(item, destination / item.name)
        marker.write_text("ok\n")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DownloadError(f"{archive}: cannot be unpacked ({type(e).__name__}: {e}); it is damaged or not "
                            "what was expected: delete it and rerun") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _check_member(name: str, archive: Path) -> None:
    if name.startswith(("/", "\\")) or ".." in Path(name).parts:
        raise DownloadError(f"{archive}: refusing the member {name!r} (it points outside the target folder)")


def _merge(source: Path, target: Path) -> None:
    if source.is_dir() and target.is_dir():
        for child in source.iterdir():
            _merge(child, target / child.name)
    else:
        os.replace(source, target)
