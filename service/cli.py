"""The `papers` console script: a thin layer over the library.

Each area's subcommands live in ``service/commands/<area>.py``. The one error handler
below turns :class:`indexer.errors.PapersError` into ``error: <message>`` on stderr and
the error's exit code; a failure of the storage (disk full, permission denied, read-only
file system, from Python, SQLite or tantivy) into exit 6 (:mod:`indexer.storage_errors`);
nothing ends in a stack trace (``PAPERS_LOG_LEVEL=DEBUG`` logs it).
"""

from __future__ import annotations

import logging
import sys

import click

from indexer.errors import PapersError


def _log_level(verbose: int, explicit: str | None, command: str | None) -> int:
    """Warnings only, so results on stdout are not preceded by log lines; ``-v`` info, ``-vv``
    debug. PAPERS_LOG_LEVEL, when set, wins over the default, and `serve` logs at
    PAPERS_LOG_LEVEL (default INFO) as servers do."""
    if verbose:
        return logging.DEBUG if verbose > 1 else logging.INFO
    if explicit:
        return getattr(logging, explicit, logging.INFO)
    return logging.INFO if command == "serve" else logging.WARNING


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="papers")
@click.option("-v", "--verbose", count=True, help="Log progress to stderr (-vv: debug)")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """papers: search and recommendation for arXiv papers.

    Configuration comes from PAPERS_* environment variables (see README).
    """
    from service.commands import get_settings  # imported here: `papers --help` needs no settings

    settings = get_settings()
    explicit = settings.log_level if "log_level" in settings.model_fields_set else None
    level = _log_level(verbose, explicit, ctx.invoked_subcommand)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    # third-party chatter (migration steps, model loading, HTTP requests) only when asked for
    if level > logging.DEBUG:
        for noisy in ("alembic", "sentence_transformers", "httpx", "httpcore", "jieba"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.group("eval")
def eval_group() -> None:
    """Measure retrieval, related-paper and keyphrase quality on evaluation collections."""


def _register() -> None:
    from service.commands import (  # lazy: `papers --help` imports no command's dependencies
        bench,
        build,
        data,
        eval_keyphrases,
        eval_related,
        eval_retrieval,
        keywords,
        search,
        serve,
        terms,
    )

    for module in (data, build, search, serve, keywords, terms, bench):
        for command in module.COMMANDS:
            cli.add_command(command)
    for module in (eval_retrieval, eval_related, eval_keyphrases):
        for command in module.COMMANDS:
            eval_group.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="papers", standalone_mode=False)
    except PapersError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a traceback
        from indexer.storage_errors import as_storage_error  # lazy: only on a failure

        storage = as_storage_error(e)
        if storage is not None:  # disk full, permission denied, read-only file system
            logging.getLogger(__name__).debug("storage failure", exc_info=True)
            click.echo(f"error: {storage.message}", err=True)
            sys.exit(storage.exit_code)
        if isinstance(e, OSError):
            click.echo(f"error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "), err=True)
            sys.exit(6)
        logging.getLogger(__name__).debug("unexpected failure", exc_info=True)
        click.echo(f"error: unexpected {type(e).__name__}: {str(e)[:300]} "
                   "(PAPERS_LOG_LEVEL=DEBUG shows the traceback)", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
