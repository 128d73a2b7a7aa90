"""The team program (stacks `<team>-<env>`): one team's services in one environment.

Pulumi runs it from this folder (`pulumi -C teams up --stack checkout-prod`); the declarations and
components are the repository's, at the top. The platform stack of the environment must be
deployed first: this program reads its contract through a StackReference (components/team_stack.py).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402

from components.spec import SpecError  # noqa: E402
from components.team_stack import TeamStack, parse_stack  # noqa: E402

try:
    team, environment = parse_stack(pulumi.get_stack(), ROOT)
    stack = TeamStack(team, environment, ROOT)
except (SpecError, ValueError) as err:
    # RunError prints just the message: a declaration mistake is not a crash.
    raise pulumi.RunError(f"invalid stack declarations:\n{err}") from None

pulumi.export("team", team)
pulumi.export("deployRoleArn", stack.deploy_role_arn)
pulumi.export("services", sorted(stack.services))
pulumi.export(
    "canaries",
    {
        name: {"rollbackSeconds": svc.rollback_seconds, "promotionSeconds": svc.promotion_seconds}
        for name, svc in stack.services.items()
        if svc.rollback_seconds is not None
    },
)
