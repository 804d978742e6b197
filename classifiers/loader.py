"""Build the configured classifier."""

from __future__ import annotations

from bot.config import ClassifierSettings
from classifiers.base import Classifier
from classifiers.keywords import KeywordClassifier


def load_classifier(settings: ClassifierSettings) -> Classifier:
    """The one place that knows which classifier a configuration means."""
    del settings  # a single kind until the trained model lands
    return KeywordClassifier()
