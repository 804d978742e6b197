"""One SMTP connection per round of alert emails, and what each failure means for a retry.

Failures come back as the bot's own errors, so the sender decides by kind, not by parsing:

- ``ConnectionLost``: the server cannot be reached, refused the login or TLS, or went
  away (including 421). Nothing more can be sent this round.
- ``TransientError``: a 4xx reply to this one email (451 "try again later", a greylist).
- ``PermanentError``: a 5xx reply to this one email (550 "no such mailbox"): retrying
  the same email will not help.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from types import TracebackType

from bot.config import AlertSettings
from bot.errors import PermanentError, TransientError

CHANNEL = "email"


class ConnectionLost(TransientError):
    """The mail server is unreachable or unusable: stop this round, try again later."""


class TemporaryRefusal(TransientError):
    """A 4xx reply to one email."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message, channel=CHANNEL)
        self.code = code


class PermanentRefusal(PermanentError):
    """A 5xx reply to one email."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message, channel=CHANNEL)
        self.code = code


def reply_code(error: Exception) -> str:
    """The SMTP reply code, or the kind of failure: what the audit log keeps of an error."""
    if isinstance(error, TemporaryRefusal | PermanentRefusal):
        return str(error.code)
    return type(error).__name__


def _refusal(code: int, reply: bytes | str, what: str) -> TransientError | PermanentError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    message = f"{what}: {code} {text}".strip()
    if code == 421:  # the server is closing the connection
        return ConnectionLost(message, channel=CHANNEL)
    if 400 <= code < 500:
        return TemporaryRefusal(message, code=code)
    return PermanentRefusal(message, code=code)


class Mailer:
    """Connects on the first send and reuses the connection until closed."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, message: EmailMessage, recipient: str) -> None:
        smtp = self._smtp or self._connect()
        sender = self.settings.from_address
        try:
            smtp.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise self._after(_refusal(code, reply, "recipient refused")) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise self._after(
                _refusal(exc.smtp_code, exc.smtp_error, f"sender {sender} refused")
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise self._after(_refusal(exc.smtp_code, exc.smtp_error, "message refused")) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"the mail server cannot take this email: {exc}") from exc
        except OSError as exc:  # SMTPServerDisconnected, resets, timeouts
            self.close()
            raise ConnectionLost(f"lost the mail server mid-send: {exc}", channel=CHANNEL) from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def _after(self, error: TransientError | PermanentError) -> TransientError | PermanentError:
        if isinstance(error, ConnectionLost):
            self.close()
        return error

    def _tls(self) -> ssl.SSLContext:
        ca = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        host, port = settings.smtp_host or "", settings.smtp_port_number
        timeout = settings.smtp_timeout_seconds
        smtp: smtplib.SMTP | None = None
        try:
            if settings.smtp_security == "tls":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            smtp.ehlo()
            if settings.smtp_security == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if settings.smtp_user:
                secret = settings.smtp_password
                smtp.login(settings.smtp_user, secret.get_secret_value() if secret else "")
        except ssl.SSLCertVerificationError as exc:
            _abandon(smtp)
            raise ConnectionLost(
                f"the mail server's certificate was not accepted ({exc.verify_message}); if a "
                "private authority signed it, set alerts.smtp_ca_file",
                channel=CHANNEL,
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            _abandon(smtp)
            raise ConnectionLost(
                f"the mail server refused the login of alerts.smtp_user ({exc.smtp_code}); "
                "check CAMPUSBOT_ALERTS__SMTP_PASSWORD",
                channel=CHANNEL,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _abandon(smtp)
            raise ConnectionLost(
                f"the mail server at {host}:{port} does not offer STARTTLS: {exc}",
                channel=CHANNEL,
            ) from exc
        except OSError as exc:  # refused, unreachable, timed out, or an SMTP error reply
            _abandon(smtp)
            raise ConnectionLost(
                f"cannot use the mail server at {host}:{port}: {exc}", channel=CHANNEL
            ) from exc
        self._smtp = smtp
        return smtp


def _abandon(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()
