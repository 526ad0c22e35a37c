"""`manage.py promote_policy --policy-version <id> [--user admin --force --reason "..."]`."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from crm_console.decisioning.promotion import PromotionRefused, policy_version_promote
from crm_console.training.management.commands._common import user_from, version_from


class Command(BaseCommand):
    help = ("Promote a policy version through the guardrail (the lower bound of its estimated gain "
            "over the live policy, on the same logged decisions, must be above the margin), or "
            "force it as a user with the force permission and a reason.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--policy-version", type=int, required=True, help="PolicyVersion id")
        parser.add_argument("--user", help="who promotes (default: the system, guardrail only)")
        parser.add_argument("--force", action="store_true")
        parser.add_argument("--reason", default="")

    def handle(self, *args, policy_version, user, force, reason, **options) -> None:
        target = version_from(policy_version)
        try:
            promoted = policy_version_promote(policy_version=target, promoted_by=user_from(user),
                                              reason=reason, force=force)
        except PromotionRefused as refused:
            raise CommandError(f"Refused by the guardrail: {refused.reason}") from None
        except (PermissionDenied, ValidationError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(
            f"v{promoted.version} is live ({'forced' if promoted.forced_promotion else 'guardrail'}): "
            f"{promoted.promotion_reason}"))
