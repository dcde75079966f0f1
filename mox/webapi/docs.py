"""The web API's own pages (as mox's webapisrv): `GET /webapi/v0/` lists the methods, and
`GET /webapi/v0/<Method>` shows a form with an example request for the method, which posts the
`request` field to the same URL, and an example of the JSON answer.

The pages work without JavaScript: the browser posts the form itself and shows the answer (JSON,
or the message or part for MessageRawGet and MessagePartGet). The CSP allows no script, only
our one inline style sheet (by its hash, CSP3 §8.3 hash-source) and form posts to ourselves.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Any, Final

from starlette.responses import HTMLResponse

__all__ = ["EXAMPLES", "PAGE_CSP", "index_page", "method_page"]

_STYLE: Final = (
    "body{font-family:sans-serif;margin:1em;max-width:60em}"
    "textarea{width:100%;font-family:monospace}"
    "pre{background:#f4f4f4;padding:.5em;overflow:auto}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
PAGE_CSP: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_MSG: Final = {"Mailbox": "Inbox", "UID": 1}
_NAME_ADDRESS: Final = {"Name": "Alice", "Address": "alice@example.com"}
_SUPPRESSION: Final = {
    "ID": 1,
    "Created": "2026-01-01T00:00:00+00:00",
    "Account": "alice",
    "BaseAddress": "bob@example.org",
    "OriginalAddress": "Bob+news@example.org",
    "Manual": False,
    "Reason": "delivery failure with smtp code 550",
}

# Method -> (example request, example answer; None when the answer is not JSON).
EXAMPLES: Final[dict[str, tuple[dict[str, Any], dict[str, Any] | None]]] = {
    "Send": (
        {
            "Message": {
                "From": _NAME_ADDRESS,
                "To": [{"Name": "Bob", "Address": "bob@example.org"}],
                "CC": [],
                "BCC": [],
                "ReplyTo": [],
                "Subject": "hello",
                "Text": "hi bob\n",
                "HTML": "",
                "InReplyTo": "",
                "References": [],
            },
            "Headers": [["X-Campaign", "spring"]],
        },
        {
            "MessageID": "<0123456789abcdef@mail.example.com>",
            "Submissions": [{"Address": "bob@example.org", "QueueMsgID": 1}],
        },
    ),
    "SuppressionList": ({}, {"Suppressions": [_SUPPRESSION]}),
    "SuppressionAdd": (
        {"EmailAddress": "bob@example.org", "Manual": True, "Reason": "asked to stop"},
        {},
    ),
    "SuppressionRemove": ({"EmailAddress": "bob@example.org"}, {}),
    "SuppressionPresent": ({"EmailAddress": "bob@example.org"}, {"Present": True}),
    "MessageGet": (
        dict(_MSG),
        {
            **_MSG,
            "Flags": ["\\Seen"],
            "Size": 1234,
            "Received": "2026-01-01T00:00:00+00:00",
            "Headers": [["Subject", "hello"]],
            "From": [_NAME_ADDRESS],
            "To": [{"Name": "", "Address": "bob@example.org"}],
            "CC": [],
            "Subject": "hello",
            "MessageID": "<0123456789abcdef@mail.example.com>",
            "Text": "hi bob\n",
            "HTML": "",
            "Structure": {
                "ContentType": "multipart/mixed",
                "ContentTypeParams": {"boundary": "x"},
                "ContentID": "",
                "DecodedSize": 0,
                "Parts": [
                    {
                        "ContentType": "text/plain",
                        "ContentTypeParams": {"charset": "utf-8"},
                        "ContentID": "",
                        "DecodedSize": 7,
                        "Parts": [],
                    },
                    {
                        "ContentType": "application/pdf",
                        "ContentTypeParams": {},
                        "ContentID": "",
                        "DecodedSize": 1000,
                        "Parts": [],
                    },
                ],
            },
        },
    ),
    "MessageRawGet": (dict(_MSG), None),
    "MessagePartGet": ({**_MSG, "PartPath": [1]}, None),
    "MessageDelete": (dict(_MSG), {}),
    "MessageFlagsAdd": (
        {**_MSG, "Flags": ["\\Seen", "todo"]},
        {**_MSG, "Flags": ["\\Seen", "todo"]},
    ),
    "MessageFlagsRemove": ({**_MSG, "Flags": ["todo"]}, {**_MSG, "Flags": ["\\Seen"]}),
    "MessageMove": ({**_MSG, "DestMailboxName": "Archive"}, {"Mailbox": "Archive", "UID": 7}),
}


def _page(title: str, body: str) -> HTMLResponse:
    text = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="robots" content="noindex,nofollow">\n'
        f"<title>{html.escape(title)} - mox</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    return HTMLResponse(
        text,
        headers={
            "content-security-policy": PAGE_CSP,
            "cache-control": "no-store",
            # Not no-referrer: with it, browsers send "Origin: null" on the form post, which the
            # cross-site check refuses.
            "referrer-policy": "same-origin",
        },
    )


def _json(value: Any) -> str:
    return json.dumps(value, indent="\t", ensure_ascii=False)


def index_page(methods: list[str]) -> HTMLResponse:
    items = "\n".join(
        f'<li><a href="{html.escape(m, quote=True)}">{html.escape(m)}</a></li>' for m in methods
    )
    body = (
        "<h1>Web API</h1>\n"
        "<p>POST a JSON request to <code>/webapi/v0/&lt;Method&gt;</code> (as the body with "
        "<code>Content-Type: application/json</code>, or as form field <code>request</code>), "
        "with HTTP basic authentication: an email address of the account and its password. "
        'Errors are JSON <code>{"Code": ..., "Message": ...}</code>.</p>\n'
        "<p>Follow a method for an example request and answer, and a form to call it.</p>\n"
        f"<h2>Methods</h2>\n<ul>\n{items}\n</ul>"
    )
    return _page("Web API", body)


def method_page(method: str) -> HTMLResponse:
    request, answer = EXAMPLES.get(method, ({}, {}))
    name = html.escape(method)
    if answer is None:
        result = "<p>The answer is not JSON: the browser shows or saves it.</p>"
    else:
        result = f"<h2>Example answer</h2>\n<pre>{html.escape(_json(answer))}</pre>"
    body = (
        f'<h1><a href="./">Web API</a>: {name}</h1>\n'
        f'<form method="post" action="{html.escape(method, quote=True)}">\n'
        '<h2><label for="request">Request JSON</label></h2>\n'
        '<textarea id="request" name="request" rows="20" required>'
        f"{html.escape(_json(request))}</textarea>\n"
        '<p><button type="reset">Reset</button> <button type="submit">Call</button></p>\n'
        f"</form>\n{result}"
    )
    return _page(f"{method} - Web API", body)
