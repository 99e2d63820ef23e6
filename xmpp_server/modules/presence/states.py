"""RFC 6121 Appendix A: the subscription state machine, as pure functions.

A contact's state in a user's account is its roster item's ``subscription`` (none, to, from,
both) and ``ask`` flag (Pending Out), the stored inbound request (Pending In) and the
pre-approval flag (§3.4). ``outbound`` is what the user's server does with subscription
presence the user sends (A.2), ``inbound`` what it does with subscription presence the user
receives (A.3). Neither touches storage or the network: the caller applies the ``Outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SUBSCRIPTION_TYPES = frozenset(("subscribe", "subscribed", "unsubscribe", "unsubscribed"))


@dataclass(frozen=True)
class State:
    subscription: str = "none"  # none | to | from | both
    ask: bool = False  # Pending Out: the user asked the contact
    pending_in: bool = False  # Pending In: the contact asked the user
    approved: bool = False  # the user pre-approved the contact (§3.4)

    @property
    def to(self) -> bool:
        """The user receives the contact's presence."""
        return self.subscription in ("to", "both")

    @property
    def frm(self) -> bool:
        """The contact receives the user's presence."""
        return self.subscription in ("from", "both")

    def with_flags(self, *, to: bool | None = None, frm: bool | None = None) -> State:
        to = self.to if to is None else to
        frm = self.frm if frm is None else frm
        subscription = {(False, False): "none", (True, False): "to",
                        (False, True): "from", (True, True): "both"}[(to, frm)]
        return replace(self, subscription=subscription)


@dataclass(frozen=True)
class Outcome:
    state: State
    forward: bool  # outbound: route it to the contact; inbound: deliver it to the user
    auto_reply: bool = False  # inbound subscribe: answer 'subscribed' for the user (§3.1.3)


def outbound(state: State, type_: str, pre_approval: bool = True) -> Outcome:
    """Appendix A.2: the user sends ``type_`` to the contact."""
    if type_ == "subscribe":
        # A.2.1: Pending Out unless already subscribed; the request is routed either way, the
        # contact's server answers for a contact who already approved (§3.1.3).
        new = state if state.to else replace(state, ask=True)
        return Outcome(new, forward=True)
    if type_ == "unsubscribe":
        # A.2.3: To and Pending Out end.
        return Outcome(replace(state.with_flags(to=False), ask=False), forward=True)
    if type_ == "subscribed":
        # A.2.2: approving a pending request gives From; otherwise it is a pre-approval
        # (§3.4), which is recorded and never routed.
        if state.frm:
            return Outcome(state, forward=False)
        if state.pending_in:
            new = replace(state.with_flags(frm=True), pending_in=False, approved=False)
            return Outcome(new, forward=True)
        if pre_approval:
            return Outcome(replace(state, approved=True), forward=False)
        return Outcome(state, forward=False)
    if type_ == "unsubscribed":
        # A.2.4: cancels From, denies Pending In and withdraws a pre-approval. Routed even
        # without a state change so that a contact whose state drifted is brought back in line.
        new = replace(state.with_flags(frm=False), pending_in=False, approved=False)
        return Outcome(new, forward=True)
    raise ValueError(f"not a subscription type: {type_!r}")


def inbound(state: State, type_: str) -> Outcome:
    """Appendix A.3: the user receives ``type_`` from the contact."""
    if type_ == "subscribe":
        # A.3.1 and §3.1.3: answered for the user when the contact already has (or is
        # pre-approved for) a subscription; else Pending In, delivered once.
        if state.frm:
            return Outcome(state, forward=False, auto_reply=True)
        if state.approved:
            return Outcome(replace(state.with_flags(frm=True), approved=False), forward=False,
                           auto_reply=True)
        if state.pending_in:
            return Outcome(state, forward=False)
        return Outcome(replace(state, pending_in=True), forward=True)
    if type_ == "subscribed":
        # A.3.2: only an approval the user asked for counts.
        if state.ask and not state.to:
            return Outcome(replace(state.with_flags(to=True), ask=False), forward=True)
        return Outcome(state, forward=False)
    if type_ == "unsubscribe":
        # A.3.3: the contact withdraws its subscription or its request.
        if state.frm or state.pending_in:
            return Outcome(replace(state.with_flags(frm=False), pending_in=False), forward=True)
        return Outcome(state, forward=False)
    if type_ == "unsubscribed":
        # A.3.4: the contact cancels the user's subscription or denies the request.
        if state.to or state.ask:
            return Outcome(replace(state.with_flags(to=False), ask=False), forward=True)
        return Outcome(state, forward=False)
    raise ValueError(f"not a subscription type: {type_!r}")
