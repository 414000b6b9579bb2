"""``manage.py api_token USER [--name NAME] [--revoke [--prefix PREFIX]]``: make or revoke API tokens.

A new key is printed once, alone on its line on stdout (``KEY=$(manage.py api_token ops)``), and never
again: only its hash is kept. Nothing here logs the key.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.api_tokens import KEY_PREFIX_CHARS, token_create, tokens_revoke
from scheduler.plain_text import one_line

#: Exit status for a user or option the command cannot use (argparse's own).
BAD_ARGUMENT = 2


class Command(BaseCommand):
    help = (
        "Make an API token for USER and print its key once (stdout: the key alone on one line), or with "
        "--revoke revoke all of USER's live tokens (or only the one whose key starts with --prefix)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="The username the token acts as, with that user's permissions.")
        parser.add_argument("--name", default="", help="What the token is for, e.g. 'report portal'.")
        parser.add_argument("--revoke", action="store_true", help="Revoke USER's live tokens instead.")
        parser.add_argument(
            "--prefix",
            default=None,
            help=f"With --revoke: only the token whose key starts with these {KEY_PREFIX_CHARS} characters.",
        )

    def handle(self, *args: Any, user: str, name: str, revoke: bool, prefix: str | None, **options: Any) -> None:
        model = get_user_model()
        found = model.objects.filter(**{model.USERNAME_FIELD: user}).first()
        if found is None:
            raise CommandError(f"no user named {one_line(user, 80)!r}", returncode=BAD_ARGUMENT)
        if prefix is not None and not revoke:
            raise CommandError("--prefix goes with --revoke", returncode=BAD_ARGUMENT)
        if revoke:
            count = tokens_revoke(user=found, key_prefix=prefix)
            # stderr: stdout stays for keys, and a script capturing it gets nothing here.
            self.stderr.write(f"revoked {count} token(s) of {one_line(user, 80)}")
            return
        if not found.is_active:
            self.stderr.write(
                self.style.WARNING(f"{one_line(user, 80)} is inactive: the token is refused until they are active")
            )
        token, key = token_create(user=found, name=name)
        self.stderr.write(f"made token {token.key_prefix}… for {one_line(user, 80)}; the key is shown once:")
        self.stdout.write(key)
