"""Gap: moto's CloudFormation reports a resource type it cannot create with a log line and a Python warning
per resource and per deploy ("No Moto CloudFormation support for AWS::CloudWatch::Alarm", "Tried to parse
..."), which `make demo` printed by the dozen.

We silence both and say it once per type, in plain words, on the `trainstack.embedded_aws` logger.
`AWS::CDK::Metadata` (CDK's version report, nothing to create) is not mentioned at all.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings

_MOTO_LINE = re.compile(r"No Moto CloudFormation support for (\S+)")
_SILENT_TYPES = frozenset({"AWS::CDK::Metadata"})
_logger = logging.getLogger("trainstack.embedded_aws")
_lock = threading.Lock()
reported: set[str] = set()


class _OncePerType(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        found = _MOTO_LINE.match(record.getMessage())
        if not found:
            return True
        resource_type = found.group(1)
        with _lock:
            first = resource_type not in reported
            reported.add(resource_type)
        if first and resource_type not in _SILENT_TYPES:
            _logger.warning(
                "embedded AWS: %s resources are accepted but not created (no local equivalent); "
                "see trainstack/embedded_aws/README.md",
                resource_type,
            )
        return False


def apply() -> None:
    logging.getLogger("moto").addFilter(_OncePerType())
    warnings.filterwarnings("ignore", message=r"Tried to parse .* not supported by moto")
