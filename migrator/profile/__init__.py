"""Profiles: a YAML file that describes a whole run (source, targets, folders, filters, state)."""

from migrator.profile.load import load_profile
from migrator.profile.schema import Profile
from migrator.profile.to_run import RunPlan, plan_run

__all__ = ["Profile", "RunPlan", "load_profile", "plan_run"]
