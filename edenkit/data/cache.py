"""``python -m edenkit cache``: decode a dataset once into a uint8 memmap, so training reads bytes.

Decoding a 1024 px PNG costs milliseconds per image per core; a GPU pretraining on ChestX-ray14
would wait for it. The cache stores every image of a split resized to ``size x size`` as uint8 in
one ``.npy`` memmap, which data-loader workers slice for free.

Layout of ``<dataset folder>/cache/<size>/``::

    index.json       what the rows are (image ids, patient ids), written first
    images.npy       uint8 [N, size, size] memmap
    chunks/*.json    one marker per finished chunk of rows, with the SHA-256 of its bytes
    COMPLETE         written last: counts and a digest over all chunk digests

Resumable: a rerun skips chunks whose marker exists and whose bytes still match it.
Verified: a cache without ``COMPLETE`` (or whose ``COMPLETE`` disagrees with the index or the file
size) is never used, so a killed build cannot pass for a finished one. Parallel: chunks are
decoded by a pool of worker processes.

:func:`open_image_dataset` is what pretraining calls: the cached images when a finished cache of
the dataset exists, else the decoding loader.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from edenkit.data.datasets import DATASETS, DatasetError, RealDataset, dataset_dir, open_dataset
from edenkit.data.formats import resize_image
from edenkit.files import atomic_write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SKIPPED_SHOWN = 5  # names of skipped files in the CLI summary (all of them are in COMPLETE and chunks/)


class CacheError(RuntimeError):
    """A cache folder that is incomplete, inconsistent or built from other images."""


@dataclass(frozen=True)
class CacheInfo:
    path: Path
    size: int
    image_ids: list[str]
    patient_ids: list[str]
    failed_rows: list[int]
    missing: list[str] = field(default_factory=list)  # image files absent when it was built (--on-error skip)

    @property
    def images_file(self) -> Path:
        return self.path / "images.npy"

    def skipped(self) -> list[str]:
        """What the cache left out: the missing files, then the image ids that could not be decoded."""
        return self.missing + [self.image_ids[row] for row in self.failed_rows]


def cache_dir(root: str | Path, name: str, size: int) -> Path:
    """``<dataset folder>/cache/<size>`` (the dataset folder as the loaders resolve it)."""
    return dataset_dir(root, name) / "cache" / str(size)


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _index_digest(index: dict) -> str:
    return hashlib.sha256(json.dumps(index, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------

_worker: dict = {}  # per worker process: the dataset and the writable memmap


def _init_worker(name: str, root: str, split: str, size: int, images_file: str, on_error: str,
                 options: dict) -> None:
    torch.set_num_threads(1)  # one process per core already
    # the same on_error as the index was made with: "skip" drops the same missing files here
    _worker["dataset"] = open_dataset(name, root, split, size, targets=False, on_error=on_error, **options)
    _worker["images"] = np.load(images_file, mmap_mode="r+")


def _build_chunk(task: tuple[int, int, int, bool]) -> tuple[int, str, list[tuple[int, str]]]:
    chunk, start, stop, skip_errors = task
    dataset: RealDataset = _worker["dataset"]
    images = _worker["images"]
    failed = []
    for row in range(start, stop):
        try:
            image = dataset.load(row)["image"][0].numpy()
            images[row] = np.rint(image * 255.0).astype(np.uint8)
        except DatasetError as e:
            if not skip_errors:
                raise
            images[row] = 0
            failed.append((row, str(e)))
    images.flush()
    return chunk, _sha256(images[start:stop]), failed


def build_cache(name: str, root: str | Path, size: int, *, split: str = "all", workers: int | None = None,
                chunk_size: int = 256, on_error: str = "raise", force: bool = False, progress: bool = True,
                **options) -> CacheInfo:
    """Build (or finish) the cache of ``split`` of dataset ``name`` at ``size``; returns it verified.

    ``on_error="skip"`` leaves missing image files out of the index (listed in ``missing``) and
    writes a black row for an image that does not decode, listed as failed, so the cached loader
    leaves it out; ``"raise"`` stops at the first of either. ``force`` deletes an existing
    cache first. ``options`` go to the dataset class.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    dataset = open_dataset(name, root, split, size, targets=False, on_error=on_error, **options)
    records = dataset.records
    missing = [file for file, _ in dataset.skipped]  # with "skip": files absent at construction
    index = {"format": FORMAT_VERSION, "dataset": name, "split": split, "size": size, "chunk_size": chunk_size,
             "image_ids": [r.image_id for r in records], "patient_ids": [str(r.patient_id) for r in records]}
    path = cache_dir(root, name, size)
    if force:
        shutil.rmtree(path, ignore_errors=True)
    _prepare_folder(path, index)
    complete = path / "COMPLETE"
    if complete.is_file():
        return open_cache(path)

    n = len(records)
    images_file = path / "images.npy"
    if not images_file.is_file():
        np.lib.format.open_memmap(images_file, mode="w+", dtype=np.uint8, shape=(n, size, size)).flush()
    chunks = [(c, c * chunk_size, min((c + 1) * chunk_size, n)) for c in range((n + chunk_size - 1) // chunk_size)]
    todo = [(c, a, b, on_error == "skip") for c, a, b in chunks if not _chunk_done(path, images_file, c, a, b)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    log.info("cache %s: %d images, %d of %d chunks to build, %d workers", path, n, len(todo), len(chunks), workers)

    initargs = (name, str(root), split, size, str(images_file), on_error, options)
    bar = tqdm(total=n, initial=n - sum(b - a for _, a, b, _ in todo), unit="img", desc=f"cache {name} {size}px",
               disable=None if progress else True)  # None: no bar when stderr is no terminal
    with bar:
        if workers == 1:
            _init_worker(*initargs)
            results = map(_build_chunk, todo)
            for result in results:
                _finish_chunk(path, result, chunks, bar)
        else:
            with mp.get_context("spawn").Pool(workers, _init_worker, initargs) as pool:
                for result in pool.imap_unordered(_build_chunk, todo):
                    _finish_chunk(path, result, chunks, bar)

    digests, failed = [], []
    for c, _, _ in chunks:
        marker = json.loads((path / "chunks" / f"{c:06d}.json").read_text())
        digests.append(marker["sha256"])
        failed += [row for row, _ in marker["failed"]]
    atomic_write_json(complete, {"format": FORMAT_VERSION, "count": n, "size": size,
                                 "index_sha256": _index_digest(index),
                                 "chunks_sha256": hashlib.sha256("".join(digests).encode()).hexdigest(),
                                 "failed_rows": failed, "missing": missing,
                                 "finished": time.strftime("%Y-%m-%d %H:%M:%S")},
                      indent=None)
    if failed:
        log.warning("cache %s: %d unreadable image(s) left out (listed in chunks/*.json)", path, len(failed))
    return open_cache(path)


def _prepare_folder(path: Path, index: dict) -> None:
    """Create the folder and its index, or check that an existing one describes the same images."""
    index_file = path / "index.json"
    if index_file.is_file():
        existing = json.loads(index_file.read_text())
        if existing != index:
            raise CacheError(f"{path} holds a cache of other images or settings (index.json differs); "
                             "delete the folder or pass --force to rebuild it")
        return
    if path.exists() and any(path.iterdir()):
        raise CacheError(f"{path} exists but has no index.json; delete it or pass --force")
    (path / "chunks").mkdir(parents=True, exist_ok=True)
    atomic_write_json(index_file, index, indent=None)


def _chunk_done(path: Path, images_file: Path, chunk: int, start: int, stop: int) -> bool:
    marker = path / "chunks" / f"{chunk:06d}.json"
    if not marker.is_file():
        return False
    images = np.load(images_file, mmap_mode="r")
    return json.loads(marker.read_text())["sha256"] == _sha256(images[start:stop])


def _finish_chunk(path: Path, result: tuple, chunks: list, bar: tqdm) -> None:
    chunk, digest, failed = result
    atomic_write_json(path / "chunks" / f"{chunk:06d}.json", {"sha256": digest, "failed": failed}, indent=None)
    _, start, stop = chunks[chunk]
    bar.update(stop - start)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def open_cache(path: str | Path) -> CacheInfo:
    """A finished cache, after the cheap checks (marker, index digest, file size); else CacheError."""
    path = Path(path)
    complete, index_file, images_file = path / "COMPLETE", path / "index.json", path / "images.npy"
    if not complete.is_file():
        raise CacheError(f"{path}: no COMPLETE marker: the cache is unfinished (rerun `python -m edenkit cache`)")
    try:
        done = json.loads(complete.read_text())
        index = json.loads(index_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CacheError(f"{path}: unreadable COMPLETE or index.json ({e})") from e
    if done.get("index_sha256") != _index_digest(index):
        raise CacheError(f"{path}: index.json changed after the cache was finished; rebuild it")
    n, size = done["count"], done["size"]
    if not images_file.is_file():
        raise CacheError(f"{images_file} is missing")
    images = np.load(images_file, mmap_mode="r")
    if images.shape != (n, size, size) or images.dtype != np.uint8:
        raise CacheError(f"{images_file}: shape {images.shape} {images.dtype}, expected ({n}, {size}, {size}) uint8")
    return CacheInfo(path, size, index["image_ids"], index["patient_ids"], list(done.get("failed_rows", [])),
                     list(done.get("missing", [])))


def verify_cache(path: str | Path) -> CacheInfo:
    """Full check: re-hash every chunk against its marker and the COMPLETE digest."""
    info = open_cache(path)
    index = json.loads((info.path / "index.json").read_text())
    images = np.load(info.images_file, mmap_mode="r")
    chunk_size, n = index["chunk_size"], len(info.image_ids)
    digests = []
    for c in range((n + chunk_size - 1) // chunk_size):
        marker = json.loads((info.path / "chunks" / f"{c:06d}.json").read_text())
        actual = _sha256(images[c * chunk_size:(c + 1) * chunk_size])
        if actual != marker["sha256"]:
            raise CacheError(f"{info.path}: rows {c * chunk_size}..{min((c + 1) * chunk_size, n) - 1} changed "
                             "since they were written; rebuild with --force")
        digests.append(actual)
    done = json.loads((info.path / "COMPLETE").read_text())
    if hashlib.sha256("".join(digests).encode()).hexdigest() != done["chunks_sha256"]:
        raise CacheError(f"{info.path}: chunk markers disagree with COMPLETE; rebuild with --force")
    return info


def find_cache(root: str | Path, name: str, size: int) -> CacheInfo | None:
    """The finished cache of ``name`` at ``size``, else the smallest finished one that is larger
    (its images are then resized on reading); None when there is none. Unfinished ones are logged."""
    base = dataset_dir(root, name) / "cache"
    if not base.is_dir():
        return None
    sizes = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit() and int(p.name) >= size)
    for candidate in sizes:  # ascending, so an exact match comes first
        try:
            return open_cache(base / str(candidate))
        except CacheError as e:
            log.warning("not using the cache: %s", e)
    return None


class CachedImages(Dataset):
    """Rows of a cache as items ``{"image": float [1,s,s], "index", "image_id", "patient_id"}``.

    ``size`` smaller than the cache's resizes each image on reading (antialiased, like the loaders).
    """

    def __init__(self, info: CacheInfo, rows: list[int], size: int | None = None):
        self.info = info
        self.rows = np.asarray(rows, dtype=np.int64)
        self.size = info.size if size is None else size
        self._images: np.ndarray | None = None  # opened lazily: one memmap per worker process

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}

    def __getitem__(self, index: int) -> dict:
        if self._images is None:
            self._images = np.load(self.info.images_file, mmap_mode="r")
        row = int(self.rows[index])
        image = torch.from_numpy(self._images[row].astype(np.float32)).div_(255.0)[None]
        if self.size != self.info.size:
            image = resize_image(image[0].numpy(), self.size)
        return {"image": image, "index": index, "image_id": self.info.image_ids[row],
                "patient_id": self.info.patient_ids[row]}

    def read_uint8(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 [1, s, s] without a float round trip (on-device augmentation reads these):
        a read-only view of the memmap, nothing read until its pixels are touched; resized if ``size`` asks."""
        if self.size != self.info.size:
            return self[index]["image"].mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        if self._images is None:
            self._images = np.load(self.info.images_file, mmap_mode="r")
        with warnings.catch_warnings():  # torch warns that a read-only array gives a read-only tensor
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(self._images[int(self.rows[index])])[None]


def open_cached_split(info: CacheInfo, dataset: RealDataset) -> CachedImages:
    """The cache rows of the images of ``dataset`` (a split), in the dataset's order."""
    row_of = {image_id: row for row, image_id in enumerate(info.image_ids)}
    failed = set(info.failed_rows)
    rows, absent = [], []
    for record in dataset.records:
        row = row_of.get(record.image_id)
        if row is None:
            absent.append(record.image_id)
        elif row not in failed:
            rows.append(row)
    if absent:
        raise CacheError(f"{info.path}: {len(absent)} image(s) of this split are not in the cache "
                         f"(e.g. {absent[0]}); rebuild it with --split covering them")
    if len(rows) < len(dataset.records):
        log.warning("%s: %d image(s) left out because they could not be decoded when the cache was built",
                    info.path, len(dataset.records) - len(rows))
    return CachedImages(info, rows, dataset.size)


def open_image_dataset(name: str, root: str | Path, split: str = "train", size: int | None = 224,
                       on_error: str = "raise") -> Dataset:
    """Unlabelled images for pretraining: items ``{"image", "index", "image_id", "patient_id"}``.

    When a complete cache for ``size`` exists (``python -m edenkit cache``), the images come from
    its memmap instead of being decoded, which is what keeps a GPU busy on ChestX-ray14.
    """
    dataset = open_dataset(name, root, split, size, on_error=on_error, targets=False)
    cache = find_cache(root, name, size) if size is not None else None
    if cache is not None:
        return open_cached_split(cache, dataset)
    return dataset


def measure_read_rate(dataset: Dataset, limit: int | None = None) -> float:
    """Images per second reading items of ``dataset`` once in this process (the benchmark's yardstick)."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    start = time.perf_counter()
    for i in range(count):
        dataset[i]["image"].sum()  # touch the pixels, as a training step would
    return count / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="which dataset")
    parser.add_argument("--data-root", required=True, help="the data root (or the dataset's own folder)")
    parser.add_argument("--size", type=int, required=True, help="side of the cached images in pixels")
    parser.add_argument("--split", default="all", help="which split to cache (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    parser.add_argument("--chunk-size", type=int, default=256, help="rows per resumable chunk")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                        help="unreadable image: stop (raise) or leave it out and list it (skip)")
    parser.add_argument("--force", action="store_true", help="delete an existing cache and rebuild")
    parser.add_argument("--verify", action="store_true", help="re-hash every chunk of the finished cache")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    info = build_cache(args.dataset, args.data_root, args.size, split=args.split, workers=args.workers,
                       chunk_size=args.chunk_size, on_error=args.on_error, force=args.force)
    if args.verify:
        verify_cache(info.path)
    skipped = info.skipped()
    result = {"cache": str(info.path), "images": len(info.image_ids), "size": info.size,
              "failed": len(info.failed_rows), "missing": len(info.missing), "skipped": len(skipped),
              "skipped_files": skipped[:SKIPPED_SHOWN], "verified": bool(args.verify),
              "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(result, indent=1))
    return 0
