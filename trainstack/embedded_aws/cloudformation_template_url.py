"""Gap: moto resolves a CloudFormation `TemplateURL` to a bucket only for a few URL shapes.

`cdk deploy` uploads each template as an asset and passes its URL to CreateChangeSet. moto's parser
takes the first label of the host as the bucket unless the host starts with `s3` or contains `localhost`,
so a path-style URL on `127.0.0.1:<port>` (what the CDK CLI builds from `AWS_ENDPOINT_URL`) and other
shapes fail with "The specified bucket does not exist". We parse every documented S3 URL shape.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlparse

from moto.cloudformation import models as moto_cfn_models
from moto.cloudformation import responses as moto_cfn_responses

# bucket.s3.amazonaws.com, bucket.s3.us-east-1.amazonaws.com, bucket.s3-us-east-1.amazonaws.com
_VIRTUAL_HOSTED = re.compile(r"^(?P<bucket>.+)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?$")


def bucket_and_key(template_url: str) -> tuple[str, str]:
    """Split any S3 object URL (virtual-hosted, path-style, regional or not, or a local endpoint)."""
    parts = urlparse(template_url)
    if parts.scheme == "s3":
        return parts.netloc, unquote(parts.path.lstrip("/"))
    host = parts.hostname or ""
    match = _VIRTUAL_HOSTED.match(host)
    if match:
        return match.group("bucket"), unquote(parts.path.lstrip("/"))
    # Path style: s3.amazonaws.com/bucket/key, s3.<region>.amazonaws.com/bucket/key, 127.0.0.1:port/bucket/key.
    bucket, _, key = parts.path.lstrip("/").partition("/")
    return bucket, unquote(key)


def get_stack_from_s3_url(template_url: str, account_id: str, partition: str) -> str:
    from moto.s3.models import s3_backends

    bucket, key = bucket_and_key(template_url)
    obj = s3_backends[account_id][partition].get_object(bucket, key)
    return obj.value.decode("utf-8")  # type: ignore[union-attr]


def apply() -> None:
    # Both modules imported the function by name.
    moto_cfn_responses.get_stack_from_s3_url = get_stack_from_s3_url
    moto_cfn_models.get_stack_from_s3_url = get_stack_from_s3_url
