"""Sweeps: a job's cells planned into cohorts (`plan`), a cohort driven through its programs with
compaction (`cohort`), the runner that trains, resumes and records them (`runner`), the adaptive
search in m (`search`) and the progress line (`progress`)."""
