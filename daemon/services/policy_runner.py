"""The policy runner: which policy plays, what it observes, the controls of each bar, what it learned.

Per bar the bar loop asks `controls(index, t)`: the operator's override wins (through the same guard as a policy: the
current ranges, one step per bar from what plays), else the active policy's wish, kept inside the current bounds. A
policy switch or a change of target or bounds is taken from the session's control at the next bar. A policy that
takes over from other controls (a policy switch, an override cleared) continues from the last bar's controls, so the
per-bar step limits hold across the hand-over. Every score published before a bar is chosen has been observed by
then (`observe_pending`), so the same scores give the same bars whatever the event loop's timing.

What the policy learned is read from the listener's profile (section "policy": {"name": ..., "state": ...}) when a
policy of that name starts, and put back by `save()`; the session writes the profile after every service ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from neuromusic.daemon.session.control import SessionControl
from neuromusic.daemon.session.hub import Subscription
from neuromusic.daemon.session.profile_store import ProfileStore
from neuromusic.models.core.messages import Controls, Score
from neuromusic.policies.base import Policy
from neuromusic.policies.bounds import clamp_controls, step_toward

log = logging.getLogger(__name__)

Report = Callable[[str, str], None]  # (kind, text): an Event for the operator


class PolicyRunner:
    def __init__(
        self,
        control: SessionControl,
        factory: Callable[[str], Policy],
        *,
        profile: ProfileStore | None = None,
        report: Report | None = None,
        policy: Policy | None = None,
    ) -> None:
        """`factory` makes a policy by name; `policy`: the first one, already made (default: the factory's)."""
        self.control = control
        self._factory = factory
        self._profile = profile
        self._report = report or (lambda kind, text: log.warning("%s", text))
        # what each policy learned, by policy name: the profile's, then that of a policy switched away from
        self._states: dict[str, dict[str, Any]] = self._stored_states()
        self.policy_name = control.policy_name
        stored = next(iter(self._states), None)
        if stored is not None and stored != self.policy_name:
            log.info("the profile holds what policy %r learned; policy %r starts afresh", stored, self.policy_name)
        self.policy = policy if policy is not None else self._make(self.policy_name)
        self._generation = -1
        self.last_controls: Controls | None = None  # the controls of the last bar played
        self._overridden = False  # the last bar played the operator's override
        self._scores: Subscription | None = None

    # -- scores ------------------------------------------------------------------------------------------------
    def listen(self, subscription: Subscription) -> None:
        """Observe the scores of this subscription (before each bar, and as they come while `follow` runs)."""
        self._scores = subscription

    def observe_pending(self) -> None:
        if self._scores is None:
            return
        queue = self._scores.queue
        while not queue.empty():
            self.policy.observe(queue.get_nowait())

    async def follow(self) -> None:
        """Observe scores as they arrive (the policy keeps learning while the session is paused)."""
        assert self._scores is not None
        while True:
            score: Score = await self._scores.get()
            self.policy.observe(score)

    # -- controls ----------------------------------------------------------------------------------------------
    def controls(self, index: int, t: float) -> Controls:
        self.observe_pending()
        control = self.control
        if control.generation != self._generation:
            self._sync()
        if control.override is not None:
            self._overridden = True
            return step_toward(control.bounds, self.last_controls, control.override)
        if self._overridden:  # the override was cleared: the policy goes on from what the listener hears
            self._overridden = False
            self._continue()
        wish = self.policy.next_controls(index, t)
        return clamp_controls(control.bounds, *wish.values())  # old bounds kept inside new

    def played(self, controls: Controls) -> None:
        self.last_controls = controls

    def _sync(self) -> None:
        control = self.control
        self._generation = control.generation
        switched = control.policy_name != self.policy_name
        if switched:
            self._keep_state()
            self.policy = self._make(control.policy_name)
            self.policy_name = control.policy_name
        for setter, value in (("set_bounds", control.bounds), ("set_target", control.target)):
            method = getattr(self.policy, setter, None)  # optional in the Policy protocol
            if callable(method):
                method(value)
        if switched and control.override is None:
            self._continue()  # (under an override, the policy continues when the override is cleared)

    def _continue(self) -> None:
        method = getattr(self.policy, "continue_from", None)  # optional in the Policy protocol
        if self.last_controls is not None and callable(method):
            method(self.last_controls)

    # -- what the policy learned, kept per listener ------------------------------------------------------------
    def _stored_states(self) -> dict[str, dict[str, Any]]:
        section = self._profile.get("policy") if self._profile is not None else None
        if section is None:
            return {}
        if not isinstance(section, dict) or not isinstance(section.get("name"), str) or "state" not in section:
            log.warning('profile: the \'policy\' section is not {"name": ..., "state": ...}; the policy starts afresh')
            return {}
        return {section["name"]: section["state"]}

    def _make(self, name: str) -> Policy:
        policy = self._factory(name)
        state = self._states.get(name)
        if state is None:
            return policy
        try:
            policy.load_state_dict(state)
        except (ValueError, TypeError, KeyError) as error:  # a malformed section must not stop the music
            self._report("warning", f"policy {name}: the profile's state cannot be used ({error}); starting afresh")
            return self._factory(name)
        log.info("policy %s continues from the profile's state", name)
        return policy

    def _keep_state(self) -> None:
        try:
            self._states[self.policy_name] = self.policy.state_dict()
        except (ValueError, TypeError, KeyError):  # a policy whose state cannot be taken loses only that
            log.exception("policy %s: state_dict failed", self.policy_name)

    def save(self) -> None:
        """Put what the active policy learned into the profile (written by the session when it ends)."""
        if self._profile is None:
            return
        try:
            self._profile.put("policy", {"name": self.policy_name, "state": self.policy.state_dict()})
        except (ValueError, TypeError, KeyError):  # lost: what this session learned; kept: the other sections
            log.exception("policy %s: its state could not be put into the profile", self.policy_name)
