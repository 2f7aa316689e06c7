"""The monitoring mixin: dashboards, recording and alerting rules, and the adapter rule, as code.

``python monitoring/generate.py`` (``make dashboards``) renders them into the chart's ``files/`` folder
and ``monitoring/values/``; nothing generated is edited by hand.
"""
