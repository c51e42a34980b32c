"""What a parent holds: the printed PIN letters (reportlab, in memory) and the welcome email,
in words from one locale file per language. Pure functions of plain data; no database and no
Slack. May import bot's top-level modules."""
