"""The execution input contract: validation (InvalidInput) and the merge with the environment's defaults.

The contract is `schemas/training-run-input.schema.json`; the field list below is read from it so the
schema, the validation and the console example cannot drift apart. Validation runs as one JSONata
expression in a Pass state, before anything is created, and collects every problem at once: each
message names the field, the value and what is allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainstack.config import (
    MAX_CAPACITY_WAIT_SECONDS,
    MAX_KEEP_ALIVE_SECONDS,
    MAX_RUNTIME_CEILING_SECONDS,
    EnvironmentConfig,
    ResourceNames,
)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "training-run-input.schema.json"
# SageMaker allows 100 hyperparameters; script mode adds five sagemaker_* entries of its own.
MAX_USER_HYPERPARAMETERS = 95
MAX_HYPERPARAMETER_LENGTH = 2500


def input_fields() -> list[str]:
    return sorted(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["properties"])


def run_defaults(config: EnvironmentConfig) -> dict[str, Any]:
    """What `{}` means in this environment, in the input's own vocabulary."""
    training = config.training
    return {
        "instance_type": training.instance_type,
        "instance_count": training.instance_count.default,
        "hyperparameters": training.hyperparameters,
        "channels": {
            name: {"prefix": channel.prefix, "input_mode": channel.input_mode.value}
            for name, channel in training.channels.items()
        },
        "environment": training.environment,
        "keep_alive_seconds": training.keep_alive_seconds,
        "max_runtime_seconds": training.max_runtime_seconds,
        "spot": training.spot,
        "max_wait_seconds": training.max_wait_seconds,
        "volume_size_gb": training.volume_size_gb,
        "capacity_wait_seconds": training.capacity_wait_seconds,
        "job_name_prefix": training.job_name_prefix,
        "tags": config.all_tags,
    }


def run_limits(config: EnvironmentConfig) -> dict[str, Any]:
    training = config.training
    return {
        "fields": input_fields(),
        "families": training.allowed_instance_families,
        "count_min": training.instance_count.min,
        "count_max": training.instance_count.max,
        "data_bucket": ResourceNames.of(config).data_bucket,
        "job_name_prefix": training.job_name_prefix,
        "max_keep_alive": MAX_KEEP_ALIVE_SECONDS,
        "max_runtime": MAX_RUNTIME_CEILING_SECONDS,
        "max_capacity_wait": MAX_CAPACITY_WAIT_SECONDS,
        "max_hyperparameters": MAX_USER_HYPERPARAMETERS,
        "max_hyperparameter_length": MAX_HYPERPARAMETER_LENGTH,
    }


def _literal(value: Any) -> str:
    """A JSON literal is a valid JSONata literal."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# Helpers shared by the expressions below. `$enc` is the SageMaker SDK's json.dumps of a hyperparameter
# value (strings quoted and escaped, numbers bare); `$show` uses it to quote values in messages.
# `$string` writes numbers with 15 significant digits, so 3.141592653589793 would arrive as 3.14159265358979:
# `$encNum` keeps `$string`'s form when it reads back as the same number, else takes the shortest
# `$formatNumber` rendering (fixed from 1e-4 to 1e16 as Python's repr, else with an exponent) that does.
ENCODE_FUNCTION = (
    r"$encNum := function($v) { ($s := $string($v); $number($s) = $v ? $s : ($exact := $filter($map([1..20],"
    r' function($d) { $formatNumber($v, "0.0" & $pad("", $d - 1, "#")'
    r' & ($abs($v) >= 0.0001 and $abs($v) < 1e16 ? "" : "e0")) }), function($c) { $number($c) = $v });'
    r" $count($exact) > 0 ? $exact[0] : $s)) };"
    r' $enc := function($v) { $type($v) = "string" ? $substring($string([$v]), 1, $length($string([$v])) - 2)'
    r' : $type($v) = "number" ? $encNum($v) : $string($v) };'
)
_HELPERS = (
    "\n  "
    + ENCODE_FUNCTION
    + r"""
  $show := function($v) { $exists($v) ? $enc($v) : "nothing" };
  $isInt := function($v) { $type($v) = "number" and $v = $floor($v) };
  $isObj := function($v) { $type($v) = "object" };
  $intIn := function($field, $v, $lo, $hi) {
    $exists($v) and $not($isInt($v) and $v >= $lo and $v <= $hi)
      ? $field & ": expected a whole number from " & $lo & " to " & $hi & ", got " & $show($v)
  };
  $isS3 := function($p) { $substring($p, 0, 5) = "s3://" };
  $isStrMap := function($v) { $isObj($v) and $count($filter($keys($v), function($f) { $not($type($lookup($v, $f)) = "string") })) = 0 };
"""
)


def validate_expression(config: EnvironmentConfig) -> str:
    """JSONata: the list of problems with `$states.input` (empty when valid)."""
    limits = _literal(run_limits(config))
    defaults = _literal(run_defaults(config))
    return (
        "{% (\n"
        f"  $in := $states.input;\n  $L := {limits};\n  $D := {defaults};\n"
        + _HELPERS
        + r"""
  $channelProblem := function($v, $k) { (
    $prefix := $type($v) = "string" ? $v : ($isObj($v) ? $v.prefix);
    $mode := $isObj($v) ? $v.input_mode;
    $bucket := "s3://" & $L.data_bucket & "/";
    $extra := $isObj($v) ? $filter($keys($v), function($f) { $not($f in ["prefix", "input_mode"]) });
    $not($contains($k, /^[A-Za-z0-9.\-_]{1,64}$/))
      ? "channels." & $k & ": channel names must match [A-Za-z0-9.-_]{1,64}"
    : $not($type($prefix) = "string") or $count($extra) > 0
      ? "channels." & $k & ": expected an S3 prefix in the data bucket (\"datasets/train/\" or \"" & $bucket
        & "datasets/train/\") or {\"prefix\": ..., \"input_mode\": \"File\"}, got " & $show($v)
    : $isS3($prefix) and $substring($prefix, 0, $length($bucket)) != $bucket
      ? "channels." & $k & ": " & $show($prefix) & " is outside the platform's data bucket " & $bucket
        & "; copy the data there (the training role reads only that bucket)"
    : $contains($prefix, /\.\./)
      ? "channels." & $k & ": " & $show($prefix) & " must not contain '..'"
    : $exists($mode) and $not($mode in ["File", "FastFile", "Pipe"])
      ? "channels." & $k & ".input_mode: expected one of File, FastFile, Pipe, got " & $show($mode)
  ) };
  $not($type($in) = "object")
    ? ["input: expected a JSON object such as {} or {\"instance_count\": 2}, got " & $show($in)]
    : (
      $unknown := $filter($keys($in), function($f) { $not($f in $L.fields) });
      $it := $in.instance_type;
      $itOk := $type($it) = "string" and $contains($it, /^ml\.[a-z0-9-]+\.[a-z0-9]+$/);
      $family := $itOk ? $split($it, ".")[1];
      $hp := $in.hyperparameters;
      $hpNames := $isObj($hp) ? $keys($hp) : [];
      $ch := $in.channels;
      $env := $in.environment;
      $tags := $in.tags;
      $spot := $exists($in.spot) ? $in.spot : $D.spot;
      $keepAlive := $exists($in.keep_alive_seconds) ? $in.keep_alive_seconds : $D.keep_alive_seconds;
      $runtime := $exists($in.max_runtime_seconds) ? $in.max_runtime_seconds : $D.max_runtime_seconds;
      $prefix := $in.job_name_prefix;
      [
        $count($unknown) > 0
          ? "input: unknown field(s) " & $join($unknown, ", ") & "; allowed fields: " & $join($L.fields, ", "),
        $exists($it) and $not($itOk)
          ? "instance_type: expected a SageMaker instance type such as \"ml.g5.2xlarge\", got " & $show($it),
        $itOk and $not($family in $L.families)
          ? "instance_type: " & $show($it) & " is of family \"" & $family
            & "\", which this environment does not allow; allowed families: " & $join($L.families, ", "),
        $intIn("instance_count", $in.instance_count, $L.count_min, $L.count_max),
        $exists($hp) and $not($isObj($hp))
          ? "hyperparameters: expected an object of names to values, got " & $show($hp),
        $count($hpNames) > $L.max_hyperparameters
          ? "hyperparameters: at most " & $L.max_hyperparameters & " entries, got " & $count($hpNames),
        ($reserved := $filter($hpNames, function($f) { $substring($f, 0, 10) = "sagemaker_" });
          $count($reserved) > 0
            ? "hyperparameters: " & $join($reserved, ", ") & ": names starting with sagemaker_ are set by the platform"),
        ($long := $filter($hpNames, function($f) { $length($enc($lookup($hp, $f))) > $L.max_hyperparameter_length });
          $count($long) > 0
            ? "hyperparameters: " & $join($long, ", ") & ": each value must encode to at most "
              & $L.max_hyperparameter_length & " characters"),
        $exists($ch) and $not($isObj($ch))
          ? "channels: expected an object of channel names to S3 prefixes, got " & $show($ch),
        $isObj($ch) ? ($p := $each($ch, $channelProblem); $count($p) > 0 ? $join($p, "; ")),
        $exists($env) and $not($isStrMap($env))
          ? "environment: expected an object of names to string values, got " & $show($env),
        ($badNames := $isObj($env) ? $filter($keys($env), function($f) { $not($contains($f, /^[a-zA-Z_][a-zA-Z0-9_]{0,511}$/)) });
          $count($badNames) > 0 ? "environment: variable names must match [a-zA-Z_][a-zA-Z0-9_]*, got " & $join($badNames, ", ")),
        $intIn("keep_alive_seconds", $in.keep_alive_seconds, 0, $L.max_keep_alive),
        $intIn("max_runtime_seconds", $in.max_runtime_seconds, 60, $L.max_runtime),
        $exists($in.spot) and $not($type($in.spot) = "boolean")
          ? "spot: expected true or false, got " & $show($in.spot),
        $spot = true and $isInt($keepAlive) and $keepAlive > 0
          ? "keep_alive_seconds: warm pools are not available with spot training; set keep_alive_seconds to 0 or spot to false",
        $intIn("max_wait_seconds", $in.max_wait_seconds, 60, $L.max_runtime),
        $isInt($in.max_wait_seconds) and $isInt($runtime) and $in.max_wait_seconds < $runtime
          ? "max_wait_seconds: must be at least max_runtime_seconds (" & $runtime & "), got " & $in.max_wait_seconds,
        $intIn("volume_size_gb", $in.volume_size_gb, 1, 16384),
        $intIn("capacity_wait_seconds", $in.capacity_wait_seconds, 0, $L.max_capacity_wait),
        $exists($in.resume_from) and $not($type($in.resume_from) = "string" and $contains($in.resume_from, /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/))
          ? "resume_from: expected the name of an earlier run or training job (up to 63 letters, digits and dashes), got " & $show($in.resume_from),
        $exists($prefix) and ($not($type($prefix) = "string") or $not($contains($prefix, /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,29}$/)))
          ? "job_name_prefix: expected up to 30 letters, digits and dashes, got " & $show($prefix),
        $type($prefix) = "string" and $substring($prefix, 0, $length($L.job_name_prefix)) != $L.job_name_prefix
          ? "job_name_prefix: must start with \"" & $L.job_name_prefix & "\" (the execution role may only create those jobs), got " & $show($prefix),
        $exists($tags) and $not($isStrMap($tags))
          ? "tags: expected an object of tag names to string values, got " & $show($tags),
        $isObj($tags) and $count($keys($tags)) > 40 ? "tags: at most 40 tags, got " & $count($keys($tags)),
        $isObj($tags) and $count($filter($keys($tags), function($f) { $substring($f, 0, 4) = "aws:" })) > 0
          ? "tags: names starting with aws: are reserved"
      ]
    )
) %}"""
    )


def prepare_expression(config: EnvironmentConfig) -> str:
    """JSONata: the validated input merged over the environment defaults, channels as S3 URIs."""
    defaults = _literal(run_defaults(config))
    data_bucket = ResourceNames.of(config).data_bucket
    return (
        "{% (\n"
        f"  $in := $states.input;\n  $D := {defaults};\n  $bucket := {_literal(data_bucket)};\n"
        + _HELPERS
        + r"""
  $channels := $merge([$D.channels, $in.channels]);
  $runtime := $exists($in.max_runtime_seconds) ? $in.max_runtime_seconds : $D.max_runtime_seconds;
  $merge([$D, $in, {
    "hyperparameters": $merge([$D.hyperparameters, $in.hyperparameters]),
    "environment": $merge([$D.environment, $in.environment]),
    "tags": $merge([$D.tags, $in.tags]),
    "max_wait_seconds": $exists($in.max_wait_seconds) ? $in.max_wait_seconds
      : ($exists($D.max_wait_seconds) ? $D.max_wait_seconds : $runtime),
    "channels": $merge([$each($channels, function($v, $k) { (
      $prefix := $type($v) = "string" ? $v : $v.prefix;
      {$k: {
        "s3_uri": $isS3($prefix) ? $prefix : "s3://" & $bucket & "/" & $prefix,
        "input_mode": ($type($v) = "object" and $exists($v.input_mode)) ? $v.input_mode : "File"
      }}
    ) })])
  }])
) %}"""
    )


# Unique per execution and stable across retries within it: the execution's start time to the millisecond (for
# people) and 12 hex digits of the SHA-256 of its ARN (for uniqueness: two executions started in the same
# millisecond whose names share an ending still differ; the ARN is unique across state machines and regions).
# At most 30 + 1 + 17 + 1 + 10 = 59 characters of [a-zA-Z0-9-], leaving room for a retry's "-r<n>" (n < 10).
# `$hash` is one of Step Functions' own JSONata functions.
JOB_NAME_EXPRESSION = (
    '{% $run.job_name_prefix & "-" & $replace($substring($states.context.Execution.StartTime, 0, 23), /[^0-9]/, "")'
    ' & "-" & $substring($hash($states.context.Execution.Id, "SHA-256"), 0, 10) %}'
)
