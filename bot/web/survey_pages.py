"""The public survey page, /survey/<code>: no sign-in, one response per browser.

``<code>`` is a campaign's per-channel tracking code (the redirect /s/<code> counts the click
and sends the student here), so the response records the channel the link was posted on;
a survey's own id works too, for a poster or an email ("direct").

- One response per browser: a random cookie, of which only a per-survey SHA-256 is stored
  (a unique constraint, so two tabs sending at once still make one response). No IP
  address or sign-in is kept or asked for.
- The form is CSRF-safe without a session: the cookie is SameSite=Lax, the form carries an
  HMAC of it (double submit), and a request whose Origin names another site is refused.
- Answers are checked against the survey's definition; anything wrong comes back as 422
  with the form as it was sent and each problem in words, so nothing typed is lost.
- Free text is shown inert (autoescaped) wherever it appears, and tagged with scenarios
  by the classifier; if tagging fails, `campusbot surveys collect` tags it later.

Include it with ``web.include_router(survey_pages.router(bot))`` in ``create_app``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import exists, select

from bot.app import App
from bot.errors import ConfigError
from bot.models import SurveyLink
from bot.models.survey import SurveyResponse
from bot.survey_store import WEB, Arrival, record_response, respondent_digest, tag_free_text
from bot.surveys import (
    AnswersRefused,
    Given,
    QuestionKind,
    Survey,
    campaign_surveys,
    check_answers,
    load_surveys,
)
from bot.web.render import render
from channels.base import read_capped
from schedules.campaigns import load_campaigns

log = logging.getLogger(__name__)

COOKIE = "campusbot_survey"
COOKIE_MAX_AGE = 365 * 24 * 3600
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
_CODE = re.compile(r"[A-Za-z0-9_-]{3,64}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class _Opened:
    survey: Survey
    arrival: Arrival


def _open(bot: App, code: str) -> _Opened | str | None:
    """The survey a code leads to and where the visitor came from; a URL when the code
    leads to an external survey; None when it leads nowhere."""
    if not _CODE.fullmatch(code):
        return None
    surveys = {s.id: s for s in load_surveys(bot.settings.surveys_dir)}
    with bot.db.session() as session:
        links = SurveyLink.__table__.c  # type: ignore[attr-defined]
        link = session.execute(
            select(links.id, links.campaign, links.channel, links.target_url).where(
                links.code == code
            )
        ).first()
    if link is None:
        found = surveys.get(code)
        return _Opened(found, Arrival(WEB)) if found else None
    survey_id = campaign_surveys(load_campaigns(bot.settings.campaigns_dir)).get(link.campaign)
    survey = surveys.get(survey_id or "")
    if survey is None:  # the campaign links to an external survey: go there
        return None if link.target_url.endswith(f"/survey/{code}") else link.target_url
    return _Opened(
        survey, Arrival(WEB, channel=link.channel, campaign=link.campaign, link_id=link.id)
    )


def _csrf(token: str, code: str) -> str:
    return hmac.new(token.encode(), f"survey-form:{code}".encode(), hashlib.sha256).hexdigest()


def _browser(request: Request) -> tuple[str, bool]:
    """This browser's token, and whether it is new (to be set as a cookie)."""
    value = request.cookies.get(COOKIE, "")
    if _TOKEN.fullmatch(value):
        return value, False
    return secrets.token_urlsafe(32), True


def _with_cookie(bot: App, response: Response, token: str, new: bool) -> Response:
    if new:
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_MAX_AGE,
            path="/survey",
            httponly=True,
            samesite="lax",  # sent when a student follows a link from Twitter, not on a
            secure=bot.settings.web.secure_cookies,  # cross-site POST
        )
    return response


def _answered(bot: App, survey: Survey, token: str) -> bool:
    r = SurveyResponse.__table__.c  # type: ignore[attr-defined]
    with bot.db.session() as session:
        return bool(
            session.execute(
                select(
                    exists().where(
                        r.survey_id == survey.id,
                        r.respondent == respondent_digest(survey.id, token),
                    )
                )
            ).scalar()
        )


def _notice(
    request: Request, title: str, message: str, *, status: int = 200, survey: Survey | None = None
) -> Response:
    return render(
        request,
        "survey/notice.html",
        {"title": title, "message": message, "survey": survey},
        who=None,
        status_code=status,
    )


def _form(
    request: Request,
    opened: _Opened,
    code: str,
    token: str,
    *,
    values: Mapping[str, list[str]] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "survey/form.html",
        {
            "survey": opened.survey,
            "code": code,
            "csrf_token": _csrf(token, code),
            "values": values or {},
            "errors": errors or {},
            "kinds": QuestionKind,
        },
        who=None,
        status_code=status,
    )


def _not_open(request: Request, bot: App, survey: Survey) -> Response | None:
    state = survey.state(bot.clock.now(), bot.settings.tz)
    if state == "not_yet" and survey.opens:
        return _notice(
            request,
            survey.title,
            f"This survey opens on {survey.opens.strftime('%A %d %B %Y')}.",
            status=409 if request.method == "POST" else 200,
            survey=survey,
        )
    if state == "closed" and survey.closes:
        return _notice(
            request,
            survey.title,
            f"This survey closed on {survey.closes.strftime('%A %d %B %Y')}. Thank you for "
            "your interest.",
            status=410,
            survey=survey,
        )
    return None


def _given(survey: Survey, fields: Mapping[str, list[str]]) -> list[Given]:
    """The form's fields as answers; an unknown question is kept, to be refused by name."""
    given: list[Given] = []
    for name, sent in fields.items():
        if not name.startswith("q_"):
            continue
        key = name[2:]
        question = survey.question(key)
        if question is None:
            given.append(Given(key, choices=tuple(sent)))
        elif question.kind is QuestionKind.TEXT:
            text = "\n".join(v.replace("\r\n", "\n").strip() for v in sent if v.strip())
            given.append(Given(key, text=text or None))
        else:
            given.append(Given(key, choices=tuple(v for v in sent if v)))
    return given


def _foreign_origin(request: Request) -> bool:
    """An Origin naming another site (a cross-site form). "null", which browsers send under
    our no-referrer policy, is not evidence either way: the cookie and token decide."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


def router(bot: App) -> APIRouter:
    routes = APIRouter(prefix="/survey")

    def unavailable(request: Request, exc: ConfigError) -> Response:
        log.error("survey definitions cannot be read: %s", exc)
        return _notice(
            request,
            "Survey unavailable",
            "This survey cannot be shown just now. Please try again later.",
            status=503,
        )

    @routes.get("/{code}")
    def show(request: Request, code: str) -> Response:
        try:
            opened = _open(bot, code)
        except ConfigError as exc:
            return unavailable(request, exc)
        if opened is None:
            return _notice(request, "Not found", "There is no survey at this address.", status=404)
        if isinstance(opened, str):
            return RedirectResponse(opened, status_code=302)
        if opened.survey.external_url is not None:
            return RedirectResponse(str(opened.survey.external_url), status_code=302)
        refused = _not_open(request, bot, opened.survey)
        if refused is not None:
            return refused
        token, new = _browser(request)
        if not new and _answered(bot, opened.survey, token):
            return _notice(
                request,
                opened.survey.title,
                "Thank you: we have your answers. Only one response per person is counted.",
                survey=opened.survey,
            )
        return _with_cookie(bot, _form(request, opened, code, token), token, new)

    def submit(request: Request, code: str, fields: dict[str, list[str]]) -> Response:
        try:
            opened = _open(bot, code)
        except ConfigError as exc:
            return unavailable(request, exc)
        if opened is None or isinstance(opened, str) or opened.survey.external_url is not None:
            return _notice(request, "Not found", "There is no survey at this address.", status=404)
        refused = _not_open(request, bot, opened.survey)
        if refused is not None:
            return refused
        survey = opened.survey
        token, new = _browser(request)
        sent = fields.get("csrf_token", [""])[0]
        if new or not hmac.compare_digest(sent.encode(), _csrf(token, code).encode()):
            # Nothing is lost: the answers come back in the form, ready to send again.
            return _with_cookie(
                bot,
                _form(
                    request,
                    opened,
                    code,
                    token,
                    values=fields,
                    errors={
                        "_form": "Your answers were not sent because this page had expired or "
                        "your browser blocked its cookie. Please check them and send again."
                    },
                    status=403,
                ),
                token,
                new,
            )
        try:
            answers = check_answers(survey, _given(survey, fields))
        except AnswersRefused as exc:
            return _form(
                request, opened, code, token, values=fields, errors=exc.problems, status=422
            )
        now = bot.clock.now()
        with bot.db.session() as session:
            recorded = record_response(
                session,
                survey,
                answers,
                arrival=opened.arrival,
                tz=bot.settings.tz,
                at=now,
                respondent=respondent_digest(survey.id, token),
            )
        if recorded is not None and any(a.text for a in answers):
            try:
                with bot.db.session() as session:
                    tag_free_text(session, bot.classifier, at=now)
            except Exception:  # tagged by the next `surveys collect` instead
                log.exception("survey free text could not be tagged now")
        return RedirectResponse(f"/survey/{code}", status_code=303)

    @routes.post("/{code}")
    async def answer(request: Request, code: str) -> Response:
        if _foreign_origin(request):
            return _notice(
                request, "Not sent", "Answers can only be sent from this site.", status=403
            )
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != FORM_TYPE:
            return _notice(
                request, "Not sent", "Send the answers with the survey's form.", status=415
            )
        body = await read_capped(request, MAX_FORM_BYTES)
        if body is None:
            return _notice(
                request,
                "Too long",
                f"The answers are over {MAX_FORM_BYTES // 1024} KB; please shorten them.",
                status=413,
            )
        try:
            fields = parse_qs(
                body.decode("utf-8", errors="replace"),
                keep_blank_values=True,
                max_num_fields=MAX_FIELDS,
            )
        except ValueError:
            return _notice(request, "Not sent", "The form has too many fields.", status=413)
        return await run_in_threadpool(submit, request, code, fields)

    return routes
