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

from trainstack.config import MAX_CAPACITY_WAIT_SECONDS, EnvironmentConfig, ResourceNames
from trainstack.run_environment_rules import jsonata_rules, platform_reason

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "training-run-input.schema.json"
# SageMaker allows 100 hyperparameters; script mode adds five sagemaker_* entries of its own.
MAX_USER_HYPERPARAMETERS = 95
MAX_HYPERPARAMETER_LENGTH = 2500
# Where a run's own code packages live in the artifacts bucket: the execution role reads this prefix (and
# the platform's deploy-time package) and nothing else of that bucket besides output/ and checkpoints/.
CODE_PREFIX = "code/"
# SageMaker allows 50 tags on a job (botocore's model); the state machine adds `trainstack:execution`.
MAX_JOB_TAGS = 50
# Tag keys and values: AWS allows Unicode letters, digits and separators (\p{L}\p{Z}\p{N}) and _.:/=+-@.
# JSONata's regular expressions have no Unicode classes (JavaScript's need the `u` flag, which JSONata does
# not take), so the class spells out ASCII and the letter blocks of the common scripts: Latin-1 and Latin
# Extended-A/B letters, Greek, basic Cyrillic, kana, the original CJK ideographs and Hangul syllables. Every
# character in it is one AWS accepts (tests/test_run_input_rules.py checks each against AWS's pattern), so the
# check is never more forgiving than AWS; letters of other scripts are refused here, with a message saying so.
TAG_UNICODE_LETTERS = (
    r"\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0391-\u03A1\u03A3-\u03A9\u03B1-\u03C9\u0410-\u044F"
    r"\u3041-\u3096\u30A1-\u30FA\u30FC-\u30FF\u4E00-\u9FA5\uAC00-\uD7A3"
)
# In a JSONata regular expression literal (`/` escaped).
TAG_CHARACTER_CLASS = r"A-Za-z0-9 _.:\/=+\-@" + TAG_UNICODE_LETTERS
# S3 locations inside any string of the input: s3:// (and the s3a/s3n schemes of Hadoop-style readers).
S3_URI_BUCKETS = r"/[sS]3[aAnN]?:\/\/([A-Za-z0-9._\-]*)/"


def code_prefix_uri(config: EnvironmentConfig) -> str:
    return f"s3://{ResourceNames.of(config).artifacts_bucket}/{CODE_PREFIX}"


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
        "code_prefix": code_prefix_uri(config),
        "images": config.allowed_image_repositories,
        "job_name_prefix": training.job_name_prefix,
        "platform_tags": sorted(config.platform_tags),
        "max_tags": MAX_JOB_TAGS - 1,
        # The environment's ceilings, which IAM enforces too (create_training_job_state.grant_training_jobs).
        "max_keep_alive": training.keep_alive_ceiling_seconds,
        "max_runtime": training.max_runtime_ceiling_seconds,
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
  $s3Buckets := function($text) { $match($text, __S3_URI_BUCKETS__).groups[0] };
  $isStrMap := function($v) { $isObj($v) and $count($filter($keys($v), function($f) { $not($type($lookup($v, $f)) = "string") })) = 0 };
"""
).replace("__S3_URI_BUCKETS__", S3_URI_BUCKETS)


def validate_expression(config: EnvironmentConfig) -> str:
    """JSONata: the list of problems with `$states.input` (empty when valid)."""
    limits = _literal(run_limits(config))
    defaults = _literal(run_defaults(config))
    environment_rules = _literal({**jsonata_rules(), "platform_why": platform_reason()})
    return (
        "{% (\n"
        f"  $in := $states.input;\n  $L := {limits};\n  $D := {defaults};\n  $E := {environment_rules};\n"
        + _HELPERS
        + r"""
  /* Why a run may not set this environment variable (schemas/run-environment-deny-list.json), or nothing. */
  $denied := function($name) { (
    $up := $uppercase($name);
    $name in $E.platform ? $E.platform_why
    : $filter($E.groups, function($g) { (
        $n := $g.any_case ? $up : $name;
        $n in $g.names or $count($filter($g.prefixes, function($p) { $substring($n, 0, $length($p)) = $p })) > 0
          or $count($filter($g.suffixes, function($s) { $length($n) >= $length($s) and $substring($n, -$length($s)) = $s })) > 0
      ) })[0].why
  ) };
  /* S3 locations outside the data bucket named anywhere in a value (the execution role reads only that bucket). */
  $outside := function($text) { $filter($s3Buckets($text), function($b) { $b != $L.data_bucket }) };
  $outsideProblem := function($field, $v) { (
    $o := $outside($enc($v));
    $count($o) > 0
      ? $field & ": " & $show($v) & " names S3 bucket(s) " & $join($o, ", ") & " outside the platform's data bucket s3://"
        & $L.data_bucket & "/; copy the data there (the training role reads only that bucket)"
  ) };
  /* Hyperparameters named *_s3_uri or *_s3_prefix are S3 locations: a key in the data bucket or s3://<data bucket>/... */
  $hpProblem := function($f) { (
    $v := $lookup($in.hyperparameters, $f);
    $named := $contains($f, /_s3_(uri|prefix)$/i);
    $named and $not($type($v) = "string")
      ? "hyperparameters." & $f & ": expected an S3 location in the data bucket (a key, or s3://" & $L.data_bucket
        & "/...), got " & $show($v)
    : $named and $contains($v, /:\/\//) and $not($contains($v, /^[sS]3[aAnN]?:\/\//))
      ? "hyperparameters." & $f & ": expected an S3 location in the data bucket (a key, or s3://" & $L.data_bucket
        & "/...), got " & $show($v)
    : $named and ".." in $split($v, "/")
      ? "hyperparameters." & $f & ": " & $show($v) & " must not contain a '..' segment (a key stays inside the data bucket)"
    : $outsideProblem("hyperparameters." & $f, $v)
  ) };
  $tagChars := function($text, $max) { $contains($text, /^[TAG_CHARACTERS]*$/) and $length($text) <= $max };
  $channelProblem := function($v, $k) { (
    $prefix := $type($v) = "string" ? $v : ($isObj($v) ? $v.prefix);
    $mode := $isObj($v) ? $v.input_mode;
    $bucket := "s3://" & $L.data_bucket & "/";
    $extra := $isObj($v) ? $filter($keys($v), function($f) { $not($f in ["prefix", "input_mode"]) });
    $not($contains($k, /^[A-Za-z0-9.\-_]{1,64}$/))
      ? "channels." & $k & ": channel names must match [A-Za-z0-9.-_]{1,64}"
    : $type($v) = "null" ? undefined
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
  $codeProblems := function($c) { (
    $ep := $c.entry_point;
    $pkg := $c.package;
    $extra := $filter($keys($c), function($f) { $not($f in ["package", "entry_point"]) });
    [
      $count($extra) > 0 ? "code: unknown field(s) " & $join($extra, ", ") & "; allowed: package, entry_point",
      $not($type($ep) = "string")
        ? "code.entry_point: expected the script to run, relative to the package root (\"train.py\"), got " & $show($ep)
      : $substring($ep, 0, 1) = "/" or ".." in $split($ep, "/")
        ? "code.entry_point: " & $show($ep) & " must be a relative path inside the package: no leading '/', no '..'"
      : $not($contains($ep, /^[A-Za-z0-9_.\/-]+\.(py|sh)$/))
        ? "code.entry_point: expected a .py or .sh file name of letters, digits, '_', '.', '-' and '/', got " & $show($ep),
      $exists($pkg) and $not($type($pkg) = "string" and $substring($pkg, 0, $length($L.code_prefix)) = $L.code_prefix
          and $contains($pkg, /\.tar\.gz$/) and $not(".." in $split($pkg, "/")))
        ? "code.package: " & $show($pkg) & " is not a .tar.gz under the platform's code prefix " & $L.code_prefix
          & " (the execution role reads only there; trainstack run --source-dir uploads one)"
    ]
  ) };
  $imageAllowed := function($im) {
    $count($filter($L.images, function($r) { (
      $rest := $substring($im, $length($r) + 1);
      $substring($im, 0, $length($r) + 1) = $r & ":" and $contains($rest, /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/)
        or $substring($im, 0, $length($r) + 1) = $r & "@" and $contains($rest, /^sha256:[0-9a-f]{64}$/)
    ) })) > 0
  };
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
        $exists($in.replace_channels) and $not($type($in.replace_channels) = "boolean")
          ? "replace_channels: expected true or false, got " & $show($in.replace_channels),
        $exists($in.code) and $not($isObj($in.code))
          ? "code: expected {\"package\": \"" & $L.code_prefix & "...tar.gz\", \"entry_point\": \"train.py\"}, got "
            & $show($in.code),
        $isObj($in.code) ? ($p := $codeProblems($in.code); $count($p) > 0 ? $join($p, "; ")),
        $exists($in.image) and $not($type($in.image) = "string" and $imageAllowed($in.image))
          ? "image: " & $show($in.image) & " is not an allowed image; expected <repository>:<tag> or "
            & "<repository>@sha256:<digest> of one of " & $join($L.images, ", "),
        $exists($env) and $not($isStrMap($env))
          ? "environment: expected an object of names to string values, got " & $show($env),
        ($badNames := $isObj($env) ? $filter($keys($env), function($f) { $not($contains($f, /^[a-zA-Z_][a-zA-Z0-9_]{0,511}$/)) });
          $count($badNames) > 0 ? "environment: variable names must match [a-zA-Z_][a-zA-Z0-9_]* (at most 512 characters), got "
            & $join($badNames, ", ")),
        $isObj($env) ? (
          $p := $map($filter($keys($env), function($f) { $exists($denied($f)) }), function($f) {
            "environment." & $f & ": a run may not set it: " & $denied($f)
          });
          $count($p) > 0 ? $join($p, "; ")),
        $isStrMap($env) ? (
          $long := $filter($keys($env), function($f) { $length($lookup($env, $f)) > $E.max_value });
          $count($long) > 0 ? "environment: " & $join($long, ", ") & ": values are at most " & $E.max_value & " characters"),
        $isObj($env) and $count($distinct($append($keys($D.environment), $keys($env)))) + $count($E.platform) > $E.max_entries
          ? "environment: at most " & ($E.max_entries - $count($E.platform)) & " variables with the environment's defaults ("
            & "SageMaker allows " & $E.max_entries & ", the platform sets " & $join($E.platform, ", ") & ")",
        $isStrMap($env) ? ($p := $each($env, function($v, $k) { $outsideProblem("environment." & $k, $v) }); $count($p) > 0 ? $join($p, "; ")),
        $isObj($hp) ? ($p := $map($hpNames, $hpProblem); $count($p) > 0 ? $join($p, "; ")),
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
        $type($prefix) = "string" and $prefix != $L.job_name_prefix
          and $substring($prefix, 0, $length($L.job_name_prefix) + 1) != $L.job_name_prefix & "-"
          ? "job_name_prefix: must be \"" & $L.job_name_prefix & "\" or start with \"" & $L.job_name_prefix
            & "-\" (IAM lets the platform create only jobs named " & $L.job_name_prefix & "-...), got " & $show($prefix),
        $exists($tags) and $not($isStrMap($tags))
          ? "tags: expected an object of tag names to string values, got " & $show($tags),
        $isObj($tags) and $count($distinct($append($keys($D.tags), $keys($tags)))) > $L.max_tags
          ? "tags: at most " & $L.max_tags & " tags with the environment's own (SageMaker allows 50 on a job, the platform "
            & "adds trainstack:execution), got " & $count($distinct($append($keys($D.tags), $keys($tags)))),
        $isObj($tags) and $count($filter($keys($tags), function($f) { $substring($lowercase($f), 0, 4) = "aws:" })) > 0
          ? "tags: names starting with aws: are reserved",
        $isObj($tags) ? (
          $p := $map($filter($keys($tags), function($f) { $substring($lowercase($f), 0, 11) = "trainstack:" }), function($f) {
            "tags." & $f & ": tags starting with trainstack: are set by the platform (" & $join($L.platform_tags, ", ")
              & ", trainstack:execution); a run cannot set or override them"
          });
          $count($p) > 0 ? $join($p, "; ")),
        $isObj($tags) ? (
          $p := $map($filter($keys($tags), function($f) { $length($f) = 0 or $not($tagChars($f, 128)) }), function($f) {
            "tags." & $f & ": tag keys are 1 to 128 letters, digits, spaces and _.:/=+-@"
          });
          $count($p) > 0 ? $join($p, "; ")),
        $isStrMap($tags) ? (
          $p := $map($filter($keys($tags), function($f) { $not($tagChars($lookup($tags, $f), 256)) }), function($f) {
            "tags." & $f & ": " & $show($lookup($tags, $f)) & " is not a tag value: at most 256 letters, digits, spaces and _.:/=+-@"
          });
          $count($p) > 0 ? $join($p, "; "))
      ]
    )
) %}"""
    ).replace("TAG_CHARACTERS", TAG_CHARACTER_CLASS)


def prepare_expression(config: EnvironmentConfig) -> str:
    """JSONata: the validated input merged over the environment defaults, channels as S3 URIs."""
    defaults = _literal(run_defaults(config))
    data_bucket = ResourceNames.of(config).data_bucket
    return (
        "{% (\n"
        f"  $in := $states.input;\n  $D := {defaults};\n  $bucket := {_literal(data_bucket)};\n"
        + _HELPERS
        + r"""
  $channels := $in.replace_channels = true ? $merge([{}, $in.channels]) : $merge([$D.channels, $in.channels]);
  $runtime := $exists($in.max_runtime_seconds) ? $in.max_runtime_seconds : $D.max_runtime_seconds;
  $merge([$D, $in, {
    /* The environment's default hyperparameters are the packaged training code's arguments: a run's own
       code package gets only its own (a script that does not know them would fail on them). */
    "hyperparameters": $exists($in.code.package) ? $merge([{}, $in.hyperparameters])
      : $merge([$D.hyperparameters, $in.hyperparameters]),
    "environment": $merge([$D.environment, $in.environment]),
    "tags": $merge([$D.tags, $in.tags]),
    "max_wait_seconds": $exists($in.max_wait_seconds) ? $in.max_wait_seconds
      : ($exists($D.max_wait_seconds) ? $D.max_wait_seconds : $runtime),
    "channels": $merge([{}, $each($channels, function($v, $k) { (
      $prefix := $type($v) = "string" ? $v : $v.prefix;
      $type($v) = "null" ? {} : {$k: {
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
def run_name_expression(prefix: str, start_time: str, execution_arn: str) -> str:
    """The run's name (its first job's) as a JSONata expression over the three given expressions.

    `start_time` is ISO 8601 (`$states.context.Execution.StartTime`, or `$fromMillis(...)` of an execution status
    event's `startDate`): only its first 23 characters, to the millisecond, are used, so both forms agree.
    """
    return f'{prefix} & "-" & {run_suffix_expression(start_time, execution_arn)}'


# `-<17 digits>-<10 hex>`: what follows the prefix in a run's name, and in each of its jobs' names.
RUN_SUFFIX_LENGTH = 28


def run_suffix_expression(start_time: str, execution_arn: str) -> str:
    """The part of a run's name that its execution alone determines, whatever its `job_name_prefix`: the start
    time to the millisecond (17 digits) and the first 10 hex digits of the SHA-256 of its ARN (RUN_SUFFIX_LENGTH
    characters with the dash between them)."""
    return (
        f'$replace($substring({start_time}, 0, 23), /[^0-9]/, "")'
        f' & "-" & $substring($hash({execution_arn}, "SHA-256"), 0, 10)'
    )


JOB_NAME_EXPRESSION = (
    "{% "
    + run_name_expression("$run.job_name_prefix", "$states.context.Execution.StartTime", "$states.context.Execution.Id")
    + " %}"
)
