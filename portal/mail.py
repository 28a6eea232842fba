"""Development email: printed as a person reads it."""

from django.core.mail.backends.console import EmailBackend


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
