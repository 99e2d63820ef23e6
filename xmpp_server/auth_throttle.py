"""Login throttling (RFC 6120 §13.3, "brute force"): guesses are slowed per account, an address
is stopped only when it guesses at many accounts, and only wrong credentials are guesses.

The policy, in every framing (SASL, SASL2, FAST) and every mechanism (SCRAM, PLAIN, HT-*):

- A *failure* is an exchange that checked a credential (a SCRAM proof, a PLAIN password, a FAST
  token) and found it wrong. Nothing else is: an aborted exchange, a mechanism or channel-binding
  flag the server refuses (RFC 5802 'y' while -PLUS is offered, a binding type it lacks), a
  malformed message, a stream gone mid-exchange. An old client that tries -PLUS, then 'y', then
  PLAIN logs in with no failure at all.
- Those *unchecked* exchanges prove nothing about a password, so they never count against an
  account; they count per address (``max_refused_per_ip`` within ``failure_window``), beyond
  which the address's new exchanges are refused, so that it cannot hammer the server. A stream
  that then logs in takes its own refusals back: a NAT full of clients that fall back from
  -PLUS to PLAIN at every login never reaches that limit.
- Per account: after ``max_failures_per_account`` failures within the window, the account's
  credentials are no longer checked from addresses it has not logged in from
  (temporary-auth-failure) until the oldest failure leaves the window. Guesses are slowed to that
  many per window, from any number of addresses, while the owner, from an address they logged in
  from within ``known_address_ttl`` (as OWASP's "device cookies" do), logs in all the same. A
  known address has its own budget for the account, of the same size: an attacker behind the
  owner's NAT gets no more guesses than one elsewhere.
- Per address: once failures on ``max_failed_accounts_per_ip`` different accounts happened from
  it within the window (password spraying: Prosody's mod_limit_auth and ejabberd's mod_fail2ban
  count per address), it may check credentials only of accounts that logged in from it. Failures
  on one account are that account's concern: people behind a NAT or a web proxy who mistype their
  own passwords lock nobody else out, and no lockout ever refuses an account's right password
  from an address it logged in from.
- A failure is counted when the credential is about to be checked, before its answer, in one
  step with the check of the limits: exchanges opened together cannot all pass the limit before
  the first one fails. A success takes its own count back (and the address's failure on that
  account), but not the account's other failures.

Counters live in memory, per node, bounded (the least recently used keys are forgotten first);
a restart forgets them, known addresses included.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from xmpp_server.throttle import Throttle

if TYPE_CHECKING:
    from xmpp_server.config.features import AuthConfig

MAX_KEYS = 100_000


def stream_refusals(data: dict[str, object]) -> list[float]:
    """The refused exchanges of one stream (kept in its ``Session.data``)."""
    refusals = data.get("auth-refusals")
    if refusals is None:
        refusals = data["auth-refusals"] = []
    return refusals  # type: ignore[return-value]


class Spread:
    """Per address, the different accounts that failed from it within ``window`` seconds."""

    def __init__(self, limit: int, window: float, max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._accounts: OrderedDict[str, dict[str, float]] = OrderedDict()

    def blocked(self, ip: str) -> bool:
        accounts = self._accounts.get(ip)
        if accounts is None:
            return False
        horizon = time.monotonic() - self.window
        for name in [n for n, t in accounts.items() if t < horizon]:
            del accounts[name]
        return len(accounts) >= self.limit

    def add(self, ip: str, username: str) -> None:
        accounts = self._accounts.get(ip)
        if accounts is None:
            accounts = self._accounts[ip] = {}
            if len(self._accounts) > self.max_keys:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(ip)
        accounts.pop(username, None)
        accounts[username] = time.monotonic()
        if len(accounts) > 2 * self.limit:  # the oldest are not needed to know it is blocked
            del accounts[next(iter(accounts))]

    def discard(self, ip: str, username: str) -> None:
        accounts = self._accounts.get(ip)
        if accounts is not None:
            accounts.pop(username, None)


class KnownAddresses:
    """(account, address) pairs that logged in within ``ttl`` seconds."""

    def __init__(self, ttl: float, max_keys: int = MAX_KEYS) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __contains__(self, pair: tuple[str, str]) -> bool:
        seen = self._seen.get(pair)
        if seen is None:
            return False
        if seen < time.monotonic() - self.ttl:
            del self._seen[pair]
            return False
        return True

    def add(self, pair: tuple[str, str]) -> None:
        self._seen[pair] = time.monotonic()
        self._seen.move_to_end(pair)
        if len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)


class AuthThrottle:
    """The counters of the policy above; ``open`` starts an exchange's ``Attempt``."""

    def __init__(self, config: AuthConfig, max_keys: int = MAX_KEYS) -> None:
        window = config.failure_window
        self.accounts = Throttle(config.max_failures_per_account, window, max_keys)
        self.known_pairs = Throttle(config.max_failures_per_account, window, max_keys)
        self.spread = Spread(config.max_failed_accounts_per_ip, window, max_keys)
        self.unchecked = Throttle(config.max_refused_per_ip, window, max_keys)
        self.known = KnownAddresses(config.known_address_ttl, max_keys)

    def open(self, ip: str, stream: list[float] | None = None) -> Attempt:
        """An exchange from ``ip``; ``stream``: the stamps of the stream's earlier refused
        exchanges (kept by the caller per stream), taken back if this one succeeds."""
        return Attempt(self, ip, stream if stream is not None else [])


class Attempt:
    """One exchange from one address: ``begin`` once the account is named, ``check`` right
    before its credential is checked, ``succeeded`` if it was right. Counted as unchecked
    until ``check``, as a failure from ``check`` until ``succeeded``."""

    def __init__(self, throttle: AuthThrottle, ip: str, stream: list[float]) -> None:
        self._throttle = throttle
        self.ip = ip
        self.username: str | None = None
        self._unchecked: float | None = throttle.unchecked.add(ip)
        self._stream = stream
        stream.append(self._unchecked)
        self._counted: list[tuple[Throttle, str, float]] = []

    def _pair(self) -> tuple[str, str]:
        assert self.username is not None
        return self.username, self.ip

    def _blocked(self) -> bool:
        t = self._throttle
        username, ip = self._pair()
        if (username, ip) in t.known:
            return t.known_pairs.blocked(f"{username}\0{ip}")
        return t.accounts.blocked(username) or t.spread.blocked(ip)

    def begin(self, username: str) -> bool:
        """The account is named: False if its credentials may not be checked from here now
        (the caller answers temporary-auth-failure, before looking anything up)."""
        self.username = username
        t = self._throttle
        # The count includes this exchange itself.
        if self._pair() not in t.known and t.unchecked.count(self.ip) > t.unchecked.limit:
            return False
        return not self._blocked()

    def check(self) -> bool:
        """The credential is about to be checked: False if it may not be (throttled); else it
        counts as a failure from now on, unless ``succeeded`` follows. No await may come
        between this call and the limits it checks: that is what makes it atomic."""
        if self._blocked():
            return False
        t = self._throttle
        username, ip = self._pair()
        if self._unchecked is not None:
            t.unchecked.withdraw(ip, self._unchecked)
            if self._unchecked in self._stream:
                self._stream.remove(self._unchecked)
            self._unchecked = None
        self._counted.append((t.accounts, username, t.accounts.add(username)))
        if (username, ip) in t.known:
            key = f"{username}\0{ip}"
            self._counted.append((t.known_pairs, key, t.known_pairs.add(key)))
        else:
            t.spread.add(ip, username)
        return True

    def succeeded(self, known: bool = True) -> None:
        """The credential was right: its failure is taken back, and the address becomes known
        for the account (unless not ``known``: a right but expired FAST token, no login)."""
        t = self._throttle
        pair = self._pair()
        for throttle, key, stamp in self._counted:
            throttle.withdraw(key, stamp)
        self._counted.clear()
        for stamp in self._stream:  # the stream's refused tries before this login
            t.unchecked.withdraw(self.ip, stamp)
        self._stream.clear()
        t.spread.discard(self.ip, pair[0])
        if known:
            t.known.add(pair)
