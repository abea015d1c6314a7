"""The eval suite: hand-written question–answer pairs run through the real pipeline.

Dataset: a YAML list of items with ``id``, ``question``, ``answers`` (any one counts), ``sources``
(doc ids that support it) and ``answerable`` (default true). Metrics (defined in
``assistant.eval.metrics``), over the answerable items unless said otherwise:

- retrieval: hit@1 and hit@5 (the share of items with a source article among the first 1 or 5
  distinct articles retrieved) and MRR@10 (the mean of 1/rank of the first source article);
- answer: accuracy (answered, not refused, with a gold answer in the text after Arabic
  normalization), token F1, language match (over every answered item), and optionally
  faithfulness, the share of answer sentences an Ollama judge finds supported by the passages
  they cite;
- citations: precision (citations of answered answerable items that name a source article) and
  coverage (answers to any item that cite something);
- refusal: the share of unanswerable items refused, of answerable items wrongly refused, and of
  all items refused exactly when unanswerable;
- timings: median total time and median time to the first token.

A model error fails its item and the run goes on (``assistant.eval.errors``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from assistant.arabic import detect_language
from assistant.cite import cited_sentences, strip_markers
from assistant.config import Settings
from assistant.errors import InputError
from assistant.eval.errors import ModelErrors
from assistant.eval.metrics import DEFECTS, answer_defects, contains_answer, first_relevant_rank, mean, median, retrieval_metrics, share, token_f1
from assistant.llm import Message
from assistant.models import Answer
from assistant.prompts import Prompts


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

    backend = make_ollama(
        cfg,
        temperature=0.0,
        max_tokens=16,
        section="eval.judge",
        instead="run the eval without the faithfulness judge: set eval.judge.provider to none",
    )
    prompts_dir = settings.answer.prompts_dir
    return Judge(backend, Prompts(settings.resolve(prompts_dir) if prompts_dir else None))


# --- the run -----------------------------------------------------------------------------------
# An item whose answer failed: not refused, wrong, uncited, in no language.
_FAILED_ANSWER = dict(
    answer="", refused=False, answer_language=None, citations=[], correct=False, f1=0.0, citation_hits=0, model=None, notes=[], timings=None
)


def run_eval(
    assistant, items: list[EvalItem], retrieval_only: bool = False, progress: bool = False, judge: Judge | None = None
) -> dict[str, Any]:
    rows: list[dict] = []
    model_errors = ModelErrors(len(items))
    for item in tqdm(items, desc="eval", unit="q", disable=not progress):
        if model_errors.stopped:
            break
        passages = assistant.search(item.question, top_k=max(5, assistant.settings.retrieval.top_k))
        retrieved = [p.doc_id for p in passages]
        row: dict[str, Any] = {
            "id": item.id,
            "question": item.question,
            "language": item.language,
            "answerable": item.answerable,
            "gold": item.answers,
            "sources": item.sources,
            "retrieved": retrieved,
            "first_hit_rank": first_relevant_rank(retrieved, item.sources),  # among distinct articles
        }
        if not retrieval_only:
            answer = model_errors.ask(assistant, item.id, item.question)
            if answer is None:  # the item fails with the reason; the run goes on
                error = model_errors.last
                rows.append({**row, **_FAILED_ANSWER, "error": error, "passed": False, "why": f"model error: {error}"})
                continue
            cited_docs = [c.doc_id for c in answer.citations]
            row.update(
                answer=answer.text,
                refused=answer.refused,
                answer_language=detect_language(strip_markers(answer.text)),
                citations=[{"n": c.n, "doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in answer.citations],
                correct=item.answerable and not answer.refused and contains_answer(answer.text, item.answers),
                f1=token_f1(answer.text, item.answers) if item.answerable and not answer.refused else 0.0,
                citation_hits=sum(d in item.sources for d in cited_docs),
                defects=[] if answer.refused else answer_defects(answer.text, answer.language, item.question, answer.citations),
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
        "errors": model_errors.errors,  # items whose answer failed (model unreachable, timed out): they count as wrong
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
        return True, f"first source article at rank {row['first_hit_rank']}"
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


def metrics(rows: list[dict], retrieval_only: bool = False) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    ranks = [r["first_hit_rank"] for r in answerable]
    out: dict[str, Any] = {"n_items": len(rows), "retrieval": retrieval_metrics(ranks)}
    if retrieval_only:
        return out
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["refused"]]
    answered_answerable = [r for r in answerable if not r["refused"]]
    citations = [c for r in answered_answerable for c in r["citations"]]
    out["answer"] = {
        "accuracy": share([r["correct"] for r in answerable]),
        "f1": mean([r["f1"] for r in answerable]),
        "language_match": share([r["answer_language"] == r["language"] for r in answered]),
        # None when no judge ran (or it had nothing to judge)
        "faithfulness": share([v["supported"] for r in answered for v in r.get("judged", [])]),
    }
    out["citations"] = {
        "precision": sum(r["citation_hits"] for r in answered_answerable) / len(citations) if citations else None,
        "coverage": share([bool(r["citations"]) for r in answered]),
    }
    out["refusal"] = {
        "accuracy": share([r["refused"] != r["answerable"] for r in rows]),
        "unanswerable_refused": share([r["refused"] for r in unanswerable]),
        "answerable_refused": share([r["refused"] for r in answerable]),
    }
    out["defects"] = {kind: sum(kind in r.get("defects", ()) for r in answered) for kind in DEFECTS}
    out["timings"] = {
        "median_total_ms": median([r["timings"]["total_ms"] for r in rows if r["timings"]]),
        "median_first_token_ms": median([r["timings"]["first_token_ms"] for r in rows if r["timings"] and r["timings"]["first_token_ms"]]),
    }
    return out


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
    for section in ("retrieval", "answer", "citations", "refusal", "defects", "timings"):
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
