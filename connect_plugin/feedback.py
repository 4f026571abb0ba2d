"""Session feedback: telling the authentication plugin what became of the session it authenticated.

A result may carry a ``session_url``; the authentication plugin then wants
``POST <session_url>?type=user_active`` on meaningful activity and
``?type=logout`` when the citizen is done (protocol.md, "Session feedback").
For a phone call: the call is linked, or a result arrives during the call
(activity), and the call ends (logout).  The POSTs go from this server, never
from a browser, in the background: a slow or absent receiver never delays or
fails a call.  Logs name the kind and the receiver's host, not the URL, which
may identify the citizen's session.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger(__name__)

USER_ACTIVE = "user_active"
LOGOUT = "logout"


def feedback_url(session_url: str, kind: str) -> str | None:
    """``session_url`` with ``type=<kind>`` added to its query; ``None`` unless it is http(s)."""
    parts = urlsplit(session_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "type"]
    query.append(("type", kind))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


class SessionFeedback:
    """Sends feedback POSTs in the background; ``close`` waits (briefly) for those under way."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._pending: set[asyncio.Task[None]] = set()

    def send(self, session_url: str, kind: str) -> None:
        """Schedule ``POST <session_url>?type=<kind>``; returns at once."""
        url = feedback_url(session_url, kind)
        if url is None:
            log.warning("session feedback (%s) skipped: session_url is not an http(s) URL", kind)
            return
        task = asyncio.get_running_loop().create_task(self._post(url, kind))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, url: str, kind: str) -> None:
        host = urlsplit(url).hostname
        request = HTTPRequest(url, method="POST", body=b"", request_timeout=self.timeout,
                              connect_timeout=self.timeout, follow_redirects=False)
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as error:  # never let feedback disturb the call
            log.warning("session feedback (%s) to %s failed: %s", kind, host, type(error).__name__)
            return
        if response.code >= 300 or response.code == 599:
            log.warning("session feedback (%s) to %s answered %d", kind, host, response.code)
        else:
            log.info("session feedback (%s) sent to %s", kind, host)

    async def close(self, grace: float = 2.0) -> None:
        """Give POSTs under way up to ``grace`` seconds, then drop them."""
        if self._pending:
            _done, pending = await asyncio.wait(set(self._pending), timeout=grace)
            for task in pending:
                task.cancel()
