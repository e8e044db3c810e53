"""Gap: moto allows every call. This WSGI layer evaluates IAM for each request made as a role or user.

In front of moto and our JSON handlers: for each request it finds the caller from the SigV4 access key
(`iam_principals.MotoIamState`), works out the IAM checks the request implies (action, resource ARN,
request context, resource policy), evaluates them (`iam_policy_evaluation.evaluate`) and answers a denial
the way the service does. The dummy credentials stay the account's unrestricted caller (deploys, the CLI,
tests). A request of a role or user that this layer cannot map is refused, naming the request: an
unmapped call is a gap to close here, never silently allowed.

Implied checks, as AWS documents them:
- sagemaker:CreateTrainingJob also needs iam:PassRole on its RoleArn (iam:PassedToService =
  sagemaker.amazonaws.com) and, with Tags, sagemaker:AddTags on the job;
- states:TestState with a roleArn needs iam:PassRole on it (iam:PassedToService = states.amazonaws.com: the
  TestState reference says the API "assumes" the role, and passing a role to Step Functions is what PassRole
  guards for CreateStateMachine; the TestState page names no PassRole rule, so this is the stricter reading), and
  with revealSecrets states:RevealSecrets;
- S3 PutObject with SSE-KMS (header or the bucket's default) needs kms:GenerateDataKey on the key, a GetObject
  of an SSE-KMS object kms:Decrypt, both with kms:ViaService = s3.<region>.amazonaws.com
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#aws-managed-customer-managed-keys);
- SNS Publish to an encrypted topic needs kms:GenerateDataKey and kms:Decrypt on its key
  (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
The embedded endpoint is plain HTTP on loopback standing in for AWS's HTTPS endpoints: requests are
evaluated with aws:SecureTransport = true and s3:TlsVersion = 1.2.

sts:AssumeRole is evaluated against the role's trust policy for every caller, the account's own included, as
on AWS (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
applies the same two-sided rule within an account: the trust policy must allow the caller, and an account-wide
grant there still needs the caller's own permission). The embedded services assume roles as their service
principal with aws:SourceArn and aws:SourceAccount in the context, as AWS's services do.
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .iam_policy_evaluation import AuthorizationRequest, ContextValue, Decision, Policy, StatementMatch, evaluate
from .iam_principals import Caller, MotoIamState
from .json_protocol import SOURCE_ARN_HEADER, StartResponse, WsgiApp, WsgiEnviron
from .sagemaker_condition_keys import create_training_job_context, tag_context, update_training_job_context

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")
_SAGEMAKER_JOB_OPERATIONS = {"CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "UpdateTrainingJob"}


_LIST_PARAMETERS = {
    "list-type", "prefix", "delimiter", "continuation-token", "max-keys", "encoding-type", "start-after", "fetch-owner"
}  # fmt: skip


class UnmappedRequest(Exception):
    """A request of a restricted caller that the layer does not know how to authorize."""


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: dict[str, ContextValue] = field(default_factory=dict)
    resource_policy: Policy | None = None
    resource_policy_required: bool = False


def create_training_job_checks(job_arn: str, payload: dict[str, Any], context: dict[str, Any]) -> list[Check]:
    """What IAM authorizes for one CreateTrainingJob request, in the order the layer evaluates it (also used by
    tests that evaluate synthesized policies without deploying them)."""
    checks = [Check("sagemaker:CreateTrainingJob", job_arn, context | create_training_job_context(payload))]
    checks.append(
        Check(
            "iam:PassRole",
            str(payload.get("RoleArn", "")),
            context | {"iam:PassedToService": "sagemaker.amazonaws.com"},
        )
    )
    if payload.get("Tags"):
        checks.append(Check("sagemaker:AddTags", job_arn, context | tag_context(payload["Tags"])))
    return checks


@dataclass(frozen=True)
class Recorded:
    """One evaluated check, for the least-privilege report."""

    entity_arn: str
    action: str
    resource: str
    allowed: bool
    allowed_by: tuple[StatementMatch, ...]


class DecisionLog:
    """Every evaluated check of restricted callers, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Recorded] = []

    def add(self, entry: Recorded) -> None:
        with self._lock:
            self.entries.append(entry)

    def snapshot(self) -> list[Recorded]:
        with self._lock:
            return list(self.entries)


@dataclass(frozen=True)
class Incoming:
    """What the mapping needs from one HTTP request."""

    service: str  # the SigV4 signing name: s3, sagemaker, kms, logs, states, ...
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def describe(self) -> str:
        target = self.headers.get("x-amz-target", "")
        query = "&".join(sorted(self.query))
        return f"{self.service} {self.method} {self.path}{'?' + query if query else ''} {target}".strip()


class IamEnforcement:
    """WSGI middleware: authorize, then hand the request to `app` (our handlers, then moto)."""

    def __init__(self, app: WsgiApp, account: str, region: str) -> None:
        self._app = app
        self.account = account
        self.region = region
        self.state = MotoIamState(account, region)
        self.log = DecisionLog()

    def __call__(self, environ: WsgiEnviron, start_response: StartResponse) -> Iterable[bytes]:
        found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", "")) or _CREDENTIAL.search(
            "Credential=" + urllib.parse.unquote(_query(environ).get("X-Amz-Credential", [""])[0])
        )
        if not found:
            return self._app(environ, start_response)  # unsigned: moto's own API (reset), health checks
        access_key, _, service = found.groups()
        caller = self.state.caller(access_key)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        incoming = Incoming(
            service=service,
            method=environ["REQUEST_METHOD"],
            path=urllib.parse.unquote(environ.get("PATH_INFO", "")),
            query=_query(environ),
            headers={k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
            | {"content-type": environ.get("CONTENT_TYPE", "")},
            body=body,
        )
        if caller is None:
            return _deny(
                start_response,
                incoming,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        role_to_assume = _assumed_role(incoming)
        if role_to_assume is not None:
            return self._assume_role(caller, incoming, role_to_assume, environ, start_response)
        if caller.principal.service:
            message = f"{caller.principal.service} calls AWS only as a role it assumes, not as itself"
            return _deny(start_response, incoming, "AccessDenied", message)
        if caller.unrestricted:
            return self._as_account(caller, incoming, environ, start_response)
        try:
            checks = self.checks(incoming, caller)
        except UnmappedRequest as error:
            message = (
                f"User: {caller.principal.arn} is not authorized to perform this request: the embedded AWS cannot map "
                f"'{incoming.describe()}' to IAM actions ({error}), so it refuses it rather than allow it unchecked"
            )
            return _deny(start_response, incoming, "AccessDenied", message)
        for check in checks:
            decision = self.decide(caller, check)
            if not decision.allowed:
                message = decision.message(_as_request(caller, check))
                return _deny(start_response, incoming, "AccessDenied", message)
        return self._app(environ, start_response)

    def _as_account(
        self, caller: Caller, incoming: Incoming, environ: WsgiEnviron, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The account's own callers hold every identity permission, but an explicit Deny in a resource policy
        (a bucket policy's TLS or KMS-key rule) binds them too, as on AWS: only those statements are evaluated."""
        try:
            checks = self.checks(incoming, caller)
        except UnmappedRequest:
            return self._app(environ, start_response)
        for check in checks:
            if check.resource_policy is None:
                continue
            decision = evaluate(_as_request(caller, check), [_EVERYTHING], resource_policy=check.resource_policy)
            if not decision.allowed:
                return _deny(start_response, incoming, "AccessDenied", decision.message(_as_request(caller, check)))
        return self._app(environ, start_response)

    def _assume_role(
        self, caller: Caller, incoming: Incoming, role_arn: str, environ: WsgiEnviron, start_response: StartResponse
    ) -> Iterable[bytes]:
        """sts:AssumeRole: the role's trust policy must allow the caller (a service by its principal name, with
        the aws:SourceArn it acts for), and an account-wide grant there also needs the caller's own permission."""
        context: dict[str, ContextValue] = {"aws:SecureTransport": True, "aws:RequestedRegion": self.region}
        if caller.principal.service:
            source = incoming.headers.get(SOURCE_ARN_HEADER.lower())
            if source:
                context["aws:SourceArn"] = source
                context["aws:SourceAccount"] = source.split(":")[4] or self.account
            identity: list[Policy] = []
        else:
            context |= {"aws:PrincipalArn": caller.entity_arn, "aws:PrincipalAccount": self.account}
            identity = [_EVERYTHING] if caller.unrestricted else self.state.identity_policies(caller.entity_arn)
        check = Check("sts:AssumeRole", role_arn, context)
        trust = self.state.trust_policy(role_arn)
        decision = (
            evaluate(
                _as_request(caller, check),
                identity,
                boundary=None if caller.unrestricted else self.state.boundary(caller.entity_arn),
                resource_policy=trust,
                resource_policy_required=True,
            )
            if trust is not None
            else Decision(False)
        )
        if not caller.unrestricted and not caller.principal.service:
            self.log.add(Recorded(caller.entity_arn, check.action, role_arn, decision.allowed, decision.allowed_by))
        if not decision.allowed:
            # AWS's wording for a refused AssumeRole names the caller and the role, without a reason.
            message = (
                f"User: {caller.principal.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            )
            return _deny(start_response, incoming, "AccessDenied", message)
        return self._app(environ, start_response)

    def decide(self, caller: Caller, check: Check) -> Decision:
        decision = evaluate(
            _as_request(caller, check),
            self.state.identity_policies(caller.entity_arn),
            boundary=self.state.boundary(caller.entity_arn),
            resource_policy=check.resource_policy,
            resource_policy_required=check.resource_policy_required,
        )
        self.log.add(Recorded(caller.entity_arn, check.action, check.resource, decision.allowed, decision.allowed_by))
        return decision

    # ------------------------------------------------------------------------------ request → checks

    def checks(self, incoming: Incoming, caller: Caller) -> list[Check]:
        context: dict[str, ContextValue] = {
            "aws:PrincipalArn": caller.entity_arn,
            "aws:PrincipalAccount": self.account,
            "aws:SecureTransport": True,
            "aws:RequestedRegion": self.region,
        }
        if incoming.service == "s3":
            return self._s3(incoming, context)
        target = incoming.headers.get("x-amz-target")
        if target:
            try:
                payload = json.loads(incoming.body or b"{}")
            except ValueError as error:
                raise UnmappedRequest("body is not JSON") from error
            return self._json(incoming.service, target.rsplit(".", 1)[-1], payload, context)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(incoming.body.decode(errors="replace")).items()}
        form |= {k: v[0] for k, v in incoming.query.items()}
        if "Action" in form:
            return self._query(incoming.service, form, context)
        raise UnmappedRequest("neither S3, JSON nor query protocol")

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def _kms(self, action: str, key_id: str, context: dict[str, ContextValue], via: str | None = None) -> Check:
        found = self.state.kms_key(key_id)
        if found is None:
            raise UnmappedRequest(f"KMS key {key_id!r} does not exist")
        key_arn, key_policy = found
        extra: dict[str, ContextValue] = {"kms:ViaService": f"{via}.{self.region}.amazonaws.com"} if via else {}
        return Check(action, key_arn, context | extra, key_policy, resource_policy_required=True)

    def _json(self, service: str, operation: str, payload: dict[str, Any], context: dict[str, Any]) -> list[Check]:
        action = f"{service}:{operation}"
        if service == "sagemaker":
            if operation in _SAGEMAKER_JOB_OPERATIONS:
                job = self.arn("sagemaker", f"training-job/{str(payload.get('TrainingJobName', '')).lower()}")
                if operation == "UpdateTrainingJob":
                    return [Check(action, job, context | update_training_job_context(payload))]
                if operation != "CreateTrainingJob":
                    return [Check(action, job, context)]
                return create_training_job_checks(job, payload, context)
            if operation in ("ListTags", "AddTags", "DeleteTags"):
                return [Check(action, str(payload.get("ResourceArn", "")), context | tag_context(payload.get("Tags")))]
            if operation == "ListTrainingJobs":
                return [Check(action, "*", context)]
            if operation in ("DescribeNotebookInstance", "StopNotebookInstance"):
                name = str(payload.get("NotebookInstanceName", "")).lower()
                return [Check(action, self.arn("sagemaker", f"notebook-instance/{name}"), context)]
        elif service == "kms" and payload.get("KeyId"):
            return [self._kms(action, str(payload["KeyId"]), context | {"kms:GrantIsForAWSResource": False})]
        elif service == "logs" and payload.get("logGroupName"):
            group = payload["logGroupName"]
            stream = payload.get("logStreamName")
            resource = (
                f"log-group:{group}:log-stream:{stream}"
                if stream and operation == "PutLogEvents"
                else (f"log-group:{group}:*")
            )
            return [Check(action, self.arn("logs", resource), context)]
        elif service == "states":
            if operation == "TestState":
                return self._test_state(payload, context)
            resource = payload.get("stateMachineArn") or payload.get("executionArn")
            if resource:
                return [Check(action, str(resource), context)]
            if operation in ("ListStateMachines", "ListActivities"):
                return [Check(action, "*", context)]
        elif service == "servicequotas":
            if operation in ("GetServiceQuota", "GetAWSDefaultServiceQuota") and payload.get("QuotaCode"):
                quota = f"{payload.get('ServiceCode')}/{payload['QuotaCode']}"
                resource = self.arn("servicequotas", quota) if operation == "GetServiceQuota" else "*"
                return [Check(action, resource, context)]
            if operation in ("ListServiceQuotas", "ListAWSDefaultServiceQuotas"):
                return [Check(action, "*", context)]
        elif service == "events":
            rule = payload.get("Name") or payload.get("Rule")
            if rule:
                return [Check(action, self.arn("events", f"rule/{rule}"), context)]
        elif service == "monitoring" and operation == "PutMetricData" and payload.get("Namespace"):
            # CloudWatch signs as `monitoring`; IAM names it `cloudwatch`. PutMetricData has no resource-level
            # permissions; its scope is the `cloudwatch:namespace` condition key.
            namespace: ContextValue = str(payload["Namespace"])
            return [Check("cloudwatch:PutMetricData", "*", context | {"cloudwatch:namespace": namespace})]
        elif service == "ecr":
            if operation == "GetAuthorizationToken":
                return [Check(action, "*", context)]
            if payload.get("repositoryName"):
                return [Check(action, self.arn("ecr", f"repository/{payload['repositoryName']}"), context)]
        raise UnmappedRequest(f"no mapping for {action}")

    def _test_state(self, payload: dict[str, Any], context: dict[str, Any]) -> list[Check]:
        """states:TestState has no resource type (Service Authorization Reference); the role it runs as is passed to
        Step Functions (iam:PassRole, as for CreateStateMachine), and revealSecrets needs states:RevealSecrets."""
        checks = [Check("states:TestState", "*", context)]
        if payload.get("roleArn"):
            passed = context | {"iam:PassedToService": "states.amazonaws.com"}
            checks.append(Check("iam:PassRole", str(payload["roleArn"]), passed))
        if payload.get("revealSecrets"):
            checks.append(Check("states:RevealSecrets", "*", context))
        return checks

    def _query(self, service: str, form: dict[str, str], context: dict[str, Any]) -> list[Check]:
        operation = form["Action"]
        action = f"{service}:{operation}"
        if service == "sts" and operation == "GetCallerIdentity":
            return []  # needs no permission (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)
        if service == "sns" and operation == "Publish" and form.get("TopicArn"):
            topic = form["TopicArn"]
            found = self.state.topic(topic)
            if found is None:
                raise UnmappedRequest(f"topic {topic} does not exist")
            topic_policy, key = found
            checks = [Check(action, topic, context, topic_policy)]
            if key:
                checks += [self._kms(a, key, context, via="sns") for a in ("kms:GenerateDataKey", "kms:Decrypt")]
            return checks
        raise UnmappedRequest(f"no mapping for {action}")

    def _s3(self, incoming: Incoming, context: dict[str, Any]) -> list[Check]:
        bucket, _, key = incoming.path.lstrip("/").partition("/")
        if not bucket:
            raise UnmappedRequest("S3 request without a bucket in the path (virtual-hosted style is not mapped)")
        context = context | {"s3:TlsVersion": "1.2"}
        policy = self.state.bucket_policy(bucket)
        query = incoming.query
        method = incoming.method
        bucket_arn = f"arn:aws:s3:::{bucket}"
        if not key:
            if method in ("GET", "HEAD") and not set(query) - _LIST_PARAMETERS:
                prefix = {"s3:prefix": query["prefix"][0]} if "prefix" in query else {}
                return [Check("s3:ListBucket", bucket_arn, context | prefix, policy)]
            if method == "GET" and "location" in query:
                return [Check("s3:GetBucketLocation", bucket_arn, context, policy)]
            raise UnmappedRequest("bucket-level S3 operation")
        object_arn = f"{bucket_arn}/{key}"
        if method in ("GET", "HEAD") and not (set(query) - {"versionId", "partNumber", "response-content-type"}):
            action = "s3:GetObjectVersion" if "versionId" in query else "s3:GetObject"
            checks = [Check(action, object_arn, context, policy)]
            kms_key = self.state.object_kms_key(bucket, key)
            if kms_key and method == "GET":
                checks.append(self._kms("kms:Decrypt", kms_key, context, via="s3"))
            return checks
        if method == "DELETE" and "uploadId" in query:
            return [Check("s3:AbortMultipartUpload", object_arn, context, policy)]
        if method == "DELETE" and not query:
            return [Check("s3:DeleteObject", object_arn, context, policy)]
        if (method == "PUT" and "partNumber" in query) or (method == "POST" and "uploadId" in query):
            return [Check("s3:PutObject", object_arn, context, policy)]
        if (method == "PUT" and not query) or (method == "POST" and "uploads" in query):
            if "x-amz-copy-source" in incoming.headers:
                raise UnmappedRequest("CopyObject")
            headers = incoming.headers
            kms_key = headers.get("x-amz-server-side-encryption-aws-kms-key-id")
            if headers.get("x-amz-server-side-encryption") != "aws:kms":
                kms_key = (
                    None if headers.get("x-amz-server-side-encryption") else self.state.bucket_default_kms_key(bucket)
                )
            put_context = dict(context)
            if headers.get("x-amz-server-side-encryption"):
                put_context["s3:x-amz-server-side-encryption"] = headers["x-amz-server-side-encryption"]
            # As on AWS, the condition key exists only when the request names a key: an object that takes the
            # bucket's default key is judged by `...IfExists` statements as having none (the KMS check below
            # still applies to the default key).
            if headers.get("x-amz-server-side-encryption-aws-kms-key-id"):
                put_context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = headers[
                    "x-amz-server-side-encryption-aws-kms-key-id"
                ]
            checks = [Check("s3:PutObject", object_arn, put_context, policy)]
            if kms_key:
                checks.append(self._kms("kms:GenerateDataKey", kms_key, context, via="s3"))
            return checks
        raise UnmappedRequest("object-level S3 operation")


def _assumed_role(incoming: Incoming) -> str | None:
    """The RoleArn of an sts:AssumeRole request (query protocol), else None."""
    if incoming.service != "sts" or "x-amz-target" in incoming.headers:
        return None
    form = {k: v[0] for k, v in urllib.parse.parse_qs(incoming.body.decode(errors="replace")).items()}
    form |= {k: v[0] for k, v in incoming.query.items()}
    return form.get("RoleArn", "") if form.get("Action") == "AssumeRole" else None


def _query(environ: WsgiEnviron) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)


# What the account's own (administrator) credentials hold on the identity side.
_EVERYTHING = Policy("account", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def _as_request(caller: Caller, check: Check) -> AuthorizationRequest:
    return AuthorizationRequest(caller.principal, check.action, check.resource, check.context)


def _deny(start_response: StartResponse, incoming: Incoming, code: str, message: str) -> list[bytes]:
    """The denial in the service's own protocol."""
    request_id = str(uuid.uuid4())
    if incoming.service == "s3":
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{_s3_code(code)}</Code>"
            f"<Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        status, content_type = "403 Forbidden", "application/xml"
        if incoming.method == "HEAD":
            body = b""
    elif "x-amz-target" in incoming.headers:
        json_code = "AccessDeniedException" if code == "AccessDenied" else "UnrecognizedClientException"
        body = json.dumps({"__type": json_code, "message": message}).encode()
        status, content_type = "400 Bad Request", "application/x-amz-json-1.1"
    else:
        query_code = "AuthorizationError" if incoming.service == "sns" and code == "AccessDenied" else code
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        status, content_type = "403 Forbidden", "text/xml"
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)],
    )
    return [body]


def _s3_code(code: str) -> str:
    return "InvalidAccessKeyId" if code == "InvalidClientTokenId" else code


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
