"""Adoption reports (SPEC §10): the reports package owns the adoption figures — per ISO week, the
PINs issued, how many were emailed and how many printed, how many were registered within 30 days
and that rate, overall, per delivery mode and per letter language — and their renderings: the
PNG chart posted every Monday, its alt text, a CSV and a terminal table. Figures are counts only,
never names, chart ids or dates of birth. It may import bot's top-level modules and `models`;
it never imports slack_sdk, slack_bolt or `handlers` (mrkdwn and Block Kit belong to handlers).
"""
