class StackError(Exception):
    """Something a person can fix; printed as one line, without a traceback."""
