"""The portal API adapter: the second door into pinbot's core, beside the Slack adapter
(`handlers/`). The practice's portal calls it over HTTPS to verify and redeem the PINs pinbot
issues (SPEC §11). FastAPI on uvicorn: `create_api(services)` builds the app, each route parses
a pydantic request, makes one call into `bot.portal` and returns a response model. May import
`bot` (the core), `models`, fastapi/starlette/uvicorn and pydantic; never `handlers` or Slack,
and nothing in `bot/` (outside the composition root, bot/runtime) imports it."""
