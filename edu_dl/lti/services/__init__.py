"""The LTI tool's services: launches, deep linking, grades (AGS), rosters (NRPS) and keys."""

from edu_dl.lti.services.deep_linking import DeepLinkingAnswer, lti_deep_linking_answer
from edu_dl.lti.services.grades import (
    GRADE_PASSBACK_SWEEP_TASK_NAME,
    GRADE_PASSBACK_TASK_NAME,
    PlatformUnavailable,
    lti_grade_passback,
    lti_grade_passback_sweep,
    lti_grade_released,
    lti_grades_released,
)
from edu_dl.lti.services.keys import tool_key_generate, tool_keys_retire
from edu_dl.lti.services.launches import LaunchOutcome, lti_launch_accept, lti_role_of
from edu_dl.lti.services.roster import ROSTER_SYNC_TASK_NAME, RosterSync, lti_roster_sync

__all__ = [
    "GRADE_PASSBACK_SWEEP_TASK_NAME",
    "GRADE_PASSBACK_TASK_NAME",
    "ROSTER_SYNC_TASK_NAME",
    "DeepLinkingAnswer",
    "LaunchOutcome",
    "PlatformUnavailable",
    "RosterSync",
    "lti_deep_linking_answer",
    "lti_grade_passback",
    "lti_grade_passback_sweep",
    "lti_grade_released",
    "lti_grades_released",
    "lti_launch_accept",
    "lti_role_of",
    "lti_roster_sync",
    "tool_key_generate",
    "tool_keys_retire",
]
