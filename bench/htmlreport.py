"""`python -m bench report` (bench/__main__.py names this module): the page is built in bench/report/."""

from bench.report.build import main

__all__ = ["main"]
