"""Incident and intelligence reports: the DM conversation, the web form, and their media.

- ``desk.run_round(app)``: the worker's job (conversations, idle reports, media downloads);
- ``web.file_web_report`` / ``web.add_to_report``: what the /report pages do;
- ``signals``: the under-18 and sexual-offence detectors and the reply parsing;
- ``replies.REPORT_TEMPLATES``: the automatic reply templates an officer approves.
"""

from bot.incident_reports.desk import DeskReport, run_round
from bot.incident_reports.replies import REPORT_TEMPLATES

__all__ = ["REPORT_TEMPLATES", "DeskReport", "run_round"]
