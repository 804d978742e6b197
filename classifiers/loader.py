"""Build the configured classifier."""

from __future__ import annotations

from bot.config import ClassifierSettings
from classifiers.base import Classifier
from classifiers.keywords import KeywordClassifier


def load_classifier(settings: ClassifierSettings) -> Classifier:
    """The one place that knows which classifier a configuration means."""
    if settings.kind == "keywords":
        return KeywordClassifier()
    from classifiers.model import MODEL_DIR, SpacyClassifier

    return SpacyClassifier.load(settings.model_path or MODEL_DIR)
