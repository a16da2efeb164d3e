"""JUnit XML for CI systems: one test case per threshold rule."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from mendersim.report.results import RuleResult, failed

SUITE = "mendersim thresholds"


def junit_xml(results: Sequence[RuleResult], timestamp: float) -> ET.ElementTree:
    failures = str(len(failed(results)))
    root = ET.Element("testsuites", name="mendersim", tests=str(len(results)), failures=failures)
    suite = ET.SubElement(
        root,
        "testsuite",
        name=SUITE,
        tests=str(len(results)),
        failures=failures,
        errors="0",
        skipped="0",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)),
    )
    for result in results:
        section = result.rule.split(".", 1)[0]
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"mendersim.thresholds.{section}",
            name=result.rule,
            time="0",
        )
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=result.message, type=result.verdict)
            failure.text = result.message
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: Sequence[RuleResult], path: str, timestamp: float) -> None:
    if directory := os.path.dirname(path):
        os.makedirs(directory, exist_ok=True)
    junit_xml(results, timestamp).write(path, encoding="utf-8", xml_declaration=True)
