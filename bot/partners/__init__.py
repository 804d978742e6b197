"""Partner agencies: grading intelligence (3x5x2) and sending redacted reports by email.

- ``grading``: the 3x5x2 codes, ``parse_grade``, ``grade_case``.
- ``report``: the sharing rules and what of a case may leave (``prepare``).
- ``sending``: ``compose`` (the dry run), ``send_report``, ``retry``, ``sendings``.
"""
