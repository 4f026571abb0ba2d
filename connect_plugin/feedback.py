"""Session feedback: telling the authentication plugin what became of the session it authenticated.

A result may carry a ``session_url``; the authentication plugin then wants
``POST <session_url>?type=user_active`` on meaningful activity and
``?type=logout`` when the citizen is done (protocol.md, "Session feedback").
For a phone call: the call is linked, or a result arrives during the call
(activity), and the call ends (logout).  The POSTs go from this server, never
from a browser, in the background: a slow or absent receiver never delays or
fails a call.  Logs name the kind and the receiver's host, not the URL, which
may identify the citizen's session.

The URL comes from a token, so it is not trusted (server-side request
forgery): :class:`FeedbackPolicy` decides where a POST may go.

* With ``feedback_hosts`` set, only to those hosts, over http or https, at
  whatever address they have (an authentication plugin inside the deployment).
* Without it, only over https to a host whose every address used is public:
  never loopback, private, link-local, shared (CGNAT), multicast, reserved or
  unspecified addresses (``addresses.is_public_address``).
* Never to a cloud metadata address (169.254.169.254, fd00:ec2::254, ...).
* Redirects are not followed.

The addresses are checked by :class:`FeedbackResolver`, the resolver of the
very connection that is made: a DNS answer that changes between a check and
the connection cannot slip past it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tornado.httpclient import HTTPRequest
from tornado.netutil import DefaultLoopResolver, Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from .addresses import METADATA_ADDRESSES, embedded_ipv4, ip_or_none, is_public_address, normalise_host
from .metrics import Metrics

log = logging.getLogger(__name__)

USER_ACTIVE = "user_active"
LOGOUT = "logout"


def feedback_url(session_url: str, kind: str) -> str | None:
    """``session_url`` with ``type=<kind>`` added to its query; ``None`` unless it is a sound http(s) URL."""
    try:
        parts = urlsplit(session_url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is no port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "type"]
    query.append(("type", kind))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


class AddressRefused(OSError):
    """Every address of a feedback host is one that feedback may not go to."""


class FeedbackPolicy:
    """Where session feedback may go: the rules of the module's docstring, for one set of ``feedback_hosts``."""

    def __init__(self, hosts: tuple[str, ...] = ()) -> None:
        self.hosts = frozenset(filter(None, (normalise_host(h) for h in hosts)))

    def listed(self, host: str) -> bool:
        """Whether ``host`` is one of ``feedback_hosts``."""
        return normalise_host(host) in self.hosts

    def url_problem(self, url: str) -> str | None:
        """Why no POST may go to ``url`` whatever its host resolves to, or None."""
        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        if host is None:
            return "session_url has no valid host"
        if self.hosts:
            return None if host in self.hosts else "its host is not in feedback_hosts"
        if parts.scheme != "https":
            return "plain http goes only to hosts in feedback_hosts"
        return None

    def address_allowed(self, host: str, address: str) -> bool:
        """Whether a connection to ``host`` may be made at ``address``."""
        parsed = ip_or_none(address.split("%", 1)[0])
        if parsed is None or parsed in METADATA_ADDRESSES or embedded_ipv4(parsed) in METADATA_ADDRESSES:
            return False
        return self.listed(host) or is_public_address(parsed)


class FeedbackResolver(Resolver):
    """A resolver that hands the HTTP client only the addresses ``FeedbackPolicy`` allows."""

    def initialize(self, policy: FeedbackPolicy, resolver: Resolver | None = None) -> None:
        """``policy`` decides; ``resolver`` (default: the event loop's ``getaddrinfo``) answers."""
        self.policy = policy
        self.inner = resolver or DefaultLoopResolver()

    async def resolve(self, host: str, port: int,
                      family: socket.AddressFamily = socket.AF_UNSPEC) -> list[tuple[int, Any]]:
        """The allowed addresses of ``host``; ``AddressRefused`` when none is."""
        answers = await self.inner.resolve(host, port, family)
        allowed = [(fam, address) for fam, address in answers if self.policy.address_allowed(host, address[0])]
        if not allowed:
            raise AddressRefused("no address of this host may receive session feedback")
        return allowed

    def close(self) -> None:
        """Close the resolver it asks."""
        self.inner.close()


class SessionFeedback:
    """Sends feedback POSTs in the background; ``close`` waits (briefly) for those under way."""

    def __init__(self, timeout: float = 5.0, hosts: tuple[str, ...] = (), resolver: Resolver | None = None,
                 metrics: Metrics | None = None) -> None:
        """``hosts``: ``feedback_hosts``; ``resolver``: the DNS whose answers are checked (default: the system's);
        ``metrics``: where sent, failed and refused POSTs are counted."""
        self.timeout = timeout
        self.metrics = metrics or Metrics()
        self.policy = FeedbackPolicy(hosts)
        self.resolver = resolver
        self._pending: set[asyncio.Task[None]] = set()
        self._client: SimpleAsyncHTTPClient | None = None

    def send(self, session_url: str, kind: str) -> None:
        """Schedule ``POST <session_url>?type=<kind>`` if the policy allows it; returns at once."""
        url = feedback_url(session_url, kind)
        if url is None:
            log.warning("session feedback (%s) skipped: session_url is not a valid http(s) URL", kind)
            self.metrics.feedback(kind, "refused")
            return
        problem = self.policy.url_problem(url)
        if problem is not None:
            log.warning("session feedback (%s) to %s refused: %s", kind, _host(url), problem)
            self.metrics.feedback(kind, "refused")
            return
        task = asyncio.get_running_loop().create_task(self._post(url, kind))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _http(self) -> SimpleAsyncHTTPClient:
        """This sender's own HTTP client, whose every connection goes through the policy's resolver."""
        if self._client is None:
            self._client = SimpleAsyncHTTPClient(force_instance=True,
                                                 resolver=FeedbackResolver(policy=self.policy, resolver=self.resolver))
        return self._client

    async def _post(self, url: str, kind: str) -> None:
        host = _host(url)
        request = HTTPRequest(url, method="POST", body=b"", request_timeout=self.timeout,
                              connect_timeout=self.timeout, follow_redirects=False)
        try:
            response = await self._http().fetch(request, raise_error=False)
        except AddressRefused:
            log.warning("session feedback (%s) to %s refused: not a public address (see feedback_hosts)", kind, host)
            self.metrics.feedback(kind, "refused")
            return
        except Exception as error:  # never let feedback disturb the call
            log.warning("session feedback (%s) to %s failed: %s", kind, host, type(error).__name__)
            self.metrics.feedback(kind, "failed")
            return
        if isinstance(response.error, AddressRefused):
            log.warning("session feedback (%s) to %s refused: not a public address (see feedback_hosts)", kind, host)
            self.metrics.feedback(kind, "refused")
        elif response.code >= 300 or response.code == 599:
            log.warning("session feedback (%s) to %s answered %d", kind, host, response.code)
            self.metrics.feedback(kind, "failed")
        else:
            log.info("session feedback (%s) sent to %s", kind, host)
            self.metrics.feedback(kind, "sent")

    async def close(self, grace: float = 2.0) -> None:
        """Give POSTs under way up to ``grace`` seconds, then drop them."""
        if self._pending:
            _done, pending = await asyncio.wait(set(self._pending), timeout=grace)
            for task in pending:
                task.cancel()
        if self._client is not None:
            self._client.close()
            self._client = None


def _host(url: str) -> str:
    """The host of ``url`` for a log line (a host, never the path or query that may name a session)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
