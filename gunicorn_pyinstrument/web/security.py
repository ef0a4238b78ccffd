"""What the site lets a browser do, and whom it answers.

- Content-Security-Policy: the site's own pages run only the scripts it serves itself, from the
  files installed with the package (``/static/``, ``assets.py``), never an inline one, and load
  their data from this origin only; pyinstrument's viewer runs only its two inline scripts,
  checked, then allowed by their hashes; nothing is loaded from elsewhere. Downloads never run
  as a page of this origin.
- The Host check: bound to a loopback address, the server answers only requests that name a
  loopback host, so a web page elsewhere cannot reach it by rebinding a DNS name to 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re

from .layout import STYLE


def _sha256(data: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii") + "'"


#: The site's own pages: scripts and style sheets from this origin's files only (no inline script),
#: the page's one inline style sheet (by its hash), data fetched from this origin, forms and links
#: to this origin only.
PAGE_CSP = (
    f"default-src 'none'; script-src 'self'; connect-src 'self'; "
    f"style-src 'self' {_sha256(STYLE.encode('utf-8'))}; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: Downloads: never run as a page of this origin.
FILE_CSP = "default-src 'none'; sandbox"
#: Everything; the viewer's script hashes are added per document (see viewer_csp).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# --- pyinstrument's viewer: which inline scripts may run ---

# A script element's text ends at the first "</script" followed by a space, "/" or ">"
# (the HTML tokenizer's rule); the viewer's scripts have no attributes.
_SCRIPT = re.compile(rb"<script>(.*?)</script[\t\n\f\r />]", re.DOTALL | re.IGNORECASE)
_BOOTSTRAP = re.compile(
    rb"\s*const sessionData = (?P<data>.*);\s*"
    rb"pyinstrumentHTMLRenderer\.render\(document\.getElementById\('app'\), sessionData\);\s*",
    re.DOTALL,
)


def viewer_scripts(document: bytes) -> list[bytes]:
    """The inline scripts of a pyinstrument HTML page that may run: the app bundle (the page's
    first script) and the bootstrap that hands it the session, only if the session is one JSON
    value. A path or name in the session that closed the script element early (pyinstrument
    does not escape ``</script>`` in its JSON) leaves a bootstrap that fails this check and a
    stray script after it that is not the first: neither runs."""
    # The browser reads CR LF and lone CR as LF before anything else: so must the hashes.
    text = document.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    scripts = [m.group(1) for m in _SCRIPT.finditer(text)]
    allowed = scripts[:1]
    for script in scripts[1:]:
        match = _BOOTSTRAP.fullmatch(script)
        if match is None:
            continue
        try:
            json.loads(match.group("data"))
        except ValueError:
            continue
        allowed.append(script)
    return allowed


def viewer_csp(document: bytes) -> str:
    """The Content-Security-Policy of one viewer page: its own scripts by hash, inline styles
    (the viewer sets style attributes), data: images (its logo); nothing from elsewhere."""
    hashes = sorted({_sha256(script) for script in viewer_scripts(document)})
    scripts = " ".join(hashes) or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def script_safe(text: str) -> str:
    """Text for a session field of a page this server renders: no ``<`` followed directly by
    ``/`` or ``!`` (a word joiner, invisible, after every ``<``), so it cannot end the script."""
    return text.replace("<", "<\u2060")


# --- hosts ---


def host_allowed(host_header: str | None, bound_host: str) -> bool:
    """Is the Host header one this server answers to? Bound to a loopback address, only loopback
    names and addresses (a DNS name rebound to 127.0.0.1 by a web page is refused); bound
    elsewhere, any."""
    if not is_loopback(bound_host) or host_header is None:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.rstrip(".")
    return host == "localhost" or host == bound_host.lower() or is_loopback(host)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
