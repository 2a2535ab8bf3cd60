"""Policy names -> "module:class", resolved lazily (a new policy is one module plus one line here)."""

from __future__ import annotations

import importlib
from typing import cast

from neuromusic.models.core.errors import ConfigError
from neuromusic.policies.base import Policy
from neuromusic.policies.config import PolicyConfig

POLICIES: dict[str, str] = {
    "mapping": "neuromusic.policies.mapping:MappingPolicy",
    "target": "neuromusic.policies.target:TargetPolicy",
    "bandit": "neuromusic.policies.bandit:BanditPolicy",
}


def policy_names() -> list[str]:
    return list(POLICIES)


def make_policy(name: str, config: PolicyConfig) -> Policy:
    """A fresh policy by name. Unknown name -> ConfigError listing the known ones."""
    target = POLICIES.get(name)
    if target is None:
        raise ConfigError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cast(Policy, cls(config))
