"""Lists and recipients: ``list``, ``headers``, ``link`` and ``status``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from unsubsvc.cli.common import minter, now, runtime, session, unit_of_work
from unsubsvc.core.languages import LANGUAGES
from unsubsvc.services import branding as brand_service
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
@click.option(
    "--topic-description",
    "topic_descriptions",
    multiple=True,
    metavar="SLUG=TEXT",
    help="What a topic's mail is about, shown in the preference center. Repeatable.",
)
@click.option("--language", help=f"The list's default language ({', '.join(LANGUAGES)}).")
@unit_of_work
def list_create(
    name: str,
    topics: tuple[str, ...],
    frequencies: tuple[str, ...],
    display_name: str | None,
    niche: str | None,
    topic_descriptions: tuple[str, ...],
    language: str | None,
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
    if topic_descriptions or language:
        list_service.update_list(
            session(), created, topic_descriptions=topic_descriptions, language=language
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


@list_group.command("update")
@click.argument("name")
@click.option(
    "--topic-description",
    "topic_descriptions",
    multiple=True,
    metavar="SLUG=TEXT",
    help="What a topic's mail is about (an empty TEXT clears it). Repeatable.",
)
@click.option("--language", help=f"The list's default language ({', '.join(LANGUAGES)}).")
@unit_of_work
def list_update(name: str, topic_descriptions: tuple[str, ...], language: str | None) -> None:
    """Set a list's topic descriptions and default language."""
    found = list_service.get_list(session(), name)
    list_service.update_list(
        session(), found, topic_descriptions=topic_descriptions, language=language
    )
    click.echo(f"Updated list {name!r}.", err=True)


@list_group.command("brand")
@click.argument("name")
@click.option(
    "--logo",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="A PNG, JPEG, GIF or WebP logo, at most 512 KiB (SVG is refused).",
)
@click.option("--clear-logo", is_flag=True, help="Remove the list's logo.")
@click.option(
    "--color",
    metavar="HEX",
    help="Accent colour, #RRGGBB or #RGB; must reach WCAG AA 4.5:1. Empty clears it.",
)
@click.option("--sender-name", metavar="TEXT", help="The sender recipients see. Empty clears it.")
@click.option("--footer", metavar="TEXT", help="Postal address or other footer. Empty clears it.")
@click.option("--privacy-url", metavar="URL", help="Privacy-policy link. Empty clears it.")
@unit_of_work
def list_brand(
    name: str,
    logo: Path | None,
    clear_logo: bool,
    color: str | None,
    sender_name: str | None,
    footer: str | None,
    privacy_url: str | None,
) -> None:
    """Set the brand a list's recipient pages and mail show."""
    if logo is not None and clear_logo:
        raise click.UsageError("give --logo or --clear-logo, not both")
    found = list_service.get_list(session(), name)
    fields: dict[str, object] = {
        key: value or None
        for key, value in (
            ("color", color),
            ("sender_name", sender_name),
            ("footer", footer),
            ("privacy_url", privacy_url),
        )
        if value is not None
    }
    if logo is not None:
        fields["logo_data"] = logo.read_bytes()
    elif clear_logo:
        fields["logo_data"] = None
    change = brand_service.set_brand(session(), found, now=now(), **fields)
    changed = ", ".join(change.fields) or "nothing"
    click.echo(f"List {name!r}: brand updated ({changed}).", err=True)


@list_group.command("show")
@click.argument("name")
@unit_of_work
def list_show(name: str) -> None:
    """Print a list's topics, frequencies, language and brand as JSON."""
    found = list_service.get_list(session(), name)
    logo = brand_service.logo(session(), found.id)
    click.echo(
        json.dumps(
            {
                "name": found.name,
                "display_name": found.display_name,
                "topics": [t.slug for t in found.topics],
                "frequencies": [f.slug for f in found.frequencies],
                "topic_descriptions": {
                    t.slug: t.description for t in found.topics if t.description
                },
                "language": found.default_locale,
                "brand": {
                    "sender_name": found.brand_sender_name,
                    "color": found.brand_color,
                    "footer": found.brand_footer,
                    "privacy_url": found.brand_privacy_url,
                    "logo": None
                    if logo is None
                    else {
                        "content_type": logo.content_type,
                        "bytes": len(logo.data),
                        "sha256": logo.sha256,
                    },
                },
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
