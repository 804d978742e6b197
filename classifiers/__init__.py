"""Classifiers tag each message by scenario, urgency, risk to life and intent."""
