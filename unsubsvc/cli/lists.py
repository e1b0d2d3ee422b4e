"""Lists and recipients: ``list``, ``headers``, ``link`` and ``status``."""

from __future__ import annotations

import json

import click

from unsubsvc.cli.common import minter, now, runtime, session, unit_of_work
from unsubsvc.services import lists as list_service
from unsubsvc.services.links import RecipientLinks, recipient_links
from unsubsvc.services.status import status_document


@click.group("list")
def list_group() -> None:
    """Manage lists (audiences)."""


@list_group.command("create")
@click.argument("name")
@click.option("--topic", "topics", multiple=True, help="A topic slug; repeat for several.")
@click.option(
    "--frequency",
    "frequencies",
    multiple=True,
    help="A frequency slug, most frequent first; the first is the default. Repeatable.",
)
@click.option("--display-name", help="The name recipients see; defaults to NAME.")
@click.option("--niche", help="Benchmark niche for reports (media, b2b_saas, ecommerce, …).")
@unit_of_work
def list_create(
    name: str,
    topics: tuple[str, ...],
    frequencies: tuple[str, ...],
    display_name: str | None,
    niche: str | None,
) -> None:
    """Create the list NAME with its topics and frequencies."""
    created = list_service.create_list(
        session(),
        name,
        now=now(),
        display_name=display_name,
        topics=topics,
        frequencies=frequencies,
        niche=niche,
    )
    click.echo(f"Created list {created.name!r}.", err=True)


@list_group.command("niche")
@click.argument("name")
@click.argument("niche", required=False)
@unit_of_work
def list_niche(name: str, niche: str | None) -> None:
    """Set (or, without NICHE, clear) the benchmark niche a list's rates are read against."""
    list_service.set_niche(session(), name, niche)
    click.echo(f"List {name!r}: niche {niche or 'cleared'}.", err=True)


@list_group.command("show")
@click.argument("name")
@unit_of_work
def list_show(name: str) -> None:
    """Print a list's topics and frequencies as JSON."""
    found = list_service.get_list(session(), name)
    click.echo(
        json.dumps(
            {
                "name": found.name,
                "display_name": found.display_name,
                "topics": [t.slug for t in found.topics],
                "frequencies": [f.slug for f in found.frequencies],
            }
        )
    )


def _links(list_name: str, email: str, campaign: str | None, topic: str | None) -> RecipientLinks:
    return recipient_links(
        session(),
        minter(),
        list_name,
        email,
        now=now(),
        keyring=runtime().keyring,
        campaign=campaign,
        topic=topic,
    )


@click.command("headers")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--email", required=True, help="The recipient's address.")
@click.option("--campaign", help="The sender's campaign id, for reports.")
@click.option("--topic", help="Unsubscribe from this topic only, not the whole list.")
@click.option(
    "--preferences-url",
    "with_preferences",
    is_flag=True,
    help="Also print the preference-center URI, on a third line, as 'Preferences-URL: …'.",
)
@unit_of_work
def headers_command(
    list_name: str, email: str, campaign: str | None, topic: str | None, with_preferences: bool
) -> None:
    """Print the List-Unsubscribe and List-Unsubscribe-Post lines for one recipient."""
    links = _links(list_name, email, campaign, topic)
    click.echo(links.header_lines(linesep="\n"))
    if with_preferences:
        click.echo(f"Preferences-URL: {links.preferences_url}")


@click.command("link")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--email", required=True, help="The recipient's address.")
@click.option("--campaign", help="The sender's campaign id, for reports.")
@unit_of_work
def link_command(list_name: str, email: str, campaign: str | None) -> None:
    """Print the recipient's preference-center URI (for a 'manage preferences' footer link)."""
    click.echo(_links(list_name, email, campaign, None).preferences_url)


@click.command("status")
@click.option("--list", "list_name", required=True, help="The list's name.")
@click.option("--email", required=True, help="The recipient's address.")
@unit_of_work
def status_command(list_name: str, email: str) -> None:
    """Print a recipient's state on a list as JSON."""
    document = status_document(session(), list_name, email, now=now(), keyring=runtime().keyring)
    click.echo(json.dumps(document))
