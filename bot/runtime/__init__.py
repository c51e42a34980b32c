"""The composition root and the command line: builds the process (settings, database,
delivery worker, scheduler, the Slack app and its HTTP or Socket Mode serving) and runs the
`pinbot` verbs. The only package in `bot/` that imports the Slack adapter (`handlers`) and the
Slack libraries; nothing imports it."""
