"""Reading a survey's answers out of an In The Know reply (an email a member writes).

Members answer by question number, one or more answers a line::

    1 B            1B           Q1: yes        Question 1 - b       1) B
    2: A, C        (several choices of a multiple choice question)
    3 4            (a rating from 1 to 5)
    4: the path by the library is dark     (free text, to the end of the line and on
                                            following lines that start no new answer)
    1B 2A 3 4      (several answers on one line, in question order)

A choice is named by its letter, its number in the list, or its wording. Anything not
understood - a line that answers no question, or a choice that is not in the list - is kept
as the reply's free text with the reason, never dropped. A reply with no question numbers at
all is free text, unless the survey has a single question, which it then answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.surveys import Given, Question, QuestionKind, Survey, problem_with

_MARKER = re.compile(
    r"(?P<q>q(?:uestion)?\s*\.?\s*)?(?P<n>[0-9]{1,2})"
    r"(?:(?P<sep>\s*[:.)\]=-]\s*)|(?P<space>\s+)|(?=[^\W\d_]\b))",
    re.IGNORECASE,
)
_NEXT = re.compile(r"(?<=[\s,;])")  # where a later answer may start on the same line
_SPLIT_LIST = re.compile(r"\s*[,;/]\s*")
_SPLIT_AND = re.compile(r"\s*(?:[&+]|\band\b)\s*", re.IGNORECASE)
_RATING = re.compile(r"^([1-5])(?:\s*(?:/\s*5|out of 5|stars?))?$", re.IGNORECASE)
_EDGES = " \t\"'`.!?()[]"


@dataclass
class ParsedReply:
    answers: list[Given] = field(default_factory=list)
    leftover: list[str] = field(default_factory=list)  # text that answered nothing
    problems: list[str] = field(default_factory=list)  # why parts went to the leftover

    @property
    def free_text(self) -> str:
        return "\n".join(self.leftover).strip()


def _norm(value: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", value.casefold()))


def _one_choice(question: Question, token: str) -> str | None:
    """The key a single token or phrase names: letter, number in the list, or wording."""
    value = token.strip(_EDGES)
    options = question.options()
    if question.kind is QuestionKind.RATING:
        found = _RATING.match(value)
        return found.group(1) if found else None
    wanted = _norm(value)
    for option in options:
        if wanted and wanted in (_norm(option.label), _norm(option.key)):
            return option.key
    if len(value) == 1 and value.isascii() and value.isalpha():
        index = ord(value.casefold()) - ord("a")
        return options[index].key if 0 <= index < len(options) else None
    if value.isascii() and value.isdigit() and 1 <= int(value) <= len(options):
        return options[int(value) - 1].key
    return None


def _named(question: Question, part: str) -> list[str] | None:
    """Keys in one comma-separated part: a whole wording, wordings joined by "and", or
    letters and numbers ("A C", "1 3")."""
    if not part:
        return []
    whole = _one_choice(question, part)
    if whole is not None:
        return [whole]
    pieces = [p for p in _SPLIT_AND.split(part) if p]
    if len(pieces) > 1:
        keys = [_one_choice(question, p) for p in pieces]
        if all(k is not None for k in keys):
            return [k for k in keys if k is not None]
    tokens = [_one_choice(question, t) for t in part.split()]
    return [k for k in tokens if k is not None] if all(k is not None for k in tokens) else None


def interpret(question: Question, value: str) -> tuple[str, ...] | None:
    """The choice keys ``value`` names for a choice or rating question; None if not all
    of it is understood."""
    whole = _one_choice(question, value)
    if whole is not None:
        return (whole,)
    if question.kind is not QuestionKind.MULTIPLE:
        return None
    keys: list[str] = []
    for part in _SPLIT_LIST.split(value.strip(_EDGES)):
        named = _named(question, part)
        if named is None:
            return None
        keys += named
    return tuple(dict.fromkeys(keys)) or None


def _marker_at(survey: Survey, text: str, pos: int, after: int) -> re.Match[str] | None:
    """A question number starting exactly at ``pos`` for a question after ``after``.

    Free text needs a clear marker ("Q4", "4:"), so "2 people saw it" stays free text.
    """
    found = _MARKER.match(text, pos)
    if found is None:
        return None
    number = int(found.group("n"))
    if not after < number <= len(survey.questions):
        return None
    question = survey.questions[number - 1]
    clear = found.group("q") or found.group("sep")
    if question.kind is QuestionKind.TEXT and not clear:
        return None
    if found.end() >= len(text.rstrip()):  # a number with nothing after it answers nothing
        return None
    return found


def _segments(survey: Survey, line: str) -> list[tuple[int, str, str]] | None:
    """(question number, answer, original text) for each answer on the line, or None."""
    first = _marker_at(survey, line, 0, 0)
    if first is None:
        return None
    found: list[tuple[int, re.Match[str]]] = [(int(first.group("n")), first)]
    while survey.questions[found[-1][0] - 1].kind is not QuestionKind.TEXT:
        number, current = found[-1]
        later = None
        for boundary in _NEXT.finditer(line, current.end()):
            if not line[current.end() : boundary.start()].strip(" \t,;"):
                continue  # this answer has not started yet
            later = _marker_at(survey, line, boundary.start(), number)
            if later is not None:
                break
        if later is None:
            break
        found.append((int(later.group("n")), later))
    out = []
    for i, (number, match) in enumerate(found):
        end = found[i + 1][1].start() if i + 1 < len(found) else len(line)
        answer = line[match.end() : end].strip(" \t,;")
        out.append((number, answer, line[match.start() : end].strip()))
    return out


def parse_reply(text: str, survey: Survey) -> ParsedReply:
    """Answers and leftover free text of one reply; nothing in ``text`` is lost."""
    parsed = ParsedReply()
    open_text: Given | None = None  # a free-text answer that may go on over more lines
    by_question: dict[str, Given] = {}
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        segments = _segments(survey, line)
        if segments is None:
            if open_text is not None:
                open_text = Given(open_text.question, text=f"{open_text.text}\n{line}")
                by_question[open_text.question] = open_text
            else:
                parsed.leftover.append(line)
            continue
        open_text = None
        not_understood: list[str] = []  # kept as one line, as it was written
        for number, answer, original in segments:
            question = survey.questions[number - 1]
            if question.key in by_question:
                not_understood.append(original)
                parsed.problems.append(f"question {number} was answered twice")
                continue
            if question.kind is QuestionKind.TEXT:
                given = Given(question.key, text=answer)
                open_text = given
            else:
                keys = interpret(question, answer)
                if keys is None:
                    not_understood.append(original)
                    parsed.problems.append(
                        f'question {number}: "{answer[:60]}" is not one of its choices'
                    )
                    continue
                given = Given(question.key, choices=keys)
            by_question[question.key] = given
        if not_understood:
            parsed.leftover.append(" ".join(not_understood))
    if not by_question and len(survey.questions) == 1 and parsed.leftover:
        return _single_question(survey, parsed)
    for given in by_question.values():
        asked = survey.question(given.question)
        problem = problem_with(survey, asked, given) if asked else "unknown question"
        if problem:  # too long, too many choices: keep the words, say why
            parsed.leftover.append(given.text or " ".join(given.choices))
            parsed.problems.append(problem)
        else:
            parsed.answers.append(given)
    return parsed


def _single_question(survey: Survey, parsed: ParsedReply) -> ParsedReply:
    """A reply with no numbers to a one-question survey answers that question."""
    question = survey.questions[0]
    whole = "\n".join(parsed.leftover)
    if question.kind is QuestionKind.TEXT:
        given = Given(question.key, text=whole)
    else:
        keys = interpret(question, whole)
        if keys is None:
            return parsed
        given = Given(question.key, choices=keys)
    if problem_with(survey, question, given):
        return parsed
    return ParsedReply(answers=[given])
