"""The HTML report: tables, figures, overlays, the summary and the run section of a study."""
