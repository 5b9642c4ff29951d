"""How the loaders find a file: local folders first, then the cache, then a checksummed download with pooch.

Every test is offline: downloads come from an ``http.server`` on 127.0.0.1 serving a temporary folder, and any
connection to another address fails the test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import logging
import shutil
import socket
import threading
from types import SimpleNamespace

import pytest

from decode_omics import datasets as ds
from decode_omics.datasets import _paths, _registry

SHARED = _paths._shared_data_dir()  # the real shared data folder, if any (looked up before the tests hide it)

FOLDER = "tiny_dataset"
NAME = "tiny.csv"
CONTENT = b"cell,gene_a,gene_b\nc1,1,2\nc2,3,4\n"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No local data folder, the cache in ``tmp_path``, no proxy, and no connection beyond the loopback."""
    monkeypatch.delenv(_paths.DATA_ENV_VAR, raising=False)
    monkeypatch.setenv(_registry.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(_paths, "_shared_data_dir", lambda: None)
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    connect = socket.socket.connect

    def loopback_only(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise AssertionError(f"a test tried to connect to {address!r}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    return tmp_path / "cache"


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``<tmp>/served``; ``hits`` records the paths requested."""
    root = tmp_path / "served"
    (root / "deposit").mkdir(parents=True)
    (root / "deposit" / NAME).write_bytes(CONTENT)
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_port}/deposit/", root=root, hits=hits)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def register(monkeypatch, **fields) -> _registry.DataFile:
    defaults = {"folder": FOLDER, "name": NAME, "sha256": sha256(CONTENT), "deposit": "the deposit", "note": "a test"}
    entry = _registry.DataFile(**{**defaults, **fields})
    monkeypatch.setitem(_registry.REGISTRY, entry.key, entry)
    return entry


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/deposit/"


# ------------------------------------------------------------------------------------------------- download + cache
def test_download_verified_and_cached(monkeypatch, server, offline, caplog):
    register(monkeypatch, base_url=server.url)
    with caplog.at_level(logging.INFO, logger="decode_omics"):
        path = _registry.fetch(FOLDER, NAME)
    assert path == offline / FOLDER / NAME  # <cache>/<folder>/<file>, the layout of a data folder
    assert path.read_bytes() == CONTENT
    assert server.hits == [f"/deposit/{NAME}"]
    assert "Downloading" in caplog.text and server.url + NAME in caplog.text
    assert "SHA-256 verified" in caplog.text

    again = _registry.fetch(FOLDER, NAME)  # from the cache: the server is not asked again
    assert again == path and server.hits == [f"/deposit/{NAME}"]
    assert ds.cache_dir() == offline


def test_remote_name_and_public_checksum(monkeypatch, server):
    # the deposit names the file differently and its bytes differ from the shared copy (e.g. a byte-order mark)
    (server.root / "deposit" / "original.csv").write_bytes(b"\xef\xbb\xbf" + CONTENT)
    entry = register(
        monkeypatch, base_url=server.url, remote_name="original.csv", download_sha256=sha256(b"\xef\xbb\xbf" + CONTENT)
    )
    assert entry.url == server.url + "original.csv" and not entry.public_copy
    path = _registry.fetch(FOLDER, NAME)
    assert path.name == NAME and path.read_bytes() == b"\xef\xbb\xbf" + CONTENT


def test_wrong_checksum_raises_and_keeps_nothing(monkeypatch, server, offline):
    register(monkeypatch, base_url=server.url, sha256=sha256(b"other bytes"))
    with pytest.raises(ValueError, match="does not match its registered checksum") as err:
        _registry.fetch(FOLDER, NAME)
    msg = str(err.value)
    assert server.url + NAME in msg and "discarded" in msg
    assert not (offline / FOLDER / NAME).exists()
    assert not any((offline / FOLDER).iterdir())  # no temporary file left behind either
    # once the registry is right, the file is downloaded
    register(monkeypatch, base_url=server.url)
    assert _registry.fetch(FOLDER, NAME).read_bytes() == CONTENT


def test_corrupt_cached_file_is_replaced(monkeypatch, server, offline, caplog):
    register(monkeypatch, base_url=server.url)
    cached = offline / FOLDER / NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING, logger="decode_omics"):
        path = _registry.fetch(FOLDER, NAME)
    assert path == cached and cached.read_bytes() == CONTENT
    assert len(server.hits) == 1 and "does not match its checksum" in caplog.text


# ------------------------------------------------------------------------------------------------- local folders first
def test_local_folders_are_preferred(monkeypatch, server, tmp_path):
    register(monkeypatch, base_url=server.url)
    shared = tmp_path / "shared_data"
    (shared / FOLDER).mkdir(parents=True)
    (shared / FOLDER / NAME).write_bytes(b"shared copy")  # local files are used as they are, not checksummed
    mine = tmp_path / "mine"
    (mine / FOLDER).mkdir(parents=True)
    (mine / FOLDER / NAME).write_bytes(b"my copy")

    monkeypatch.setattr(_paths, "_shared_data_dir", lambda: shared.resolve())
    assert _registry.fetch(FOLDER, NAME) == (shared / FOLDER / NAME).resolve()
    monkeypatch.setenv("DECODE_OMICS_DATA", str(mine))  # the environment variable comes before shared/data
    assert _registry.fetch(FOLDER, NAME) == (mine / FOLDER / NAME).resolve()
    assert server.hits == []


def test_local_folder_without_the_file_falls_back_to_download(monkeypatch, server, tmp_path, offline):
    register(monkeypatch, base_url=server.url)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("DECODE_OMICS_DATA", str(empty))
    assert _registry.fetch(FOLDER, NAME) == offline / FOLDER / NAME
    assert len(server.hits) == 1
    monkeypatch.setenv("DECODE_OMICS_DATA", str(tmp_path / "nope"))  # a folder that does not exist is an error
    with pytest.raises(FileNotFoundError, match="DECODE_OMICS_DATA"):
        _registry.fetch(FOLDER, NAME)


def test_path_argument_is_strict(tmp_path):
    # `path=` reads only that folder: nothing is downloaded (the socket guard would fail the test), and the error
    # says where the file would be downloaded from without it
    with pytest.raises(FileNotFoundError) as err:
        ds.tscp_cellcycle(path=tmp_path)
    msg = str(err.value)
    assert "T-SCP.h5ad" in msg and "path=" in msg
    assert _registry.REGISTRY["scp_cellcycle_tscp/T-SCP.h5ad"].url in msg


# ------------------------------------------------------------------------------------------------- errors
def test_unreachable_url_gives_a_clear_error(monkeypatch, offline):
    url = closed_port_url()
    register(monkeypatch, base_url=url)
    with pytest.raises(ConnectionError) as err:
        _registry.fetch(FOLDER, NAME)
    msg = str(err.value)
    assert url + NAME in msg  # what it tried
    assert str(offline / FOLDER) in msg  # where it caches
    assert "DECODE_OMICS_DATA" in msg and "DECODE_OMICS_CACHE" in msg  # how to work offline
    assert not (offline / FOLDER / NAME).exists()


def test_http_error_gives_a_clear_error(monkeypatch, server):
    register(monkeypatch, base_url=server.url + "missing/")
    with pytest.raises(ConnectionError, match="Could not download"):
        _registry.fetch(FOLDER, NAME)
    assert server.hits == [f"/deposit/missing/{NAME}"]


def test_invalid_url_is_not_taken_for_a_checksum_error(monkeypatch):
    register(monkeypatch, base_url="127.0.0.1/no-scheme/")  # pooch raises a ValueError for the missing scheme
    with pytest.raises(ConnectionError, match="Could not download"):
        _registry.fetch(FOLDER, NAME)


def test_converted_file_is_not_downloaded(monkeypatch, offline):
    register(monkeypatch, base_url=None, deposit="https://example.org/deposit", note="converted from an R object")
    with pytest.raises(FileNotFoundError) as err:
        _registry.fetch(FOLDER, NAME)
    msg = str(err.value)
    assert "no public URL" in msg and "https://example.org/deposit" in msg and "converted from an R object" in msg
    assert "DECODE_OMICS_DATA" in msg and str(offline / FOLDER / NAME) in msg
    # built and placed in the cache by the user: used as it is
    (offline / FOLDER).mkdir(parents=True)
    (offline / FOLDER / NAME).write_bytes(b"built here")
    assert _registry.fetch(FOLDER, NAME) == offline / FOLDER / NAME


def test_converted_data_set_loader_names_its_deposit(monkeypatch):
    # without a builder in _convert (every converted data set has one now), the loader's error says how to build it
    monkeypatch.delitem(_registry._convert.BUILDERS, "citeseq_eccite_pbmc_citefuse")
    with pytest.raises(FileNotFoundError, match=r"github\.com/SydneyBioX/CiteFuse.*DECODE_OMICS_DATA") as err:
        ds.eccite_pbmc()
    assert "CITEseq_example.rda ff1063648dcef122" in str(err.value)  # the source file and its checksum
    with pytest.raises(FileNotFoundError, match="No public data folder found"):
        ds.data_dir()  # data_dir() still only locates a local folder


# ------------------------------------------------------------------------------------------------- the registry
def test_registry_is_complete_and_honest():
    table = ds.registry()
    assert table.index.is_unique and len(table) == len(_registry.REGISTRY) == 34
    for key, row in table.iterrows():
        assert key == f"{row['folder']}/{row['file']}"
        assert len(row["sha256"]) == 64 and row["deposit"]
        if row["url"] is None:  # converted: no public file has these bytes
            assert row["note"].startswith("converted from") and not row["public_copy"]
            assert row["download_sha256"] is None
        else:
            assert row["url"].startswith("https://raw.githubusercontent.com/") and row["url"].endswith(row["file"])
            assert len(row["download_sha256"]) == 64
            assert row["public_copy"] == (row["download_sha256"] == row["sha256"])
    monaco = table.loc["monaco2019_pbmc/flow_cytometry_true_cell_type_proportions_s13.csv"]
    assert not monaco["public_copy"] and "byte-order mark" in monaco["note"]
    assert table.loc["scm_bone_marrow_decode/bone_marrow.h5ad", "public_copy"]
    assert table.loc["pbmc_flow_quasar/GSE107011_bulk.csv.gz", "url"] is None


@pytest.mark.shared_data
@pytest.mark.skipif(SHARED is None, reason="public data folder not found")
def test_registry_checksums_match_the_shared_files():
    for key, entry in _registry.REGISTRY.items():
        assert sha256((SHARED / key).read_bytes()) == entry.sha256, key


@pytest.mark.shared_data
@pytest.mark.skipif(SHARED is None, reason="public data folder not found")
def test_loader_downloads_from_its_registry_entry(monkeypatch, server, offline):
    # the real files, served from 127.0.0.1 in place of the deposit: the loader downloads, verifies and reads them
    for name in ("murine_N2_SCP.h5ad", "murine_N2_SCP_meta.csv"):
        shutil.copy(SHARED / "scp_murine_cellline" / name, server.root / "deposit" / name)
        key = f"scp_murine_cellline/{name}"
        monkeypatch.setitem(_registry.REGISTRY, key, dataclasses.replace(_registry.REGISTRY[key], base_url=server.url))
    a = ds.murine_cellline_proteomics("N2")
    assert a.shape == (108, 1068)
    assert sorted(server.hits) == ["/deposit/murine_N2_SCP.h5ad", "/deposit/murine_N2_SCP_meta.csv"]
    assert (offline / "scp_murine_cellline" / "murine_N2_SCP.h5ad").is_file()
    ds.murine_cellline_proteomics("N2")  # cached
    assert len(server.hits) == 2
