"""The ``sift`` command line.

    sift ingest PATH... --corpus NAME        files or folders (recursive), with a progress bar
    sift reindex --corpus NAME               re-extract every document from its kept original (after an upgrade)
    sift docs --corpus NAME [--json]         documents with passage counts and dates
    sift delete --corpus NAME (--document ID | --all)
    sift search "query" --corpus NAME [--retrieval dense|lexical|hybrid] [-k 20] [--json]
    sift ask "question" --corpus NAME [--retrieval R] [--mode M] [--strategy S] [-k K] [--style S] [--json]
    sift eval rerank --trec DIR [--mode M[:S]]... [--candidates K] [--limit N] [--json]
    sift eval retrieval --beir DIR [--mode M[:S]]... [--limit N] [--json]
    sift eval qa --cmu DIR [--mode M[:S]]... [--limit N] [--json]
    sift tune [DATASET]... [--mode M[:S]] [--limit N] [--dry-run]   fit the composite's weights to these models
    sift sample                              ingest the bundled sample corpus if the store is empty
    sift migrate-vectors --to pgvector|faiss --corpus NAME [--remove-source]   move vectors, resumable, verified
    sift serve [--host H] [--port P] [--workers N]   the HTTP API (beyond loopback only with auth on)
    sift user add NAME --role reader|editor|admin [--password-stdin]   (else the password is prompted for)
    sift user list | sift user remove NAME | sift user role NAME ROLE
    sift key create --user NAME [--name LABEL]      prints the key, the only time it is shown
    sift key list [--user NAME] | sift key revoke ID
    sift share CORPUS --with USER [--edit]          let a user read (or edit) a corpus

Errors print one readable line on stderr and exit with status 1. ``ingest`` and ``reindex`` also exit with status 1
when any file failed (the others are stored; ``--json`` lists the failed ones under ``failed``). ``--json`` output is
documented in README.md.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from sift.app.accounts import ROLES
from sift.app.config import Settings
from sift.app.documents import passage_place
from sift.app.eval_cli import eval_app, tune, tune_quotes
from sift.app.generation import CANNOT_ANSWER, UNCITED, Citation
from sift.app.logs import configure_logging
from sift.app.pipeline import Sift, open_store
from sift.ingestion.ingest import FileResult, ProgressCallback
from sift.ingestion.migrate_vectors import migrate_vectors
from sift.ingestion.store import corpus_name
from sift.ingestion.vector_store import vector_store_kinds
from sift.retrieval.types import Candidate

# Named, not __name__: run as `python -m sift.app.cli` this module is __main__, outside the configured sift loggers.
logger = logging.getLogger("sift.app.cli")

cli = typer.Typer(help="Sift: chat with a document collection.", no_args_is_help=True, add_completion=False)
cli.add_typer(eval_app, name="eval")
cli.command("tune")(tune)
cli.command("tune-quotes")(tune_quotes)
user_app = typer.Typer(help="Accounts (README: Accounts and keys).", no_args_is_help=True)
key_app = typer.Typer(help="API keys, sent as Authorization: Bearer <key>.", no_args_is_help=True)
cli.add_typer(user_app, name="user")
cli.add_typer(key_app, name="key")

CorpusOption = Annotated[str, typer.Option("--corpus", "-c", help="Corpus name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
RoleArgument = Annotated[str, typer.Argument(help=f"One of {', '.join(ROLES)}.")]
RetrievalOption = Annotated[
    str | None, typer.Option("--retrieval", help="dense, lexical or hybrid (default: the settings').")
]


def _sift() -> Sift:
    settings = Settings()
    configure_logging(settings)
    return Sift(settings)


def _print_json(value) -> None:
    def default(obj):
        if isinstance(obj, datetime):
            return obj.isoformat()
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=default))


def _summary(results: list[FileResult]) -> str:
    counts = {
        status: sum(r.status == status for r in results) for status in ("added", "replaced", "unchanged", "failed")
    }
    return ", ".join(f"{n} {status}" for status, n in counts.items())


@contextmanager
def _progress_bar(as_json: bool) -> Iterator[ProgressCallback]:
    """A progress bar on stderr, and one line per file result on stdout (none with --json)."""
    from tqdm import tqdm

    with tqdm(total=0, unit="file", disable=as_json, file=sys.stderr) as bar:

        def progress(done: int, total: int, result: FileResult) -> None:
            bar.total = total
            bar.update(1)
            bar.set_postfix_str(result.source[-40:])
            if not as_json:
                detail = f" ({result.chunks} passages)" if result.chunks else ""
                reason = f": {result.reason}" if result.reason else ""
                bar.write(f"{result.status:>9}  {result.source}{detail}{reason}")

        yield progress


def _report(corpus: str, results: list[FileResult], as_json: bool) -> None:
    """The batch's results; exit status 1 when any file failed, so a script notices a partial ingest."""
    failed = [r.source for r in results if r.status == "failed"]
    if as_json:
        _print_json({"corpus": corpus, "files": [asdict(r) for r in results], "failed": failed})
    else:
        typer.echo(f"{corpus}: {_summary(results)}")
    if failed:
        raise typer.Exit(1)


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    corpus: CorpusOption,
    as_json: JsonOption = False,
) -> None:
    """Add files to a corpus: new ones are added, changed ones replaced, identical ones left unchanged."""
    sift = _sift()
    corpus = corpus_name(corpus)  # a bad name fails in one line, before the model loads and the progress bar shows
    with _progress_bar(as_json) as progress:
        results = sift.ingest_paths(paths, corpus, progress)
    _report(corpus, results, as_json)


@cli.command()
def reindex(corpus: CorpusOption, as_json: JsonOption = False) -> None:
    """Re-extract, re-chunk and re-embed a corpus's documents from the original files Sift kept (after an upgrade
    that changed extraction, or a new chunk size): each is replaced, or unchanged when the same passages come out."""
    sift = _sift()
    with _progress_bar(as_json) as progress:
        results = sift.reindex(corpus, progress)
    _report(corpus, results, as_json)


@cli.command()
def docs(corpus: CorpusOption, as_json: JsonOption = False) -> None:
    """List a corpus's documents."""
    documents = _sift().documents(corpus)
    if as_json:
        _print_json({"corpus": corpus, "documents": [asdict(d) for d in documents]})
        return
    for d in documents:
        date = d.document_date.date().isoformat() if d.document_date else "-"
        typer.echo(f"{d.id:>5}  {d.chunks:>5} passages  {date:>10}  {d.source}" + (f"  ({d.title})" if d.title else ""))
    typer.echo(f"{len(documents)} documents in {corpus}")


@cli.command()
def delete(
    corpus: CorpusOption,
    document: Annotated[int | None, typer.Option("--document", help="Id of the document to delete.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Delete the whole corpus.")] = False,
) -> None:
    """Delete one document, or a whole corpus, with their passages and vectors."""
    if (document is None) == (not everything):
        raise typer.BadParameter("Give exactly one of --document ID or --all.")
    sift = _sift()
    if everything:
        count = sift.delete_corpus(corpus)
        typer.echo(f"Deleted corpus {corpus} ({count} documents).")
    else:
        source = sift.delete_document(corpus, document)
        typer.echo(f"Deleted document {document} ({source}) from {corpus}.")


@cli.command()
def search(
    query: str,
    corpus: CorpusOption,
    k: Annotated[int | None, typer.Option("-k", help="Number of passages.")] = None,
    retrieval: RetrievalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the passages retrieval finds for a query, with the score each was ranked by."""
    candidates = _sift().search(query, corpus, k, retrieval)
    if as_json:
        _print_json({"query": query, "corpus": corpus, "candidates": [asdict(c) for c in candidates]})
        return
    for c in candidates:
        snippet = " ".join(c.text.split())[:160]
        typer.echo(f"{c.rank:>3}  {c.score:.3f}  {c.source}{_place(c)}\n     {snippet}")


@cli.command()
def ask(
    question: str,
    corpus: CorpusOption,
    mode: Annotated[str | None, typer.Option("--mode", help="Rerank mode (default: the settings').")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="logits or generative.")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Passages retrieved and reranked.")] = None,
    llm_k: Annotated[
        int | None,
        typer.Option("--llm-k", min=1, help="Of those, how many the LLM scores, the best by dense and BM25."),
    ] = None,
    llm_budget: Annotated[
        float | None,
        typer.Option(
            "--llm-budget",
            min=0,
            help="Seconds the LLM's scoring may take, capping --llm-k (default: the settings'; 0: none; at most the "
            "settings' max_rerank_llm_budget_s).",
        ),
    ] = None,
    retrieval: RetrievalOption = None,
    style: Annotated[
        str | None,
        typer.Option(
            "--style",
            help="auto, generative or extractive: quote the sentence that answers, or let the model write (default: "
            "the settings').",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question from a corpus, with numbered citations; --json adds the rerank trace."""
    from sift.app.answering import DOES_NOT_ANSWER, MODEL_SUMMARY, QUOTE_UNSURE
    from sift.app.pipeline import Answer, Status

    answer = None
    for event in _sift().ask_stream(
        question,
        corpus,
        k=k,
        llm_k=llm_k,
        llm_budget_s=llm_budget,
        mode=mode,
        strategy=strategy,
        retrieval=retrieval,
        answer_style=style,
    ):
        if isinstance(event, Status) and not as_json:
            typer.secho(event.text, err=True, dim=True)
        elif isinstance(event, Answer):
            answer = event
    if as_json:
        _print_json(answer.to_dict())
        return
    typer.echo(answer.text)
    if not answer.answered and answer.text != CANNOT_ANSWER:
        typer.secho(UNCITED, fg="yellow")
    if answer.addresses_question is False:
        typer.secho(DOES_NOT_ANSWER, fg="yellow")
    elif answer.answered and answer.style == "extractive" and not answer.verified:
        typer.secho(QUOTE_UNSURE, dim=True)
    if answer.model_summary:
        typer.secho(f"{MODEL_SUMMARY}: {answer.model_summary}", dim=True)
    for c in answer.citations:
        typer.echo(f"[{c.number}] {c.source}" + (f" — {c.title}" if c.title else "") + _place(c))


def _place(passage: Candidate | Citation) -> str:
    """Where in its document a passage is, as " (pp. 3-4, Installation > Linux)"; empty when unknown."""
    place = passage_place(passage.page_start, passage.page_end, passage.section)
    return f" ({place})" if place else ""


@cli.command("migrate-vectors")
def migrate_vectors_command(
    to: Annotated[
        str, typer.Option("--to", help="pgvector or faiss: the vector store to move the corpus's vectors to.")
    ],
    corpus: CorpusOption,
    remove_source: Annotated[
        bool, typer.Option("--remove-source", help="Once verified, remove the vectors from the store they left.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Move a corpus's vectors between FAISS files and pgvector (one PostgreSQL database); re-run to continue.
    Exit 1 when the copy does not verify (the source is left as it was). Then set SIFT_VECTOR_STORE to the target."""
    if to not in vector_store_kinds():
        raise typer.BadParameter(f"use one of {', '.join(vector_store_kinds())}", param_hint="--to")
    settings = Settings()
    configure_logging(settings)
    source = "faiss" if to == "pgvector" else "pgvector"
    report = migrate_vectors(
        open_store(settings, source), open_store(settings, to), corpus, remove_source=remove_source
    )
    if as_json:
        _print_json(asdict(report) | {"verified": report.verified})
    else:
        typer.echo("\n".join(report.lines()))
    if not report.verified:
        raise typer.Exit(1)


@cli.command()
def sample() -> None:
    """Ingest the bundled sample corpus when the store holds no corpus yet."""
    sift = _sift()
    results = sift.ensure_sample_corpus()
    if results is None:
        typer.echo(f"Store at {sift.settings.data_dir} already has corpora: {', '.join(sift.corpora())}.")
    else:
        typer.echo(f"Ingested the sample corpus: {_summary(results)}")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address (default: the settings' serve_host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: the settings' serve_port).")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="HTTP worker processes (default: serve_workers).")
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI schema at /openapi.json), with an ingestion worker for uploads."""
    from sift.app.api.serve import serve as serve_api

    flags = {"serve_host": host, "serve_port": port, "serve_workers": workers}
    serve_api(Settings(**{name: value for name, value in flags.items() if value is not None}))


@cli.command("check-host", hidden=True)
def check_host(host: str) -> None:
    """Exit 1 with the reason when the settings do not allow listening on HOST (`make run` asks before Streamlit)."""
    settings = Settings()
    configure_logging(settings)
    settings.check_listening(host)


@cli.command("streamlit-hosts", hidden=True)
def streamlit_hosts() -> None:
    """Print Streamlit's flags for the host names the app answers to (`make run` passes them): with auth off only
    loopback ones and allowed_hosts, so that a web page cannot reach the app through a DNS name rebound to it."""
    typer.echo(" ".join(f"--server.allowedHosts {name}" for name in Settings().answered_host_names()))


@cli.command("forwarded-allow-ips", hidden=True)
def forwarded_allow_ips() -> None:
    """Print the trusted proxies as uvicorn's FORWARDED_ALLOW_IPS lists them (`make run` hands them to Streamlit,
    whose uvicorn otherwise believes any loopback peer's X-Forwarded-For); empty: none is believed."""
    typer.echo(",".join(Settings().trusted_proxies))


@cli.command("streamlit-secrets", hidden=True)
def streamlit_secrets_file() -> None:
    """Write Streamlit's secrets for the app (the OIDC provider's [auth] table, when one is configured) and print
    the file's path (`make run` passes it to Streamlit)."""
    from sift.app.oidc import write_streamlit_secrets

    settings = Settings()
    configure_logging(settings)
    typer.echo(write_streamlit_secrets(settings))


# ---------------------------------------------------------------------------------------------- accounts


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
    ] = False,
) -> None:
    """Add a user; the password is asked for twice (or read from stdin) and stored as an argon2 hash."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = _sift().accounts.add_user(name, password, role)
    typer.echo(f"Added {user.name} ({user.role}).")


@user_app.command("list")
def user_list(as_json: JsonOption = False) -> None:
    """List the users and their roles."""
    users = _sift().accounts.users()
    if as_json:
        _print_json([{"name": u.name, "role": u.role} for u in users])
        return
    for u in users:
        typer.echo(f"{u.name}  {u.role}")


@user_app.command("remove")
def user_remove(name: str) -> None:
    """Remove a user with their keys and shares (the corpora they own stay, for admins)."""
    _sift().accounts.remove_user(name)
    typer.echo(f"Removed {name}.")


@user_app.command("role")
def user_role(name: str, role: RoleArgument) -> None:
    """Change a user's role."""
    user = _sift().accounts.set_role(name, role)
    typer.echo(f"{user.name} is now {user.role}.")


@key_app.command("create")
def key_create(
    user: Annotated[str, typer.Option("--user", help="Whose key it is.")],
    name: Annotated[str, typer.Option("--name", help="A label, e.g. the machine it is for.")] = "",
) -> None:
    """Create an API key and print it: it is stored hashed, so this is the only time it is shown."""
    created = _sift().accounts.create_key(user, name)
    typer.echo(created.secret)
    typer.secho(f"Key {created.key.id} for {user}: keep it now, it cannot be shown again.", err=True, dim=True)


@key_app.command("list")
def key_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List API keys (their first characters, never the keys), with when each was last used."""
    keys = _sift().accounts.keys(user)
    if as_json:
        _print_json([k.model_dump() for k in keys])
        return
    for k in keys:
        used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never used"
        state = "revoked" if k.revoked_at else "active"
        typer.echo(f"{k.id:>4}  {k.user}  {k.hint}…  {k.name or '-'}  {state}  {used}")


@key_app.command("revoke")
def key_revoke(key_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    key = _sift().accounts.revoke_key(key_id)
    typer.echo(f"Revoked key {key.id} of {key.user}.")


@cli.command()
def share(
    corpus: str,
    user: Annotated[str, typer.Option("--with", help="The user to share it with.")],
    edit: Annotated[bool, typer.Option("--edit", help="Let them upload and delete documents (editors only).")] = False,
) -> None:
    """Let a user read a corpus, or with --edit also change it."""
    _sift().accounts.share(corpus, user, "edit" if edit else "read")
    typer.echo(f"Shared {corpus} with {user} ({'edit' if edit else 'read'}).")


def main() -> None:
    """Entry point: run the CLI, turning Sift's errors into one readable line."""
    from sqlalchemy.exc import SQLAlchemyError

    from sift.ingestion.store import StoreError, readable_database_error
    from sift.rerank.llm import ModelNotFound, ServerError

    try:
        # Without standalone mode click hands back a command's typer.Exit code instead of exiting with it.
        status = cli(standalone_mode=False)
    except (StoreError, ModelNotFound, ServerError, ValueError, FileNotFoundError, SQLAlchemyError) as exc:
        logger.error("sift %s failed", " ".join(sys.argv[1:2]), exc_info=exc)
        message = readable_database_error(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
        typer.secho(f"error: {message}", err=True, fg="red")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # click's own usage errors, and anything unexpected
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        logger.exception("sift %s failed unexpectedly", " ".join(sys.argv[1:2]))
        typer.secho(
            f"error: {type(exc).__name__}: {exc} (the traceback is in {Settings().resolved_log_file()})",
            err=True,
            fg="red",
        )
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
