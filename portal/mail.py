"""Emails as people read them: each written in French then English (a person's language
is not known when they are written to), and printed whole in development."""

from collections.abc import Callable

from django.core import mail
from django.core.mail.backends.console import EmailBackend
from django.template.loader import render_to_string
from django.utils import translation

LANGUAGES = ("fr", "en")


def send_bilingual(to: str, subject, body: Callable[[], str] | str, context: dict | None = None) -> None:
    """Send one email to ``to`` written in each of LANGUAGES: the subjects joined by " / ",
    the bodies one after the other. ``subject`` is a lazy translation; ``body`` a template
    name (rendered with ``context``) or a function giving the text, each called under the
    language's translation."""
    parts = []
    for language in LANGUAGES:
        with translation.override(language):
            text = body() if callable(body) else render_to_string(body, context or {})
            parts.append((str(subject), text.strip()))
    mail.send_mail(  # looked up when sent: a test may stand a failing server in
        " / ".join(subject for subject, _text in parts),
        "\n\n---\n\n".join(text for _s, text in parts) + "\n",
        None,
        [to],
    )


class ReadableConsoleBackend(EmailBackend):
    """Django's console backend prints the raw MIME message: quoted-printable text, so
    accents show as =C3=A9 and links break across lines. This prints the headers a
    person reads and the text itself, decoded, every link whole."""

    def write_message(self, message):
        headers = [
            ("From", message.from_email),
            ("To", ", ".join(message.to)),
            ("Subject", message.subject),
        ]
        text = [f"{name}: {value}" for name, value in headers if value]
        text += ["", message.body.rstrip()]
        others = [alternative.mimetype for alternative in getattr(message, "alternatives", [])]
        if others:
            text.append(f"(also sent as {', '.join(others)})")
        self.stream.write("\n".join(text) + "\n" + "-" * 79 + "\n")
