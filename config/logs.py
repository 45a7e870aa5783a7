"""What reaches the console: an operator should see what needs acting on, not routine traffic."""

import logging


class ClientErrorsOnOneLine(logging.Filter):
    """Django logs every 4xx answer as a WARNING, a refused permission with its traceback; a
    client's mistake is one INFO line (``Forbidden (Permission denied): /rules/new/``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500:
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True
