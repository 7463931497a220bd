"""Pure SPEC rules as functions of values: lifecycle, intake, judgement, statistics, admission, approval, guards."""
