"""Registry of every file the public-data loaders read, and how a file is found: local folders, cache, download.

Each loader reads files ``<folder>/<file>`` (the layout of the project's ``../shared/data``). A file is looked for in

1. the folder passed as ``path=`` (strict: only there, nothing is downloaded);
2. the folder named by the environment variable ``DECODE_OMICS_DATA``;
3. ``../shared/data`` of the project (relative to the working directory, or found by walking up from the package);
4. the download cache, ``$DECODE_OMICS_CACHE`` or else ``pooch.os_cache("decode-omics")``;
5. the original public deposit, downloaded into the cache with :mod:`pooch` and checked against its SHA-256.

Step 5 exists only for files the loaders can read as published (``DataFile.url`` is set): byte-for-byte copies of a
public file, checked against the shared copy's SHA-256, and one CSV whose public file only adds a UTF-8 byte-order
mark, checked against the public file's SHA-256 (``DataFile.download_sha256``). The other files were converted from
the deposit (R ``.rda`` objects to CSV / h5ad): no public file has their bytes, so they have no URL. They are built
instead (:mod:`._convert` has a builder for each of their folders): the source ``.rda`` file(s) are downloaded into
``<cache>/<folder>/sources/``, checked against their SHA-256, and converted with the ``rdata`` package. A converted
file without a builder raises an error that names the deposit, the source files and their checksums, and how to
build and place the file.
Local files (steps 1-3, and a converted file placed in the cache) are used as they are, without a checksum.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from . import _convert, _paths
from ._sources import REGISTRY, DataFile

logger = logging.getLogger("decode_omics")

#: Environment variable naming the download cache (default: ``pooch.os_cache("decode-omics")``).
CACHE_ENV_VAR = "DECODE_OMICS_CACHE"


def registry() -> pd.DataFrame:
    """The files the public-data loaders read, their public source and checksum.

    Files with a ``url`` are downloaded from it when no local copy is found (see :func:`cache_dir`) and checked
    against ``download_sha256``. ``public_copy`` tells whether the project's shared copy is byte-identical to the
    public file (then ``sha256 == download_sha256``). Files without a ``url`` were converted from the deposit
    (R objects to CSV / h5ad); ``note`` says how. ``built_from_sources`` tells whether such a file is built
    automatically from its ``sources`` (downloaded into the cache and converted with ``rdata``); the others must be
    built and placed locally.

    Returns
    -------
    One row per file (index ``"<folder>/<name>"``) with columns ``folder``, ``file``, ``url``, ``deposit``,
    ``sha256`` (of the shared copy), ``download_sha256`` (checked on download; empty without a URL),
    ``public_copy``, ``note``, ``sources`` (for a converted file, ``{url: sha256}`` of the deposit files it was
    converted from) and ``built_from_sources``.
    """
    rows = {
        key: {
            "folder": f.folder,
            "file": f.name,
            "url": f.url,
            "deposit": f.deposit,
            "sha256": f.sha256,
            "download_sha256": (f.download_sha256 or f.sha256) if f.url else None,
            "public_copy": f.public_copy,
            "note": f.note,
            "sources": dict(f.sources),
            "built_from_sources": _convert.can_build(f),
        }
        for key, f in REGISTRY.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------------------------------------------------
# cache and download
# --------------------------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The folder downloaded data sets are cached in (created on first download).

    ``$DECODE_OMICS_CACHE`` if set, else ``pooch.os_cache("decode-omics")`` (e.g. ``~/.cache/decode-omics`` on
    Linux). Files are stored as ``<cache>/<folder>/<file>``, the layout of a data folder, so the cache can also be
    passed as ``path=`` or ``$DECODE_OMICS_DATA``.

    Returns
    -------
    The cache folder (it may not exist yet).
    """
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    import pooch

    return Path(pooch.os_cache("decode-omics"))


def _entry(folder: str, name: str) -> DataFile:
    try:
        return REGISTRY[f"{folder}/{name}"]
    except KeyError:  # a loader reads a file the registry lacks: a bug of the package
        raise KeyError(f"{folder}/{name} is not in the data registry of decode_omics.datasets") from None


def _local_roots() -> list[Path]:
    """The local data folders to look in, in order: ``$DECODE_OMICS_DATA``, then the project's ``shared/data``."""
    roots = []
    env = os.environ.get(_paths.DATA_ENV_VAR)
    if env:
        roots.append(_paths._existing_dir(Path(env), f"the environment variable {_paths.DATA_ENV_VAR}"))
    shared = _paths._shared_data_dir()
    if shared is not None and shared not in roots:
        roots.append(shared)
    return roots


def fetch(folder: str, name: str) -> Path:
    """The local path of a registered file: from a local data folder, the cache, or downloaded into the cache.

    Parameters
    ----------
    folder
        Data-set folder (as in ``shared/data/<folder>``).
    name
        File name inside ``folder``; ``"<folder>/<name>"`` must be in :data:`REGISTRY`.

    Returns
    -------
    The path of the file.

    Raises
    ------
    FileNotFoundError
        For a file converted from its deposit (no public URL), with no builder in :mod:`._convert`, that is in no
        local folder and not in the cache.
    ImportError
        When a converted file must be built from its R source(s) and the ``rdata`` package is missing.
    ConnectionError
        When the download fails (offline, URL unreachable, HTTP error).
    ValueError
        When the downloaded file's SHA-256 differs from the registered one (the file is discarded).
    """
    entry = _entry(folder, name)
    looked = []
    for root in _local_roots():
        f = root / folder / name
        if f.is_file():
            return f
        looked.append(str(f))
    cache = cache_dir()
    target = cache / folder / name
    if entry.url is None:
        if target.is_file():  # built and placed by the user; not checksummed (a rebuild need not be byte-identical)
            return target
        if _convert.can_build(entry):  # download its public R source(s) into the cache and convert them
            return _convert.build(entry, target, _download)
        looked.append(str(target))
        sources = ", ".join(f"{url.rsplit('/', 1)[-1]} {sha}" for url, sha in entry.sources)
        sources = f"; SHA-256 of the source file(s): {sources}" if sources else ""
        raise FileNotFoundError(
            f"Data file {entry.key!r} is not available locally (looked in: {', '.join(looked)}) and has no public "
            f"URL to download: the file was {entry.note}. Original deposit: {entry.deposit}{sources}. Build the file "
            f"as described, then place it at {str(target)!r}, or in a folder of your own as `{entry.key}` and pass "
            f"that folder as `path=` or set the environment variable {_paths.DATA_ENV_VAR} to it."
        )
    return _download(entry, target)


def _download(entry: DataFile, target: Path) -> Path:
    import pooch
    from requests.exceptions import RequestException  # a dependency of pooch

    if target.is_file():
        if pooch.file_hash(str(target)) == entry.known_hash.split(":", 1)[1]:
            return target
        logger.warning("The cached %s does not match its checksum; downloading it again.", target)
    logger.info("Downloading %s from %s to %s ...", entry.key, entry.url, target)
    try:
        path = pooch.retrieve(
            entry.url, known_hash=entry.known_hash, fname=entry.name, path=target.parent, progressbar=False
        )
    except RequestException as err:  # before ValueError: requests' InvalidURL is also a ValueError
        raise _download_error(entry, target, err) from err
    except ValueError as err:
        if "does not match the known hash" not in str(err):  # e.g. pooch's "Unrecognized URL protocol"
            raise _download_error(entry, target, err) from err
        # checksum mismatch: pooch downloads to a temporary file and has deleted it
        raise ValueError(
            f"The file downloaded from {entry.url} does not match its registered checksum ({entry.known_hash}); it "
            f"was discarded and nothing was written to {str(target)!r}. The deposit may have changed: check "
            f"{entry.deposit}, or place a copy you trust at {str(target)!r} (or in a folder passed as `path=` / "
            f"${_paths.DATA_ENV_VAR}). Details: {err}"
        ) from err
    except OSError as err:  # e.g. the cache folder cannot be written
        raise _download_error(entry, target, err) from err
    logger.info("Downloaded %s (SHA-256 verified).", entry.key)
    return Path(path)


def _download_error(entry: DataFile, target: Path, err: Exception) -> ConnectionError:
    return ConnectionError(
        f"Could not download {entry.key!r} from {entry.url} into the cache {str(target.parent)!r} "
        f"({type(err).__name__}: {err}). Without internet access, download the file elsewhere and copy it to "
        f"{str(target)!r}, or put it in a folder as `{entry.key}` and set the environment variable "
        f"{_paths.DATA_ENV_VAR} to that folder (or pass it as `path=`); set {CACHE_ENV_VAR} to use another "
        f"cache folder."
    )
