"""The page's sections, one module each, in the order bench/report/build.py lists them. Each declares
`SECTION`, a `SectionSpec` (base.py): the reports it shows, picked by role from what was loaded, what it
says when there are none, and the blocks it builds from them."""
