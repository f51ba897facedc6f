"""Claude Code's own state file (`~/.claude.json`): first-run setup for `continuum claude`.

Claude Code 2.1.x keeps its global state in `~/.claude.json`. Two entries there decide whether
a new user reaches a prompt when Claude Code points at a router:

* `hasCompletedOnboarding`: until it is true, Claude Code runs its first-run onboarding, whose
  connectivity check calls api.anthropic.com directly (ANTHROPIC_BASE_URL is ignored there,
  anthropics/claude-code#26935) and stops at "Unable to connect to Anthropic services".
* `customApiKeyResponses`: `{"approved": [...], "rejected": [...]}`, each entry the last 20
  characters of an ANTHROPIC_API_KEY. A key in neither list makes Claude Code ask "Detected a
  custom API key ... Do you want to use this API key?" with "No (recommended)" preselected; a
  rejected key leaves "Not logged in · Please run /login" on every prompt.

`setup.py` decides (pure), `store.py` finds, locks and rewrites the file.
"""
