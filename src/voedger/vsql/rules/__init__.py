"""The checks of the analyser, grouped by what they check.

Each module adds methods to one class chain (`base` < `tables` < `views`, plus `extensions` and
`acl`); `voedger.vsql.analyser` combines them and drives the passes.
"""
