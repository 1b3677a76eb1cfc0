"""Plan: the exact processes, argv, env and ports for a config.

`planner.make_plan` is pure; `here.plan_for_here` hands it this machine's facts (devices, binaries,
free ports, cache folders, user) as arguments.
"""
from __future__ import annotations

from ..binaries import Binaries
from .here import host_here, plan_for_here
from .model import FlagIssue, ModelPlan, MpiJob, Plan, PlanFile, ProcessSpec, RankJob
from .planner import Host, make_plan

__all__ = ["plan_for_here", "host_here", "make_plan", "Host", "Binaries", "Plan", "ModelPlan", "ProcessSpec",
           "MpiJob", "RankJob", "PlanFile", "FlagIssue"]
