"""The execution input contract: validation (InvalidInput) and the merge with the environment's defaults.

The rules are the rulebook's (trainstack/run_input_rules.py); the field list is read from
`trainstack/schemas/training-run-input.schema.json`, so the schema, the validation and the console example cannot drift
apart. Validation runs as one JSONata expression in a Pass state, before anything is created, and collects
every problem at once: each message names the field, the value, what is allowed and the rule's id. The limits
are checked on what SageMaker will receive: the environment's defaults and the platform's own hyperparameters,
environment variables and tags included, and the longest job name a capacity retry gives.
"""

from __future__ import annotations

import json
from typing import Any

from trainstack.config import (
    MAX_CAPACITY_WAIT_SECONDS,
    EnvironmentConfig,
    ResourceNames,
    nested_job_name_prefixes,
    training_instance_types,
)
from trainstack.package_data import data_file
from trainstack.platform.constructs.capacity_retry import CAPACITY_RETRIES
from trainstack.run_environment_rules import jsonata_rules
from trainstack.run_input_rules import RULES, Rule

RUN_INPUT_SCHEMA = data_file("trainstack", "schemas/training-run-input.schema.json")
# botocore's SageMaker model: at most 100 hyperparameters in the request, values of at most 2500 characters,
# at most 20 channels (InputDataConfig).
MAX_REQUEST_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_LENGTH = 2500
MAX_CHANNELS = 20
# What script mode adds to every request's HyperParameters (create_training_job_state.build_request_expression).
PLATFORM_HYPERPARAMETERS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
)
# A job name is the prefix, "-", 17 digits of start time, "-", 10 hex digits (run_name_expression) and, for a
# capacity retry, "-r<n>" (capacity_retry.py).
JOB_NAME_SUFFIX_LENGTH = 1 + 17 + 1 + 10 + len(f"-r{CAPACITY_RETRIES}")
# Deeper inputs are refused before any other check walks them (a recursion bound for every evaluator; Step
# Functions' own parser stops at 1,000).
MAX_INPUT_DEPTH = 256
MAX_REPORTED_PROBLEMS = 20
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
    return sorted(json.loads(RUN_INPUT_SCHEMA.read_text(encoding="utf-8"))["properties"])


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
        # Another environment's names inside this one's (local's trainstack- holds dev's trainstack-dev-).
        "other_prefixes": [{"env": env, "prefix": prefix} for env, prefix in nested_job_name_prefixes(config).items()],
        "platform_tags": sorted(config.platform_tags),
        "max_tags": MAX_JOB_TAGS - 1,
        # The environment's ceilings, which IAM enforces too (create_training_job_state.grant_training_jobs).
        "max_keep_alive": training.keep_alive_ceiling_seconds,
        "max_runtime": training.max_runtime_ceiling_seconds,
        "max_capacity_wait": MAX_CAPACITY_WAIT_SECONDS,
        "max_request_hyperparameters": MAX_REQUEST_HYPERPARAMETERS,
        "platform_hyperparameters": list(PLATFORM_HYPERPARAMETERS),
        "max_hyperparameter_length": MAX_HYPERPARAMETER_LENGTH,
        "max_channels": MAX_CHANNELS,
        "job_name_suffix": JOB_NAME_SUFFIX_LENGTH,
        "max_depth": MAX_INPUT_DEPTH,
        # One string ("|ml.m5.xlarge|...|"), not an array: 200-odd literals would slow every evaluation's parse.
        "instance_types": "|" + "|".join(training_instance_types()) + "|",
    }


def _literal(value: Any) -> str:
    """A JSON literal is a valid JSONata literal."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# Helpers shared by the expressions below. `$enc` is the SageMaker SDK's json.dumps of a hyperparameter
# value (strings quoted and escaped, numbers bare); `$show` uses it to quote values in messages.
# `$string` writes numbers with 15 significant digits, so 3.141592653589793 would arrive as 3.14159265358979:
# `$encNum` keeps `$string`'s form when it reads back as the same number, else takes the shortest
# `$formatNumber` rendering (fixed from 1e-4 to 1e16 as Python's repr, else with an exponent) that does.
# From 1e308 on, `$string`'s rounding can pass the largest double and `$number` of it fails ("Number out of
# range"): such numbers are only written (rule hyperparameter-number-range refuses them), never read back.
ENCODE_FUNCTION = (
    r"$encNum := function($v) { ($s := $string($v); $abs($v) >= 1e308 ? $s : $number($s) = $v ? $s :"
    r" ($exact := $filter($map([1..20],"
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
  $show := function($v) { $exists($v) ? ($s := $enc($v); $length($s) > 100
    ? $substring($s, 0, 80) & "... (" & $length($s) & " characters)" : $s) : "nothing" };
  $clip := function($s) { $length($s) > 64 ? $substring($s, 0, 48) & "... (" & $length($s) & " characters)" : $s };
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


# Functions the rulebook's checks call (trainstack/run_input_rules.py), after _HELPERS. Mind a '/' in these comments:
# the embedded Step Functions finds variable references with a regex that reads /.../ as a regex literal, so one more
# '/' can pair differently and leave a lone '$' (IllegalJSONataVariableReference at Validate; seen with a path here).
_VALIDATE_HELPERS = r"""
  /* A rule's problems as an array, each ending in the rule's id. */
  $tag := function($p, $id) { $map($filter($append([], $p), function($x) { $type($x) = "string" }), function($x) { $x & " [" & $id & "]" }) };
  /* Why no run may set this environment variable whatever the environment allows (schemas/run-environment-rules.json). */
  $refusedWhy := function($name) { (
    $up := $uppercase($name);
    $parts := $split($up, "_");
    $filter($E.groups, function($g) { (
        $n := $g.any_case ? $up : $name;
        $n in $g.names or $count($filter($g.prefixes, function($p) { $substring($n, 0, $length($p)) = $p })) > 0
          or $count($filter($g.suffixes, function($s) { $length($n) >= $length($s) and $substring($n, -$length($s)) = $s })) > 0
          or ($not($name in $E.builtin) and $count($filter($split($n, "_"), function($w) { $w in $g.words })) > 0)
      ) })[0].why
  ) };
  $envAllowed := function($name) {
    $not($exists($refusedWhy($name))) and ($name in $E.allowed
      or $count($filter($E.families, function($f) { $substring($name, 0, $length($f)) = $f and $length($name) > $length($f) })) > 0)
  };
  /* How deep objects and arrays nest: strings emptied, then innermost brackets removed, max_depth + 1 times. */
  $strip := function($s, $n) { $n = 0 or $not($contains($s, /[\[\{]/)) ? $s
    : $strip($replace($s, /\{[^{}\[\]]*\}|\[[^{}\[\]]*\]/, "0"), $n - 1) };
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
    : $outsideProblem("hyperparameters." & $clip($f), $v)
  ) };
  $tagChars := function($text, $max) { $contains($text, /^[TAG_CHARACTERS]*$/) and $length($text) <= $max };
  /* Only a prefix relative to the data bucket or s3://<data bucket>/... is a channel: any other scheme
     (S3://, s3a://, https://) would silently become a key in the data bucket, "" the whole bucket. */
  $channelProblem := function($v, $k) { (
    $prefix := $type($v) = "string" ? $v : ($isObj($v) ? $v.prefix);
    $mode := $isObj($v) ? $v.input_mode;
    $bucket := "s3://" & $L.data_bucket & "/";
    $extra := $isObj($v) ? $filter($keys($v), function($f) { $not($f in ["prefix", "input_mode"]) });
    $inBucket := $type($prefix) = "string" and $substring($prefix, 0, $length($bucket)) = $bucket;
    $not($contains($k, /^[A-Za-z0-9.\-_]{1,64}$/))
      ? "channels." & $clip($k) & ": channel names must match [A-Za-z0-9.-_]{1,64}"
    : $type($v) = "null" ? undefined
    : $not($type($prefix) = "string") or $count($extra) > 0
      ? "channels." & $k & ": expected an S3 prefix in the data bucket (\"datasets/train/\" or \"" & $bucket
        & "datasets/train/\") or {\"prefix\": ..., \"input_mode\": \"File\"}, got " & $show($v)
    : $length($prefix) = 0 or $prefix = $bucket
      ? "channels." & $k & ": an empty prefix would give the job the whole data bucket; name a prefix such as \"datasets/train/\""
    : $not($inBucket) and $contains($prefix, /^[A-Za-z][A-Za-z0-9+.\-]*:/)
      ? "channels." & $k & ": " & $show($prefix) & " is outside the platform's data bucket " & $bucket
        & ": expected a prefix relative to it (\"datasets/train/\") or " & $bucket & "...; copy the data there (the training role reads only that bucket)"
    : $contains($prefix, /\.\./)
      ? "channels." & $k & ": " & $show($prefix) & " must not contain '..'"
    : $substring($prefix, 0, 1) = "/"
      ? "channels." & $k & ": " & $show($prefix) & " must not start with '/' (it is relative to the data bucket)"
    : $contains($prefix, /[\u0000-\u001f\u007f]/)
      ? "channels." & $k & ": " & $show($prefix) & " must not contain control characters"
    : $length($inBucket ? $prefix : $bucket & $prefix) > 1024
      ? "channels." & $k & ": the S3 URI would be " & $length($inBucket ? $prefix : $bucket & $prefix)
        & " characters; SageMaker allows 1024"
    : $exists($mode) and $not($mode in ["File", "FastFile", "Pipe"])
      ? "channels." & $k & ".input_mode: expected one of File, FastFile, Pipe, got " & $show($mode)
  ) };
  $codeProblems := function($c) { (
    $ep := $c.entry_point;
    $pkg := $c.package;
    $extra := $filter($keys($c), function($f) { $not($f in ["package", "entry_point"]) });
    [
      $count($extra) > 0 ? "code: unknown field(s) " & $join($map($extra, $clip), ", ") & "; allowed: package, entry_point",
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
  $flat := $replace($replace($string($in), /\\./, "x"), /\u0022[^\u0022]*\u0022/, "0");
  $tooDeep := $contains($strip($flat, $L.max_depth), /[\[\{]/);
"""
# What the checks read: the input's parts, and what the request will hold once merged over the defaults.
_VALIDATE_BINDINGS = r"""      $unknown := $filter($keys($in), function($f) { $not($f in $L.fields) });
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
      $finalPrefix := $exists($prefix) ? $prefix : $D.job_name_prefix;
      /* As Prepare merges them: a run's own code package gets only its own hyperparameters. */
      $finalHp := $distinct($append($append([], $isObj($in.code) and $exists($in.code.package) ? [] : $keys($D.hyperparameters)), $hpNames));
      $chObj := $isObj($ch) ? $ch : {};
      $dropped := $filter($keys($chObj), function($n) { $type($lookup($chObj, $n)) = "null" });
      $finalChannelNames := $filter($distinct($append($append([], $in.replace_channels = true ? [] : $keys($D.channels)), $keys($chObj))),
        function($n) { $not($n in $dropped) });
"""


def validate_expression(config: EnvironmentConfig) -> str:
    """JSONata: the list of problems with `$states.input` (empty when valid), one per broken rule of the rulebook
    (trainstack/run_input_rules.py), each ending in ` [<rule id>]`."""
    limits = _literal(run_limits(config))
    defaults = _literal(run_defaults(config))
    environment_rules = _literal(jsonata_rules(config.training.allowed_environment))
    guards = [r for r in RULES if r.guard]
    checks = ",\n        ".join(_rule_expression(r) for r in RULES if not r.guard)
    return (
        "{% (\n"
        f"  $in := $states.input;\n  $L := {limits};\n  $D := {defaults};\n  $E := {environment_rules};\n"
        + _HELPERS
        + _VALIDATE_HELPERS
        + "".join(f"  $guard{i} := {_rule_expression(r)};\n" for i, r in enumerate(guards))
        + "  "
        + "".join(f"$count($guard{i}) > 0 ? $append([], $guard{i}) : " for i in range(len(guards)))
        + "(\n"
        + _VALIDATE_BINDINGS
        + f"      $all := $reduce([\n        {checks}\n      ], $append, []);\n"
        # A Step Functions cause holds at most 32768 characters, and a person reads the first few problems.
        + f"      $count($all) > {MAX_REPORTED_PROBLEMS} ? $append($all[[0..{MAX_REPORTED_PROBLEMS - 1}]],"
        + f' "and " & ($count($all) - {MAX_REPORTED_PROBLEMS}) & " more problem(s)") : $all\n'
        + "    )\n) %}"
    ).replace("TAG_CHARACTERS", TAG_CHARACTER_CLASS)


def _rule_expression(rule: Rule) -> str:
    """One rule's problems as an array (empty when it holds), each tagged with the rule's id."""
    check = " ".join(rule.check.split())
    if rule.per_key:
        field = f"$in.{rule.field}"
        check = f"$isObj({field}) ? $map($keys({field}), function($k) {{ ($v := $lookup({field}, $k); {check}) }})"
    return f'$tag(({check}), "{rule.id}")'


def config_problems(config: EnvironmentConfig) -> list[str]:
    """The rulebook applied to the environment's own defaults, as the run input `{...defaults}` (at synth):
    a default no run could send is refused here, worded as the run's InvalidInput would be."""
    from trainstack.run_preview import evaluate

    defaults = run_defaults(config)
    run_input = {key: value for key, value in defaults.items() if value is not None and key != "tags"}
    # The platform's own tags are the environment's; a run (and so tags.extra) may not set them.
    run_input["tags"] = dict(config.tags.extra)
    return list(evaluate(validate_expression(config), {"input": run_input, "context": {}}) or [])


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
