"""The safety rules: phrase patterns for risk to life and urgency, aware of negation.

The trained model generalises; these rules make sure the unmistakable phrases are never
missed because the model happened not to see them in training. A match is ignored when it
is negated ("no knife", "he didn't have a blade"), asked about hypothetically ("what should
I do if someone overdoses"), or clearly over ("last month", "I'm safe now").

They run as a spaCy component, ``safety_rules``, that sets ``doc._.risk_rule`` and
``doc._.urgent_rule`` (the matched phrase, or ``None``).
"""

from __future__ import annotations

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

RISK_PHRASES = [
    # suicide and self-harm, in the first person or about someone now
    "kill myself",
    "killing myself",
    "kill my self",
    "end my life",
    "end it all",
    "ending it all",
    "take my own life",
    "take my life",
    "i'm suicidal",
    "feeling suicidal",
    "feel suicidal",
    "want to die",
    "wanna die",
    "want to be dead",
    "wish i was dead",
    "wish i were dead",
    "don't want to be here anymore",
    "don't want to be alive",
    "don't want to live",
    "better off without me",
    "better off dead",
    "no reason to live",
    "no point living",
    "no point in living",
    "can't go on",
    "cannot go on",
    "cutting myself",
    "cut myself",
    "hurt myself tonight",
    "going to hurt myself",
    "gonna hurt myself",
    "harm myself tonight",
    "taken an overdose",
    "took an overdose",
    "has overdosed",
    "he's overdosed",
    "she's overdosed",
    "taken all my",
    "took all my",
    "taken a load of",
    "took a load of",
    "swallowed a load",
    "pills lined up",
    "going to jump",
    "gonna jump",
    "jump in the river",
    "jumped in the river",
    "in the river",
    "in the ribble",
    "on the ledge",
    "off the bridge",
    "written a note",
    "wrote a note",
    "my goodbyes",
    "said goodbye to everyone",
    "won't be around",
    "won't be here tomorrow",
    "tonight's the night",
    "giving my stuff away",
    # immediate danger to life
    "been stabbed",
    "got stabbed",
    "stabbed him",
    "stabbed her",
    "stabbed me",
    "he's stabbed",
    "shot at",
    "been shot",
    "not breathing",
    "isn't breathing",
    "stopped breathing",
    "unconscious",
    "unresponsive",
    "won't wake up",
    "can't wake",
    "turning blue",
    "lips are blue",
    "lips look blue",
    "having a fit",
    "fitting on the floor",
    "bleeding heavily",
    "bleeding loads",
    "bleeding badly",
    "lot of blood",
    "loads of blood",
    "so much blood",
    "strangling",
    "choking her",
    "choking him",
    "threatening to kill",
    "going to kill me",
    "gonna kill me",
    "going to kill her",
    "going to kill him",
    "head injury",
    "trapped inside",
    "people inside",
    "collapsed",
    "not moving",
    "driving at people",
    "drove at people",
    "brandishing a bat",
    "brandishing a blade",
    "brandishing a bottle",
    "brandishing a broken bottle",
    "brandishing a gun",
    "brandishing a knife",
    "brandishing a machete",
    "brandishing a shank",
    "came at me with a bat",
    "came at me with a blade",
    "came at me with a bottle",
    "came at me with a broken bottle",
    "came at me with a gun",
    "came at me with a knife",
    "came at me with a machete",
    "came at me with a shank",
    "got a bat",
    "got a blade",
    "got a bottle",
    "got a broken bottle",
    "got a gun",
    "got a knife",
    "got a machete",
    "got a shank",
    "has a bat",
    "has a blade",
    "has a bottle",
    "has a broken bottle",
    "has a gun",
    "has a knife",
    "has a machete",
    "has a shank",
    "has got a bat",
    "has got a blade",
    "has got a bottle",
    "has got a broken bottle",
    "has got a gun",
    "has got a knife",
    "has got a machete",
    "has got a shank",
    "holding a bat",
    "holding a blade",
    "holding a bottle",
    "holding a broken bottle",
    "holding a gun",
    "holding a knife",
    "holding a machete",
    "holding a shank",
    "pointing a bat",
    "pointing a blade",
    "pointing a bottle",
    "pointing a broken bottle",
    "pointing a gun",
    "pointing a knife",
    "pointing a machete",
    "pointing a shank",
    "pulled a bat",
    "pulled a blade",
    "pulled a bottle",
    "pulled a broken bottle",
    "pulled a gun",
    "pulled a knife",
    "pulled a machete",
    "pulled a shank",
    "pulling a bat",
    "pulling a blade",
    "pulling a bottle",
    "pulling a broken bottle",
    "pulling a gun",
    "pulling a knife",
    "pulling a machete",
    "pulling a shank",
    "threatened me with a bat",
    "threatened me with a blade",
    "threatened me with a bottle",
    "threatened me with a broken bottle",
    "threatened me with a gun",
    "threatened me with a knife",
    "threatened me with a machete",
    "threatened me with a shank",
    "threatening me with a bat",
    "threatening me with a blade",
    "threatening me with a bottle",
    "threatening me with a broken bottle",
    "threatening me with a gun",
    "threatening me with a knife",
    "threatening me with a machete",
    "threatening me with a shank",
    "waving a bat",
    "waving a blade",
    "waving a bottle",
    "waving a broken bottle",
    "waving a gun",
    "waving a knife",
    "waving a machete",
    "waving a shank",
    "with a blade",
    "with a bottle",
    "with a broken bottle",
    "with a gun",
    "with a knife",
    "with a machete",
    "with a shank",
]
URGENT_PHRASES = [
    "right now",
    "as we speak",
    "as i type",
    "happening now",
    "still happening",
    "in progress",
    "ongoing",
    "following me",
    "followed me home",
    "being followed",
    "outside my door",
    "at my door",
    "at the door",
    "banging on",
    "trying to get in",
    "trying the door",
    "trying my door",
    "breaking in",
    "broke in and",
    "still here",
    "still there",
    "still outside",
    "still in the",
    "send someone",
    "please come",
    "come quick",
    "call 999",
    "called 999",
    "rung 999",
    "ringing 999",
    "ambulance",
    "help me",
    "help us",
    "please help",
    "someone help",
    "need help",
    "hurry",
    "asap",
    "urgent",
    "emergency",
    "kicking off",
    "attacking",
    "being attacked",
    "won't leave",
    "refusing to leave",
    "can't stand up",
    "scared for my life",
    "i'm hiding",
    "locked myself in",
]
NEGATIONS = {
    "no",
    "not",
    "never",
    "didn't",
    "doesn't",
    "wasn't",
    "weren't",
    "isn't",
    "without",
    "nobody",
    "nothing",
    "none",
    "hasn't",
    "haven't",
    "don't",
    "won't",
    "wouldn't",
    "neither",
    "nor",
    "n't",
}
HYPOTHETICAL_CUES = [
    "if a friend",
    "if my friend",
    "if a mate",
    "what should i say",
    "am i supposed to",
    "used to",
    "campaign",
    "documentary",
    "episode",
    "series",
    "film",
    "rumour",
    "what should i do if",
    "what do i do if",
    "what do you do if",
    "what to do if",
    "what would happen if",
    "what happens if",
    "what if",
    "how do i",
    "how do you",
    "how can i",
    "how should",
    "is it illegal",
    "signs of",
    "if someone",
    "if you see",
    "in case",
    "hypothetically",
    "first aid course",
    "what's the law",
]
OVER_CUES = [
    "last week",
    "last month",
    "last year",
    "last term",
    "years ago",
    "months ago",
    "weeks ago",
    "in first year",
    "when i was",
    "i'm safe now",
    "i'm fine now",
    "i am safe now",
    "all fine now",
    "all ok now",
    "sorted now",
    "no one was hurt",
    "nobody was hurt",
    "no one got hurt",
    "nobody got hurt",
]
_NEGATION_WINDOW = 3
CLAUSE_BREAKS = {".", "!", "?", ",", ";", "but", "\n"}

Doc.set_extension("risk_rule", default=None, force=True)
Doc.set_extension("urgent_rule", default=None, force=True)


class SafetyRules:
    def __init__(self, nlp: Language) -> None:
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.cues = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.matcher.add("RISK", [nlp.make_doc(p) for p in RISK_PHRASES])
        self.matcher.add("URGENT", [nlp.make_doc(p) for p in URGENT_PHRASES])
        self.cues.add("HYPOTHETICAL", [nlp.make_doc(p) for p in HYPOTHETICAL_CUES])
        self.cues.add("OVER", [nlp.make_doc(p) for p in OVER_CUES])
        self._risk = nlp.vocab.strings["RISK"]

    def __call__(self, doc: Doc) -> Doc:
        matches = self.matcher(doc)
        if not matches:
            return doc
        # A hypothetical ("what should I do if") or a sign it is over ("last year") silences
        # the matches in its own clause only: "man with a knife outside right now, how do I
        # get out" still fires.
        cue_clauses = {_clause_start(doc[start:end]) for _, start, end in self.cues(doc)}
        for match_id, start, end in matches:
            span = doc[start:end]
            if _clause_start(span) in cue_clauses or self._negated(span):
                continue
            if match_id == self._risk:
                doc._.risk_rule = doc._.risk_rule or span.text
            doc._.urgent_rule = doc._.urgent_rule or span.text
        return doc

    @staticmethod
    def _negated(span: Span) -> bool:
        window = span.doc[max(span.start - _NEGATION_WINDOW, _clause_start(span)) : span.start]
        return any(token.lower_ in NEGATIONS for token in window)


def _clause_start(span: Span) -> int:
    """Start of the span's clause: negation does not reach across . ! ? , or 'but'."""
    for index in range(span.start - 1, -1, -1):
        if span.doc[index].lower_ in CLAUSE_BREAKS:
            return index + 1
    return 0


@Language.factory("safety_rules")
def make_safety_rules(nlp: Language, name: str) -> SafetyRules:
    return SafetyRules(nlp)
