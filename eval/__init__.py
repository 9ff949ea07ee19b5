"""Evaluation layer for Jury: per-item records, pure metrics, reports and a simulation study.

The harness runner (``jury eval run``) turns service verdicts into :class:`eval.records.ItemResult`
records; :func:`eval.report.build_report` turns those into a :class:`eval.report.Report`.
"""
