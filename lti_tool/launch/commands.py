"""`lti-tool platform …`, `lti-tool keys rotate` and `lti-tool demo`.

Commands only translate options into calls of the registration service; errors from the
service (`ToolError`) reach the root group, which prints them on standard error and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import click

from lti_tool.cli_support import get_runtime
from lti_tool.domain.errors import ValidationFailed
from lti_tool.domain.lms import rest_base_url
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.launch.platforms import (
    approve_platform,
    disable_platform,
    find_platform,
    get_platform,
    list_platforms,
    load_specs,
    platform_summary,
    register_platform,
    remove_platform,
    require_platform,
    spec_from_mapping,
    update_platform,
)
from lti_tool.launch.registration import canvas_developer_key, create_invite
from lti_tool.secrets import read_secret, seal
from lti_tool.store import institutions, keys
from lti_tool.store.db import transaction
from lti_tool.store.models.core import LMS_KINDS, Platform


def _duration(seconds: int) -> str:
    delta = timedelta(seconds=seconds)
    if seconds % 86400 == 0:
        return f"{delta.days} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds} second(s)"


@click.group("institution")
def institution_group() -> None:
    """Institutions: the awarding bodies (only operators create them)."""


@institution_group.command("add")
@click.option("--slug", required=True, help="Short name in URLs: /issuers/<slug>.")
@click.option("--name", required=True, help="The awarding body's name.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 country code, e.g. TR.")
@click.option("--url", default="", help="The institution's web site.")
@click.option("--email", default="", help="Contact e-mail of the issuer.")
@click.option("--region", default=None, help="Region or province (optional).")
@click.option("--legal-id", "legal_identifier", default=None,
              help="Legal identifier of the awarding body (optional).")
@click.pass_context
def institution_add(ctx: click.Context, **options) -> None:
    """Create an institution; every problem is reported, nothing is stored on error."""
    runtime = get_runtime(ctx)
    try:
        with transaction(runtime.sessions) as db:
            row = institutions.create_institution(db, institutions.InstitutionSpec(**options))
            summary = f"Institution {row.id}: {row.slug} ({row.name}, {row.country})"
            issuer = runtime.settings.url(f"/issuers/{row.slug}")
    except ValidationFailed as failed:
        click.echo("The institution was not created:", err=True)
        for problem in failed.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    click.echo(summary)
    click.echo(f"Issuer profile: {issuer}", err=True)


@institution_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def institution_list(ctx: click.Context, as_json: bool) -> None:
    """Show every institution with its issuer URL and number of registrations."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        rows = []
        for row in institutions.list_institutions(db):
            item = institutions.institution_summary(row)
            item["issuer"] = runtime.settings.url(f"/issuers/{row.slug}")
            item["platforms"] = [p.id for p in list_platforms(db) if p.institution_id == row.id]
            rows.append(item)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No institutions. Add one with `lti-tool institution add --slug SLUG "
                   "--name NAME --country CC`.")
        return
    _table(("ID", "SLUG", "COUNTRY", "PLATFORMS", "NAME"),
           [(str(r["id"]), r["slug"], r["country"],
             ",".join(map(str, r["platforms"])) or "-", r["name"]) for r in rows])


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                      strict=True)).rstrip())


institution_option = click.option(
    "--institution", "slug", default=None,
    help="Institution slug (default: the only institution).")
shared_issuer_option = click.option(
    "--allow-shared-issuer", is_flag=True,
    help="Allow an issuer another institution already holds (the platform vouches for "
         "client_ids: e.g. a shared hosted LMS).")


@click.group("platform")
def platform_group() -> None:
    """LMS platform registrations (issuer + client_id) and their deployments."""


@platform_group.command("add")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML or JSON file with one or more platforms (see config/platforms/).")
@click.option("--update", is_flag=True,
              help="With --from-file: update registrations that already exist.")
@click.option("--issuer", help="The platform's issuer (iss), e.g. https://moodle.example.edu.")
@click.option("--client-id", help="The client_id the platform gave the tool.")
@click.option("--auth-login-url", help="OIDC authorization endpoint of the platform.")
@click.option("--auth-token-url", help="OAuth2 token endpoint of the platform.")
@click.option("--key-set-url", help="The platform's public JWKS URL.")
@click.option("--name", default="", help="A label for the Office.")
@click.option("--lms-kind", type=click.Choice(LMS_KINDS), default="other", show_default=True)
@click.option("--auth-audience", default=None, help="Audience for client assertions, if the "
              "platform wants one other than its token URL.")
@click.option("--deployment", "deployments", multiple=True,
              help="A deployment id to accept (repeat for several).")
@click.option("--auto-accept-deployments/--no-auto-accept-deployments", default=False,
              show_default=True, help="Record unknown deployments of this client on launch.")
@click.option("--rest-base-url", default=None, help="LMS REST API base URL (optional).")
@click.option("--lms-host", "lms_hosts", multiple=True,
              help="Another host (host or host:port) the tool may call for this registration, "
                   "besides those of its URLs, e.g. a Canvas school's own host (repeatable).")
@institution_option
@shared_issuer_option
@click.pass_context
def platform_add(ctx: click.Context, from_file: Path | None, update: bool, slug: str | None,
                 allow_shared_issuer: bool, **options) -> None:
    """Register a platform of an institution (active at once) from options or a file."""
    text_fields = ("issuer", "client_id", "auth_login_url", "auth_token_url", "key_set_url",
                   "name", "auth_audience", "rest_base_url")
    if from_file is not None:
        if any(options[name] for name in text_fields) or options["deployments"] or \
                options["lms_hosts"]:
            raise BadRequest("Give either --from-file or the field options, not both.")
        specs = load_specs(from_file)
        for spec in specs:
            spec.registered_via = "file"
    else:
        values = {k: v for k, v in options.items() if v is not None}
        values["deployments"] = list(options["deployments"])
        values["lms_hosts"] = list(options["lms_hosts"])
        specs = [spec_from_mapping(values, source="options")]
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        institution = institutions.resolve(db, slug)
        for spec in specs:
            existing = find_platform(db, spec.issuer, spec.client_id)
            if existing is not None and update:
                if existing.institution_id != institution.id:
                    raise Conflict(f"Platform {existing.id} belongs to another institution.")
                platform, created = update_platform(db, existing, spec), False
            elif existing is not None:
                raise Conflict(f"A platform with issuer {spec.issuer!r} and client_id "
                               f"{spec.client_id!r} is already registered. Use --update to "
                               "replace it.")
            else:
                platform = register_platform(
                    db, spec, institution_id=institution.id, status="active",
                    allow_shared_issuer=allow_shared_issuer,
                    shared_issuers=runtime.settings.shared_issuers)
                created = True
            db.refresh(platform)
            click.echo(f"{'Registered' if created else 'Updated'} platform {platform.id} of "
                       f"{institution.slug}: {platform.issuer} client_id={platform.client_id} "
                       f"({platform.lms_kind}; deployments: "
                       f"{', '.join(d.deployment_id for d in platform.deployments) or 'none'})")


@platform_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def platform_list(ctx: click.Context, as_json: bool) -> None:
    """Show every registration and its deployments."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        rows = [platform_summary(p) for p in list_platforms(db)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No platforms registered. Add one with `lti-tool platform add` or let an "
                   "LMS register through /lti/register.")
        return
    _table(("ID", "STATUS", "INSTITUTION", "KIND", "ISSUER", "CLIENT_ID", "DEPLOYMENTS", "AUTO",
            "VIA", "NAME", "HOSTS"), [
        (str(r["id"]), r["status"], r["institution"] or "-", r["lms_kind"], r["issuer"],
         r["client_id"],
         ",".join(d["deployment_id"] + ("" if d["enabled"] else "(off)")
                  for d in r["deployments"]) or "-",
         "yes" if r["auto_accept_deployments"] else "no", r["registered_via"], r["name"],
         ",".join(r["allowed_hosts"]))
        for r in rows
    ])


@platform_group.command("approve")
@click.argument("platform_id", type=int)
@institution_option
@shared_issuer_option
@click.pass_context
def platform_approve(ctx: click.Context, platform_id: int, slug: str | None,
                     allow_shared_issuer: bool) -> None:
    """Make a pending registration (open Dynamic Registration) active in an institution."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        institution = institutions.resolve(db, slug)
        platform = approve_platform(db, get_platform(db, platform_id), institution.id,
                                    allow_shared_issuer=allow_shared_issuer,
                                    shared_issuers=runtime.settings.shared_issuers)
        label = f"{platform.id}: {platform.issuer} client_id={platform.client_id}"
    click.echo(f"Platform {label} is active in {institution.slug}.")


@platform_group.command("disable")
@click.argument("platform_id", type=int)
@click.pass_context
def platform_disable(ctx: click.Context, platform_id: int) -> None:
    """Stop a registration: its launches get nothing; everything it holds is kept."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        platform = disable_platform(db, get_platform(db, platform_id))
        label = f"{platform.id}: {platform.issuer} client_id={platform.client_id}"
    click.echo(f"Platform {label} is disabled (approve it again to re-enable it).")


@platform_group.command("rest-token")
@click.argument("platform_id", type=int)
@click.option("--file", "token_file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the token (must be mode 0600).")
@click.option("--env", "env_var", help="Environment variable holding the token.")
@click.option("--clear", is_flag=True, help="Forget the stored token.")
@click.option("--base-url", default=None,
              help="The LMS REST base URL (Moodle: defaults to the issuer's "
                   "/webservice/rest/server.php; Canvas: the instance URL).")
@click.pass_context
def platform_rest_token(ctx: click.Context, platform_id: int, token_file: Path | None,
                        env_var: str | None, clear: bool, base_url: str | None) -> None:
    """Store the LMS REST token (Moodle web-service token, Canvas API token) of a platform.

    The token is read from a 0600 file or an environment variable, never from the command
    line, so it does not end up in shell history or the process list.
    """
    if sum(bool(x) for x in (token_file, env_var, clear)) != 1:
        raise BadRequest("Give exactly one of --file, --env or --clear.")
    token: str | None = None
    if token_file is not None:
        token = read_secret(token_file).decode().strip()
    elif env_var:
        token = os.environ.get(env_var, "").strip()
        if not token:
            raise BadRequest(f"Environment variable {env_var} is empty or not set.")
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        platform = db.get(Platform, platform_id)
        if platform is None:
            raise NotFound(f"No platform with id {platform_id}.")
        platform.rest_token = seal(runtime.settings, token)
        if base_url is not None:
            if not base_url.startswith(("https://", "http://")):
                raise BadRequest("--base-url must be an http(s) URL.")
            platform.rest_base_url = base_url.strip() or None
        used = rest_base_url(platform.lms_kind, platform.issuer, platform.rest_base_url)
    click.echo(f"REST token of platform {platform_id} {'cleared' if clear else 'stored'}"
               + (f"; REST base URL {used}." if used and not clear else "."))


@platform_group.command("remove")
@click.argument("platform_id", type=int, required=False)
@click.option("--issuer", help="Find the registration by issuer …")
@click.option("--client-id", help="… and client_id.")
@click.option("--yes", is_flag=True, help="Remove even when people and courses are stored "
              "for it (they are deleted with it).")
@click.pass_context
def platform_remove(ctx: click.Context, platform_id: int | None, issuer: str | None,
                    client_id: str | None, yes: bool) -> None:
    """Remove a registration, by ID or by --issuer and --client-id."""
    if (platform_id is None) == (issuer is None and client_id is None):
        raise BadRequest("Name the platform either by ID or by --issuer and --client-id.")
    if platform_id is None and not (issuer and client_id):
        raise BadRequest("--issuer and --client-id must be given together.")
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        platform = (get_platform(db, platform_id) if platform_id is not None
                    else require_platform(db, issuer or "", client_id or ""))
        label = f"{platform.id}: {platform.issuer} client_id={platform.client_id}"
        try:
            remove_platform(db, platform, force=yes)
        except Conflict as exc:
            if yes:
                raise
            raise Conflict(f"{exc.message} Run again with --yes to remove it.") from exc
    click.echo(f"Removed platform {label}")


@platform_group.command("invite")
@click.option("--note", default="", help="Who the invite is for (shown to the Office).")
@click.option("--days", default=7, show_default=True, type=int, help="Days the URL stays valid.")
@institution_option
@shared_issuer_option
@click.pass_context
def platform_invite(ctx: click.Context, note: str, days: int, slug: str | None,
                    allow_shared_issuer: bool) -> None:
    """Print a one-time Dynamic Registration URL bound to an institution; the registration
    made with it is active at once."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        institution = institutions.resolve(db, slug)
        invite = create_invite(db, runtime.settings, institution_id=institution.id, note=note,
                               days=days, allow_shared_issuer=allow_shared_issuer)
        expires = invite.row.expires_at
    click.echo(invite.url)
    click.echo(f"For {institution.slug}. Valid once, until {expires:%Y-%m-%d %H:%M} UTC. "
               "Paste it into the LMS "
               "(Moodle: Manage tools > Tool URL; Canvas: LTI Registrations).", err=True)
    if runtime.settings.dynamic_registration == "off":
        click.echo("Note: LTI_TOOL_DYNAMIC_REGISTRATION is 'off', so the URL is refused until "
                   "it is 'invite' or 'open'.", err=True)


@platform_group.command("canvas-key")
@click.option("--title", default="Micro-credentials", show_default=True)
@click.pass_context
def platform_canvas_key(ctx: click.Context, title: str) -> None:
    """Print the Canvas developer key JSON (Developer Keys > + LTI Key > Paste JSON)."""
    settings = get_runtime(ctx).settings
    click.echo(json.dumps(canvas_developer_key(settings, title=title), indent=2))


@click.group("keys")
def keys_group() -> None:
    """The tool's signing keys."""


@keys_group.command("rotate")
@click.option("--purpose", type=click.Choice(tuple(keys.ALGORITHMS)), default="lti",
              show_default=True)
@click.option("--institution", "slug", default=None,
              help="Badge keys: the institution whose key to rotate (default: the only one).")
@click.pass_context
def keys_rotate(ctx: click.Context, purpose: str, slug: str | None) -> None:
    """Make a new signing key; the old one stays published (LTI: for the grace period)."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        institution_id = (institutions.resolve(db, slug).id
                          if purpose in keys.PUBLISHED_FOR_EVER else None)
        new, old = keys.rotate(db, runtime.settings, purpose, institution_id=institution_id)
        new_kid, old_kid = new.kid, old.kid if old else None
    click.echo(f"New {purpose} key: {new_kid}")
    if old_kid is None:
        click.echo("There was no previous key.")
    elif purpose in keys.PUBLISHED_FOR_EVER:
        click.echo(f"Old key {old_kid} stays published for ever, so credentials it signed "
                   "still verify.")
    else:
        click.echo(f"Old key {old_kid} stays published in /lti/jwks for "
                   f"{_duration(runtime.settings.key_grace_seconds)} (grace period).")


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""
    cli.add_command(institution_group)
    cli.add_command(platform_group)
    cli.add_command(keys_group)
