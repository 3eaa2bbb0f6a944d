"""`python -m bench report`: reports/index.html, one self-contained page built from the report-schema
documents in reports/measured/ and reports/simulated/, each section chosen by the reports' `role`, every
figure badged measured, simulated or quoted from the article (jinja2 template bench/templates/).

    view.py       what the template renders (Section, Table, Plot, Fig ...) and the number formats
    loading.py    the reports read from disk, and which measured run a validation replayed
    series.py     figures computed from a report (jobs in system, replicas up, FIFO ideal, cold-start parts)
    tables.py     table rows more than one section shows (SLO cells, validation errors, `extra["tables"]`)
    plotting.py   the matplotlib figures, as data URIs
    sections/     one module a section, each declaring its `SECTION` (sections/base.py's SectionSpec)
    build.py      the section list, the page and the command line

Nothing is imported here, so a submodule can be imported alone (the entry point is `bench.report.build`)."""
