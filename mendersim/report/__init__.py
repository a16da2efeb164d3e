"""Run reports for people and CI: threshold verdicts as a console table, JUnit XML and Markdown."""
