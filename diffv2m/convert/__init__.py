"""diffv2m.convert: weight converters (torch).  ``official``: the published Diff-V2M
checkpoint -> this project's ``paper`` model (``diffv2m convert official``)."""
