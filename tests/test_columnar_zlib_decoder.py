"""ZLIB baskets decoded by libdeflate: same arrays as uproot's zlib, same errors, chosen once.

The columnar pipeline lets every process that reads decode ZLIB baskets with libdeflate
(:mod:`analysis_lib.columnar.zlib_decoder`). Here: it is available in the locked
environment (an uproot or ``deflate`` release that breaks it fails the first test), it
gives uproot exactly the arrays zlib gives, a corrupt basket is still an error naming the
file, an explicit choice holds, and the pipeline's tables do not depend on the decoder.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

sys.path.insert(0, str(Path(__file__).parent))

from columnar_samples import corrupt_copy, write_sample

from analysis_lib.columnar import BadInputError, SemileptonicProcessor, run_columnar
from analysis_lib.columnar import zlib_decoder as zd
from analysis_lib.columnar.inputs import input_branches


@pytest.fixture(autouse=True)
def restore_decoder():
    """Each test starts undecided on uproot's own decoder and leaves the process as it was."""
    before = (zd._chosen, zd._automatic, zd.zlib_decoder())
    zd.use_zlib_decoder("zlib")
    zd._chosen, zd._automatic = None, False
    yield
    zd.use_zlib_decoder(before[2])
    zd._chosen, zd._automatic = before[0], before[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    # several baskets per branch
    path = tmp_path_factory.mktemp("zlib") / "ttbar.root"
    return write_sample(path, 3000, seed=5, basket_size=1000)


def _read(path: Path) -> dict[str, ak.Array]:
    with uproot.open(path, array_cache=None) as f:
        tree = f["Events"]
        return dict(zip(tree.keys(), tree.arrays(tree.keys(), how=tuple), strict=True))


def test_libdeflate_is_the_default_in_the_locked_environment():
    assert zd.zlib_decoder() == "zlib"
    assert zd.prefer_fast_zlib() == "libdeflate"
    assert zd.zlib_decoder() == "libdeflate"
    # uproot's decoder object now decodes through libdeflate, and only that object changed
    assert uproot.compression._decompress_ZLIB.decompress.hepml_decoder == "libdeflate"
    assert "decompress" not in vars(uproot.ZLIB(1))


def test_same_arrays_with_either_decoder(sample):
    with uproot.open(sample) as f:
        assert f.file.compression == uproot.ZLIB(1)
        assert f["Events"]["Jet_pt"].num_baskets > 1
    zd.use_zlib_decoder("zlib")
    plain = _read(sample)
    zd.use_zlib_decoder("libdeflate")
    fast = _read(sample)
    assert set(plain) == set(fast) and set(input_branches()) <= set(plain)
    for name in plain:
        assert ak.array_equal(plain[name], fast[name]), name


def test_the_decoder_is_used_for_every_zlib_block(sample, monkeypatch):
    zd.use_zlib_decoder("libdeflate")
    calls = []
    real = zd._libdeflate()

    def counting(data, size):
        calls.append(size)
        return real(data, size)

    monkeypatch.setattr(zd, "_libdeflate", lambda: counting)
    zd.use_zlib_decoder("zlib")
    zd.use_zlib_decoder("libdeflate")
    with uproot.open(sample, array_cache=None) as f:
        jets = f["Events"]["Jet_pt"]
        jets.array()
        assert len(calls) == jets.num_baskets


def test_files_without_zlib_and_writing_are_unaffected(tmp_path):
    zd.use_zlib_decoder("libdeflate")
    data = {"x": np.arange(5000.0), "n": np.arange(5000) % 7}
    for name, compression in {"lz4": uproot.LZ4(1), "zstd": uproot.ZSTD(1)}.items():
        path = tmp_path / f"{name}.root"
        with uproot.recreate(path, compression=compression) as f:
            f["t"] = data
        with uproot.open(path) as f:
            np.testing.assert_array_equal(f["t"]["x"].array(library="np"), data["x"])
    # a file written while libdeflate decodes is written by zlib, byte for byte the same
    written = []
    for decoder in ("libdeflate", "zlib"):
        zd.use_zlib_decoder(decoder)
        path = tmp_path / f"w-{decoder}.root"
        with uproot.recreate(path, compression=uproot.ZLIB(1)) as f:
            f["t"] = data
        with uproot.open(path) as f:
            written.append(f["t"]["x"].array(library="np"))
    np.testing.assert_array_equal(*written)


def test_a_corrupt_block_is_a_zlib_error_naming_the_sizes():
    zd.use_zlib_decoder("libdeflate")
    good = zlib.compress(b"a" * 1000)
    bad = good[:2] + bytes(b ^ 0x55 for b in good[2:-4]) + good[-4:]
    decode = uproot.compression._decompress_ZLIB.decompress
    assert decode(good, 1000) == b"a" * 1000
    with pytest.raises(zlib.error, match=rf"block of {len(bad)} bytes into 1000 bytes"):
        decode(bad, 1000)
    with pytest.raises(ValueError, match="number of uncompressed bytes"):
        decode(good)


def test_a_corrupt_file_still_names_the_file(sample, tmp_path):
    bad = corrupt_copy(sample, tmp_path / "corrupt.root")
    with pytest.raises(BadInputError) as info:
        run_columnar([bad], executor="iterative", progress=False, chunksize=1000)
    assert str(info.value).startswith(f"{bad}: cannot read the events"), info.value
    assert zd.zlib_decoder() == "libdeflate"  # the pipeline chose it


def test_an_explicit_choice_holds_for_the_pipeline(sample):
    assert zd.use_zlib_decoder("zlib") == "zlib"
    run_columnar(
        [sample], SemileptonicProcessor(variations=[]), executor="iterative", progress=False
    )
    assert zd.zlib_decoder() == "zlib"
    assert zd.prefer_fast_zlib() == "zlib"


def test_the_pipelines_tables_do_not_depend_on_the_decoder(sample):
    tables = []
    for decoder in ("zlib", "libdeflate"):
        zd.use_zlib_decoder(decoder)
        result = run_columnar(
            [sample],
            SemileptonicProcessor(variations=["jes_up"]),
            executor="iterative",
            progress=False,
            chunksize=1000,
        )
        assert zd.zlib_decoder() == decoder
        tables.append(result.tables["ttbar"])
    assert set(tables[0]) == {"nominal", "jes_up"}
    for variation, table in tables[0].items():
        assert table.num_rows > 0
        assert table.equals(tables[1][variation]), variation


def test_bad_names_and_a_missing_package(monkeypatch):
    known = r"\(known: zlib, libdeflate\)"
    with pytest.raises(ValueError, match=rf"unknown ZLIB decoder 'isal' {known}"):
        zd.use_zlib_decoder("isal")
    monkeypatch.setitem(sys.modules, "deflate", None)  # as if it were not installed
    with pytest.raises(RuntimeError, match="'deflate' package is not installed"):
        zd.use_zlib_decoder("libdeflate")
    assert zd.zlib_decoder() == "zlib"
    assert zd.prefer_fast_zlib() == "zlib"  # without it, uproot's zlib, quietly
