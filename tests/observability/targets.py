"""Functions an Invoke Python action of the log tests calls (importable by dotted path)."""

import logging


def log_a_line(context):
    logging.getLogger("conveyor.test.invoked").warning("deploying %s", context.action_name)
    return {}
