"""HTML mail made safe to show: nh3 (the Ammonia sanitiser) with a conservative allow-list.

What goes: scripts, styles sheets, event handlers, forms, frames, objects, meta refreshes, SVG
and MathML (not on the list, so dropped; script and style with their content). Links keep only
http, https and mailto URLs and open in a new window with noopener/noreferrer. `style`
attributes survive only without `url(`, `@import`, `expression(` or CSS escapes, so no CSS can
fetch anything. Images: `cid:` references (RFC 2392) become `data:` URLs of the message's own
parts; remote (http/https) images are dropped unless the user asked for them.

The result is served to an `<iframe sandbox>` (no scripts, opaque origin) with its own CSP
(`HTML_CSP`), a second line of defence should anything slip through.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Final

import nh3

__all__ = ["html_csp", "sanitize"]

TAGS: Final = {
    "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption", "center",
    "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
    "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
    "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var",
    "wbr",
}  # fmt: skip
# Dropped with everything inside them.
CONTENT_TAGS: Final = {"script", "style", "title", "noscript", "template", "textarea", "select"}
_COMMON: Final = {"style", "title", "dir", "lang", "align", "valign", "width", "height"}
ATTRIBUTES: Final = {
    "*": _COMMON,
    "a": {"href"},
    "img": {"src", "alt", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "tr": {"bgcolor"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "li": {"value"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite"},
    "ins": {"cite"},
    "time": {"datetime"},
}
URL_SCHEMES: Final = {"http", "https", "mailto", "cid", "data"}
_LINK_SCHEMES: Final = ("http:", "https:", "mailto:")
_URL_ATTRS: Final = {"href", "src", "cite"}
_BAD_CSS: Final = re.compile(r"url\s*\(|@import|expression\s*\(|\\|image-set|javascript:", re.I)
MAX_INLINE: Final = 10 * 1024 * 1024  # total bytes of cid: images turned into data: URLs

CSP_BASE: Final = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


def html_csp(remote: bool) -> str:
    """The CSP of the iframe document: images from data: URLs (our cid: parts) only, and from
    anywhere (http/https) only once the user allowed remote images; never scripts."""
    img = "img-src data: https: http:" if remote else "img-src data:"
    return f"{CSP_BASE}; {img}; form-action 'none'; base-uri 'none'"


def sanitize(
    html: str,
    cid: Callable[[str], tuple[str, bytes] | None],
    *,
    remote: bool,
) -> tuple[str, int]:
    """(safe HTML, number of remote images removed). `cid` maps a Content-ID (without <>) to the
    (content type, data) of that part, or None."""
    removed = 0
    inlined = 0

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        nonlocal removed, inlined
        if attr == "style":
            return None if _BAD_CSS.search(value) else value
        if attr not in _URL_ATTRS:
            return value
        v = value.strip()
        lower = v.lower()
        if tag == "img" and attr == "src":
            if lower.startswith("cid:"):
                found = cid(v[4:].strip("<>"))
                if found is None:
                    return None
                ctype, data = found
                if not ctype.startswith("image/") or inlined + len(data) > MAX_INLINE:
                    return None
                inlined += len(data)
                return f"data:{ctype};base64,{base64.b64encode(data).decode()}"
            if lower.startswith(("http:", "https:", "//")):
                if remote and not lower.startswith("//"):
                    return v
                removed += 1
                return None
            return None  # data: from the sender, relative URLs, anything else
        if tag == "a" and attr == "href":
            return v if lower.startswith(_LINK_SCHEMES) else None
        # cite and anything else: a URL nobody fetches, but keep only plain web URLs
        return v if lower.startswith(("http:", "https:")) else None

    cleaned = nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags=CONTENT_TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=URL_SCHEMES,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_relative="deny",
    )
    return cleaned, removed


def document(body: str) -> str:
    """The iframe document around sanitised HTML."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        "</head><body>" + body + "</body></html>"
    )
