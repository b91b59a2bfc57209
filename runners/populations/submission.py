"""``submission:DIR``: a 2023 Melting Pot contest starter-kit directory as a population member.

DIR holds ``my_policies/user_config.py`` defining

* ``SubmissionPolicies``: substrate name -> Policy class (its constructor
  takes the policy id, as the kit's ``policy_class(policy_id)``, or nothing);
* ``SubmissionRoles``: substrate name -> {role: [policy ids that may play it]}.

DIR is on ``sys.path`` while ``user_config`` is imported, as in the kit's own
evaluation, so it may import sibling modules (``from my_policies import x``).
For each scenario the class of its substrate plays; a focal slot of role R
plays as its own id ``agent_<player index>`` when SubmissionRoles allows that
id for R, else as an allowed id drawn with the slot's seed. Each slot builds
its own instance per episode, entered as a context manager and exited when
the episode ends. The loading and building code is shared with the other
interpreter's bridge (``capprof.runners.populations.bridge``), so a submission behaves the
same in capprof's interpreter and in ``submission:DIR@PYTHON``.
"""

from __future__ import annotations

from capprof.errors import CapprofError
from capprof.runners.populations.bridge import SpecError, load_submission, open_policy


def check_roles(directory: str, roles: dict, scenario) -> None:
    """One line naming the problem unless the submission whose SubmissionRoles
    are ``roles`` (substrate -> {role: ids}) can fill every focal slot of
    ``scenario``."""
    if scenario.substrate not in roles:
        covered = ", ".join(sorted(roles)) or "none"
        raise CapprofError(f"submission {directory} does not cover substrate {scenario.substrate} "
                           f"(scenario {scenario.name}); it covers {covered}; choose scenarios on those "
                           "substrates or add the substrate to SubmissionPolicies and SubmissionRoles")
    by_role = roles[scenario.substrate] or {}
    players = len(scenario.roles)
    for role, ids in by_role.items():
        for policy_id in ids:
            if int(str(policy_id).rpartition("_")[2]) >= players:
                raise CapprofError(f"submission {directory}: SubmissionRoles[{scenario.substrate!r}][{role!r}] "
                                   f"lists policy id {policy_id!r}, which does not exist: {scenario.substrate} "
                                   f"has {players} players (scenario {scenario.name}), ids agent_0 .. "
                                   f"agent_{players - 1}")
    for role in sorted({r for r, f in zip(scenario.roles, scenario.is_focal) if f}):
        if not by_role.get(role):
            listed = ", ".join(repr(r) for r in by_role) or "none"
            raise CapprofError(f"submission {directory}: SubmissionRoles[{scenario.substrate!r}] allows no "
                               f"policy id for role {role!r}, which scenario {scenario.name} plays; it lists "
                               f"roles {listed} (not roles of this scenario's focal players?); add ids for "
                               f"{role!r}, e.g. {{{role!r}: ['agent_0']}}")


class SubmissionSource:
    """Builds a submission's policies in capprof's interpreter (loaded once per process)."""

    def __init__(self, directory: str):
        from capprof.meltingpot_import import import_meltingpot

        import_meltingpot()  # the kit's policies import meltingpot: quietly first
        try:
            self.submission = load_submission(directory)
        except SpecError as exc:
            raise CapprofError(str(exc)) from None
        self.directory = directory
        missing = sorted(set(self.submission.policies) - set(self.submission.roles))
        if missing:
            raise CapprofError(f"submission {directory}: SubmissionRoles has no entry for {', '.join(missing)}; "
                               "give each substrate in SubmissionPolicies its {role: [policy ids]}")

    def check_scenario(self, scenario) -> None:
        check_roles(self.directory, {s: self.submission.roles.get(s) or {} for s in self.submission.policies},
                    scenario)

    def build(self, info, seed: int, slot):
        cls = self.submission.policy_class(info.name)
        return open_policy(cls, self.submission.policy_id(info.name, slot.role, slot.policy_id, seed))
