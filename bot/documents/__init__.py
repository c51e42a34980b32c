"""What a parent holds: the printed PIN letters (reportlab, in memory, with embedded DejaVu
fonts), the welcome email and the synthetic sample letters, in words from one locale file per
language. Pure functions of plain data; no database and no Slack. May import bot's top-level
modules."""
