"""The reliability table's place: docs/reliability.md, between its markers, created when absent."""

from __future__ import annotations

from reliability.report import BEGIN, END, REPORT_DOC, update_report_doc


def test_the_table_goes_to_docs_not_the_readme():
    assert REPORT_DOC.parts[-2:] == ("docs", "reliability.md")


def test_a_missing_file_is_created_with_the_table_between_markers(tmp_path):
    doc = tmp_path / "docs" / "reliability.md"
    update_report_doc(doc, "| a | b |")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Reliability figures")
    assert f"{BEGIN}\n| a | b |\n{END}" in text


def test_only_the_text_between_the_markers_is_replaced(tmp_path):
    doc = tmp_path / "reliability.md"
    doc.write_text(f"intro\n{BEGIN}\nold table\n{END}\noutro\n", encoding="utf-8")
    update_report_doc(doc, "new table")
    assert doc.read_text(encoding="utf-8") == f"intro\n{BEGIN}\nnew table\n{END}\noutro\n"


def test_a_file_without_markers_gets_them_appended(tmp_path):
    doc = tmp_path / "reliability.md"
    doc.write_text("# Notes\n", encoding="utf-8")
    update_report_doc(doc, "t")
    assert doc.read_text(encoding="utf-8") == f"# Notes\n\n{BEGIN}\nt\n{END}\n"
