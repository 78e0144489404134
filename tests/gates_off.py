"""For tests that are not about the validation gates: a project whose promotions, canaries
and splits need no gate record (``[gates] require = false``, a real setting of shipyard.toml)."""

from shipyard.config import ProjectConfig

#: The ``[gates]`` table that turns the requirement off, for tests that write shipyard.toml.
GATES_OFF_TOML = "[gates]\nrequire = false\n"

#: The parsed project with that table, for tests that build clients or registries.
NO_GATES = ProjectConfig.model_validate({"gates": {"require": False}})
