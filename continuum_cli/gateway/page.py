"""The verification page's HTML (RFC 8628 §3.3): plain, accessible, no script.

The user code arrives pre-filled from `verification_uri_complete` and is never submitted by
itself (§5.4: the person must look at it and act).
"""

from __future__ import annotations

from html import escape

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;
color:#1b1b1b;background:#fff}
h1{font-size:1.5rem}label{display:block;margin-top:1rem;font-weight:600}
input{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem;
border:1px solid #555;border-radius:4px}
#user_code{font-family:ui-monospace,monospace;letter-spacing:.15em;text-transform:uppercase}
.actions{margin-top:1.5rem;display:flex;gap:1rem}
button{font:inherit;padding:.5rem 1.25rem;border-radius:4px;border:1px solid #1b1b1b;
cursor:pointer}
button[value=approve]{background:#1b1b1b;color:#fff}
.notice{padding:.75rem;border-left:4px solid #555;background:#f3f3f3}
.error{padding:.75rem;border-left:4px solid #b00020;background:#fdecee}
.done{padding:.75rem;border-left:4px solid #1e7b34;background:#e9f6ec}
:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}
"""


def _document(title: str, body: str) -> bytes:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} · continuum</title><style>{_STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>").encode()


def form(csrf_token: str, user_code: str = "", error: str | None = None,
         notice: str | None = None, action: str = "device") -> bytes:
    parts = ["<h1>Sign in Claude Code</h1>",
             "<p>Check that the code below is the one your terminal shows, then sign in with "
             "your continuum API key.</p>"]
    if notice:
        parts.append(f'<p class="notice">{escape(notice)}</p>')
    if error:
        parts.append(f'<p class="error" role="alert" id="error">{escape(error)}</p>')
    described = ' aria-describedby="error" aria-invalid="true"' if error else ""
    # focus where the person types next: the key when the code came pre-filled
    code_focus, key_focus = ("", " autofocus") if user_code else (" autofocus", "")
    parts.append(
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token)}">'
        f'<label for="user_code">Code from your terminal</label>'
        f'<input id="user_code" name="user_code" value="{escape(user_code)}" required '
        f'autocomplete="off" autocapitalize="characters" spellcheck="false" '
        f'placeholder="XXXX-XXXX" maxlength="20"{described}{code_focus}>'
        f'<label for="api_key">Your continuum API key</label>'
        f'<input id="api_key" name="api_key" type="password" autocomplete="current-password"'
        f'{key_focus}>'
        f'<div class="actions">'
        f'<button type="submit" name="action" value="approve">Approve</button>'
        f'<button type="submit" name="action" value="deny" formnovalidate>Deny</button>'
        f"</div></form>")
    return _document("Sign in", "".join(parts))


def result(approved: bool, key_name: str | None = None) -> bytes:
    if approved:
        body = (f'<h1>Device connected</h1><p class="done" role="status">Signed in as '
                f"<strong>{escape(key_name or '')}</strong>. You can close this window and "
                f"return to your terminal.</p>")
        return _document("Device connected", body)
    body = ('<h1>Sign-in denied</h1><p class="done" role="status">The request was denied. '
            "Your terminal will stop waiting. You can close this window.</p>")
    return _document("Sign-in denied", body)


def blocked(retry_after: int) -> bytes:
    body = (f'<h1>Too many attempts</h1><p class="error" role="alert">Too many attempts came '
            f"from your address. Try again in {retry_after} seconds.</p>")
    return _document("Too many attempts", body)
