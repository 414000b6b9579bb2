"""The job engine: jobs, their runs, cron maths, beat's scheduler. It knows nothing of Alloy."""
