"""The eval suite: hand-written question–answer pairs run through the real pipeline.

Dataset: a YAML list of items with ``id``, ``question``, ``answers`` (any one counts), ``sources``
(doc ids that support it) and ``answerable`` (default true). Metrics follow DESIGN.md §5:
retrieval hit@1/hit@5/MRR (a hit is a passage from a ``sources`` article); answer accuracy (an
answerable item answered, not refused, with a gold answer in the text after Arabic normalization),
token F1 and language match; citation precision and coverage; refusal as two rates
(unanswerable refused, answerable wrongly refused) plus their combined accuracy; optionally
faithfulness, the share of answer sentences an Ollama judge finds supported by their cited passages.
Also the SQuAD exact match and F1 used by the answer benchmark (assistant/bench/squad.py).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from assistant.arabic import detect_language, normalize
from assistant.cite import cited_sentences, strip_markers
from assistant.config import LLMSettings, OllamaLLMSettings, Settings
from assistant.errors import BackendUnavailableError, InputError
from assistant.llm import Message
from assistant.models import Answer
from assistant.prompts import Prompts

_TOKEN = re.compile(r"\w+")


class EvalItem(BaseModel):
    model_config = ConfigDict(extra="ignore")  # datasets may carry their own fields

    id: str
    question: str
    answers: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    answerable: bool = True
    lang: str | None = None

    @property
    def language(self) -> str:
        return self.lang or detect_language(self.question)


def load_dataset(path: str | Path) -> list[EvalItem]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such dataset: {path}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: the dataset must be a non-empty YAML list of items")
    items = []
    for number, raw in enumerate(data, start=1):
        try:
            items.append(EvalItem.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(f"{path}: item {number}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    duplicates = [i for i, n in Counter(item.id for item in items).items() if n > 1]
    if duplicates:
        raise InputError(f"{path}: duplicate item ids: {', '.join(duplicates)}")
    return items


# --- answer matching ---------------------------------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(_TOKEN.findall(normalize(strip_markers(text)).lower()))


def contains_answer(answer: str, golds: list[str]) -> bool:
    text = f" {_norm(answer)} "
    return any(_norm(g) and (f" {_norm(g)} " in text or _norm(g) in text) for g in golds)


def token_f1(answer: str, golds: list[str], norm=_norm) -> float:
    predicted = norm(answer).split()
    best = 0.0
    for gold in golds:
        truth = norm(gold).split()
        common = sum((Counter(predicted) & Counter(truth)).values())
        if common:
            precision, recall = common / len(predicted), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# SQuAD scoring as in the MLQA evaluation script (normalize_answer), after our Arabic normalization.
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _is_punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")  # P*: also ، ؛ ؟ « »


def squad_normalize(text: str) -> str:
    """Markers dropped, Arabic normalized, lowercased, punctuation and articles removed, spaces
    collapsed. Like MLQA, every "ال" is removed, not only the word-initial article, so that the
    numbers stay comparable with published MLQA/XQuAD scores (both sides are treated alike)."""
    text = "".join(ch for ch in normalize(strip_markers(text)).lower() if not _is_punctuation(ch))
    text = _EN_ARTICLES.sub(" ", text).replace("ال", " ")
    return " ".join(text.split())


def exact_match(answer: str, golds: list[str]) -> float:
    return float(any(squad_normalize(answer) == squad_normalize(g) for g in golds))


def squad_f1(answer: str, golds: list[str]) -> float:
    return token_f1(answer, golds, squad_normalize)


# --- faithfulness judge ------------------------------------------------------------------------
class Judge:
    """An Ollama model asked, sentence by sentence, whether the passages an answer cites support it."""

    def __init__(self, backend, prompts: Prompts):
        self.backend = backend  # a ChatBackend
        self.prompts = prompts

    @property
    def name(self) -> str:
        return self.backend.name

    def check(self, answer: Answer) -> list[dict]:
        """``{"sentence", "supported"}`` per sentence. A sentence without a marker of its own (the
        splitter cuts at every full stop, e.g. inside a quote) is checked against every passage
        the answer cites."""
        cited = {c.n: c.text for c in answer.citations}
        verdicts = []
        for sentence, numbers in cited_sentences(answer.text):
            passages = [cited[n] for n in numbers if n in cited] or list(cited.values())
            prompt = self.prompts.render("judge", passage="\n\n".join(passages), sentence=sentence)
            supported = bool(passages) and self.backend.yes_probability([Message("user", prompt)]) >= 0.5
            verdicts.append({"sentence": sentence, "supported": supported})
        return verdicts


def make_judge(settings: Settings) -> Judge | None:
    """The configured judge (None when ``eval.judge.provider`` is none); its server is checked now,
    so that a missing one stops the eval before the run, not after the first answer."""
    cfg = settings.eval.judge
    if cfg.provider == "none":
        return None
    from assistant.llm.ollama import make_ollama

    ollama_settings = OllamaLLMSettings(host=cfg.host, model=cfg.model, request_timeout=cfg.request_timeout, probe_timeout=cfg.probe_timeout)
    backend = make_ollama(
        LLMSettings(provider="ollama", temperature=0.0, max_tokens=16, ollama=ollama_settings),
        host_key="eval.judge.host",
        without="run the eval without the faithfulness judge: set eval.judge.provider to none",
    )
    prompts_dir = settings.answer.prompts_dir
    return Judge(backend, Prompts(settings.resolve(prompts_dir) if prompts_dir else None))


# --- the run -----------------------------------------------------------------------------------
MAX_ERRORS_IN_A_ROW = 3
# An item whose answer failed: not refused, wrong, uncited, in no language.
_FAILED_ANSWER = dict(
    answer="", refused=False, answer_language=None, citations=[], correct=False, f1=0.0, citation_hits=0, model=None, notes=[], timings=None
)


def run_eval(
    assistant, items: list[EvalItem], retrieval_only: bool = False, progress: bool = False, judge: Judge | None = None
) -> dict[str, Any]:
    rows, errors, in_a_row = [], [], 0
    for item in tqdm(items, desc="eval", unit="q", disable=not progress):
        passages = assistant.search(item.question, top_k=max(5, assistant.settings.retrieval.top_k))
        ranks = [i for i, p in enumerate(passages, start=1) if p.doc_id in item.sources]
        row: dict[str, Any] = {
            "id": item.id,
            "question": item.question,
            "language": item.language,
            "answerable": item.answerable,
            "gold": item.answers,
            "sources": item.sources,
            "retrieved": [p.doc_id for p in passages],
            "first_hit_rank": ranks[0] if ranks else None,
        }
        if not retrieval_only:
            try:
                answer = assistant.ask(item.question)
            except BackendUnavailableError as exc:
                # One generation past its timeout must not lose the run: the item fails and the run
                # goes on. Several failures in a row mean the model is gone: stop, report what ran.
                errors.append(f"{item.id}: {exc}")
                rows.append({**row, **_FAILED_ANSWER, "error": str(exc), "passed": False, "why": f"model error: {exc}"})
                in_a_row += 1
                if in_a_row >= MAX_ERRORS_IN_A_ROW:
                    errors.append(f"stopped after {in_a_row} model errors in a row; {len(items) - len(rows)} item(s) not run")
                    break
                continue
            in_a_row = 0
            cited_docs = [c.doc_id for c in answer.citations]
            row.update(
                answer=answer.text,
                refused=answer.refused,
                answer_language=detect_language(strip_markers(answer.text)),
                citations=[{"n": c.n, "doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in answer.citations],
                correct=item.answerable and not answer.refused and contains_answer(answer.text, item.answers),
                f1=token_f1(answer.text, item.answers) if item.answerable and not answer.refused else 0.0,
                citation_hits=sum(d in item.sources for d in cited_docs),
                model=answer.model,
                notes=answer.notes,
                evidence=answer.evidence,
                timings=answer.timings.model_dump(),
            )
            if judge is not None and not answer.refused:
                row["judged"] = judge.check(answer)
        row["passed"], row["why"] = _verdict(row, retrieval_only)
        rows.append(row)
    report = {
        "metrics": metrics(rows, retrieval_only),
        "by_language": {lang: metrics([r for r in rows if r["language"] == lang], retrieval_only) for lang in sorted({r["language"] for r in rows})},
        "items": rows,
        "errors": errors,  # items whose answer failed (model unreachable, timed out): they count as wrong
        "judge": judge.name if judge else None,
        "config": assistant.settings.model_dump(mode="json"),  # enough to reproduce the run
    }
    return report


def _verdict(row: dict, retrieval_only: bool) -> tuple[bool, str]:
    if retrieval_only:
        if not row["answerable"]:
            return True, "unanswerable (retrieval not scored)"
        if row["first_hit_rank"] is None:
            return False, "no passage from a source article in the top 5"
        return True, f"first source passage at rank {row['first_hit_rank']}"
    if not row["answerable"]:
        return (True, "refused as expected") if row["refused"] else (False, "answered an unanswerable question")
    if row["refused"]:
        return False, "refused an answerable question"
    if not row["correct"]:
        return False, "no gold answer in the answer"
    if row["answer_language"] != row["language"]:
        return False, f"answered in {row['answer_language']}, asked in {row['language']}"
    if not row["citations"]:
        return False, "no citation"
    if row["citation_hits"] < len(row["citations"]):
        return False, "cites an article that is not a source"
    return True, "correct, cited"


def _share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def metrics(rows: list[dict], retrieval_only: bool = False) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    ranks = [r["first_hit_rank"] for r in answerable]
    out: dict[str, Any] = {
        "n_items": len(rows),
        "retrieval": {
            "hit_at_1": _share([r == 1 for r in ranks]),
            "hit_at_5": _share([r is not None and r <= 5 for r in ranks]),
            "mrr": sum(1 / r for r in ranks if r) / len(ranks) if ranks else None,
        },
    }
    if retrieval_only:
        return out
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["refused"]]
    answered_answerable = [r for r in answerable if not r["refused"]]
    citations = [c for r in answered_answerable for c in r["citations"]]
    out["answer"] = {
        "accuracy": _share([r["correct"] for r in answerable]),
        "f1": sum(r["f1"] for r in answerable) / len(answerable) if answerable else None,
        "language_match": _share([r["answer_language"] == r["language"] for r in answered]),
        # None when no judge ran (or it had nothing to judge)
        "faithfulness": _share([v["supported"] for r in answered for v in r.get("judged", [])]),
    }
    out["citations"] = {
        "precision": sum(r["citation_hits"] for r in answered_answerable) / len(citations) if citations else None,
        "coverage": _share([bool(r["citations"]) for r in answered]),
    }
    out["refusal"] = {
        "accuracy": _share([r["refused"] != r["answerable"] for r in rows]),
        "unanswerable_refused": _share([r["refused"] for r in unanswerable]),
        "answerable_refused": _share([r["refused"] for r in answerable]),
    }
    out["timings"] = {
        "median_total_ms": _median([r["timings"]["total_ms"] for r in rows if r["timings"]]),
        "median_first_token_ms": _median([r["timings"]["first_token_ms"] for r in rows if r["timings"] and r["timings"]["first_token_ms"]]),
    }
    return out


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


# --- calibration of answer.min_answerable -------------------------------------------------------
# Run with a threshold that refuses nothing (every answer is generated and its P(yes) recorded),
# each threshold's refusals follow from one run: refused at t = refused anyway, or P(yes) < t.
CALIBRATION_RUN_THRESHOLD = 1e-6
CALIBRATION_GRID = [round(0.05 * i, 2) for i in range(1, 20)]


def calibrate(rows: list[dict], max_wrongly_refused: float = 0.10) -> dict[str, Any]:
    """What each ``answer.min_answerable`` would give on a calibration run's rows, and the highest
    threshold that keeps wrongly refused answerable questions at or under ``max_wrongly_refused``."""
    rows = [r for r in rows if not r.get("error")]
    table = []
    for t in CALIBRATION_GRID:
        # The rows as a run at threshold t would have them, scored by the eval's own metrics.
        at_t = []
        for r in rows:
            refused = r["refused"] or (r.get("evidence") is not None and r["evidence"] < t)
            at_t.append({**r, "refused": refused, "correct": r["correct"] and not refused})
        scored = metrics(at_t)
        table.append(
            {
                "min_answerable": t,
                "unanswerable_refused": scored["refusal"]["unanswerable_refused"],
                "answerable_refused": scored["refusal"]["answerable_refused"],
                "accuracy": scored["answer"]["accuracy"],
                "refusal_accuracy": scored["refusal"]["accuracy"],
            }
        )
    fitting = [row for row in table if row["answerable_refused"] is not None and row["answerable_refused"] <= max_wrongly_refused]
    return {
        "max_wrongly_refused": max_wrongly_refused,
        "recommended": fitting[-1]["min_answerable"] if fitting else None,
        "table": table,
        "without_evidence": sum(r.get("evidence") is None for r in rows),  # refused before the check, or no check
    }


def calibration_markdown(calibration: dict) -> str:
    columns = ["min_answerable", "unanswerable_refused", "answerable_refused", "accuracy", "refusal_accuracy"]
    lines = ["# answer.min_answerable calibration", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(_fmt(row[c]) for c in columns) + " |" for row in calibration["table"]]
    recommended = calibration["recommended"]
    bound = calibration["max_wrongly_refused"]
    lines += [
        "",
        f"Items refused before the evidence check ran: {calibration['without_evidence']}.",
        f"Highest threshold with answerable questions wrongly refused <= {bound:g}: "
        + (f"{recommended:g} (set answer.min_answerable: {recommended:g})" if recommended is not None else "none"),
    ]
    return "\n".join(lines) + "\n"


# --- gate and report ---------------------------------------------------------------------------
UPPER_BOUNDS = {"refusal.answerable_refused"}  # lower is better


def check_thresholds(report: dict, thresholds: dict[str, float], retrieval_only: bool = False) -> list[str]:
    """Human-readable failures; a metric not computed in this run (e.g. answers when
    ``retrieval_only``) is skipped, an unknown metric name is a failure."""
    failures = []
    for name, bound in thresholds.items():
        section, _, metric = name.partition(".")
        if retrieval_only and section != "retrieval":
            continue
        computed = report["metrics"].get(section)
        value = computed.get(metric, "missing") if isinstance(computed, dict) else "missing"
        if value == "missing":
            failures.append(f"{name}: no such metric")
        elif value is None:
            continue
        elif name in UPPER_BOUNDS and value > bound:
            failures.append(f"{name} = {value:.3f} is above its threshold {bound:.3f}")
        elif name not in UPPER_BOUNDS and value < bound:
            failures.append(f"{name} = {value:.3f} is below its threshold {bound:.3f}")
    return failures


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_report(report: dict) -> str:
    columns = [("all", report["metrics"])] + [(lang, m) for lang, m in report["by_language"].items()]
    lines = ["# Eval report", "", f"Dataset: `{report.get('dataset', '')}`", ""]
    if report.get("judge"):
        lines += [f"Faithfulness judge: `{report['judge']}`", ""]
    lines += ["| metric | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for section in ("retrieval", "answer", "citations", "refusal", "timings"):
        for metric in report["metrics"].get(section, {}):
            lines.append(f"| {section}.{metric} | " + " | ".join(_fmt(m.get(section, {}).get(metric)) for _, m in columns) + " |")
    lines.append("| items | " + " | ".join(str(m["n_items"]) for _, m in columns) + " |")
    if report.get("errors"):
        lines += ["", f"Model errors ({len(report['errors'])}): " + "; ".join(report["errors"])]
    gate = report.get("gate")
    if gate:
        lines += ["", "Gate: " + ("passed" if gate["passed"] else "FAILED: " + "; ".join(gate["failures"]))]
    rows = sorted(report["items"], key=lambda r: r["passed"])
    lines += ["", "## Items (failures first)", "", "| | id | lang | question | answer | citations | why |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        answer = (r.get("answer") or "").replace("\n", " ").replace("|", "/")
        cites = ", ".join(f"[{c['n']}] {c['doc_id'][:3]}" for c in r.get("citations", []))
        lines.append(
            f"| {'✅' if r['passed'] else '❌'} | {r['id']} | {r['language']} | {r['question'].replace('|', '/')} | "
            f"{answer[:200]} | {cites} | {r['why']} |"
        )
    return "\n".join(lines) + "\n"
