"""Click commands, one module per sub-command; registered in exprlmm.cli."""
