"""The bot's one SMTP client: alerts, partner reports and In The Know replies all send here.

Failures come back as the bot's own errors, so each sender decides by kind, not by parsing:

- ``ConnectionLost``: the server cannot be reached, refused the login or TLS, or went
  away (including 421). Nothing more can be sent on this connection.
- ``AnswerLost`` (a ``ConnectionLost``): the server went silent or away after the whole
  email had been handed to it, so it may have been delivered. Senders for whom a second
  copy is worse than a late one (a reply to a member of the public) must not resend it
  blindly; alerts, where a duplicate costs little, retry it like any lost connection.
- ``TransientError``: a 4xx reply to this one email (451 "try again later", a greylist).
- ``PermanentError``: a 5xx reply to this one email (550 "no such mailbox"): retrying
  the same email will not help.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from bot.config import SmtpSettings
from bot.errors import ConfigError, PermanentError, TransientError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CHANNEL = "email"
Stage = Literal["idle", "data", "content", "handed_over"]


class ConnectionLost(TransientError):
    """The mail server is unreachable or unusable: stop this round, try again later."""


class AnswerLost(ConnectionLost):
    """The email was handed over but no answer came: it may have been delivered."""


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


class _Watched(smtplib.SMTP):
    """smtplib's client, noting how far the DATA phase got.

    Only once the whole email, final dot included, has been written can a lost answer mean
    it was delivered; a connection that breaks before then delivered nothing.
    """

    stage: Stage = "idle"

    def begin(self) -> None:
        self.stage = "idle"

    @property
    def handed_over(self) -> bool:
        """The whole email went; any answer lost after this may hide a delivery."""
        return self.stage == "handed_over"

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.stage = "data"
        return super().data(msg)

    def getreply(self) -> tuple[int, bytes]:
        code, text = super().getreply()
        if self.stage == "data" and code == 354:  # go ahead: the content is next
            self.stage = "content"
        return code, text

    def send(self, s: ReadableBuffer | str) -> None:
        super().send(s)
        if self.stage == "content":
            self.stage = "handed_over"


class _WatchedSSL(_Watched, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465)."""


class Mailer:
    """Connects on the first send and reuses the connection until closed.

    ``sender`` replaces ``smtp.from_address`` as the envelope sender (partner reports come
    from their own address); the message's own From header is the caller's to set.
    """

    def __init__(self, settings: SmtpSettings, *, sender: str | None = None) -> None:
        gaps = settings.missing()
        if sender:
            gaps = [gap for gap in gaps if gap != "smtp.from_address"]
        if gaps:
            raise ConfigError("sending email needs " + ", ".join(gaps))
        self.settings = settings
        self.sender = sender or settings.from_address or ""
        self._smtp: _Watched | None = None

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
        sender = self.sender
        smtp.begin()
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
            raise PermanentError(
                f"the mail server cannot take this email: {exc}", channel=CHANNEL
            ) from exc
        except OSError as exc:  # SMTPServerDisconnected, resets, timeouts
            handed_over = smtp.handed_over
            self.close()
            if handed_over:
                raise AnswerLost(
                    f"the mail server did not confirm the email after it was sent ({exc}); "
                    "it may have been delivered",
                    channel=CHANNEL,
                ) from exc
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
        ca = self.settings.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _connect(self) -> _Watched:
        settings = self.settings
        host, port = settings.host or "", settings.port_number
        timeout = settings.timeout_seconds
        smtp: _Watched | None = None
        try:
            if settings.security == "tls":
                smtp = _WatchedSSL(host, port, timeout=timeout, context=self._tls())
            else:
                smtp = _Watched(host, port, timeout=timeout)
            smtp.ehlo()
            if settings.security == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if settings.user:
                secret = settings.password
                smtp.login(settings.user, secret.get_secret_value() if secret else "")
        except ssl.SSLCertVerificationError as exc:
            _abandon(smtp)
            raise ConnectionLost(
                f"the mail server's certificate was not accepted ({exc.verify_message}); if a "
                "private authority signed it, set smtp.ca_file",
                channel=CHANNEL,
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            _abandon(smtp)
            raise ConnectionLost(
                f"the mail server refused the login of smtp.user ({exc.smtp_code}); "
                "check CAMPUSBOT_SMTP__PASSWORD",
                channel=CHANNEL,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _abandon(smtp)
            raise ConnectionLost(
                f"the mail server at {host}:{port} does not offer STARTTLS ({exc}); "
                "set smtp.security to tls, or ask for STARTTLS",
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
