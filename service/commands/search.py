"""`papers search`: the same ranking as the web UI, for people in a terminal."""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import date

import click

from service.commands import get_settings


def _date(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise click.BadParameter("use YYYY-MM-DD") from e


@click.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--mode", type=click.Choice(["bm25", "dense", "hybrid"]), default="hybrid", show_default=True)
@click.option("--cat", help="Category expression, e.g. cs.AI+cs.LG-cs.CY")
@click.option("--from", "date_from", callback=_date, help="Earliest first-version date (YYYY-MM-DD)")
@click.option("--to", "date_to", callback=_date, help="Latest first-version date (YYYY-MM-DD)")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True)
@click.option("--page", type=int, default=1, show_default=True)
@click.option("--size", "-n", type=int, default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text")
def search_command(query, mode, cat, date_from, date_to, sort, page, size, as_json) -> None:
    """Search the local index: words, "phrases", -exclude, OR, ti:/au:/abs:/cat:/id: fields."""
    from indexer.search.engine import SearchEngine

    engine = SearchEngine.open(get_settings())
    res = engine.search(" ".join(query), mode=mode, cat=cat, date_from=date_from, date_to=date_to, sort=sort, page=page, size=size)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "query": res.query,
                    "mode": res.mode,
                    "total": res.total,
                    "took_ms": res.took_ms,
                    "relaxed": res.relaxed,
                    "exact_total": res.exact_total,
                    "translated": res.translated,
                    "hits": [{k: v for k, v in h.to_dict().items() if not k.endswith("_html")} for h in res.hits],
                },
                ensure_ascii=False,
            )
        )
        return
    width = min(shutil.get_terminal_size((100, 20)).columns, 120)
    if res.relaxed:
        phrases = ", ".join(f'"{p}"' for p in res.relaxed)
        click.echo(f"no exact match for {phrases}; showing the closest results" if not res.exact_total else
                   f"only {res.exact_total} papers contain {phrases}; the closest results follow them")
    if res.translated:
        click.echo(f"also searched in English: {res.translated}")
    click.echo(f"{res.total} results ({res.mode}, {res.took_ms:.1f} ms)")
    for n, h in enumerate(res.hits, start=(page - 1) * size + 1):
        authors = ", ".join(h.authors[:3]) + (" et al." if len(h.authors) > 3 else "")
        click.echo("")
        click.secho(f"{n:>3}. {h.title}", bold=True)
        click.echo(f"     {h.id}  {h.published}  {' '.join(h.categories[:4])}  {authors}")
        snippet = textwrap.shorten(h.abstract, width=240, placeholder=" …")
        click.echo(textwrap.indent(textwrap.fill(snippet, width=width - 5), "     "))


COMMANDS = [search_command]
